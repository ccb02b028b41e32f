"""Consumer groups: the coordinator's generations and assignment, expiry, and rebalance without loss."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings, strategies as st

import weir
from weir.analysis.checkers import check
from weir.sim.kernel.clock import NodeClock
from weir.sim.kernel.errors import ScenarioError
from weir.sim.kafka.group import EXPIRED, JOINED, ConsumerGroup
from weir.sim.kernel.world import World
from weir.sim.kafka.log import Broker
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Checkpointing, Fault, Pipeline, Scenario, Workload
from weir.sim.scenario.loader import load_scenario


def group_world(session_timeout: int = 30):
    world = World(1, {"broker": NodeClock()}, max_time=10**9, max_events=10**6)
    broker = Broker(world, world.node("broker"), 5, 16)
    return world, broker, ConsumerGroup(world, broker, session_timeout)


def test_each_join_is_a_rebalance_with_round_robin_assignment():
    world, broker, group = group_world()
    first = group.join(0)
    assert first.generation == 1 and first.partitions == (0, 1, 2, 3, 4)
    broker.committed[3] = 7
    second = group.join(1)
    assert second.generation == 2 and second.partitions == (1, 3) and second.committed == (0, 7)
    assert group.current(0, 1).partitions == (0, 2, 4)  # member 0 is told at its next poll
    assert group.current(0, 2) is None
    assert not broker.commit({0: 5}, 1)  # a commit from the older generation is refused
    assert broker.commit({0: 5}, 2)


def test_a_member_expires_no_earlier_than_the_session_timeout():
    world, broker, group = group_world(session_timeout=30)
    group.join(0)
    group.join(1)

    def beat(member, until):
        while world.now < until:
            yield world.env.timeout(10)
            group.heartbeat(member)

    world.env.process(beat(0, 200))
    world.env.process(beat(1, 50))  # member 1 stops after its heartbeat at t=50
    world.env.run(until=79)
    assert sorted(group.last_heartbeat) == [0, 1]  # 29us after the last heartbeat: still a member
    world.env.run(until=81)
    assert sorted(group.last_heartbeat) == [0]
    assert group.assignment == {0: (0, 1, 2, 3, 4)} and broker.generation == 3
    rows = world.trace.freeze().rows()
    assert [(r["generation"], r["member"], r["reason"]) for r in rows if r["kind"] == "REBALANCE"] == [
        (1, 0, JOINED), (2, 1, JOINED), (3, 1, EXPIRED)]


def test_a_coordinator_that_was_down_expires_nobody_for_it():
    world = World(1, {"broker": NodeClock()}, max_time=10**9, max_events=10**6)
    broker = Broker(world, world.node("broker"), 2, 16)
    group = ConsumerGroup(world, broker, 30)
    group.join(0)
    world.node("broker").crash(100)  # no heartbeat can arrive meanwhile
    world.env.run(until=129)
    assert list(group.last_heartbeat) == [0] and broker.generation == 1  # a fresh session from t=100
    world.env.run(until=131)
    assert list(group.last_heartbeat) == [] and broker.generation == 2


def _session_run(beats: list[tuple[int, int]], drift: int, timeout: int, answer: bool,
                 pause: tuple[int, int] | None = None):
    """A coordinator (clock drift `drift` ppm, session `timeout`) hearing (time, member) joins and
    heartbeats, the first of a member a join; with or without marking session checks answered;
    paused at `pause` (time, duration), as a pause fault does (installed before the run)."""
    world = World(1, {"broker": NodeClock(drift_ppm=drift)}, max_time=10**9, max_events=10**6)
    broker = Broker(world, world.node("broker"), 3, 16)
    group = ConsumerGroup(world, broker, timeout)
    if not answer:
        group._answer_checks = lambda: None
    if pause is not None:
        node = world.node("broker")
        node.may_pause = True
        world.env.timeout(pause[0]).callbacks.append(lambda _e: node.pause(pause[1]))
    seen: set[int] = set()
    for at, member in sorted(beats):
        event = world.env.timeout(at)
        event.callbacks.append(lambda _e, m=member, first=member not in seen: group.join(m) if first else group.heartbeat(m))
        seen.add(member)
    world.run()
    rows = [(r["time"], r["generation"], r["member"], r["reason"]) for r in world.trace.freeze().rows()
            if r["kind"] == "REBALANCE"]
    return rows, world.events


@settings(max_examples=150, deadline=None)
@given(beats=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 3)), min_size=1, max_size=40),
       drift=st.sampled_from([0, 0, 300_000, -500_000, 999_999, -999_999]), timeout=st.integers(1, 60),
       pause=st.none() | st.tuples(st.integers(0, 400), st.integers(1, 100)))
def test_session_checks_that_expire_nobody_cost_no_event_and_change_nothing(beats, drift, timeout, pause):
    """weir.sim.kafka.group.ConsumerGroup._answer_checks: a session check set on a heartbeat is
    skipped once every member has been heard from since its threshold (the last-heard time at or
    before which it expires a member). Every rebalance happens at the same time, in the same order,
    as when every check goes off (a coordinator clock that runs fast or slow included: a slow one
    expires members heard from after the check was set, and a coordinator that may pause, whose
    checks all go off); no more events, fewer whenever members keep beating."""
    skipped, events = _session_run(beats, drift, timeout, True, pause)
    every, all_events = _session_run(beats, drift, timeout, False, pause)
    assert skipped == every, f"drift {drift}, timeout {timeout}, pause {pause}"
    assert events <= all_events


def test_a_heartbeating_group_sets_a_session_check_per_heartbeat_and_runs_few():
    """Two members beating every 10us with a 30us session: without the answered checks each of
    the 200 heartbeats' checks is an event; with them about one a session is (Node.unless keeps
    the earliest unanswered deadline in simpy's queue, and it goes off even if answered later)."""
    beats = [(t, m) for t in range(0, 1_000, 10) for m in (0, 1)]
    skipped, events = _session_run(beats, 0, 30, answer=True)
    every, all_events = _session_run(beats, 0, 30, answer=False)
    assert skipped == every and all_events - events >= 160, (events, all_events)


def test_a_paused_broker_in_a_consumer_group_runs_to_its_end():
    """A pause of the broker expires the members whose heartbeats it held; a held fetch of one
    rejoins it (a rebalance), which woke the held fetches inside the broker's own wake: until
    2026-12-02 a fetch was then answered twice and the run stopped with an internal error."""
    base = load_scenario("consumer_rebalance")
    scenario = replace(base, faults=base.faults + (Fault(kind="pause", node="broker", at=320_000, down_for=45_000),))
    run = execute(scenario, seed=99)
    verdicts = {v.invariant: v.held for v in check(run)}
    assert run.status == "drained" and verdicts["no_loss"], f"seed {run.seed}: {run.status}"


@settings(max_examples=8, deadline=None)
@given(at=st.integers(0, 600_000), down_for=st.integers(1, 120_000), seed=st.integers(0, 10**6))
def test_a_broker_pause_in_a_consumer_group_loses_nothing(at, down_for, seed):
    base = load_scenario("consumer_rebalance")
    scenario = replace(base, faults=base.faults + (Fault(kind="pause", node="broker", at=at, down_for=down_for),))
    run = execute(scenario, seed=seed)
    verdicts = {v.invariant: v for v in check(run)}
    assert run.status == "drained" and verdicts["no_loss"].held, (
        f"broker paused at {at}us for {down_for}us, seed {seed}: {run.status}, {verdicts['no_loss'].summary}")


def rebalancing(faults=(), commit: str = "after_ack", sink: str = "append", consumers: int = 2, seed: int = 1):
    return Scenario(name="rebalance", seed=seed,
                    workload=Workload(records=6000, partitions=4, produce_batch=60),
                    pipeline=Pipeline(mode="at_least_once", offset_commit=commit, sink=sink, parallelism=2,
                                      source_parallelism=consumers, source_failover="rebalance",
                                      commit_interval="30ms"),
                    faults=tuple(faults))


def polls_by_node(run) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for r in run.trace.rows():
        if r["kind"] == "POLL" and r["count"]:
            out.setdefault(r["node"], set()).add(r["partition"])
    return out


def test_a_crashed_consumers_partitions_move_and_come_back():
    run = execute(rebalancing(faults=(Fault(node="source-1", at="150ms", down_for="150ms"),)))
    rows = run.trace.rows()
    rebalances = [r for r in rows if r["kind"] == "REBALANCE"]
    assert [(r["members"], r["reason"]) for r in rebalances] == [(1, JOINED), (2, JOINED), (1, EXPIRED), (2, JOINED)]
    expired, rejoined = rebalances[2]["time"], rebalances[3]["time"]
    assert 150_000 < expired <= 150_000 + 30_000 + 10_000  # session timeout, from the last heartbeat
    during = {r["partition"] for r in rows if r["kind"] == "POLL" and r["node"] == "source" and r["count"]
              and expired < r["time"] < rejoined}
    assert during >= {1, 3}  # source took over source-1's partitions
    after = {r["partition"] for r in rows if r["kind"] == "POLL" and r["node"] == "source-1" and r["count"]
             and r["time"] > rejoined}
    assert after and after <= {1, 3}
    verdicts = {v.invariant: v.held for v in check(run)}
    assert verdicts["no_loss"] and verdicts["drained"] and not verdicts["no_duplicates"]
    assert run.restarts == 0  # a consumer's crash is not a job failure


@settings(max_examples=6, deadline=None)
@given(st.sampled_from(["source", "source-1", "source-2"]), st.integers(0, 250_000), st.integers(1, 200_000))
def test_rebalance_without_loss(node, at, down_for):
    """After-ack commits: whichever consumer crashes whenever, no record is lost."""
    run = execute(rebalancing(faults=(Fault(node=node, at=at, down_for=down_for),), consumers=3))
    verdicts = {v.invariant: v for v in check(run)}
    assert run.status == "drained" and verdicts["no_loss"].held, (
        f"{node} down at {at}us for {down_for}us, seed {run.seed}: {verdicts['no_loss'].summary}")


def test_an_idempotent_sink_absorbs_the_replays_but_not_what_the_state_counted_twice():
    run = execute(rebalancing(faults=(Fault(node="source", at="200ms", down_for="100ms"),), sink="upsert"))
    verdicts = {v.invariant: v for v in check(run)}
    assert verdicts["no_duplicates"].held and verdicts["no_loss"].held
    assert not verdicts["exactly_once"].held and verdicts["exactly_once"].evidence["wrong_values"] > 0


def test_more_consumers_than_partitions_leaves_some_idle():
    run = execute(rebalancing(consumers=4))
    owners = polls_by_node(run)
    assert sorted(owners) == ["source", "source-1", "source-2", "source-3"]
    assert all(len(parts) == 1 for parts in owners.values())
    assert {v.invariant: v.held for v in check(run)}["no_loss"]


def test_rebalance_scenarios():
    broken, remedy = weir.run("consumer_rebalance"), weir.run("consumer_rebalance_upsert")
    assert broken.matches and remedy.matches
    assert broken.lost == 0 and broken.duplicated > 0 and remedy.duplicated == 0


def test_rebalance_mode_refuses_checkpoints():
    with pytest.raises(ScenarioError) as e:
        Scenario(pipeline=Pipeline(source_failover="rebalance"), checkpoint=Checkpointing())
    assert e.value.key == "pipeline.source_failover"
    with pytest.raises(ScenarioError) as e:
        Pipeline(heartbeat_interval="40ms", session_timeout="30ms")
    assert e.value.key == "pipeline.heartbeat_interval"


def test_a_partitioned_consumer_is_expired_then_fenced_and_rejoins():
    run = execute(load_scenario("partition_zombie_consumer"))
    events = [(r["time"], r["members"], r["member"], r["reason"]) for r in run.trace.rows() if r["kind"] == "REBALANCE"]
    expired = [e for e in events if e[3] == EXPIRED]
    assert len(expired) == 1 and 300_000 < expired[0][0] < 345_000 and expired[0][2] == 1
    rejoined = [e for e in events if e[0] > expired[0][0] and e[3] == JOINED]
    assert rejoined and rejoined[0][0] >= 400_000 and rejoined[0][2] == 1  # after the partition healed
    assert run.restarts == 0
