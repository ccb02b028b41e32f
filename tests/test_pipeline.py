"""The pipeline end to end: the spectrum over many seeds, checkpoint restore, and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import weir
from weir.faults import strategies
from weir.sim.stream.checkpoint import Checkpoint, CheckpointStore
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Fault

from .helpers import oracle_running_totals, small

SEEDS = range(50)


@pytest.mark.slow
@pytest.mark.parametrize("name", weir.SPECTRUM)
def test_spectrum_outcome_on_every_seed(name):
    scenario = weir.load_scenario(name)
    for seed in SEEDS:
        r = weir.run(scenario, seed)
        assert r.status == "drained", f"{name} seed {seed}: ended {r.status}"
        assert r.produced == 20_000, f"{name} seed {seed}"
        if r.mode == "at_most_once":
            assert r.lost > 0 and r.duplicated == 0, f"{name} seed {seed}: lost {r.lost}, duplicated {r.duplicated}"
        elif r.mode == "at_least_once":
            assert r.lost == 0 and r.duplicated > 0, f"{name} seed {seed}: lost {r.lost}, duplicated {r.duplicated}"
        else:
            assert r.lost == 0 and r.duplicated == 0, f"{name} seed {seed}: lost {r.lost}, duplicated {r.duplicated}"
        assert r.matches, f"{name} seed {seed}: {[(v.invariant, v.held) for v in r.verdicts]}"


@pytest.mark.parametrize("mode", ["at_most_once", "at_least_once", "exactly_once"])
def test_without_faults_every_mode_is_exactly_once(mode):
    r = weir.result_of(execute(small(mode)))
    assert (r.status, r.lost, r.duplicated, r.restarts) == ("drained", 0, 0, 0)


def test_exactly_once_restores_state_and_offsets_from_the_same_checkpoint():
    """After a crash, every sink value equals the batch answer: restored state matches restored offsets."""
    run = execute(small("exactly_once", (Fault(node="processor", at="130ms", down_for="30ms"),)), seed=4)
    assert run.status == "drained" and run.restarts == 1 and run.checkpoints_completed > 2
    oracle = oracle_running_totals(run.source)
    sink = dict(zip(run.sink["record_id"].tolist(), run.sink["value"].tolist()))
    assert sink == oracle

    rows = run.trace.rows()
    restore = [r for r in rows if r["kind"] == "RESTORE" and r["generation"] == 2][0]
    cp = restore["checkpoint_or_-1"]
    assert cp > 0
    snap = {r["partition_or_-1"]: r["offset_or_state_keys"] for r in rows
            if r["kind"] == "CKPT_SNAPSHOT" and r["checkpoint"] == cp and r["node"] == "source"}
    first_polls = {}
    for r in rows:
        if r["kind"] == "POLL" and r["generation"] == 2:
            first_polls.setdefault(r["partition"], r["first_offset"])
    log_end = np.bincount(run.source["partition"], minlength=4).tolist()
    unread = {p: off for p, off in snap.items() if off < log_end[p]}
    assert unread and first_polls == unread  # every partition with records left resumes at its snapshot


def test_without_checkpoints_a_restart_loses_operator_state():
    """The converse: at_least_once without checkpoints restarts with empty state, so totals go wrong."""
    run = execute(small("at_least_once", (Fault(node="processor", at="130ms", down_for="30ms"),)), seed=4)
    oracle = oracle_running_totals(run.source)
    wrong = sum(1 for rid, value in zip(run.sink["record_id"].tolist(), run.sink["value"].tolist())
                if oracle[rid] != value)
    assert wrong > 0


def test_checkpoint_store_keeps_the_last_k():
    store = CheckpointStore(retain=2)
    for _ in range(5):
        n = store.new_id()
        store.add(Checkpoint(n, (n,), np.zeros(1, np.int64), 1, n))
    assert [c.id for c in store.completed] == [4, 5]
    assert store.latest().id == 5 and store.total_completed == 5


def test_a_crash_of_a_node_that_is_already_down_is_absorbed():
    faults = (Fault(node="sink", at="50ms", down_for="50ms"), Fault(node="sink", at="70ms", down_for="10ms"))
    r = weir.result_of(execute(small("exactly_once", faults), seed=2))
    assert r.matches and r.restarts == 1


def test_a_run_that_cannot_drain_in_time_says_so():
    from dataclasses import replace
    from weir.sim.scenario.model import RunLimits
    scenario = replace(small("at_least_once"), run=RunLimits(max_time="50ms"))
    r = weir.result_of(execute(scenario))
    assert r.status == "time_limit" and r.end_time_us == 50_000
    assert not r.verdict("drained").held and not r.matches


crashes = strategies.crashes()


@settings(max_examples=40)
@given(faults=crashes, seed=st.integers(0, 2**32 - 1))
def test_exactly_once_holds_for_any_crashes(faults, seed):
    r = weir.result_of(execute(small("exactly_once", tuple(faults), records=2000), seed=seed))
    assert r.status == "drained", f"seed {seed}: {r.status}"
    assert r.verdict("exactly_once").held, f"seed {seed}, faults {faults}: {r.verdict('exactly_once').summary}"


@settings(max_examples=25)
@given(faults=crashes, seed=st.integers(0, 2**32 - 1))
def test_at_least_once_never_loses_and_at_most_once_never_duplicates(faults, seed):
    alo = weir.result_of(execute(small("at_least_once", tuple(faults), records=2000), seed=seed))
    amo = weir.result_of(execute(small("at_most_once", tuple(faults), records=2000), seed=seed))
    assert alo.status == amo.status == "drained", f"seed {seed}"
    assert alo.lost == 0, f"seed {seed}, faults {faults}: at_least_once lost {alo.lost}"
    assert amo.duplicated == 0, f"seed {seed}, faults {faults}: at_most_once duplicated {amo.duplicated}"


def test_a_drifting_producer_stamps_drifting_times_on_its_own_schedule():
    from dataclasses import replace
    from weir.sim.scenario.model import NodeSpec
    base = small("at_least_once")
    fast = execute(replace(base, nodes=(NodeSpec("producer", clock_drift_ppm=100_000),)), seed=3)
    produced = [r["time"] for r in fast.trace.rows() if r["kind"] == "SEND" and r["node"] == "producer"]
    assert produced[-1] < 19 * 5_000  # its 5ms timer runs 10% fast: the 20th batch leaves before 95ms
    stamps, ids = fast.source["event_time"], fast.source["record_id"]
    assert stamps[ids == 3999].max() > stamps[ids == 0].max() + 19 * 5_000  # yet its clock reads on


def test_a_run_ends_only_after_every_crashed_node_is_up_again_boot_time_included():
    from dataclasses import replace
    from weir.sim.scenario.model import NodeSpec
    scenario = replace(small("at_least_once", (Fault(node="broker", at="1s", down_for="10ms"),)),
                       nodes=(NodeSpec("broker", boot_time="150ms"),))
    run = execute(scenario, seed=1)
    assert run.status == "drained"
    assert run.end_time >= 1_160_000, run.end_time
    kinds = [(r["kind"], r["time"]) for r in run.trace.rows() if r["kind"] in ("CRASH", "RESTART", "UP")]
    assert kinds == [("CRASH", 1_000_000), ("RESTART", 1_010_000), ("UP", 1_160_000)]


def test_event_time_comes_from_the_producers_clock_and_written_at_from_the_sinks():
    from dataclasses import replace
    from weir.sim.scenario.model import NodeSpec
    base = small("at_least_once")
    skewed = replace(base, nodes=(NodeSpec("producer", clock_offset="-2s"), NodeSpec("sink", clock_offset="5s")))
    plain, off = execute(base, seed=3), execute(skewed, seed=3)
    # Same seed, same workload, same timings (an offset moves what a clock reads, not its timers):
    # only the stamps differ, by exactly the clocks' offsets.
    true_time = plain.source["event_time"]
    assert off.source["event_time"].tolist() == (true_time - 2_000_000).tolist()
    assert (off.sink["written_at"] - plain.sink["written_at"]).tolist() == [5_000_000] * len(plain.sink["written_at"])


def test_a_batch_waiting_for_its_commit_keeps_the_run_from_ending():
    """Found by the pattern x fault matrix: with offsets committed before processing, the last batch
    was counted in flight only after its commit came back. A pause of the broker held that commit
    until every other batch was acknowledged; the commit's arrival then looked like the end of the
    run, which stopped with the batch unwritten (9 records lost without a crash)."""
    from weir.analysis.checkers import check
    from weir.sim.scenario.loader import load_scenario
    s = load_scenario("commit_before_ack").with_faults(())
    faults = (Fault(kind="pause", node="producer", at=330_059, down_for=110_692),
              Fault(kind="pause", node="coordinator", at=372_528, down_for=11_911),
              Fault(kind="pause", node="broker", at=494_579, down_for=51_343))
    run = execute(s, 592_473_845, faults)
    verdicts = {v.invariant: v.held for v in check(run)}
    assert run.status == "drained" and verdicts["no_loss"], "seed 592473845"
    last_write = max(r["time"] for r in run.trace.rows() if r["kind"] == "WRITE")
    assert run.end_time >= last_write
