"""`semantics = "flink" | "beam"`: every rule where Flink's and Beam's windowing differ, each on a
hand-worked case, with the source it follows (issue 13, item 4).

Flink: flink-streaming-java/src/main/java/org/apache/flink/streaming/runtime/operators/windowing/
WindowOperator.java (processElement, isWindowLate, cleanupTime), .../api/windowing/triggers/
EventTimeTrigger.java, .../api/windowing/windows/TimeWindow.java (intersects, mergeWindows).
Beam (Java runner core): runners/core-java/src/main/java/org/apache/beam/runners/core/
ReduceFnRunner.java (processElements, droppedDueToClosedWindow, OnMergeCallback.onMerge, onTimers,
emit), PaneInfoTracker.java, MergingActiveWindowSet.java (merge), LateDataDroppingDoFnRunner.java
(LateDataFilter), LateDataUtils.java (garbageCollectionTime), triggers/DefaultTriggerStateMachine.java
and triggers/AfterWatermarkStateMachine.java (endOfWindowReached, AfterWatermarkEarlyAndLate
.shouldFire); sdks/java/core/src/main/java/
org/apache/beam/sdk/transforms/windowing/IntervalWindow.java (isDisjoint) and
MergeOverlappingIntervalWindows.java.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weir.sim.kernel.errors import ScenarioError
from weir.sim.kernel.units import millis, seconds
from weir.sim.stream.teststream import TestStream
from weir.sim.stream.windows import (
    COLLECT, MAX_TIME, SUM, Session, Sliding, Trigger, Tumbling, WindowOperator, WindowSpec,
)

S10 = Tumbling(10_000)


def rows(result):
    return [(p.key, p.start, p.end, p.timing.value, p.value) for p in result.panes]


# ---- the on-time boundary ---------------------------------------------------------------------
def test_on_time_boundary_flink_fires_at_max_timestamp():
    """Flink's EventTimeTrigger fires when `window.maxTimestamp() <= watermark` (onEventTime at the
    timer registered for maxTimestamp): W = end - 1. With no lateness the window is also cleaned up
    then (cleanupTime = maxTimestamp + 0), so an element at W = 9_999 is late for it."""
    stream = (TestStream().add_elements(("k", 100, 1)).advance_watermark_to(9_999)
              .add_elements(("k", 200, 2)).advance_watermark_to(10_000))
    r = stream.run(WindowSpec(S10, semantics="flink"))
    assert rows(r) == [("k", 0, 10_000, "ON_TIME", 1)]
    assert [(e.timestamp, e.value) for e in r.late] == [(200, 2)]


def test_on_time_boundary_beam_fires_only_once_the_watermark_passes_max_timestamp():
    """Beam's AfterWatermark (DefaultTriggerStateMachine / AfterWatermarkStateMachine,
    endOfWindowReached: `currentEventTime().isAfter(window.maxTimestamp())`): W = end. At
    W = 9_999 the window is still open, and the element joins the ON_TIME pane."""
    stream = (TestStream().add_elements(("k", 100, 1)).advance_watermark_to(9_999)
              .add_elements(("k", 200, 2)).advance_watermark_to(10_000))
    r = stream.run(WindowSpec(S10, semantics="beam"))
    assert rows(r) == [("k", 0, 10_000, "ON_TIME", 3)]
    assert r.late == ()


# ---- per-bundle trigger evaluation -------------------------------------------------------------
def late_bundle():
    return (TestStream().add_elements(("k", 1, 1)).advance_watermark_to(20_000)
            .add_elements(("k", 2, 2), ("k", 3, 4), ("k", 4, 8)).advance_watermark_to_infinity())


def test_flink_fires_a_late_pane_per_late_element():
    """Flink's EventTimeTrigger.onElement returns FIRE for each element of a window whose
    maxTimestamp <= watermark: one LATE pane per late element."""
    r = late_bundle().run(WindowSpec(S10, allowed_lateness=50_000, semantics="flink"))
    assert [(p.timing.value, p.value) for p in r.panes] == [("ON_TIME", 1), ("LATE", 2), ("LATE", 4), ("LATE", 8)]


def test_beam_evaluates_the_trigger_once_per_bundle():
    """Beam's ReduceFnRunner.processElements adds every element of the bundle, then asks each
    window's trigger once whether to fire: three late elements in one add_elements make one pane."""
    r = late_bundle().run(WindowSpec(S10, allowed_lateness=50_000, semantics="beam"))
    assert [(p.timing.value, p.value, p.count) for p in r.panes] == [("ON_TIME", 1, 1), ("LATE", 14, 3)]


def test_beam_early_count_triggers_are_per_bundle_too():
    stream = TestStream().add_elements(*[("k", t, 1) for t in range(1, 6)]).advance_watermark_to_infinity()
    flink = stream.run(WindowSpec(S10, trigger=Trigger(early_every_n=2), semantics="flink"))
    beam = stream.run(WindowSpec(S10, trigger=Trigger(early_every_n=2), semantics="beam"))
    assert [(p.timing.value, p.count) for p in flink.panes] == [("EARLY", 2), ("EARLY", 2), ("ON_TIME", 1)]
    assert [(p.timing.value, p.count) for p in beam.panes] == [("EARLY", 5)]


def test_a_polled_batch_is_a_bundle():
    """In a pipeline, what the processor takes in one batch is one bundle."""
    op = WindowOperator(WindowSpec(S10, allowed_lateness=50_000, semantics="beam"))
    op.process_batch(np.array([7]), np.array([1]), np.array([1]))
    op.advance_watermark(20_000)
    op.process_batch(np.array([7, 7, 7]), np.array([2, 3, 4]), np.array([2, 4, 8]))
    assert [(p.timing.value, p.value) for p in op.panes] == [("ON_TIME", 1), ("LATE", 14)]


# ---- AfterWatermark with no late firings: late = "never" ---------------------------------------
def test_beam_after_watermark_alone_finishes_and_drops_what_comes_later():
    """AfterWatermark.pastEndOfWindow() without withLateFirings fires once and is finished; the
    window is closed, and ReduceFnRunner.processElement drops its later elements
    (droppedDueToClosedWindow). weir sends them to the side output, or counts them dropped."""
    spec = WindowSpec(S10, allowed_lateness=50_000, trigger=Trigger(late="never"), semantics="beam")
    r = (TestStream().add_elements(("k", 1, 1)).advance_watermark_to(20_000)
         .add_elements(("k", 2, 2)).advance_watermark_to_infinity()).run(spec)
    assert rows(r) == [("k", 0, 10_000, "ON_TIME", 1)]
    assert [(e.timestamp, e.value) for e in r.late] == [(2, 2)]


def test_beam_a_finished_session_takes_no_part_in_merging():
    """ReduceFnRunner.emit removes a window whose trigger finished from the active windows
    (`activeWindows.remove`), and MergingActiveWindowSet.merge merges only the ACTIVE and NEW ones
    (`windows()` is its keySet): a session that overlaps a finished one is a session of its own.
    Only an element whose window is exactly the finished one's is dropped (processElement:
    `triggerRunner.isClosed`, whose finished bits stay until the window is cleaned up). (Beam's
    Python runner drops the overlapping session too: its merge carries the finished window's
    TOMBSTONE; bench/beam_semantics.py sets such cases apart.)"""
    spec = WindowSpec(Session(10), allowed_lateness=100, trigger=Trigger(late="never"), semantics="beam")
    r = (TestStream().add_elements(("k", 0, 1)).advance_watermark_to(20)   # [0, 10) fires and finishes
         .add_elements(("k", 5, 2))                                          # [5, 15): a session of its own
         .add_elements(("k", 30, 4)).advance_watermark_to_infinity()).run(spec)
    assert [(p.start, p.end, p.timing.value, p.is_last, p.value) for p in r.panes] == [
        (0, 10, "ON_TIME", True, 1), (5, 15, "LATE", True, 2), (30, 40, "ON_TIME", True, 4)]
    assert r.late == ()
    same = (TestStream().add_elements(("k", 0, 1)).advance_watermark_to(20).add_elements(("k", 0, 2))
            .advance_watermark_to_infinity()).run(spec)
    assert rows(same) == [("k", 0, 10, "ON_TIME", 1)]
    assert [(e.timestamp, e.value) for e in same.late] == [(0, 2)]


def test_late_never_is_a_beam_trigger():
    """Flink's EventTimeTrigger fires on every late element; a Flink trigger that never did would
    keep late elements in state and purge them unfired, silently. weir refuses the combination."""
    with pytest.raises(ScenarioError, match="trigger.late: got 'never'.*semantics = 'beam'"):
        WindowSpec(S10, trigger=Trigger(late="never"), semantics="flink")


# ---- session merging ---------------------------------------------------------------------------
def sessions():
    return TestStream().add_elements(("k", 52, 1), ("k", 57, 2), ("k", 61, 4)).advance_watermark_to_infinity()


def test_flink_merges_sessions_that_touch():
    """Flink's TimeWindow.intersects: `start <= other.end && end >= other.start`: [52,57) and
    [57,62) touch, and merge (with [61,66)) into one session."""
    assert rows(sessions().run(WindowSpec(Session(5), semantics="flink"))) == [("k", 52, 66, "ON_TIME", 7)]


def test_beam_merges_only_sessions_that_overlap():
    """Beam's IntervalWindow.isDisjoint: `!end.isAfter(other.start) || !other.end.isAfter(start)`:
    [52,57) and [57,62) are disjoint; [57,62) and [61,66) overlap and merge into [57,66)."""
    assert rows(sessions().run(WindowSpec(Session(5), semantics="beam"))) == [
        ("k", 52, 57, "ON_TIME", 1), ("k", 57, 66, "ON_TIME", 6)]


# ---- pane index and is_last: Beam's PaneInfo ----------------------------------------------------
def panes(result):
    return [(p.start, p.end, p.timing.value, p.index, p.is_last, p.value) for p in result.panes]


def early_sessions():
    # [8, 18) fires EARLY; an element at 12 extends it to [8, 22), which fires EARLY again, then ON_TIME
    return (TestStream().add_elements(("k", 8, 6)).add_elements(("k", 12, 2)).advance_watermark_to_infinity())


def test_beam_a_merged_window_starts_its_pane_index_again():
    """Beam's ReduceFnRunner.OnMergeCallback.onMerge clears the pane info of each window merged
    away (`paneInfoTracker.clear`: "the merge result window gets to start fresh if it is new"), and
    PaneInfoTracker keeps a pane's index per window: the merged session's first pane is index 0.
    Beam's Python runner agrees (trigger.py GeneralTriggerDriver: "PaneInfo ... is not preserved
    across merges"). Found by bench/beam_semantics.py, which compares with Beam's DirectRunner."""
    spec = WindowSpec(Session(10), trigger=Trigger(early_every_n=1), accumulation="accumulating", semantics="beam")
    assert panes(early_sessions().run(spec)) == [(8, 18, "EARLY", 0, False, 6), (8, 22, "EARLY", 0, False, 8),
                                                (8, 22, "ON_TIME", 1, True, 8)]


def test_flink_has_no_pane_index_and_weirs_goes_on_across_a_merge():
    spec = WindowSpec(Session(10), trigger=Trigger(early_every_n=1), accumulation="accumulating", semantics="flink")
    assert panes(early_sessions().run(spec)) == [(8, 18, "EARLY", 0, False, 6), (8, 22, "EARLY", 1, False, 8),
                                                (8, 22, "ON_TIME", 2, True, 8)]


def jump_past_cleanup():
    # the watermark jumps from before the window's end to past its cleanup time in one step
    return TestStream().add_elements(("k", 100, 1)).advance_watermark_to_infinity()


def test_beam_an_on_time_pane_is_last_only_when_its_timer_is_the_cleanup_one():
    """ReduceFnRunner.onTimers: the ON_TIME pane fires at the end-of-window timer (max_ts), which
    is the garbage-collection timer too only when there is no allowed lateness (EnrichedTimerData:
    isGarbageCollection = `!timer.getTimestamp().isBefore(cleanupTime)`), and only then is the pane
    final. With lateness the cleanup timer is set when the end-of-window one fires, and fires on
    its own even when the watermark jumped past both: with nothing new it emits nothing
    (ClosingBehavior.FIRE_IF_NON_EMPTY), so no pane of the window is last."""
    assert panes(jump_past_cleanup().run(WindowSpec(S10, allowed_lateness=5_000, semantics="beam"))) == [
        (0, 10_000, "ON_TIME", 0, False, 1)]
    assert panes(jump_past_cleanup().run(WindowSpec(S10, semantics="beam"))) == [(0, 10_000, "ON_TIME", 0, True, 1)]


def test_flink_has_no_panes_and_weir_marks_the_on_time_pane_last_when_the_window_expires_with_it():
    assert panes(jump_past_cleanup().run(WindowSpec(S10, allowed_lateness=5_000, semantics="flink"))) == [
        (0, 10_000, "ON_TIME", 0, True, 1)]


def test_beam_a_finished_trigger_makes_its_pane_the_last():
    """ReduceFnRunner.emit: `isFinished = triggerRunner.isClosed(...)` after onFire, and the pane is
    made with it (PaneInfoTracker.getNextPaneInfo(context, isFinished)). AfterWatermark with no
    late firings finishes when it fires: its ON_TIME pane is last, and so is the one LATE pane of
    a window that opened after its end."""
    spec = WindowSpec(S10, allowed_lateness=50_000, trigger=Trigger(late="never"), semantics="beam")
    on_time = TestStream().add_elements(("k", 1, 1)).advance_watermark_to(20_000).run(spec)
    assert panes(on_time) == [(0, 10_000, "ON_TIME", 0, True, 1)]
    opened_late = (TestStream().advance_watermark_to(20_000).add_elements(("k", 1, 1), ("k", 2, 2))
                   .advance_watermark_to_infinity().run(spec))
    assert panes(opened_late) == [(0, 10_000, "LATE", 0, True, 3)]


def test_beam_a_window_that_opens_after_its_end_fires_at_its_first_bundle_whatever_the_late_count():
    """AfterWatermarkStateMachine.AfterWatermarkEarlyAndLate.shouldFire: until its early phase
    finishes, the trigger fires when `early ready || endOfWindowReached` (the watermark is past
    max_ts), so a window whose first elements come after its end fires at the end of that bundle,
    as its end-of-window firing; only then does the late trigger (every late_every_n) take over.
    Flink has no such phase: weir counts every late element toward late_every_n."""
    stream = (TestStream().advance_watermark_to(20_000).add_elements(("k", 1, 1))
              .add_elements(("k", 2, 2)).add_elements(("k", 3, 4)).add_elements(("k", 4, 8)).advance_watermark_to_infinity())
    beam = stream.run(WindowSpec(S10, allowed_lateness=50_000, trigger=Trigger(late_every_n=2), semantics="beam"))
    assert panes(beam) == [(0, 10_000, "LATE", 0, False, 1), (0, 10_000, "LATE", 1, False, 6),
                           (0, 10_000, "LATE", 2, True, 8)]
    flink = stream.run(WindowSpec(S10, allowed_lateness=50_000, trigger=Trigger(late_every_n=2), semantics="flink"))
    assert panes(flink) == [(0, 10_000, "LATE", 0, False, 3), (0, 10_000, "LATE", 1, False, 12)]


# ---- lateness of merging windows -----------------------------------------------------------------
def merging_late():
    # session [100, 110); at W = 105 an element at 95 opens [95, 105), which overlaps it
    return (TestStream().add_elements(("k", 100, 1)).advance_watermark_to(105)
            .add_elements(("k", 95, 2)).advance_watermark_to_infinity())


def test_flink_checks_lateness_on_the_merged_window():
    """Flink's WindowOperator.processElement merges first (MergingWindowSet.addWindow), then asks
    isWindowLate(actualWindow): [95, 110) has max_ts 109 > 105, so the element is kept."""
    assert rows(merging_late().run(WindowSpec(Session(10), semantics="flink"))) == [("k", 95, 110, "ON_TIME", 3)]


def test_beam_drops_by_the_elements_own_window_before_merging():
    """Beam's LateDataDroppingDoFnRunner.LateDataFilter checks each element's assigned window
    before any merging: [95, 105) has max_ts 104, and 104 + 0 < 105, so it is dropped."""
    r = merging_late().run(WindowSpec(Session(10), semantics="beam"))
    assert rows(r) == [("k", 100, 110, "ON_TIME", 1)]
    assert [(e.timestamp, e.value) for e in r.late] == [(95, 2)]


# ---- the drop boundary (kept from lateness_rule) -------------------------------------------------
@pytest.mark.parametrize("semantics,kept", [("flink", False), ("beam", True)])
def test_drop_boundary(semantics, kept):
    """Flink isWindowLate: `cleanupTime <= watermark`; Beam canDropDueToExpiredWindow:
    `garbageCollectionTime.isBefore(inputWM)`. At exactly W = max_ts + lateness Flink drops, Beam keeps."""
    r = (TestStream().add_elements(("k", 100, 1)).advance_watermark_to(14_999)
         .add_elements(("k", 3_000, 10)).advance_watermark_to_infinity()).run(
        WindowSpec(S10, allowed_lateness=5_000, semantics=semantics))
    assert (r.late == ()) is kept


def test_lateness_rule_is_still_accepted_with_a_deprecation_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = WindowSpec(S10, lateness_rule="beam")
    assert spec.semantics == "beam"
    assert len(caught) == 1 and "lateness_rule is deprecated: use semantics = 'beam'" in str(caught[0].message)


def test_an_unknown_semantics_is_refused():
    with pytest.raises(ScenarioError, match="window.semantics: got 'spark'"):
        WindowSpec(S10, semantics="spark")


# ---- every element accounted for, under both semantics ------------------------------------------
steps = st.lists(st.one_of(
    st.tuples(st.just("e"), st.lists(st.tuples(st.integers(0, 3), st.integers(0, 60_000), st.integers(-5, 5)),
                                     min_size=1, max_size=4)),
    st.tuples(st.just("w"), st.integers(0, 70_000)),
), max_size=40)


@settings(max_examples=200)
@given(steps=steps, lateness=st.integers(0, 20_000), semantics=st.sampled_from(["flink", "beam"]),
       session=st.booleans(), late_n=st.integers(1, 3), never=st.booleans())
def test_nothing_is_silently_lost_in_either_semantics(steps, lateness, semantics, session, late_n, never):
    """Bundles of elements, watermarks: every element ends in exactly one discarding pane, the side
    output, or nowhere only if dropped and counted."""
    windows = Session(5_000) if session else S10
    trigger = Trigger(late_every_n=late_n, late="never" if never and semantics == "beam" else "fire")
    op = WindowOperator(WindowSpec(windows, aggregate=SUM, trigger=trigger, allowed_lateness=lateness,
                                   semantics=semantics))
    for step in steps:
        if step[0] == "e":
            op.process_bundle(step[1])
        else:
            op.advance_watermark(step[1])
    op.advance_watermark(MAX_TIME)
    assert op.open_windows() == 0
    assert sum(p.count for p in op.panes) + len(op.late) + op.dropped == op.elements


# ---- test-stream ergonomics ---------------------------------------------------------------------
def test_collect_keeps_each_panes_values_in_arrival_order_and_panes_carry_their_end():
    r = (TestStream().add_elements(("k", seconds(1), "a"), ("k", millis(1500), "b"))
         .advance_watermark_to(seconds(10) - 1).add_elements(("k", millis(2), "c"))
         .advance_watermark_to_infinity()).run(WindowSpec(Tumbling(seconds(10)), aggregate=COLLECT,
                                                          allowed_lateness=seconds(5)))
    assert [(p.end, p.timing.value, p.value) for p in r.panes] == [
        (seconds(10), "ON_TIME", ("a", "b")), (seconds(10), "LATE", ("c",))]
    assert r.rows() == [("k", 0, seconds(10), "ON_TIME", ("a", "b")), ("k", 0, seconds(10), "LATE", ("c",))]


def test_sliding_takes_period_beside_slide():
    assert Sliding(seconds(10), period=seconds(5)) == Sliding(seconds(10), seconds(5))
    with pytest.raises(ScenarioError, match="windows.period"):
        Sliding(seconds(10), slide=seconds(5), period=seconds(2))
    with pytest.raises(ScenarioError, match="windows.slide"):
        Sliding(seconds(10))


def test_time_helpers_are_whole_microseconds():
    from weir.sim.kernel.units import micros, minutes
    assert (micros(7), millis(2), seconds(3), minutes(1)) == (7, 2_000, 3_000_000, 60_000_000)
    assert seconds(1.5) == 1_500_000
    with pytest.raises(ValueError, match="a whole number of microseconds"):
        millis(0.0001)
    assert (micros(np.int64(3)), millis(np.float64(0.25))) == (3, 250)  # numpy numbers are numbers
    for bad, error in (("5ms", TypeError), (None, TypeError), (True, TypeError), (float("nan"), ValueError),
                       (float("inf"), ValueError)):  # (a string reached decimal: InvalidOperation)
        with pytest.raises(error, match=r"^seconds takes a (finite )?number; got "):
            seconds(bad)


# ---- in a pipeline -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["tumbling", "session"])
def test_a_pipeline_with_beam_semantics_matches_the_batch_result_under_a_crash(kind):
    """Panes in Beam's rules (bundles are the batches the processor takes in; sessions merge only
    on overlap, as the batch oracle then does too), checkpointed and restored after a crash."""
    from dataclasses import replace

    import weir
    from weir.analysis.windowed import window_complete
    from weir.sim.scenario.run import execute
    scenario = weir.load_scenario("late_data_side_output")
    window = replace(scenario.window, semantics="beam", kind=kind, gap="5ms" if kind == "session" else None)
    if kind == "session":  # no late records: a late one that grows a fired session makes a pane of another window
        scenario = replace(scenario, workload=replace(scenario.workload, late_fraction=0.0))
    scenario = replace(scenario, window=window, faults=(weir.Fault(kind="crash", node="processor", at=400_000,
                                                                   down_for=20_000),))
    for seed in (1, 2):
        run = execute(scenario, seed)
        verdict = window_complete(run)
        assert run.status == "drained" and verdict.held, f"seed {seed}: {verdict.summary}"


def test_the_cli_prints_one_deprecation_line_for_lateness_rule(tmp_path, capsys):
    from weir.cli import main
    from weir.sim.scenario.loader import builtin_scenarios
    text = builtin_scenarios()["late_data_side_output"].read_text().replace('semantics = "flink"', 'lateness_rule = "beam"')
    path = tmp_path / "old.toml"
    path.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # as outside pytest, which turns warnings into errors
        assert main(["run", str(path), "--records", "2000"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["weir: warning: window.lateness_rule is deprecated: use semantics = 'beam', which switches "
                   "every rule where Flink and Beam differ, not only the drop boundary"]


def test_a_closed_window_stays_closed_after_a_restore():
    """The restored operator's watermark starts again from MIN (as Flink's and Beam's do: it is not
    checkpointed), but the finished trigger's state is: a replayed batch does not reopen the window."""
    from weir.sim.stream.operators import WindowedAggregation
    spec = WindowSpec(S10, allowed_lateness=50_000, trigger=Trigger(late="never"), semantics="beam")
    op = WindowOperator(spec)
    op.process_batch(np.array([1, 1]), np.array([1, 2]), np.array([1, 2]))
    op.advance_watermark(20_000)  # ON_TIME fires, and the trigger is finished
    agg = WindowedAggregation(spec)
    agg.restore(op.snapshot())
    assert agg.watermark == -(2**63)
    agg.op.process_batch(np.array([1, 1]), np.array([3, 4]), np.array([4, 8]))
    agg.op.advance_watermark(MAX_TIME)
    assert agg.op.panes == [] and [(e.timestamp, e.value) for e in agg.op.late] == [(3, 4), (4, 8)]
