"""The two-phase-commit sink: staging, atomic idempotent commits, recovery, exactly-once under crashes."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from unittest import mock

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import weir
from weir.faults import strategies
from weir.sim.kernel.batch import RecordBatch
from weir.sim.kernel.errors import ScenarioError
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Checkpointing, Pipeline, Scenario
from weir.sim.patterns import sinks
from weir.sim.patterns.sinks import SINK_COLUMNS, TransactionalSink

from .helpers import small


def batch(ids, first=0):
    ids = np.asarray(ids, dtype=np.int64)
    return RecordBatch(0, first, ids, ids % 3, np.zeros_like(ids), ids * 10)


def test_staged_rows_are_invisible_until_their_transaction_commits():
    t = TransactionalSink()
    assert t.begin_transaction(0, 7) == 7 and t.begin_transaction(0, 8) == 8 and t.begin_transaction(1, 9) == 9
    t.write(batch([1, 2]), np.array([5, 6]), 10, 7)
    t.write(batch([3], first=2), np.array([7]), 11, 8)
    t.write(batch([4], first=3), np.array([8]), 11, 9)
    assert len(t.contents()["record_id"]) == 0 and t.staged_rows() == 4
    assert t.commit(7) is True
    assert t.contents()["record_id"].tolist() == [1, 2] and t.staged_rows() == 2
    assert t.recover_and_commit(7) is False  # again: nothing happens
    assert t.contents()["record_id"].tolist() == [1, 2]
    # subtask 0 recovered transaction 7 only: 8 lingers from before the crash and is aborted; 9 is subtask 1's
    assert t.finish_recovering(0, [7]) == 1 and t.staged_rows() == 1
    assert t.committed() == [7]
    # the commit log and the transactions, by SQL
    assert t._db.execute("SELECT txn, rows FROM commit_log").fetchall() == [(7, 2)]
    assert t._db.execute("SELECT txn, subtask, state FROM txns ORDER BY txn").fetchall() == [
        (7, 0, "committed"), (8, 0, "aborted"), (9, 1, "open")]


class _MovedOnCommit:
    """The two-phase-commit sink as it was until 2026-12 (the oracle for the one that replaced it):
    rows staged in a table of their own, copied into the table at a commit and deleted from staging."""

    def __init__(self):
        self._db = sqlite3.connect(":memory:", isolation_level=None)
        for ddl in ('CREATE TABLE sink (record_id, key, partition, "offset", value, written_at, txn)',
                    'CREATE TABLE staging (txn, record_id, key, partition, "offset", value, written_at)',
                    "CREATE TABLE txns (txn INTEGER PRIMARY KEY, subtask INTEGER NOT NULL, state TEXT NOT NULL)",
                    "CREATE TABLE commit_log (txn INTEGER PRIMARY KEY, rows INTEGER NOT NULL)"):
            self._db.execute(ddl)

    def begin_transaction(self, subtask, txn):
        self._db.execute("INSERT INTO txns VALUES (?, ?, 'open')", (txn, subtask))
        return txn

    def write(self, b, value, written_at, txn):
        self._db.executemany("INSERT INTO staging VALUES (?, ?, ?, ?, ?, ?, ?)", [
            (txn, r, k, b.partition_id, o, v, written_at)
            for r, k, o, v in zip(b.record_id.tolist(), b.key.tolist(), b.offset.tolist(), value.tolist())])
        return 0

    def commit(self, txn):
        db = self._db
        if db.execute("SELECT 1 FROM commit_log WHERE txn = ?", (txn,)).fetchone():
            return False
        moved = db.execute('INSERT INTO sink SELECT record_id, key, partition, "offset", value, written_at, txn '
                           "FROM staging WHERE txn = ? ORDER BY rowid", (txn,)).rowcount
        db.execute("INSERT INTO commit_log VALUES (?, ?)", (txn, moved))
        db.execute("UPDATE txns SET state = 'committed' WHERE txn = ?", (txn,))
        db.execute("DELETE FROM staging WHERE txn = ?", (txn,))
        return True

    def abort(self, txn):
        self._db.execute("DELETE FROM staging WHERE txn = ?", (txn,))
        self._db.execute("UPDATE txns SET state = 'aborted' WHERE txn = ? AND state = 'open'", (txn,))

    def finish_recovering(self, subtask, handled):
        lingering = [t for (t,) in self._db.execute(
            "SELECT txn FROM txns WHERE subtask = ? AND state = 'open' ORDER BY txn", (subtask,)) if t not in handled]
        for t in lingering:
            self.abort(t)
        return len(lingering)

    def staged_rows(self):
        return self._db.execute("SELECT count(*) FROM staging").fetchone()[0]

    def contents(self):
        rows = self._db.execute('SELECT record_id, key, partition, "offset", value, written_at FROM sink '
                                "ORDER BY record_id, txn, rowid").fetchall()
        return [list(c) for c in zip(*rows)] if rows else [[] for _ in SINK_COLUMNS]


_STEPS = st.lists(st.one_of(
    st.tuples(st.just("begin"), st.integers(0, 1)),
    st.tuples(st.just("write"), st.integers(0, 5), st.lists(st.integers(0, 9), min_size=1, max_size=4)),
    st.tuples(st.just("commit"), st.integers(0, 5)),
    st.tuples(st.just("abort"), st.integers(0, 5)),
    st.tuples(st.just("recover"), st.integers(0, 1), st.sets(st.integers(0, 5)))), max_size=25)


@settings(max_examples=150, deadline=None)
@given(steps=_STEPS, chunk=st.integers(1, 5))
@example(steps=[("write", 0, [1, 2]), ("commit", 0), ("write", 0, [1]), ("abort", 1)], chunk=5)  # after its commit
@example(steps=[("write", 1, [1, 2]), ("write", 0, [2]), ("commit", 1), ("commit", 0)], chunk=1)  # one record, two txns
def test_publishing_in_place_reads_as_moving_the_rows_did(steps, chunk):
    """TransactionalSink publishes a transaction's rows where they were written (a commit log
    entry, as Delta Lake's); the sink before it copied them into the table. For any sequence of
    begins, writes (into open, committed, aborted or unknown transactions, a record again too),
    commits, aborts and recoveries, both answer alike and hold the same rows, staged and
    published, read a chunk at a time."""
    new, old = TransactionalSink(), _MovedOnCommit()
    opened = 0
    for i, (op, *args) in enumerate(steps):
        if op == "begin":
            assert new.begin_transaction(args[0], opened) == old.begin_transaction(args[0], opened)
            opened += 1
        elif op == "write":
            txn, ids = args
            b, value = batch(ids, first=i), np.array(ids, dtype=np.int64) * 7 + i
            assert new.write(b, value, i, txn) == old.write(b, value, i, txn)
        elif op == "commit":
            assert new.commit(args[0]) == old.commit(args[0]), f"step {i}"
        elif op == "abort":
            new.abort(args[0]), old.abort(args[0])
        else:
            assert new.finish_recovering(args[0], sorted(args[1])) == old.finish_recovering(args[0], sorted(args[1]))
        assert new.staged_rows() == old.staged_rows(), f"step {i}: {steps[:i + 1]}"
    with mock.patch.object(sinks, "READ_CHUNK", chunk):
        got = new.contents()
    assert [got[c].tolist() for c in SINK_COLUMNS] == old.contents(), steps
    for sql in ("SELECT txn, rows FROM commit_log ORDER BY txn", "SELECT * FROM txns ORDER BY txn"):
        assert new._db.execute(sql).fetchall() == old._db.execute(sql).fetchall(), sql


def test_recovery_commits_the_restored_pending_and_aborts_the_rest():
    """Flink's TwoPhaseCommitSinkFunction.initializeState: recoverAndCommit each pending
    transaction of the restored checkpoint, recoverAndAbort the one open at its barrier, then
    finish recovering; one call per write_time, so a crash can land between them."""
    run = execute(weir.load_scenario("kafka_to_delta"), 3)
    steps = [(r["time"], r["checkpoint"], r["txn"], r["action"]) for r in run.trace.rows() if r["kind"] == "TXN_RECOVER"]
    assert steps == [(0, 0, 0, 0),  # the first attempt: nothing to restore
                     (451_000, 2, 1_000_002, 1), (452_000, 2, 1_000_003, -1), (452_000, 2, 0, 0),
                     (801_000, 3, 2_000_001, 1), (802_000, 3, 2_000_002, -1), (802_000, 3, 0, 0)]
    rows = run.trace.rows()
    newly = [r["txn"] for r in rows if (r["kind"] == "TXN_COMMIT" and r["newly_committed"] == 1)
             or (r["kind"] == "TXN_RECOVER" and r["action"] == 1 and r["result"] == 1)]
    assert newly and len(newly) == len(set(newly))  # no transaction is published twice
    assert weir.result_of(run).verdict("exactly_once").held


def test_transactional_needs_checkpoints():
    with pytest.raises(ScenarioError, match="pipeline.sink: got 'transactional'; accepts another sink, or a"):
        Scenario(pipeline=Pipeline(sink="transactional"))


crashes = strategies.crashes()


@settings(max_examples=30)
@given(faults=crashes, seed=st.integers(0, 2**32 - 1))
def test_exactly_once_with_the_transactional_sink_for_any_crashes(faults, seed):
    scenario = small("exactly_once", tuple(faults), records=2000, sink="transactional",
                     checkpoint=Checkpointing(interval="40ms"))
    r = weir.result_of(execute(scenario, seed))
    assert r.status == "drained", f"seed {seed}: {r.status}"
    assert r.verdict("exactly_once").held, f"seed {seed}, faults {faults}: {r.verdict('exactly_once').summary}"


def test_a_lost_acknowledgement_inside_a_transaction_fails_the_job_over_instead_of_staging_twice():
    """Found by the pattern x fault matrix: the transactional sink retried a write whose ack was lost
    inside the same transaction and staged its rows twice (0 of 10 runs exactly once)."""
    from weir.analysis.checkers import check
    from weir.sim.scenario.run import execute
    from weir.sim.scenario.model import Fault
    from weir.sim.scenario.loader import load_scenario
    s = load_scenario("kafka_to_delta").with_faults(())
    run = execute(s, 1, (Fault(kind="sink_ack_lost", node="sink", at="300ms", down_for="30ms"),))
    rows = run.trace.rows()
    gave_up = [r for r in rows if r["kind"] == "RETRY" and r["delay_us"] == -1]
    assert gave_up and run.restarts == 1
    assert [r["node"] for r in rows if r["kind"] == "JOB_FAIL"] == ["sink"]
    verdicts = {v.invariant: v.held for v in check(run)}
    assert verdicts["exactly_once"] and verdicts["drained"]


def _timeout(timeout, ignore=False, faults=None):
    s = weir.load_scenario("two_phase_commit_timeout")
    s = replace(s, pipeline=replace(s.pipeline, transaction_timeout=timeout, ignore_commit_failures_after_timeout=ignore))
    return s if faults is None else s.with_faults(faults)


def test_a_transaction_past_its_timeout_is_aborted_and_its_commit_fails():
    """Kafka's transaction.timeout.ms; Flink's TwoPhaseCommitSinkFunction.recoverAndCommitInternal
    (flink-streaming-java/.../functions/sink/TwoPhaseCommitSinkFunction.java): a failed recovery
    commit fails the task again, unless ignoreFailuresAfterTransactionTimeout and the transaction
    is older than the timeout, when the failure is logged and the data lost."""
    lost = weir.run(_timeout("250ms", ignore=True), 1)
    assert lost.status == "drained" and lost.lost == 2000 and lost.restarts == 1
    looping = execute(_timeout("250ms", ignore=False), 1)
    assert looping.status == "time_limit" and looping.restarts > 100  # recovery fails, again and again
    timed_out = [r for r in looping.trace.rows() if r["kind"] == "TXN_RECOVER" and r["result"] == -2]
    assert len({r["txn"] for r in timed_out}) == 1 and len(timed_out) > 100
    assert weir.run(_timeout("1s"), 1).verdict("exactly_once").held  # longer than interval plus outage


def test_a_committed_transaction_does_not_time_out():
    crash_only = (weir.Fault(kind="crash", node="sink", at="270ms", down_for="100ms"),)  # notifications arrive
    result = weir.run(_timeout("250ms", faults=crash_only), 1)
    assert result.status == "drained" and result.verdict("exactly_once").held, result.verdict("exactly_once").summary


def test_a_timeout_shorter_than_a_checkpoint_interval_fails_every_barrier():
    run = execute(_timeout("30ms", faults=()), 1)
    aborted = [r for r in run.trace.rows() if r["kind"] == "TXN_ABORT" and r["reason"] == 2]
    assert run.status == "time_limit" and len(aborted) > 100


def test_the_timeout_settings_are_checked():
    with pytest.raises(ScenarioError, match="pipeline.ignore_commit_failures_after_timeout: got True; accepts false unless"):
        Pipeline(ignore_commit_failures_after_timeout=True)
    with pytest.raises(ScenarioError, match="pipeline.transaction_timeout: got 100000; accepts no timeout unless the sink"):
        Scenario(pipeline=Pipeline(transaction_timeout="100ms"))
