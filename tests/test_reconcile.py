"""The reconciliation job: the seed's query on SQLite, against hand-computed rows."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import weir
from weir.analysis.reconcile import reconcile, reconciled, source_systems
from weir.sim.kernel.errors import ScenarioError
from weir.sim.scenario.model import Reconcile, Scenario, WindowSettings, Workload


def hand_run(source_ids, source_times, sink_ids, producers=2, produce_batch=10, threshold=0.001):
    scenario = SimpleNamespace(workload=Workload(producers=producers, produce_batch=produce_batch),
                               reconcile=Reconcile(period=100, threshold=threshold))
    return SimpleNamespace(scenario=scenario,
                           source={"record_id": np.asarray(source_ids), "event_time": np.asarray(source_times),
                                   "state": np.zeros(len(source_ids), dtype=np.int64)},
                           sink={"record_id": np.asarray(sink_ids, dtype=np.int64)})


def test_source_system_is_the_producer_instance():
    assert source_systems(np.array([0, 9, 10, 19, 20, 35]), 10, 2) == [
        "producer", "producer", "producer-1", "producer-1", "producer", "producer-1"]


def test_rows_by_day_and_source_system():
    # records 0-9 (producer) and 10-19 (producer-1) on day 0; 20-29 (producer) on day 1
    ids = list(range(30))
    times = [5] * 20 + [150] * 10
    sink = [i for i in range(30) if i != 3] + [12, 12, 25]  # 3 lost; 12 twice more, 25 once more
    rows = reconcile(hand_run(ids, times, sink), 100, 0.001)
    assert rows == [
        {"event_date": 0, "source_system": "producer", "source_count": 10, "source_unique": 10, "sink_count": 9,
         "sink_unique": 9, "missing_records": 1, "duplicate_records": 0, "status": "CRITICAL"},
        {"event_date": 1, "source_system": "producer", "source_count": 10, "source_unique": 10, "sink_count": 11,
         "sink_unique": 10, "missing_records": 0, "duplicate_records": 1, "status": "OK"},
        {"event_date": 0, "source_system": "producer-1", "source_count": 10, "source_unique": 10, "sink_count": 12,
         "sink_unique": 10, "missing_records": 0, "duplicate_records": 2, "status": "OK"},
    ]


def test_a_small_loss_is_a_warning_and_a_day_with_no_sink_rows_has_no_sink_counts():
    ids = list(range(2000))
    times = [5] * 2000
    sink = [i for i in ids if i != 7]  # 1 of 1000 for producer (0.1%: not below the threshold)
    rows = reconcile(hand_run(ids, times, sink, produce_batch=1000, threshold=0.002), 100, 0.002)
    assert [(r["source_system"], r["missing_records"], r["status"]) for r in rows] == [
        ("producer", 1, "WARN"), ("producer-1", 0, "OK")]
    rows = reconcile(hand_run([0, 1], [5, 5], [], produce_batch=10), 100, 0.001)
    assert rows == [{"event_date": 0, "source_system": "producer", "source_count": 2, "source_unique": 2,
                     "sink_count": None, "sink_unique": None, "missing_records": 2, "duplicate_records": None,
                     "status": "CRITICAL"}]


def test_reconciled_verdict_holds_and_fails():
    assert reconciled(hand_run(list(range(20)), [5] * 20, list(range(20)) + [4])).held
    bad = reconciled(hand_run(list(range(20)), [5] * 20, list(range(19))))
    assert not bad.held and bad.evidence["missing_records"] == 1 and bad.evidence["not_ok"] == 1


def test_reconciliation_daily_scenario_reports_rows():
    result = weir.run("reconciliation_daily")
    assert result.matches
    critical = [r for r in result.reconciliation if r["status"] == "CRITICAL"]
    assert critical and sum(r["missing_records"] for r in result.reconciliation) == result.lost
    assert result.reconciliation[0]["status"] == "CRITICAL"  # worst first
    assert result.to_dict()["reconciliation"] == [dict(r) for r in result.reconciliation]


def test_reconcile_needs_record_output():
    with pytest.raises(ScenarioError) as e:
        Scenario(window=WindowSettings(), reconcile=Reconcile())
    assert e.value.key == "reconcile"
