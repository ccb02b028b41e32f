"""A user's two-phase-commit sink (weir.TwoPhaseCommitSink) under weir's faults: the protocol as
Flink's TwoPhaseCommitSinkFunction drives it (flink-streaming-java/src/main/java/org/apache/flink/
streaming/api/functions/sink/TwoPhaseCommitSinkFunction.java), faults on its paths, and explore
telling a flawed sink from a correct one."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import weir
from weir.faults import strategies
from weir.sim.scenario.run import execute

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
from two_phase_sink import StagedFileSink  # noqa: E402  (the examples' user code)

EXAMPLE = ROOT / "examples" / "two_phase_sink.toml"


def _scenario(sink: str = "two_phase_sink:StagedFileSink", faults=None) -> weir.Scenario:
    base = weir.load_scenario(EXAMPLE)
    s = replace(base, pipeline=replace(base.pipeline, sink=sink))
    return s if faults is None else s.with_faults(faults)


def _rows(run, kind):
    return [r for r in run.trace.rows() if r["kind"] == kind]


def test_explore_refutes_a_sink_that_recommits_without_its_log_and_not_the_correct_one():
    flawed = weir.explore(_scenario("two_phase_sink:RecommittingSink", ()), budget_s=600, seed=0, max_runs=40)
    assert flawed.counterexample is not None, f"nothing found in {flawed.runs} runs (search seed 0)"
    assert flawed.counterexample.verdict.invariant in ("no_duplicates", "exactly_once")
    assert "duplicated" in flawed.counterexample.verdict.summary or "more than one" in flawed.counterexample.verdict.summary
    correct = weir.explore(_scenario(faults=()), budget_s=600, seed=0, max_runs=40)
    assert correct.counterexample is None, correct.counterexample


class HandleInState(StagedFileSink):
    """Handles are mutable lists; a commit marks its handle. The checkpoint must keep the handle as
    it was at the barrier, not see the later mark (Flink serializes state at the snapshot)."""

    def begin_transaction(self, subtask, txn_id):
        return [txn_id]

    def write(self, batch, value, written_at, txn=None):
        return super().write(batch, value, written_at, txn[0])

    def commit(self, txn):
        txn.append("committed")
        return super().commit(txn[0])

    def abort(self, txn):
        super().abort(txn[0])

    def finish_recovering(self, subtask, handled):
        return super().finish_recovering(subtask, [h[0] for h in handled])


def test_checkpoints_keep_copies_of_the_handles():
    run = execute(_scenario("tests.test_user_protocol:HandleInState"), 1)
    assert weir.result_of(run).verdict("exactly_once").held
    cp = run.checkpoints[-1]
    (pending, open_txn), = cp.sink_state  # one sink subtask
    assert pending and all(h.handle == [h.id] for _n, h in pending)  # committed since, but not in the checkpoint
    assert open_txn.handle == [open_txn.id]


class CommitFailsOnce(StagedFileSink):
    """The first commit raises (a timeout talking to the store); every later one works."""

    def __init__(self):
        super().__init__()
        self.failed = False

    def commit(self, txn):
        if not self.failed:
            self.failed = True
            raise TimeoutError("the store did not answer")
        return super().commit(txn)


def test_a_commit_that_raises_fails_the_job_over_and_the_restore_commits_it():
    scenario = _scenario("tests.test_user_protocol:CommitFailsOnce", faults=())
    run = execute(replace(scenario, run=replace(scenario.run, on_user_error="fail_over")), 1)  # as Flink: fail over
    result = weir.result_of(run)
    assert len(result.user_errors) == 1 and result.user_errors[0].startswith("CommitFailsOnce.commit at ")
    assert result.user_errors[0].endswith(": TimeoutError: the store did not answer")
    assert result.restarts == 1 and result.status == "drained"
    failed = [r for r in _rows(run, "TXN_COMMIT") if r["newly_committed"] == -1]
    recommitted = [r for r in _rows(run, "TXN_RECOVER") if r["action"] == 1]
    assert len(failed) == 1 and [r["txn"] for r in recommitted] == [failed[0]["txn"]]
    assert recommitted[0]["result"] == 1  # the recovery published it: the failed commit had not
    assert result.verdict("exactly_once").held


def test_a_commit_fault_window_fails_commits_until_it_ends():
    fault = weir.Fault(kind="sink_commit_fail", node="sink", at="60ms", down_for="100ms")
    run = execute(_scenario(faults=(fault,)), 1)
    result = weir.result_of(run)
    failed = [r for r in _rows(run, "TXN_COMMIT") + _rows(run, "TXN_RECOVER")
              if r.get("newly_committed", r.get("result")) == -1]
    assert failed and all(60_000 <= r["time"] < 160_000 for r in failed)
    assert result.restarts >= 1 and result.user_errors == ()  # an injected fault, not the user's code
    assert result.status == "drained" and result.verdict("exactly_once").held


def test_a_crash_during_recovery_recovers_again_from_the_same_checkpoint():
    base = _scenario()
    first = execute(base, 1)
    step = next(r for r in _rows(first, "TXN_RECOVER") if r["action"] == 1)
    # 1us after the first recovered commit landed, before the abort of the open transaction does
    crash = weir.Fault(kind="crash", node="sink", at=step["time"] + 1, down_for="10ms")
    run = execute(base, 1, base.faults + (crash,))
    steps = [(r["checkpoint"], r["txn"]) for r in _rows(run, "TXN_RECOVER") if r["action"] == 1]
    assert steps.count((step["checkpoint"], step["txn"])) == 2, steps  # recovered twice, the same transaction
    aborts = [r for r in _rows(run, "TXN_RECOVER") if r["action"] == -1]
    assert len(aborts) == 1  # the first recovery never got to its abort
    assert weir.result_of(run).verdict("exactly_once").held


def test_a_lost_completion_notification_is_subsumed_by_the_next_one():
    """Flink: notifications are best effort; a later checkpoint's commits every pending one up to it."""
    loss = weir.Fault(kind="loss", node="coordinator", peers=("sink",), direction="outbound", at="95ms",
                      down_for="30ms", rate=1.0)
    run = execute(_scenario(faults=(loss,)), 1)
    result = weir.result_of(run)
    assert result.restarts == 0  # a lost RPC fails nothing over
    dropped = [r["ref1"] for r in _rows(run, "DROP") if r["message"] == "NOTIFY"]
    assert dropped == [2]  # checkpoint 2's notification
    commits = [(r["checkpoint"], r["time"]) for r in _rows(run, "TXN_COMMIT")]
    assert [n for n, _t in commits] == [1, 2, 3, 4]
    assert commits[1][1] == commits[2][1]  # checkpoint 3's notification committed 2's transaction too
    assert result.status == "drained" and result.verdict("exactly_once").held


def test_a_two_phase_sink_needs_checkpoints():
    with pytest.raises(weir.ScenarioError, match="pipeline.sink: got 'two_phase_sink:StagedFileSink'; accepts another"):
        base = _scenario()
        replace(base, checkpoint=None, pipeline=replace(base.pipeline, mode="at_least_once"))


def test_the_built_in_transactional_sink_is_a_two_phase_commit_sink():
    from weir.sim.patterns.sinks import TransactionalSink
    assert issubclass(TransactionalSink, weir.TwoPhaseCommitSink)
    assert weir.load_scenario("kafka_to_delta").pipeline.two_phase and _scenario().pipeline.two_phase
    assert not weir.load_scenario("exactly_once_crash").pipeline.two_phase


def test_exactly_once_judges_values_a_restore_that_inflates_state_fails_it():
    """Issue 12: a user operator whose restore doubles every key's count wrote every id once, with
    wrong values, and passed exactly_once. Now exactly_once compares values with the fault-free run."""
    sys.path.insert(0, str(ROOT / "examples"))
    from components import KeyCounter

    class DoublingRestore(KeyCounter):
        def restore(self, snapshot):
            self.counts = {key: 2 * n for key, n in snapshot.items()}

    base = weir.load_scenario(ROOT / "examples" / "user_components.toml")
    verdict = weir.run(replace(base, operator=weir.ComponentSpec(DoublingRestore, {"scale": 10})), 1).verdict("exactly_once")
    assert not verdict.held and verdict.evidence["duplicated"] == 0 and verdict.evidence["lost"] == 0
    assert verdict.evidence["values_judged_by"] == "the fault-free run" and verdict.evidence["wrong_values"] > 0
    first = verdict.evidence["first_wrong"][0]
    assert f"got {first['got']}, expected {first['expected']}" in verdict.summary
    assert weir.run(base, 1).verdict("exactly_once").held  # the correct KeyCounter


def test_exactly_once_knows_the_running_totals_from_the_log():
    from tests.helpers import oracle_running_totals
    run = execute(weir.load_scenario("exactly_once_crash"), 2)
    expected = oracle_running_totals(run.source)
    assert all(v == expected[r] for r, v in zip(run.sink["record_id"].tolist(), run.sink["value"].tolist()))
    verdict = weir.check(run, ["exactly_once"])[0]
    assert verdict.held and verdict.evidence["values_judged_by"] == "each key's running total over the log"
    tampered = replace(run, sink={**run.sink, "value": run.sink["value"] + (run.sink["record_id"] == 7)})
    broken = weir.check(tampered, ["exactly_once"])[0]
    assert not broken.held and broken.evidence["first_wrong_ids"] == [7], broken.summary


@settings(max_examples=15, deadline=None)
@given(faults=strategies.crash_in_recovery(nodes=("sink", "processor", "coordinator"), max_at="200ms",
                                           max_down="50ms"), seed=st.integers(0, 2**16))
def test_the_correct_sink_survives_a_crash_during_recovery(faults, seed):
    result = weir.run(_scenario(faults=()), seed, faults)
    assert result.status == "drained", f"seed {seed}, {faults}: {result.status}"
    assert result.verdict("exactly_once").held, f"seed {seed}, {faults}: {result.verdict('exactly_once').summary}"
