"""The two-phase-commit sink: staging, atomic idempotent commits, recovery, exactly-once under crashes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import weir
from weir.faults import strategies
from weir.sim.kernel.batch import RecordBatch
from weir.sim.kernel.errors import ScenarioError
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Checkpointing, Pipeline, Scenario
from weir.sim.patterns.sinks import TransactionalSink

from .helpers import small


def batch(ids, first=0):
    ids = np.asarray(ids, dtype=np.int64)
    return RecordBatch(0, first, ids, ids % 3, np.zeros_like(ids), ids * 10)


def test_staged_rows_are_invisible_until_their_transaction_commits():
    t = TransactionalSink()
    t.write(batch([1, 2]), np.array([5, 6]), written_at=10, txn=7)
    t.write(batch([3], first=2), np.array([7]), written_at=11, txn=8)
    assert len(t.contents()["record_id"]) == 0 and t.staged_rows() == 3
    assert t.commit(7, now=20) is True
    assert t.contents()["record_id"].tolist() == [1, 2] and t.staged_rows() == 1
    assert t.commit(7, now=30) is False  # again: nothing happens
    assert t.contents()["record_id"].tolist() == [1, 2]
    assert t.abort_all_but(set()) == 1 and t.staged_rows() == 0
    assert t.committed() == [7]
    # the commit log, by SQL
    assert t._db.execute("SELECT txn, rows, committed_at FROM commit_log").fetchall() == [(7, 2, 20)]


def test_recovery_commits_the_restored_pending_and_aborts_the_rest():
    run = execute(weir.load_scenario("kafka_to_delta"), 3)
    rows = run.trace.rows()
    aborts = [r for r in rows if r["kind"] == "TXN_ABORT"]
    assert [r["generation"] for r in aborts] == [1, 2, 3]  # one recovery per attempt
    assert any(r["transactions"] > 0 for r in aborts[1:])  # a crash left staged rows to abort
    newly = [r["txn"] for r in rows if r["kind"] == "TXN_COMMIT" and r["newly_committed"]]
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
