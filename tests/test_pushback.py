"""Sinks that push back (weir.Retryable, weir.Rejected, the sink_overload fault) and user code that
raises: a finding in the result, never a crash of weir."""

from __future__ import annotations

import numpy as np
import pytest

import weir
from weir.sim.stream.job import MAX_USER_ERRORS
from weir.sim.scenario.run import execute


class ShedSink(weir.Sink):
    """Refuses every other write (Retryable) and rejects record ids divisible by 97 (Rejected)."""

    def __init__(self):
        self.rows: dict[int, int] = {}
        self.calls = 0

    def write(self, batch, value, written_at):
        self.calls += 1
        if self.calls % 2 == 0:
            raise weir.Retryable("busy: try again")
        ids = batch.record_id.tolist()
        bad = [i for i, r in enumerate(ids) if r % 97 == 0]
        for i, (r, v) in enumerate(zip(ids, value.tolist())):
            if i not in bad:
                self.rows[r] = v
        if bad:
            raise weir.Rejected("fails validation", rows=bad)
        return 0

    def contents(self):
        ids = sorted(self.rows)
        return {"record_id": np.array(ids, dtype=np.int64), "value": np.array([self.rows[i] for i in ids], dtype=np.int64)}


class BrokenSink(ShedSink):
    def write(self, batch, value, written_at):
        raise KeyError("no such table")


class FlakyOperator(weir.Operator):
    """Raises on its 5th batch of the first attempt only (class state: it survives the failover)."""

    seen = 0

    def on_batch(self, batch, now):
        type(self).seen += 1
        if type(self).seen == 5:
            raise ValueError("divide by zero")
        return batch.value * 2


class BrokenWatermarks(weir.WatermarkStrategy):
    def on_event(self, ts, marker=False):
        raise RuntimeError("no watermark today")

    def current(self):
        return 0


def _scenario(**kw) -> weir.Scenario:
    pipeline = kw.pop("pipeline", weir.Pipeline(mode="exactly_once"))
    return weir.Scenario(workload=weir.Workload(records=2000), pipeline=pipeline,
                         checkpoint=weir.Checkpointing(interval="50ms"), **kw)


FAIL_OVER = weir.RunLimits(on_user_error="fail_over")  # an exception fails the job over, as in Flink


def test_retryable_rows_are_retried_and_rejected_rows_dead_lettered_at_once():
    run = execute(_scenario(pipeline=weir.Pipeline(mode="exactly_once", sink=ShedSink)), 1)
    result = weir.result_of(run)
    rejected = sorted(r for r in range(2000) if r % 97 == 0)
    assert result.status == "drained" and result.user_errors == ()
    assert sorted(run.dlq["record_id"].tolist()) == rejected  # rejected: dead-lettered, nothing else
    assert set(run.sink["record_id"].tolist()) == set(range(2000)) - set(rejected)  # the refused ones were retried
    refused = [r for r in run.trace.rows() if r["kind"] == "REFUSED"]
    assert any(r["rejected"] == 0 for r in refused) and any(r["rejected"] == 1 for r in refused)
    dead = [(r["time"], r["partition"], r["first_offset"]) for r in run.trace.rows() if r["kind"] == "DEAD_LETTER"]
    # each dead-lettered the moment it was rejected: a rejection is not retried
    assert dead == [(r["time"], r["partition"], r["first_offset"]) for r in refused if r["rejected"] == 1]
    assert {m["error_type"] for m in run.dlq_messages} == {"Rejected"}


def test_refused_rows_map_back_through_a_partial_write():
    """With poison records in the batch, the sink is handed only the good rows: its row numbers are
    positions in that sub-batch, and weir maps them back."""
    scenario = _scenario(pipeline=weir.Pipeline(mode="exactly_once", sink=ShedSink))
    scenario = scenario.__class__(**{**scenario.__dict__, "workload": weir.Workload(records=2000, poison_every=50)})
    run = execute(scenario, 1)
    poison = {r for r in range(2000) if r % 50 == 25}  # weir.sim.kafka.producer.poison_mask
    rejected = {r for r in range(2000) if r % 97 == 0} - poison
    assert set(run.dlq["record_id"].tolist()) == poison | rejected
    assert set(run.sink["record_id"].tolist()) == set(range(2000)) - poison - rejected


def test_any_other_exception_from_a_sink_fails_the_job_over_until_the_run_gives_up():
    result = weir.run(_scenario(pipeline=weir.Pipeline(mode="exactly_once", sink=BrokenSink), run=FAIL_OVER), 1)
    assert result.status == "user_code_raised" and result.restarts == MAX_USER_ERRORS - 1
    assert len(result.user_errors) == MAX_USER_ERRORS
    assert all(e.startswith("BrokenSink.write at ") and e.endswith(": KeyError: 'no such table'") for e in result.user_errors)
    assert not result.verdict("drained").held and not result.verdict("no_user_errors").held


def test_by_default_the_first_exception_ends_the_run_with_the_finding():
    result = weir.run(_scenario(pipeline=weir.Pipeline(mode="exactly_once", sink=BrokenSink)), 1)
    assert result.status == "user_code_raised" and result.restarts == 0 and len(result.user_errors) == 1
    verdict = result.verdict("no_user_errors")
    assert not verdict.held and verdict.evidence["error"]["hook"] == "write"
    assert "raise KeyError" in verdict.evidence["error"]["traceback"]


def test_an_operator_that_raises_once_fails_over_and_the_restore_makes_it_good():
    FlakyOperator.seen = 0
    result = weir.run(_scenario(operator=weir.ComponentSpec(FlakyOperator), run=FAIL_OVER), 1)
    assert len(result.user_errors) == 1
    assert result.user_errors[0].startswith("FlakyOperator.on_batch at ")
    assert result.user_errors[0].endswith("): ValueError: divide by zero")
    assert result.restarts == 1 and result.status == "drained" and result.verdict("exactly_once").held
    # the scenario asked for failovers: the finding is reported, and it holds
    assert result.verdict("no_user_errors").held and result.matches


def test_an_exception_anywhere_in_user_code_ends_the_run_with_its_message():
    scenario = weir.Scenario(workload=weir.Workload(records=2000), pipeline=weir.Pipeline(mode="exactly_once"),
                             checkpoint=weir.Checkpointing(interval="50ms"), window=weir.WindowSettings(size="50ms"),
                             watermarks=weir.WatermarkSettings(strategy=BrokenWatermarks), run=FAIL_OVER)
    result = weir.run(scenario, 1)
    assert result.status == "user_code_raised"
    assert len(result.user_errors) == 1 and result.user_errors[0].startswith("BrokenWatermarks.on_event at ")
    assert result.user_errors[0].endswith(": RuntimeError: no watermark today")


def test_a_bug_in_weir_itself_is_not_taken_for_user_code(monkeypatch):
    from weir.sim.stream import operators

    def broken(self, batch, now):
        raise ZeroDivisionError("weir's own bug")

    monkeypatch.setattr(operators.RunningTotals, "on_batch", broken)
    with pytest.raises(ZeroDivisionError):
        weir.run(_scenario(), 1)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_under_overload_retrying_without_backoff_loses_what_backing_off_keeps(seed):
    overload = weir.Fault(kind="sink_overload", node="sink", at="50ms", down_for="150ms", slow_by="2ms")

    def run(retry):
        s = weir.Scenario(workload=weir.Workload(records=4000), pipeline=weir.Pipeline(mode="exactly_once", parallelism=4),
                          checkpoint=weir.Checkpointing(interval="50ms"), retry=retry, faults=(overload,))
        finished = execute(s, seed)
        return weir.result_of(finished), sum(r["kind"] == "RETRY" for r in finished.trace.rows())

    eager, eager_retries = run(weir.RetryPolicy(backoff="1us", multiplier=1.0, jitter=0.0, max_retries=10))
    patient, patient_retries = run(weir.RetryPolicy(backoff="2ms", multiplier=2.0, jitter=0.5, max_retries=10))
    assert eager_retries > 5 * patient_retries, f"seed {seed}: {eager_retries} vs {patient_retries} retries"
    assert eager.dlq["dead_lettered"] > 0 and not eager.verdict("no_loss").held, f"seed {seed}"
    assert patient.dlq["dead_lettered"] == 0 and patient.verdict("no_loss").held, f"seed {seed}"


def test_explore_refutes_retrying_without_backoff_under_overload_and_not_backing_off():
    def scenario(retry):
        return weir.Scenario(workload=weir.Workload(records=3000), pipeline=weir.Pipeline(mode="exactly_once", parallelism=4),
                             checkpoint=weir.Checkpointing(interval="50ms"), retry=retry,
                             expect=weir.Expect(hold=("no_loss",)))

    eager = weir.explore(scenario(weir.RetryPolicy(backoff="1us", multiplier=1.0, jitter=0.0, max_retries=10)),
                         budget_s=600, seed=0, rates={"sink_overload": 1.0}, max_runs=40)
    assert eager.counterexample is not None and eager.counterexample.verdict.invariant == "no_loss", eager.runs
    patient = weir.explore(scenario(weir.RetryPolicy(backoff="2ms", multiplier=2.0, jitter=0.5, max_retries=10)),
                           budget_s=600, seed=0, rates={"sink_overload": 1.0}, max_runs=40)
    assert patient.counterexample is None, patient.counterexample


def test_explore_refutes_a_sink_that_pushes_back_on_rows_it_already_wrote():
    """The Retryable contract: the rows named were not written. A throttled append table that
    writes the whole batch and then names the rows over its limit looks fine at a steady pace; a
    burst after a pause (a backlog: full batches) makes it write them twice."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

    def scenario(sink: str) -> weir.Scenario:
        return weir.Scenario(workload=weir.Workload(records=4000, produce_batch=40, produce_interval="5ms"),
                             pipeline=weir.Pipeline(mode="at_least_once", sink=sink, sink_params={"limit": 50}),
                             expect=weir.Expect(hold=("no_loss", "no_duplicates")))

    flawed = scenario("components:LeakyThrottledTable")
    assert weir.run(flawed, 1).matches  # without faults it looks right
    found = weir.explore(flawed, budget_s=600, seed=0, rates={"pause": 1.0}, max_runs=40).counterexample
    assert found is not None and found.verdict.invariant == "no_duplicates"
    correct = weir.explore(scenario("components:ThrottledTable"), budget_s=600, seed=0, rates={"pause": 1.0}, max_runs=40)
    assert correct.counterexample is None, correct.counterexample.verdict


class NoneSink(ShedSink):
    """Returns None from write (it cannot tell what existed) and names rows that do not exist."""

    def write(self, batch, value, written_at):
        for r, v in zip(batch.record_id.tolist(), value.tolist()):
            self.rows[r] = v
        if len(batch) > 1000:
            raise weir.Retryable("never", rows=[10_000])
        return None


class BadRowsSink(ShedSink):
    def write(self, batch, value, written_at):
        raise weir.Retryable("busy", rows=[len(batch) + 5])  # not a row of the batch


def test_a_write_returning_none_is_fine_and_bad_refused_rows_are_a_finding_not_a_crash():
    assert weir.run(_scenario(pipeline=weir.Pipeline(mode="exactly_once", sink=NoneSink)), 1).verdict("exactly_once").held
    result = weir.run(_scenario(pipeline=weir.Pipeline(mode="exactly_once", sink=BadRowsSink)), 1)
    assert result.status == "user_code_raised"
    assert "BadRowsSink.write at " in result.user_errors[0] and "naming rows that are not the batch's" in result.user_errors[0]


class BrokenSource(weir.Source):
    def generate(self, rng, records, keys):
        raise ValueError("no data today")


class BrokenBuild(weir.Operator):
    def __init__(self):
        raise RuntimeError("cannot start")

    def on_batch(self, batch, now):
        return batch.value


def test_user_code_that_raises_outside_the_simulation_is_a_finding_too(tmp_path, capsys):
    result = weir.run(weir.Scenario(workload=weir.Workload(records=100, source=BrokenSource)))
    assert result.status == "user_code_raised" and [v.invariant for v in result.verdicts] == ["no_user_errors", "drained"]
    assert result.user_errors == ("BrokenSource.generate while the run was set up (called with 100, 100): "
                                  "ValueError: no data today",)
    result = weir.run(weir.Scenario(workload=weir.Workload(records=100), operator=weir.ComponentSpec(BrokenBuild)))
    assert result.user_errors[0].startswith("BrokenBuild.__init__ ") and result.user_errors[0].endswith(
        ": RuntimeError: cannot start")
    from weir.cli import main
    (tmp_path / "broken_user_code.py").write_text(
        "import weir\nclass S(weir.Source):\n    def generate(self, rng, records, keys):\n        raise KeyError('k')\n")
    (tmp_path / "s.toml").write_text('[workload]\nrecords = 100\nsource = "broken_user_code:S"\n')
    assert main(["run", str(tmp_path / "s.toml")]) == 1  # a finding: not as expected
    captured = capsys.readouterr()
    assert captured.err == "" and "S.generate while the run was set up" in captured.out
    assert "raise KeyError('k')" in captured.out  # the user's side of the traceback
