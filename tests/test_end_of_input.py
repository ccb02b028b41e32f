"""Runs that end cleanly (issue 13, items 1-3): the end-of-input watermark, the at-least-once +
checkpoint drain, and runs cut short that are not called losses."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import weir
from weir import Fault
from weir.analysis.checkers import drained, exactly_once, no_loss
from weir.analysis.windowed import window_complete
from weir.faults.explore import explore
from weir.sim.scenario.model import Checkpointing, Expect, Pipeline, Scenario, WindowSettings, Workload
from weir.sim.scenario.run import execute
from weir.sim.stream.windows import MAX_TIME
from tests.helpers import small


def _windowed(bounded: bool = True, **pipeline) -> Scenario:
    return Scenario(
        name="eoi", workload=Workload(records=4000, partitions=4, keys=20, produce_batch=100, produce_interval="5ms"),
        pipeline=Pipeline(mode="exactly_once", bounded=bounded, **pipeline), checkpoint=Checkpointing(interval="50ms"),
        window=WindowSettings(kind="tumbling", size="20ms"), expect=Expect())


def test_a_bounded_source_ends_its_input_with_the_max_watermark_and_every_window_fires():
    """Flink's bounded sources emit Watermark.MAX_WATERMARK when they finish
    (flink-streaming-java/.../api/operators/SourceOperator.java, emitNext on END_OF_INPUT); so every
    window fires, the last ones included, and window_complete judges all of them."""
    run = execute(_windowed(), 3)
    assert run.status == "drained"
    assert run.window_watermark == MAX_TIME
    verdict = window_complete(run)
    assert verdict.held, verdict.summary
    assert verdict.evidence["open_windows"] == 0 and "end of input" in verdict.summary
    assert verdict.evidence["closed_windows"] == len({(k, s) for k, s in zip(
        run.windows["key"].tolist(), run.windows["window_start"].tolist())})


def test_an_unbounded_source_leaves_the_last_windows_open():
    run = execute(_windowed(bounded=False), 3)
    assert run.status == "drained"
    assert run.window_watermark < MAX_TIME
    verdict = window_complete(run)
    assert verdict.held, verdict.summary
    assert verdict.evidence["open_windows"] > 0


@pytest.mark.parametrize("node", ["source", "coordinator", "processor"])
def test_a_crash_after_everything_was_read_still_fires_every_window(node):
    """The false alarm of issue 13: a 1us crash late in the run restores a checkpoint after which
    a source subtask reads nothing new. It still sends the end of input, so nothing stalls."""
    scenario = weir.load_scenario("hot_key_salted")
    faults = (Fault(kind="crash", node=node, at=1_042_484, down_for=1),)
    run = execute(scenario, 156423607, faults)
    assert run.status == "drained", (node, run.status)
    assert window_complete(run).held, (node, window_complete(run).summary)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hot_key_salted", "checkpoint_unaligned", "late_data_side_output"])
def test_explore_finds_nothing_in_correct_windowed_designs(name):
    """Correct windowed and checkpointed designs hold under crashes, pauses and partitions: a fixed
    budget of runs (the same on every machine) finds nothing to refute. Every claim under crashes;
    under pauses and partitions the windows' claims (a pause longer than checkpoint.timeout times a
    checkpoint out, truly: checkpoint_unaligned's 30ms timeout is part of its lesson)."""
    scenario = weir.load_scenario(name)
    windowed = replace(scenario, expect=replace(scenario.expect, hold=tuple(
        c for c in scenario.expect.hold if c in ("window_complete", "no_late_records", "drained"))))
    for sc, rates in ((scenario, {"crash": 1.0}), (windowed, {"crash": 1.0, "pause": 1.0, "partition": 1.0})):
        report = explore(sc, budget_s=1e9, max_runs=5, rates=rates)
        assert report.counterexample is None, (
            f"{name} ({', '.join(rates)}): {report.counterexample.verdict.summary}; "
            f"faults {report.counterexample.faults}, seed {report.counterexample.seed}")
        assert report.runs >= 5


def _alo_checkpointed() -> Scenario:
    return small("at_least_once", checkpoint=Checkpointing(interval="50ms"))


def test_at_least_once_with_checkpoints_drains_after_a_late_sink_crash():
    """The drain bug of issue 13: after a restore the committer took the checkpoint's offsets as
    already committed, so a partition the checkpoint covered was never committed again."""
    scenario = weir.load_scenario("at_least_once_crash")
    scenario = replace(scenario, checkpoint=Checkpointing(interval="100ms"), faults=())
    run = execute(scenario, 1, (Fault(kind="crash", node="sink", at=950_000, down_for=1000),))
    assert run.status == "drained", run.status
    assert run.committed == tuple(run.source["offset"][run.source["partition"] == p].max() + 1 for p in range(4))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(at=st.integers(0, 200_000), down_for=st.integers(1, 50_000), seed=st.integers(0, 2**31 - 1))
def test_at_least_once_with_checkpoints_drains_after_any_sink_crash(at, down_for, seed):
    run = execute(_alo_checkpointed(), seed, (Fault(kind="crash", node="sink", at=at, down_for=down_for),))
    assert run.status == "drained", f"seed {seed}, sink crash at {at} for {down_for}: {run.status}"
    assert no_loss(run).held, f"seed {seed}: {no_loss(run).summary}"


def test_a_run_cut_short_reports_what_was_still_unprocessed_and_judges_no_loss_on_the_rest():
    scenario = small("at_least_once")
    scenario = replace(scenario, run=replace(scenario.run, max_time=40_000))  # stops mid-stream
    run = execute(scenario, 2)
    assert run.status == "time_limit"
    assert run.unprocessed > 0
    verdict = no_loss(run)
    assert verdict.held and verdict.summary.startswith("not judged: the run did not drain (time_limit)")
    assert verdict.evidence["unprocessed"] > 0 and verdict.evidence["judged"] is False
    assert f"{run.unprocessed} records were still to be processed" in drained(run).summary
    assert exactly_once(run).evidence["lost"] == 0


def test_a_run_cut_short_still_counts_records_lost_before_its_frontier():
    """At most once commits before processing: a crash loses what was in flight for good. Those
    records are before the frontier, so a run cut short after it still reports them lost."""
    scenario = small("at_most_once", faults=(Fault(kind="crash", node="processor", at=30_000, down_for=5_000),))
    full = execute(scenario, 1)
    assert not no_loss(full).held
    cut = execute(replace(scenario, run=replace(scenario.run, max_time=80_000)), 1)
    assert cut.status == "time_limit"
    verdict = no_loss(cut)
    assert not verdict.held and "not judged" in verdict.summary, verdict.summary
    assert 0 < verdict.evidence["lost"] <= no_loss(full).evidence["lost"]


def test_a_drained_run_is_judged_whole():
    run = execute(small("at_least_once"), 1)
    assert run.status == "drained" and run.unprocessed == 0
    assert no_loss(run).summary.startswith("all 4000 records")


def test_settle_stops_a_run_whose_verdict_cannot_change_and_keeps_its_verdict():
    """explore's runs settle: with every fault healed and nothing durable changing over twice the
    longest timer, the run stops early; the verdicts are the ones the full run gives."""
    scenario = weir.load_scenario("retry_forever")
    scenario = replace(scenario, run=replace(scenario.run, max_time=60_000_000))
    full, early = execute(scenario), execute(scenario, settle=True)
    assert full.status == "time_limit" and early.status == "settled"
    assert early.end_time < full.end_time
    assert [(v.invariant, v.held) for v in weir.check(early)] == [(v.invariant, v.held) for v in weir.check(full)]
    assert "stopped early" in drained(early).summary


def test_settle_does_not_stop_a_run_that_drains():
    run = execute(weir.load_scenario("slow_sink_liveness"), settle=True)
    assert run.status == "drained"
