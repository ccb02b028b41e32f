"""Parallel subtasks: the keyed exchange, credits and backpressure, barrier alignment, skew and salting."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import weir
from weir.analysis.checkers import check, load_balanced
from weir.analysis.windowed import job_windows, window_complete
from weir.sim.kernel.batch import RecordBatch
from weir.sim.kernel.errors import ScenarioError
from weir.sim.stream.exchange import PendingAcks, route, split
from weir.sim.kafka.partitioner import partition_for
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Checkpointing, Expect, Fault, Pipeline, Scenario, WatermarkSettings, WindowSettings, Workload
from weir.sim.patterns.sinks import WindowResults
from weir.sim.stream.windows import Pane, Timing, Window

from .helpers import oracle_running_totals


def parallel(mode: str = "exactly_once", unaligned: bool = False, sources: int = 4, faults=(), window: bool = True,
             seed: int = 1, salts: int = 1, parallelism: int = 4, hot: float = 0.5, **pipeline) -> Scenario:
    """8,000 records over one second, half of them on key 0; four source and four processor subtasks."""
    return Scenario(
        name="parallel", seed=seed,
        workload=Workload(records=8000, partitions=4, keys=50, produce_batch=40, hot_fraction=hot),
        pipeline=Pipeline(mode="exactly_once", parallelism=parallelism, source_parallelism=sources, salts=salts,
                          process_time="200us", **pipeline),
        checkpoint=Checkpointing(interval="50ms", mode=mode, unaligned=unaligned, retain=100),
        window=WindowSettings(size="50ms") if window else None, faults=tuple(faults))


def batch_of(keys, first: int = 10) -> RecordBatch:
    keys = np.asarray(keys, dtype=np.int64)
    n = len(keys)
    return RecordBatch(2, first, np.arange(100, 100 + n, dtype=np.int64), keys, np.arange(n, dtype=np.int64),
                       np.ones(n, dtype=np.int64))


# ---- the keyed exchange --------------------------------------------------------------------------
@given(st.lists(st.integers(0, 200), min_size=1, max_size=60), st.integers(1, 6), st.integers(1, 5))
def test_split_keeps_every_record_once_with_its_offset(keys, parallelism, salts):
    batch = batch_of(keys)
    parts = split(batch, parallelism, salts)
    ids = np.concatenate([part.record_id for _j, part in parts])
    assert sorted(ids.tolist()) == batch.record_id.tolist()
    for j, part in parts:
        assert part.partition_id == 2 and part.first_offset == 10 and part.end_offset == batch.end_offset
        assert (part.offset == part.record_id - 100 + 10).all()  # each record keeps its own offset
        assert (route(part, parallelism, salts) == j).all()
    assert [j for j, _ in parts] == sorted({j for j, _ in parts})


@given(st.lists(st.integers(0, 200), min_size=1, max_size=60), st.integers(1, 6))
def test_without_salt_a_key_goes_to_its_home_subtask(keys, parallelism):
    batch = batch_of(keys)
    assert (route(batch, parallelism) == partition_for(batch.key, parallelism)).all()


def test_salting_spreads_a_hot_key_evenly():
    batch = batch_of([7] * 400)
    counts = np.bincount(route(batch, 4, salts=4), minlength=4)
    assert counts.tolist() == [100, 100, 100, 100]
    assert np.count_nonzero(np.bincount(route(batch, 4, salts=2), minlength=4)) == 2


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(1, 4)), min_size=1, max_size=12), st.randoms())
def test_acks_move_over_the_done_prefix_only(batches, rnd):
    acks = PendingAcks()
    offsets = {0: 0, 1: 0, 2: 0}
    pieces = []
    for p, parts in batches:
        first = offsets[p]
        offsets[p] += 10
        acks.add(p, first, first + 10, parts)
        pieces += [(p, first)] * parts
    rnd.shuffle(pieces)
    remaining = {}
    for p, first in pieces:
        remaining[(p, first)] = remaining.get((p, first), 0) + 1
    acked = {0: 0, 1: 0, 2: 0}
    for p, first in pieces:
        remaining[(p, first)] -= 1
        done, end = acks.ack(p, first)
        assert done == (remaining[(p, first)] == 0)
        if end is not None:
            acked[p] = end
        # the acknowledged end is the end of the longest prefix of batches that are done
        prefix = 0
        while (p, prefix) in remaining and remaining[(p, prefix)] == 0:
            prefix += 10
        assert acked[p] == prefix
    assert acked == offsets


# ---- results do not depend on parallelism --------------------------------------------------------
@pytest.mark.parametrize("parallelism,sources", [(1, 1), (3, 1), (4, 2), (2, 4)])
def test_running_totals_are_the_same_at_any_parallelism(parallelism, sources):
    run = execute(parallel(window=False, parallelism=parallelism, sources=sources))
    assert run.status == "drained"
    expected = oracle_running_totals(run.source)
    got = dict(zip(run.sink["record_id"].tolist(), run.sink["value"].tolist()))
    assert got == expected, f"parallelism {parallelism}, {sources} source subtasks, seed {run.seed}"


# ---- barrier alignment -----------------------------------------------------------------------------
def snapshot_errors(run) -> list[int]:
    """Per retained checkpoint: how far its state (plus saved in-flight records) is from the state
    the records before its offsets give. An exactly-once checkpoint is exactly that state."""
    src = run.source
    keys = run.scenario.workload.keys
    errors = []
    for cp in run.checkpoints:
        before = np.zeros(len(src["key"]), dtype=bool)
        for p, offset in enumerate(cp.offsets):
            before |= (src["partition"] == p) & (src["offset"] < offset)
        expected = np.bincount(src["key"][before], weights=src["value"][before], minlength=keys)
        got = np.zeros(keys)
        for totals, in_flight in cp.state:
            got += totals
            for b in in_flight:
                got += np.bincount(b.key, weights=b.value, minlength=keys)
        errors.append(int(np.abs(got - expected).sum()))
    return errors


@pytest.mark.parametrize("unaligned,max_in_flight", [(False, 4), (True, 4), (False, 16), (True, 16)])
def test_aligned_and_unaligned_snapshots_are_exactly_the_records_before_the_barrier(unaligned, max_in_flight):
    """With 16 batches in flight and 2 per channel, batches also wait at the sources, behind which
    an aligned barrier waits and which an unaligned one overtakes (saving them)."""
    run = execute(parallel("exactly_once", unaligned, window=False, max_in_flight=max_in_flight, queue_capacity=2))
    assert len(run.checkpoints) >= 15
    assert snapshot_errors(run) == [0] * len(run.checkpoints), f"seed {run.seed}"
    saved = sum(len(b) for cp in run.checkpoints for _state, in_flight in cp.state for b in in_flight)
    assert (saved > 0) == unaligned


#: One input's link is 3ms slower, so its barriers arrive after the others' (barriers are injected as
#: soon as the trigger arrives, so without such skew they reach a subtask at about the same time).
SKEW = (Fault(kind="delay", node="source-1", peers=("processor",), at=0, down_for=2_000_000, slow_by=3_000),)


def test_at_least_once_snapshots_take_in_records_from_after_the_barrier():
    run = execute(parallel("at_least_once", window=False, faults=SKEW))
    errors = snapshot_errors(run)
    assert sum(e > 0 for e in errors) >= 1, f"seed {run.seed}: every snapshot was exact: {errors}"


def test_with_one_input_at_least_once_is_exact():
    """No alignment is needed with a single input: at-least-once mode snapshots exactly."""
    run = execute(parallel("at_least_once", sources=1, window=False))
    assert snapshot_errors(run) == [0] * len(run.checkpoints)


def alignment_order(run) -> tuple[int, int, int]:
    """(sub-batches checked, processed on the wrong side of their subtask's snapshot, skipped).

    From the trace: source subtasks snapshot offsets (CKPT_SNAPSHOT) as they inject barrier n, the
    exchange says which subtask got which records of a batch (EXCHANGE), and each subtask says when
    it snapshotted checkpoint n (ALIGNED). A sub-batch before the barrier (first offset below the
    snapshot offset of its partition) must be processed before its subtask's snapshot; one after
    it, after. Sub-batches whose PROCESS event is ambiguous (same partition, offset and count) are
    skipped."""
    rows = run.trace.rows()
    offsets: dict[int, dict[int, int]] = {}
    for r in rows:
        if r["kind"] == "CKPT_SNAPSHOT" and r["node"].startswith("source"):
            offsets.setdefault(r["checkpoint"], {})[r["partition_or_-1"]] = r["offset_or_state_keys"]
    snapshot_at = {(r["checkpoint"], r["subtask"]): r["time"] for r in rows if r["kind"] == "ALIGNED"}
    routed = [(r["to_subtask"], r["partition"], r["first_offset"], r["count"]) for r in rows if r["kind"] == "EXCHANGE"]
    processed: dict[tuple[int, int, int], list[int]] = {}
    for r in rows:
        if r["kind"] == "PROCESS":
            processed.setdefault((r["partition"], r["first_offset"], r["count"]), []).append(r["time"])
    checked = wrong = skipped = 0
    for (n, j), at in snapshot_at.items():
        for to, p, first, count in routed:
            if to != j or len(processed.get((p, first, count), ())) != 1:
                skipped += to == j
                continue
            when = processed[(p, first, count)][0]
            before_barrier = first < offsets[n][p]
            checked += 1
            wrong += (when > at) if before_barrier else (when <= at)
    return checked, wrong, skipped


@pytest.mark.parametrize("mode,expect_wrong", [("exactly_once", False), ("at_least_once", True)])
def test_barrier_alignment_order(mode, expect_wrong):
    """Aligned: nothing from after a barrier is processed before the snapshot, nothing from before
    it after. At-least-once mode processes records from after the barrier of an input whose
    barrier came early, before the snapshot."""
    run = execute(parallel(mode, window=False, faults=SKEW))
    checked, wrong, skipped = alignment_order(run)
    assert checked > 1000 and skipped < checked
    assert (wrong > 0) == expect_wrong, f"{mode}: {wrong} of {checked} out of order, seed {run.seed}"


def test_unaligned_barriers_overtake_queues_and_save_what_they_overtook():
    aligned = execute(parallel(window=False))
    unaligned = execute(parallel(unaligned=True, window=False))
    events = [r for r in aligned.trace.rows() if r["kind"] == "ALIGNED"]
    assert len(events) >= 4 * aligned.checkpoints_completed
    assert all(r["in_flight_records"] == 0 for r in events)
    saved = [r["in_flight_records"] for r in unaligned.trace.rows() if r["kind"] == "ALIGNED"]
    assert sum(saved) > 0
    # the barriers did not wait behind the hot subtask's queue: checkpoints complete sooner
    assert unaligned.checkpoint_stats["max_duration_us"] < aligned.checkpoint_stats["max_duration_us"]


CRASH_TIMES = st.integers(100_000, 900_000)


@settings(max_examples=8, deadline=None)
@given(CRASH_TIMES, st.booleans(), st.sampled_from([4, 16]))
def test_windows_are_exact_after_a_crash_aligned_or_unaligned(at, unaligned, max_in_flight):
    run = execute(parallel(unaligned=unaligned, max_in_flight=max_in_flight, queue_capacity=2,
                           faults=(Fault(node="processor", at=at, down_for="20ms"),)))
    verdict = window_complete(run)
    assert run.status == "drained" and verdict.held, f"crash at {at}us, unaligned={unaligned}, seed {run.seed}: {verdict.summary}"


def test_an_unaligned_restore_processes_the_saved_records_first():
    run = execute(parallel(unaligned=True, faults=(Fault(node="processor", at="400ms", down_for="20ms"),)))
    assert run.replayed_in_flight > 0
    assert window_complete(run).held


def test_at_least_once_checkpoints_count_records_twice_after_a_crash():
    run = execute(parallel("at_least_once", faults=SKEW + (Fault(node="processor", at="750ms", down_for="20ms"),)))
    verdict = window_complete(run)
    assert not verdict.held and verdict.evidence["wrong"] > 0, f"seed {run.seed}: {verdict.summary}"
    for key, start, end, expected, got in verdict.evidence["first_wrong"]:
        assert got > expected  # duplicates make sums too large, never too small


# ---- backpressure, skew, salting -----------------------------------------------------------------
def test_a_hot_subtask_back_pressures_the_sources_and_its_queue_stays_bounded():
    run = execute(parallel(window=False, queue_capacity=2))
    records = [t["records"] for t in run.subtasks]
    busiest = int(np.argmax(records))
    assert records[busiest] > 2 * np.mean(records)
    assert sum(s["backpressured_us"] for s in run.sources) > 100_000
    # at most queue_capacity batches of at most batch_size records from each of the 4 inputs
    assert all(t["max_queued_records"] <= 2 * 100 * 4 for t in run.subtasks)
    assert run.subtasks[busiest]["busy_us"] == records[busiest] * 200


def test_hot_key_scenarios():
    skew, salted = weir.run("hot_key_skew"), weir.run("hot_key_salted")
    assert skew.matches and salted.matches
    assert not skew.verdict("load_balanced").held and salted.verdict("load_balanced").held
    assert salted.end_time_us < 0.6 * skew.end_time_us
    assert max(t["records"] for t in salted.subtasks) - min(t["records"] for t in salted.subtasks) <= 2
    assert skew.verdict("window_complete").held and salted.verdict("window_complete").held
    assert skew.to_dict()["subtasks"][3]["records"] == max(t["records"] for t in skew.subtasks)


def test_unaligned_checkpoints_complete_where_aligned_ones_time_out():
    aligned = execute(weir.load_scenario("checkpoint_aligned_backpressure"))
    unaligned = execute(weir.load_scenario("checkpoint_unaligned"))
    assert aligned.checkpoint_stats["timed_out"] >= 10 and unaligned.checkpoint_stats["timed_out"] == 0
    assert unaligned.checkpoint_stats["max_duration_us"] <= 0.5 * 30_000
    assert unaligned.restarts == 1 and unaligned.replayed_in_flight > 0
    for run in (aligned, unaligned):
        assert weir.result_of(run).matches, run.scenario.name


def test_load_balanced_checker_on_hand_made_runs():
    def hand(records, max_skew=1.5):
        return SimpleNamespace(subtasks=[{"records": n} for n in records], sources=[{"backpressured_us": 5000}],
                               scenario=SimpleNamespace(expect=Expect(max_skew=max_skew)))
    assert load_balanced(hand([100, 100, 100, 100])).held
    assert load_balanced(hand([140, 90, 90, 80])).held  # 1.4x the mean
    bad = load_balanced(hand([300, 50, 25, 25]))
    assert not bad.held and bad.evidence["busiest_subtask"] == 0 and bad.evidence["skew"] == 3.0
    assert load_balanced(hand([300, 50, 25, 25], max_skew=3)).held


def test_salted_windows_merge_in_sql_as_in_the_checker():
    run = execute(parallel(salts=4))
    assert window_complete(run).held
    assert len(set(run.windows["subtask"].tolist())) == 4
    merged = job_windows(run)
    results = WindowResults()
    try:
        for row in zip(*(run.windows[c].tolist() for c in ("key", "window_start", "window_end", "pane_index",
                                                             "value", "count", "watermark", "written_at", "subtask"))):
            k, s, e, idx, value, count, wm, written, subtask = row
            pane = Pane(k, Window(s, e), Timing.ON_TIME, idx, True, value, count, wm, written)
            results.write([pane], [], written, subtask=subtask)
        sql = results.merged("sum")
    finally:
        results.close()
    from_sql = {(k, s, e): (v, n) for k, s, e, v, n in zip(*(sql[c].tolist() for c in
                                                           ("key", "window_start", "window_end", "value", "count")))}
    assert from_sql == merged


def test_an_idle_source_subtask_is_left_out_of_the_minimum():
    """Source subtask 1 reads partitions 1 and 3; both go silent. With idleness its watermark
    input drops out and windows fire; without, the subtasks' watermark stalls."""
    def scenario(idle_timeout):
        return Scenario(name="idle", workload=Workload(records=8000, partitions=4, keys=50, produce_batch=40,
                                                       idle_partitions=(1, 3), idle_from="200ms"),
                        pipeline=Pipeline(parallelism=2, source_parallelism=2, process_time="10us", bounded=False),
                        window=WindowSettings(size="50ms"),
                        watermarks=WatermarkSettings(idle_timeout=idle_timeout))
    stalled, moving = execute(scenario(None)), execute(scenario("50ms"))
    assert not window_complete(stalled).held
    assert window_complete(moving).held, window_complete(moving).summary


# ---- scenario validation ------------------------------------------------------------------------
@pytest.mark.parametrize("build,key", [
    (lambda: Scenario(pipeline=Pipeline(source_parallelism=5)), "pipeline.source_parallelism"),
    (lambda: Scenario(pipeline=Pipeline(salts=2)), "pipeline.salts"),
    (lambda: Scenario(pipeline=Pipeline(salts=2), window=WindowSettings(kind="session", gap="10ms")), "pipeline.salts"),
    (lambda: Checkpointing(mode="at_least_once", unaligned=True), "checkpoint.unaligned"),
    (lambda: Workload(keys=10, hot_keys=11), "workload.hot_keys"),
    (lambda: Expect(max_skew=0.5), "expect.max_skew"),
    (lambda: Pipeline(parallelism=0), "pipeline.parallelism"),
])
def test_bad_parallel_settings_name_their_key(build, key):
    with pytest.raises(ScenarioError) as e:
        build()
    assert e.value.key == key


def test_parallel_runs_check_load_balance_only():
    names = [v.invariant for v in check(execute(parallel(parallelism=2, sources=1, hot=0.0)))]
    assert "load_balanced" in names
    assert "load_balanced" not in [v.invariant for v in weir.run("exactly_once_crash").verdicts]
