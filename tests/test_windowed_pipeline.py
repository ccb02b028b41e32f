"""Windowed jobs end to end: scenarios, crashes, and results that do not depend on batch size."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import weir
from weir.analysis.windowed import batch_windows, closing_watermark, job_windows
from weir.sim.kernel.errors import ScenarioError
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import (
    Checkpointing, Expect, Fault, Pipeline, Scenario, WatermarkSettings, WindowSettings, Workload,
)

WINDOWED = ("late_data_dropped", "late_data_side_output", "idle_partition_stall", "idle_partition_idleness")


@pytest.mark.slow
@pytest.mark.parametrize("name", WINDOWED)
def test_windowed_scenarios_as_expected(name):
    scenario = weir.load_scenario(name)
    for seed in range(5):
        r = weir.run(scenario, seed)
        assert r.matches, f"{name} seed {seed}: {[(v.invariant, v.held, v.summary) for v in r.verdicts]}"


def test_the_stall_is_named_and_idleness_lets_windows_fire():
    stall = weir.run("idle_partition_stall", 3).verdict("window_complete")
    assert "the watermark stalled at" in stall.summary
    assert stall.evidence["operator_watermark"] < stall.evidence["closing_watermark"] - 500_000
    idle = weir.run("idle_partition_idleness", 3).verdict("window_complete")
    assert idle.held and idle.evidence["closed_windows"] > 1_500


def test_dropped_late_records_show_in_both_checkers():
    r = weir.run("late_data_dropped", 2)
    late = r.verdict("no_late_records").evidence
    assert late["dropped"] > 0 and late["side_output"] == 0
    assert r.verdict("window_complete").evidence["wrong"] > 0


def small_windowed(batch_size: int = 100, mode: str = "at_least_once", accumulation: str = "discarding",
                   faults=(), records: int = 6_000, **workload) -> Scenario:
    return Scenario(
        workload=Workload(records=records, partitions=3, keys=20, produce_batch=100, produce_interval="5ms",
                          **workload),
        pipeline=Pipeline(mode=mode, batch_size=batch_size, process_time="5us"),
        checkpoint=Checkpointing(interval="40ms") if mode == "exactly_once" else None,
        window=WindowSettings(size="20ms", accumulation=accumulation, allowed_lateness="400ms", side_output=True),
        watermarks=WatermarkSettings(bound="5ms", interval="5ms"),
        faults=faults,
    )


def closed_results(run) -> dict:
    closing = closing_watermark(run)
    return {w: v for w, v in job_windows(run).items() if w[2] - 1 <= closing}


@settings(max_examples=8)
@given(seed=st.integers(0, 2**31), out_of_order=st.integers(0, 4_000))
def test_window_results_do_not_depend_on_batch_size(seed, out_of_order):
    """Out-of-order within the watermark bound: no record is late, so results are the batch answer at any batch size."""
    one = execute(small_windowed(batch_size=1, records=1_500, out_of_order=out_of_order), seed)
    many = execute(small_windowed(batch_size=200, records=1_500, out_of_order=out_of_order), seed)
    assert closed_results(one) == closed_results(many), f"seed {seed}"
    expected = batch_windows(one)
    assert all(expected[w] == v for w, v in closed_results(one).items()), f"seed {seed}"


@pytest.mark.parametrize("seed", range(4))
def test_exactly_once_accumulating_windows_survive_a_crash(seed):
    crash = (Fault(node="processor", at="120ms", down_for="50ms"),)
    scenario = small_windowed(mode="exactly_once", accumulation="accumulating", faults=crash,
                              late_fraction=0.02, late_by="150ms")
    r = weir.run(scenario, seed)
    assert r.restarts == 1 and r.verdict("window_complete").held, f"seed {seed}: {r.verdict('window_complete').summary}"


def test_without_checkpoints_a_crash_loses_window_state():
    crash = (Fault(node="processor", at="120ms", down_for="50ms"),)
    r = weir.run(small_windowed(faults=crash), 1)
    assert r.restarts == 1 and not r.verdict("window_complete").held


def crashed_late_windows(sink: str) -> Scenario:
    base = weir.load_scenario("late_data_side_output")
    return replace(base, workload=replace(base.workload, late_fraction=0.03),
                   pipeline=Pipeline(mode="exactly_once", sink=sink, batch_size=100, process_time="10us"),
                   checkpoint=Checkpointing(interval="50ms"),
                   faults=(Fault(node="processor", at="400ms", down_for="100ms"),))


@pytest.mark.parametrize("seed", range(5))
def test_discarding_panes_through_the_transactional_sink_are_exactly_once(seed):
    """Two-phase commit: panes fired after the restored checkpoint were staged, and are aborted."""
    v = weir.run(crashed_late_windows("transactional"), seed).verdict("window_complete")
    assert v.held, f"seed {seed}: {v.summary}"


def test_discarding_panes_upserted_by_index_are_not_exactly_once_under_replay():
    """The replay groups late records into other panes than before the crash; a stale pane stays and counts twice.

    Idempotent writes are not exactly-once: this needs the transactional sink (the test above), or
    accumulating panes upserted per window.
    """
    scenario = crashed_late_windows("upsert")
    verdicts = [weir.run(scenario, seed).verdict("window_complete") for seed in range(5)]
    broken = [v for v in verdicts if not v.held]
    assert len(broken) >= 3, [v.summary for v in verdicts]
    assert all(v.evidence["wrong"] >= 1 and v.evidence["missing"] == 0 for v in broken)


def test_record_invariants_do_not_apply_to_windowed_scenarios():
    with pytest.raises(ScenarioError, match=r"expect.hold: got 'no_loss'; accepts an invariant that applies to a windowed"):
        replace(small_windowed(), expect=Expect(hold=("no_loss",)))
    with pytest.raises(ScenarioError, match=r"expect.violate: got 'window_complete'; accepts an invariant that applies to a scenario without"):
        Scenario(expect=Expect(violate=("window_complete",)))


def test_idle_partitions_get_nothing_while_idle():
    run = execute(small_windowed(idle_partitions=(1,), idle_from="50ms", idle_until="150ms"), 1)
    src = run.source
    p1 = src["event_time"][src["partition"] == 1]
    # nothing produced (by the schedule's clock) in [50ms, 150ms); the out-of-order delay is 0 here
    assert not ((p1 >= 50_000) & (p1 < 150_000)).any()
    assert ((p1 >= 150_000)).any() and (p1 < 50_000).any()


@pytest.mark.parametrize("window", [
    WindowSettings(kind="session", gap="3ms", aggregate="sum"),
    WindowSettings(kind="session", gap="3ms", aggregate="count", accumulation="accumulating"),
    WindowSettings(kind="sliding", size="20ms", slide="5ms", aggregate="max"),
    WindowSettings(kind="tumbling", size="10ms", aggregate="min", accumulation="accumulating"),
])
def test_session_sliding_min_max_windows_match_the_batch_oracle(window):
    scenario = replace(small_windowed(records=3_000, out_of_order=2_000), window=window)
    run = execute(scenario, 5)
    v = weir.result_of(run).verdict("window_complete")
    assert v.held and v.evidence["closed_windows"] > 50, v.summary


def test_the_session_oracle_merges_touching_sessions():
    from types import SimpleNamespace

    import numpy as np
    scenario = replace(small_windowed(), window=WindowSettings(kind="session", gap="10us", aggregate="sum"))
    run = SimpleNamespace(scenario=scenario, source={
        "key": np.array([1, 1, 1, 1, 2]), "event_time": np.array([0, 10, 30, 35, 0]), "value": np.array([1, 2, 4, 8, 16])})
    # key 1: [0, 10) and [10, 20) touch -> [0, 20); [30, 40) and [35, 45) overlap -> [30, 45)
    assert batch_windows(run) == {(1, 0, 20): (3, 2), (1, 30, 45): (12, 2), (2, 0, 10): (16, 1)}


def test_a_watermark_that_never_advanced_is_named():
    scenario = small_windowed(records=2_000, idle_partitions=(2,))  # partition 2 never gets a record
    scenario = replace(scenario, pipeline=replace(scenario.pipeline, bounded=False))  # no end of input to fire them
    v = weir.result_of(execute(scenario, 1)).verdict("window_complete")
    assert not v.held and "the watermark never advanced (stalled at -inf)" in v.summary


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(-50_000, 50_000), st.integers(-100, 100)), max_size=200),
       st.sampled_from(["sum", "count", "min", "max"]), st.integers(1, 20_000), st.integers(0, 5_000))
def test_the_vectorised_batch_oracle_equals_the_record_by_record_one(records, aggregate, size, offset):
    import numpy as np

    from weir.analysis.windowed import _tumbling_batch
    from weir.sim.stream.windowing import AGGREGATES, Tumbling
    windows, agg = Tumbling(size, offset % size), AGGREGATES[aggregate]
    slow: dict = {}
    for k, t, v in records:
        for w in windows.assign(t):
            acc, n = slow.get((k, w.start, w.end), (agg.empty, 0))
            slow[(k, w.start, w.end)] = (agg.add(acc, v), n + 1)
    keys, times, values = (np.array([r[i] for r in records], dtype=np.int64) for i in range(3))
    for chunk in (1, 7, 65_536):  # the dense path takes the records a chunk at a time
        assert _tumbling_batch(windows, aggregate, keys, times, values, chunk=chunk) == slow, \
            f"records {records}, chunk {chunk}"
