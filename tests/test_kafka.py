"""Kafka behaviours: the idempotent producer, offset-commit policies, transactions and read_committed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import weir
from weir.faults.strategies import crashes
from weir.sim.kernel.clock import NodeClock
from weir.sim.kernel.errors import ScenarioError
from weir.sim.kernel.world import World
from weir.sim.kafka.log import ABORTED, COMMITTED, OPEN, Broker
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Checkpointing, Pipeline, Scenario

from .helpers import small

NEW = ("producer_retry_duplicates", "producer_idempotent", "auto_commit_crash", "txn_read_uncommitted",
       "txn_read_committed")


@pytest.mark.parametrize("name", NEW)
def test_scenarios_as_expected(name):
    for seed in range(4):
        r = weir.run(name, seed)
        assert r.matches, f"{name} seed {seed}: {[(v.invariant, v.held, v.summary) for v in r.verdicts]}"


def test_without_idempotence_the_retried_batch_is_in_the_log_twice():
    dup = execute(weir.load_scenario("producer_retry_duplicates"), 2)
    ids = dup.source["record_id"]
    assert len(ids) == 20_200 and len(set(ids.tolist())) == 20_000
    produces = [r for r in dup.trace.rows() if r["kind"] == "PRODUCE" and r["first_record_id"] == 4_000]
    assert [r["duplicate"] for r in produces] == [0, 0]  # appended both times
    idem = execute(weir.load_scenario("producer_idempotent"), 2)
    produces = [r for r in idem.trace.rows() if r["kind"] == "PRODUCE" and r["first_record_id"] == 4_000]
    assert [r["duplicate"] for r in produces] == [0, 1] and len(idem.source["record_id"]) == 20_000


def commits(run):
    return [r for r in run.trace.rows() if r["kind"] == "COMMIT" and r["accepted"]]


def test_auto_commit_commits_what_was_polled_and_after_ack_what_was_written():
    auto = execute(small("at_least_once", offset_commit="auto", commit_interval="20ms"), 1)
    acked = execute(small("at_least_once", commit_interval="20ms"), 1)

    def first_commit_vs_acks(run):
        first = commits(run)[0]
        acked_end = max((r["first_offset"] + r["count"] for r in run.trace.rows()
                         if r["kind"] == "ACK" and r["partition"] == first["partition"] and r["time"] < first["time"]),
                        default=0)
        return first["offset"], acked_end

    committed, written = first_commit_vs_acks(auto)
    assert committed > written  # auto-commit ran ahead of the sink
    committed, written = first_commit_vs_acks(acked)
    assert committed <= written


def test_commit_policy_defaults_follow_the_mode():
    assert [Pipeline(mode=m).offset_commit for m in ("at_most_once", "at_least_once", "exactly_once")] == [
        "before_processing", "after_ack", "on_checkpoint"]


@pytest.mark.parametrize("build, key", [
    (lambda: Pipeline(mode="exactly_once", offset_commit="auto"), "pipeline.offset_commit"),
    (lambda: Scenario(pipeline=Pipeline(offset_commit="on_checkpoint")), "pipeline.offset_commit"),
    (lambda: Pipeline(offset_commit="sometimes"), "pipeline.offset_commit"),
])
def test_commit_policy_errors(build, key):
    with pytest.raises(ScenarioError) as info:
        build()
    assert info.value.key == key


def test_at_least_once_can_commit_on_checkpoints():
    scenario = small("at_least_once", offset_commit="on_checkpoint", checkpoint=Checkpointing(interval="30ms"))
    run = execute(scenario, 1)
    assert run.status == "drained" and commits(run)


# ---- transactions -----------------------------------------------------------------------------


def broker() -> Broker:
    w = World(1, {"broker": NodeClock()}, max_time=10, max_events=10)
    return Broker(w, w.node("broker"), 1, capacity=8)


def put(b: Broker, first: int, n: int, **txn) -> bool:
    keys = np.zeros(n, dtype=np.int64)
    return b.append(first, keys, keys, keys + 1, **txn)


def test_a_new_epoch_aborts_the_open_transaction_and_fences_the_old_producer():
    b = broker()
    e1, position = b.init_producer()
    assert position == 0
    assert put(b, 0, 2, epoch=e1, txn=1) and b.end_txn(e1, 1, True, position=2)
    assert put(b, 2, 3, epoch=e1, txn=2)  # open when the producer "dies"
    assert b.last_stable_offset(0) == 2
    e2, position = b.init_producer()  # its next instance
    assert e2 == e1 + 1 and position == 2 and b.last_stable_offset(0) == 5
    assert b.log.contents()["state"].tolist() == [COMMITTED] * 2 + [ABORTED] * 3
    assert put(b, 2, 3, epoch=e1, txn=3) is False  # the zombie is fenced
    assert b.end_txn(e1, 2, True) is False and b.fenced == 2
    assert put(b, 2, 3, epoch=e2, txn=3) and b.log.contents()["state"].tolist()[-3:] == [OPEN] * 3
    fenced = [r for r in b.world.trace.freeze().rows() if r["kind"] == "FENCED"]
    assert [(r["epoch"], r["current_epoch"]) for r in fenced] == [(1, 2), (1, 2)]


def test_read_committed_stops_at_the_last_stable_offset_and_skips_aborted_records():
    b = broker()
    e1, _ = b.init_producer()
    put(b, 0, 2, epoch=e1, txn=1)
    b.end_txn(e1, 1, False)  # aborted
    put(b, 2, 2, epoch=e1, txn=2)
    b.end_txn(e1, 2, True)
    put(b, 4, 2, epoch=e1, txn=3)  # open
    uncommitted = b.fetch([0], 0, 100)
    assert uncommitted.record_id.tolist() == [0, 1, 2, 3, 4, 5]
    committed = b.fetch([0], 0, 100, read_committed=True)
    assert committed.record_id.tolist() == [2, 3] and committed.offset.tolist() == [2, 3]
    assert committed.end_offset == 4  # the consumer moves past the aborted ones, up to the open transaction
    assert b.fetch([4], 0, 100, read_committed=True) is None


def test_a_commit_whose_answer_the_crash_swallowed_is_not_sent_again():
    """The END_TXN request is on the wire when the producer crashes: the broker commits it, and the
    next instance reads the stored position instead of resending (found by the property below)."""
    scenario = weir.load_scenario("txn_read_committed").with_faults(
        (weir.Fault(node="producer", at=96_072, down_for=1),))
    r = weir.run(scenario, 2)
    assert r.verdict("exactly_once").held, r.verdict("exactly_once").summary


@settings(max_examples=25)
@given(faults=crashes(nodes=("producer",), max_at="400ms", max_down="100ms"), seed=st.integers(0, 2**32 - 1))
def test_read_committed_never_passes_on_an_aborted_record(faults, seed):
    scenario = weir.load_scenario("txn_read_committed")
    r = weir.run(scenario.with_faults(faults), seed)
    assert r.status == "drained", f"seed {seed}"
    assert r.verdict("no_aborted_reads").held and r.verdict("exactly_once").held, \
        f"seed {seed}, faults {faults}: {[v.summary for v in r.verdicts if not v.held]}"


def test_the_broker_aborts_a_transaction_past_its_timeout_and_fences_its_producer():
    """Kafka's transaction.timeout.ms: the coordinator aborts the transaction and bumps the epoch."""
    w = World(1, {"broker": NodeClock()}, max_time=10_000, max_events=1_000)
    b = Broker(w, w.node("broker"), 1, capacity=8, transaction_timeout=50)
    e1, _ = b.init_producer(1)
    assert put(b, 0, 2, epoch=e1, txn=1)
    w.env.run(until=60)  # the timer fires at 50
    assert b.open_txn is None and b.producer_epoch == e1 + 1
    assert put(b, 2, 1, epoch=e1, txn=1) is False and b.end_txn(e1, 1, True) is False  # fenced
    ended = [r for r in w.trace.freeze().rows() if r["kind"] == "TXN_END"]
    assert [(r["txn"], r["committed"], r["timed_out"]) for r in ended] == [(1, 0, 1)]


def test_with_fencing_off_a_zombie_s_writes_and_commit_land():
    w = World(1, {"broker": NodeClock()}, max_time=10_000, max_events=1_000)
    b = Broker(w, w.node("broker"), 1, capacity=8, fencing=False)
    e1, _ = b.init_producer(1)
    e2, _ = b.init_producer(2)  # a newer instance
    assert put(b, 0, 2, epoch=e1, txn=1) is True and b.end_txn(e1, 1, True) is True and b.fenced == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_zombie_is_fenced_and_nothing_is_lost_and_without_fencing_it_loses_records(seed):
    fenced, unfenced = weir.run("zombie_producer", seed), weir.run("zombie_producer_unfenced", seed)
    assert fenced.verdict("log_complete").held and fenced.verdict("exactly_once").held, f"seed {seed}"
    lost = unfenced.verdict("log_complete")
    assert not lost.held and lost.evidence["missing"] > 0 and unfenced.verdict("no_loss").held, f"seed {seed}"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_producers_sharing_a_transactional_id_fence_each_other_and_still_commit_each_record_once(seed):
    """Kafka: one transactional id, one producer id and epoch; a second instance's init fences the
    first, which closes and inits again (as an application recreates a fenced producer)."""
    scenario = weir.Scenario(
        workload=weir.Workload(records=4000, produce_batch=200, produce_interval="5ms", transactional=True, producers=2),
        pipeline=weir.Pipeline(mode="at_least_once", isolation="read_committed"))
    run = execute(scenario, seed)
    rows = run.trace.rows()
    assert sum(r["kind"] == "FENCED" for r in rows) > 0, f"seed {seed}"
    assert any(r["kind"] == "TXN_END" and r["committed"] == 0 for r in rows), f"seed {seed}: a fenced transaction aborted"
    result = weir.result_of(run)
    assert result.status == "drained" and result.verdict("log_complete").held and result.verdict("exactly_once").held, \
        f"seed {seed}"
