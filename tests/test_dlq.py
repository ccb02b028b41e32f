"""Retries with backoff, poison records, the dead-letter queue and its replay, and sink faults."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import weir
from weir.analysis.checkers import check, no_silent_drops
from weir.sim.patterns.dlq import backoff_delay, poison_mask
from weir.sim.kernel.errors import ScenarioError
from weir.sim.kernel.rng import RngStreams
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Fault, Pipeline, RetryPolicy, Scenario, WindowSettings, Workload


def failing(retry: RetryPolicy = RetryPolicy(), faults=(), poison_every: int = 500, sink: str = "upsert",
            records: int = 4000, seed: int = 1) -> Scenario:
    return Scenario(name="failing", seed=seed,
                    workload=Workload(records=records, partitions=4, produce_batch=200, poison_every=poison_every),
                    pipeline=Pipeline(mode="at_least_once", sink=sink, process_time="10us"),
                    retry=retry, faults=tuple(faults))


def verdicts(run) -> dict[str, bool]:
    return {v.invariant: v.held for v in check(run)}


def test_backoff_doubles_up_to_the_cap_with_jitter_in_range():
    assert [backoff_delay(k, 1000, 2.0, 5000, 0.0, 0.7) for k in (1, 2, 3, 4, 5)] == [1000, 2000, 4000, 5000, 5000]
    assert backoff_delay(2, 1000, 2.0, 5000, 0.5, 0.5) == 2500


def test_the_retry_schedule_is_exact_for_a_seed():
    """Every poison record's batch is retried 3 times: the delays are 1ms, 2ms, 4ms stretched by
    the seeded jitter draws of the run's `sink.retry` stream, in order."""
    run = execute(failing(RetryPolicy(max_retries=3, backoff="1ms", jitter=0.2)))
    retries = [r for r in run.trace.rows() if r["kind"] == "RETRY"]
    draws = RngStreams(1).stream("sink.retry").random(len(retries))
    expected = [int(min(1000 * 2 ** (r["attempt"] - 1), 100_000) * (1 + 0.2 * u)) for r, u in zip(retries, draws)]
    assert [r["delay_us"] for r in retries] == expected, f"seed {run.seed}"
    assert [r["attempt"] for r in retries] == [1, 2, 3] * 8  # 8 poison records, each in its own batch
    first = [r["delay_us"] for r in retries[:3]]
    assert 1000 <= first[0] < 1200 and 2000 <= first[1] < 2400 and 4000 <= first[2] < 4800


def test_dlq_accounting_every_record_in_the_sink_or_the_dlq():
    run = execute(failing())
    poison = np.flatnonzero(poison_mask(np.arange(4000), 500))
    assert sorted(run.dlq["record_id"].tolist()) == poison.tolist()
    in_sink = set(run.sink["record_id"].tolist())
    assert in_sink.isdisjoint(poison.tolist()) and len(in_sink) + len(poison) == 4000
    v = no_silent_drops(run)
    assert v.held and v.evidence["only_in_dlq"] == 8 and v.evidence["dlq_depth"] == 8
    msg = run.dlq_messages[0]
    assert msg["error_type"] == "PoisonRecordError" and msg["retry_count"] == 3 and msg["max_retries"] == 3
    assert msg["source_topic"] == "events" and msg["replayable"] is False and msg["processed"] is False
    src = run.source
    i = int(np.flatnonzero(src["record_id"] == msg["original_record"]["record_id"])[0])
    assert (msg["source_partition"], msg["source_offset"]) == (int(src["partition"][i]), int(src["offset"][i]))
    assert msg["original_record"]["value"] == int(src["value"][i])
    assert weir.result_of(run).dlq == {"dead_lettered": 8, "depth": 8, "max_depth": 8, "replayed": 0, "skipped": 0}


def test_skipping_exhausted_records_is_a_silent_drop():
    run = execute(failing(RetryPolicy(exhausted="skip")))
    v = no_silent_drops(run)
    assert not v.held and v.evidence["dropped"] == 8 and run.skipped == 8 and len(run.dlq["record_id"]) == 0


def test_retrying_forever_blocks_the_pipeline():
    scenario = failing(RetryPolicy(forever=True))
    from dataclasses import replace
    from weir.sim.scenario.model import RunLimits
    run = execute(replace(scenario, run=RunLimits(max_time="2s")))
    assert run.status == "time_limit"
    assert len(run.sink["record_id"]) < 1000


def test_retrying_forever_past_a_thousand_attempts_keeps_the_cap():
    """multiplier^(attempt-1) passes the largest float at attempt 1,025 (2.0): the wait stays
    max_backoff, where it raised OverflowError and stopped the run with an internal error."""
    assert backoff_delay(1_025, 1000, 2.0, 5000, 0.0, 0.5) == backoff_delay(5_000, 1000, 2.0, 5000, 0.2, 0.5) / 1.1 == 5000
    from dataclasses import replace
    from weir.sim.scenario.model import RunLimits
    scenario = failing(RetryPolicy(forever=True, backoff="1us", max_backoff="2us"), records=400)
    run = execute(replace(scenario, run=RunLimits(max_time="1500ms")))  # (a retry a millisecond: the write_time)
    retries = sum(1 for r in run.trace.rows() if r["kind"] == "RETRY")
    assert run.status == "time_limit" and retries > 1_100, (run.status, retries)


def test_transient_failures_are_retried_until_they_succeed():
    run = execute(failing(RetryPolicy(failure_rate=0.3, max_retries=20), poison_every=0))
    assert verdicts(run)["exactly_once"] and len(run.dlq["record_id"]) == 0
    assert sum(1 for r in run.trace.rows() if r["kind"] == "RETRY") > 5


def test_sink_fault_windows():
    fail = execute(failing(poison_every=0, faults=(Fault(kind="sink_fail", node="sink", at="50ms", down_for="8ms"),),
                           retry=RetryPolicy(max_retries=10)))
    retried = [r for r in fail.trace.rows() if r["kind"] == "RETRY"]
    assert retried and all(50_000 <= r["time"] < 58_000 + 2 * 100_000 for r in retried)
    assert verdicts(fail)["exactly_once"]
    # an acknowledgement lost after the write: the write is applied and retried: twice in an append sink
    lost = failing(poison_every=0, sink="append", faults=(Fault(kind="sink_ack_lost", node="sink", at="50ms",
                                                                 down_for="3ms"),))
    dup = verdicts(execute(lost))
    assert dup["no_loss"] and not dup["no_duplicates"]
    from dataclasses import replace
    assert verdicts(execute(replace(lost, pipeline=replace(lost.pipeline, sink="upsert"))))["exactly_once"]
    slow = execute(failing(poison_every=0, faults=(Fault(kind="sink_slow", node="sink", at="0ms", down_for="10s",
                                                          slow_by="2ms"),)))
    normal = execute(failing(poison_every=0))
    assert slow.end_time > normal.end_time + 10_000


def test_replay_empties_the_dlq_without_duplicates():
    run = execute(failing(RetryPolicy(replay_after="300ms", replay_batch=3)))
    assert verdicts(run)["exactly_once"] and int(run.dlq["processed"].sum()) == 8


@settings(max_examples=6, deadline=None)
@given(st.integers(250_000, 420_000), st.integers(1, 60_000))
def test_the_replay_is_exactly_once_for_any_sink_crash(at, down_for):
    run = execute(failing(RetryPolicy(replay_after="300ms", replay_batch=3, replay_interval="20ms"),
                          faults=(Fault(node="sink", at=at, down_for=down_for),)))
    v = verdicts(run)
    assert run.status == "drained" and v["exactly_once"] and v["no_silent_drops"], (
        f"sink crash at {at}us for {down_for}us, seed {run.seed}")


def test_dlq_scenarios():
    for name in ("dlq_poison", "retry_forever", "dlq_replay", "dlq_replay_append"):
        assert weir.run(name).matches, name


@pytest.mark.parametrize("build,key", [
    (lambda: Fault(kind="sink_fail", node="processor"), "faults.node"),
    (lambda: RetryPolicy(exhausted="skip", replay_after="1s"), "retry.replay_after"),
    (lambda: RetryPolicy(multiplier=0.5), "retry.multiplier"),
    (lambda: Scenario(workload=Workload(poison_every=10), window=WindowSettings()), "workload.poison_every"),
])
def test_bad_retry_settings_name_their_key(build, key):
    with pytest.raises(ScenarioError) as e:
        build()
    assert e.value.key == key
