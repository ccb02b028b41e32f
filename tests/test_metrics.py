"""Metrics as time series: each agrees with the run's own totals."""

from __future__ import annotations

import json

import numpy as np

from weir.analysis.metrics import metrics
from weir.sim.scenario.run import execute
from weir.sim.scenario.loader import load_scenario


def test_counts_lag_and_throughput_agree_with_the_run():
    run = execute(load_scenario("at_least_once_crash"))
    m = metrics(run)
    assert m["source.count"][0].value[-1] == len(run.source["record_id"])
    assert m["sink.count"][0].value[-1] == len(run.sink["record_id"])  # duplicates included: rows written
    assert np.all(np.diff(m["sink.count"][0].value) >= 0)
    lag_max = m["records.lag-max"][0].value
    per_partition = np.vstack([s.value for s in m["records.lag"]])
    assert (lag_max == per_partition.max(axis=0)).all() and lag_max.max() > 0 and lag_max[-1] == 0
    steps = np.diff(m["throughput"][0].time) / 1e6
    written = (m["throughput"][0].value[1:] * steps).sum()
    assert abs(written - len(run.sink["record_id"])) < 1e-6 * len(run.sink["record_id"]) + 1


def test_checkpoint_durations_and_dlq_depth():
    run = execute(load_scenario("exactly_once_crash"))
    durations = metrics(run)["checkpoint.duration"][0]
    assert len(durations) == run.checkpoints_completed and (durations.value > 0).all()
    dlq_run = execute(load_scenario("dlq_replay"))
    depth = metrics(dlq_run)["dlq.depth"][0]
    assert depth.value.max() > 0 and depth.value[-1] == int((dlq_run.dlq["processed"] == 0).sum())


def test_watermark_lag_and_reconciliation_drift():
    m = metrics(execute(load_scenario("late_data_side_output")))
    lag = m["watermark.lag"]
    assert len(lag) == 4 and all(s.value.min() >= 10_000 for s in lag)  # at least the 10ms bound
    drift = metrics(execute(load_scenario("reconciliation_daily")))["reconciliation.drift"]
    assert drift and max(s.value.max() for s in drift) > 0


def test_series_are_json_able():
    m = metrics(execute(load_scenario("at_least_once_crash")))
    blob = json.dumps({k: [s.to_dict() for s in v] for k, v in m.items()})
    assert "records.lag-max" in json.loads(blob)


def test_source_subtasks_are_named_and_ordered_by_their_number_not_their_text():
    """One test of which nodes run source subtasks, for the metrics and the scenario's link rules."""
    from weir.analysis.metrics import source_nodes
    from weir.sim.scenario.nodes import node_names, source_subtask

    names = node_names(producers=3, sources=12)
    assert source_nodes(names) == ["source"] + [f"source-{i}" for i in range(1, 12)]  # source-10 after source-2
    assert [source_subtask(n) for n in ("source", "source-11", "producer-2", "sink", "sourcerer")] == [0, 11, None, None, None]
