"""Long polls (pipeline.fetch_max_wait, Kafka's fetch.max.wait.ms): the broker holds a fetch that
finds nothing until records may be readable or the wait is over, so an idle consumer costs one fetch
per wait instead of one per poll interval, and records are still read as soon as they are there.

Kafka's broker parks such a fetch in its fetch purgatory: apache/kafka
core/src/main/scala/kafka/server/DelayedFetch.scala, whose tryComplete completes it once the log end
offset (for read_committed, the last stable offset) is past the fetch offset by fetch.min.bytes
(weir: one record), and whose onComplete at expiry answers with whatever there is (here: nothing)."""

from __future__ import annotations

import numpy as np
import pytest

import weir
from weir.sim.kernel.trace import Kind, Msg

SLOW = weir.load_scenario("exactly_once_crash").with_settings({
    "workload.records": 400, "workload.produce_batch": 40, "workload.produce_interval": "1s",  # 10 s, mostly idle
    "run.max_time": "30s"}).with_faults(())
LONG = {"pipeline.fetch_max_wait": "500ms", "pipeline.request_timeout": "30s"}  # Kafka's defaults
POLL = {"pipeline.fetch_max_wait": 0}  # weir's polling before long polls: answered at once, asked again 1ms later


def fetches(run) -> int:
    cols = run.trace.columns
    return int(((cols["kind"] == Kind.SEND) & (cols["b"] == Msg.FETCH)).sum())


def test_an_idle_consumer_costs_a_fetch_per_wait_not_one_per_poll_interval():
    polled, default, held = (weir.execute(SLOW.with_settings(POLL)), weir.execute(SLOW),
                             weir.execute(SLOW.with_settings(LONG)))
    assert polled.status == default.status == held.status == "drained"
    assert len(held.sink["record_id"]) == len(default.sink["record_id"]) == len(polled.sink["record_id"]) == 400
    # 10 s, mostly idle: a fetch every round trip plus 1ms makes about 4,000; the default wait (half of
    # the 20ms request timeout) about 1,000; 500ms long polls about 20; each plus one per read
    assert fetches(polled) > 3_000, fetches(polled)
    assert 700 < fetches(default) < 1_000, fetches(default)
    assert fetches(held) < 100, fetches(held)
    assert held.events * 10 < polled.events  # what is left is mostly the checkpoints, every 100ms


def test_the_default_wait_is_half_the_request_timeout_and_leaves_room_for_a_round_trip():
    cfg = SLOW.pipeline
    assert cfg.fetch_max_wait is None and cfg.fetch_wait == 10_000  # 20ms / 2
    assert SLOW.with_settings({"pipeline.request_timeout": "4ms"}).pipeline.fetch_wait == 2_000
    # a round trip of 2 * (500 + 200)us leaves 600us - 1 of a 2ms timeout, 99us of a 1.5ms one
    assert SLOW.with_settings({"pipeline.request_timeout": "2ms"}).pipeline.fetch_wait == 599
    assert SLOW.with_settings({"pipeline.request_timeout": "1500us"}).pipeline.fetch_wait == 99
    assert SLOW.with_settings(POLL).pipeline.fetch_wait == 0
    assert SLOW.with_settings({"pipeline.fetch_max_wait": "3ms"}).pipeline.fetch_wait == 3_000


def test_a_held_fetch_is_answered_when_records_arrive_not_when_the_wait_is_over():
    held = weir.execute(SLOW.with_settings(LONG))
    from weir.analysis.metrics import append_times
    cols = held.trace.columns
    polls = np.sort(cols["time"][(cols["kind"] == Kind.POLL) & (cols["c"] > 0)])
    appended = np.unique(append_times(held))
    waited = polls[np.searchsorted(polls, appended)] - appended  # from each append to the first read after it
    assert waited.max() < 5_000, waited.max()  # a round trip or so, never the 500ms wait


def test_read_committed_fetches_wake_when_a_transaction_commits():
    # the records of an open transaction are not readable; its commit moves the last stable offset
    scenario = weir.load_scenario("txn_read_committed").with_settings(
        {"pipeline.fetch_max_wait": "15ms", "pipeline.request_timeout": "40ms"})
    run = weir.execute(scenario)
    cols = run.trace.columns
    commits = cols["time"][(cols["kind"] == Kind.TXN_END) & (cols["b"] == 1)]
    polls = np.sort(cols["time"][(cols["kind"] == Kind.POLL) & (cols["c"] > 0)])
    after = polls[np.minimum(np.searchsorted(polls, commits), len(polls) - 1)] - commits
    assert np.median(after) < 3_000, after  # woken by the commit, not by the 15ms wait
    assert weir.run(scenario).verdict("no_aborted_reads").held


@pytest.mark.parametrize("name", ["exactly_once_crash", "kafka_to_delta", "consumer_rebalance", "txn_read_committed",
                                  "late_data_side_output", "idle_partition_idleness", "outbox_cdc", "dlq_replay"])
def test_the_builtins_keep_their_claims_with_the_old_polling(name):
    """Long polls are the default (a broker crash drops the fetches it held, whose callers time out and
    ask again: kafka_to_delta; a rebalance answers a held fetch with the new assignment; watermarks and
    idleness still move: the scenario tests pin that). `fetch_max_wait = 0` brings back the polling
    weir did before, and the claims hold under it too."""
    scenario = weir.load_scenario(name)
    polled = scenario.with_settings(POLL)
    for seed in (scenario.seed, scenario.seed + 1):
        result = weir.run(polled, seed)
        broken = [v.invariant for v in result.verdicts if v.invariant in scenario.expect.hold and not v.held]
        assert not broken, f"{name} seed {seed}: {broken}"
        if seed == scenario.seed:
            assert result.matches, f"{name} seed {seed}: not as expected with fetch_max_wait = 0"


def test_a_wait_the_request_would_time_out_on_is_refused_in_one_line():
    with pytest.raises(weir.ScenarioError) as caught:
        SLOW.with_settings({"pipeline.fetch_max_wait": "500ms"})  # the request times out after 20ms
    assert str(caught.value).startswith("pipeline.fetch_max_wait: got 500000; accepts less than "
                                        "pipeline.request_timeout (20000us) minus a round trip")


def _commit_sends(run) -> np.ndarray:
    cols = run.trace.columns
    return cols["time"][(cols["kind"] == Kind.SEND) & (cols["b"] == Msg.COMMIT)]


def test_an_idle_committer_costs_nothing_and_keeps_its_ticks():
    """A periodic committer (at least once: the acknowledged offsets every commit_interval) that found
    nothing to commit sleeps until an offset moves, then commits at the tick the interval would have
    given: 10 s of a mostly idle consumer cost the same events whether the interval is 100ms or 5ms
    (a timer per tick would add some 1,900), and every commit lands on the interval's grid."""
    idle = weir.load_scenario("at_least_once_crash").with_settings({
        "workload.records": 400, "workload.produce_batch": 40, "workload.produce_interval": "1s",
        "run.max_time": "30s", **LONG}).with_faults(())
    every_100ms, every_5ms = (weir.execute(idle.with_settings({"pipeline.commit_interval": i})) for i in ("100ms", "5ms"))
    assert every_100ms.status == every_5ms.status == "drained"
    assert len(every_5ms.sink["record_id"]) == 400
    assert abs(every_5ms.events - every_100ms.events) < 200, (every_5ms.events, every_100ms.events)
    for run, interval in ((every_100ms, 100_000), (every_5ms, 5_000)):
        sends = _commit_sends(run)
        assert len(sends) >= 10, len(sends)  # one at least after each produced batch's acknowledgement
        start = int(run.trace.columns["time"][run.trace.columns["kind"] == Kind.RESTORE][0])
        assert ((sends - start) % interval).max() < 2_000, sends  # on the grid, less the join's round trip


def test_an_idle_outbox_relay_costs_nothing_and_still_publishes_every_order():
    """The relay polls every relay_interval while there are pending rows; an empty outbox puts it to
    sleep until the next order commits. Polling every 50us or every 5ms, the same orders are published
    for about the same events (a timer per 50us poll over the run's 100ms would add some 2,000)."""
    base = weir.load_scenario("outbox_cdc").with_faults(())
    often, seldom = (weir.run(base.with_settings({"outbox.relay_interval": i})) for i in ("50us", "5ms"))
    assert often.matches and seldom.matches
    assert abs(often.events - seldom.events) < 500, (often.events, seldom.events)


#: The DLQ replay job of dlq_replay over a minute that is mostly idle: a batch of 20 records every
#: 600ms, a poison record among every 450, each dead-lettered and replayed long before the next.
SPARSE_DLQ = weir.load_scenario("dlq_replay").with_settings({
    "workload.records": 2_000, "workload.produce_batch": 20, "workload.produce_interval": "600ms",
    "workload.poison_every": 450, "retry.replay_after": "100ms"}).with_faults(())


def test_an_idle_dlq_replay_job_costs_nothing_and_still_replays_every_dead_letter():
    """The replay job polls every replay_interval while dead letters wait; an empty queue puts it to
    sleep until the next record is dead-lettered. Over the minute, replaying every 5ms or every
    100ms costs about the same events (a timer per 5ms tick would add some 12,000)."""
    often, seldom = (weir.execute(SPARSE_DLQ.with_settings({"retry.replay_interval": i})) for i in ("5ms", "100ms"))
    for run in (often, seldom):
        assert run.status == "drained" and len(run.sink["record_id"]) == 2_000, run.status
        assert len(run.dlq["record_id"]) == 4 and all(run.dlq["processed"]), run.dlq
    assert abs(often.events - seldom.events) < 200, (often.events, seldom.events)


def _polling(node, waiters, period):
    """Node.next_tick as the loops were before they slept: a timer for the next tick."""
    yield from node.wait(period)


@pytest.mark.parametrize("scenario", [weir.load_scenario("dlq_replay"), SPARSE_DLQ, weir.load_scenario("outbox_cdc"),
                                      weir.load_scenario("at_least_once_crash")], ids=lambda sc: sc.name)
def test_a_loop_that_sleeps_while_idle_runs_as_its_timer_would_have(monkeypatch, scenario):
    """The replay job, the outbox relay and the periodic committer sleep in Node.next_tick while
    they find nothing to do. Without pauses, the run is the one a timer every period gives, trace
    row for trace row: only the idle timers' events are gone (a pause while one sleeps keeps its
    ticks on the grid, where the timer's would have moved: Node.next_tick)."""
    slept = weir.execute(scenario)
    monkeypatch.setattr("weir.sim.kernel.node.Node.next_tick", _polling)
    polled = weir.execute(scenario)
    assert slept.status == polled.status == "drained"
    assert (slept.trace_sha256, slept.end_time) == (polled.trace_sha256, polled.end_time)
    # (a sleep is two events, the wake and the tick: a loop idle for less than two periods costs one more)
    assert slept.events <= polled.events + 3, (slept.events, polled.events)
    if scenario is SPARSE_DLQ:  # a minute of 50ms ticks
        assert polled.events - slept.events > 1_000, (polled.events, slept.events)


def test_a_poll_interval_without_polling_is_refused_in_one_line():
    """poll_interval applies only to weir's polling (fetch_max_wait = 0): with long polls, the
    default since 2026-11-30, a file that still sets it is told so rather than silently ignored."""
    with pytest.raises(weir.ScenarioError) as caught:
        SLOW.with_settings({"pipeline.poll_interval": "5ms"})
    assert str(caught.value).startswith("pipeline.poll_interval: got 5000; accepts a poll interval only with "
                                        "pipeline.fetch_max_wait = 0")
    assert SLOW.with_settings({**POLL, "pipeline.poll_interval": "5ms"}).pipeline.poll_interval == 5_000
