"""The outbox relay as a component (weir.OutboxRelay, issue 12 item 5): weir's CdcRelay subclasses
the same base; a user's decides what a round publishes, the order of publish and mark, and whether
its producer id survives a restart. weir's search tells the flawed ones from the correct one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import weir
from weir.faults.coverage import crash_points
from weir.sim.patterns.outbox import CdcRelay
from weir.sim.scenario.run import execute

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "outbox_relay.toml"


def _with(relay: str) -> weir.Scenario:
    s = weir.load_scenario(EXAMPLE)
    return replace(s, outbox=replace(s.outbox, relay=relay)).with_faults(())


def test_weir_s_relay_is_an_outbox_relay_and_the_user_s_batches_show_in_the_trace():
    assert issubclass(CdcRelay, weir.OutboxRelay) and not CdcRelay.mark_first and CdcRelay.keep_producer_id
    run = execute(weir.load_scenario(EXAMPLE), 1)
    marks = [r for r in run.trace.rows() if r["kind"] == "RELAY_MARK"]
    assert marks and max(r["events"] for r in marks) == 20  # SmallBatches(limit=20)
    assert weir.result_of(run).verdict("outbox_consistent").held


def test_marking_before_publishing_loses_events_and_crashpoints_and_explore_find_it():
    points = crash_points(_with("outbox_relay:MarkThenPublish"))
    assert points.broken[("outbox rows marked sent", "producer")] == ("outbox_consistent",)
    found = weir.explore(_with("outbox_relay:MarkThenPublish"), budget_s=600, seed=0, max_runs=40).counterexample
    assert found is not None and "have no event" in found.verdict.summary, found and found.verdict.summary


def test_a_fresh_producer_id_per_restart_publishes_events_twice():
    found = weir.explore(_with("outbox_relay:FreshProducerId"), budget_s=600, seed=0, max_runs=40).counterexample
    assert found is not None and "twice" in found.verdict.summary, found and found.verdict.summary


def test_the_correct_relay_survives_the_same_search():
    report = weir.explore(_with("outbox_relay:SmallBatches"), budget_s=600, seed=0, max_runs=40)
    assert report.counterexample is None, report.counterexample.verdict
