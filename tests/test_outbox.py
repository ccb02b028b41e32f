"""The transactional outbox with a CDC relay, and the dual write."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings, strategies as st

import weir
from weir.analysis.checkers import outbox_consistent
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Fault, OutboxSettings
from weir.sim.scenario.loader import load_scenario


def test_outbox_and_dual_write_scenarios():
    ok, broken = weir.run("outbox_cdc"), weir.run("dual_write")
    assert ok.matches and broken.matches
    v = broken.verdict("outbox_consistent")
    assert v.evidence["orders_without_event"] == 3 and v.evidence["events_without_order"] == 0  # one per crash


def test_log_first_leaves_events_without_orders():
    s = load_scenario("dual_write")
    s = replace(s, outbox=replace(s.outbox, order="log_first", linger="1ms"))  # (a lingering event dies with it)
    v = outbox_consistent(execute(s))
    assert not v.held and v.evidence["events_without_order"] >= 1 and v.evidence["orders_without_event"] == 0


def test_a_relay_sending_again_after_a_crash_adds_nothing_twice():
    from weir.sim.kernel.clock import NodeClock
    from weir.sim.kernel.world import World
    from weir.sim.kafka.log import Broker
    world = World(1, {"broker": NodeClock()}, max_time=10**6, max_events=10**6)
    broker = Broker(world, world.node("broker"), 2, 16)
    one = np.array([1], dtype=np.int64)
    assert broker.append(3, one * 5, one * 10, one * 7, record_ids=np.array([3]))
    assert broker.append(3, np.array([5, 6]), np.array([10, 11]), np.array([7, 8]), record_ids=np.array([3, 9]))
    assert sorted(broker.log.contents()["record_id"].tolist()) == [3, 9]


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 520_000), st.integers(1, 60_000))
def test_the_outbox_is_consistent_for_any_crash(at, down_for):
    s = load_scenario("outbox_cdc").with_faults((Fault(node="producer", at=at, down_for=down_for),))
    run = execute(s)
    v = outbox_consistent(run)
    assert run.status == "drained" and v.held, f"app crash at {at}us for {down_for}us, seed {s.seed}: {v.summary}"


def test_without_a_crash_the_dual_write_is_consistent_too():
    s = replace(load_scenario("dual_write"), faults=(), outbox=OutboxSettings(mode="dual_write"))
    assert outbox_consistent(execute(s)).held
