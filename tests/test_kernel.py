"""The kernel: guards, node lifecycle, network order, request timeouts, clocks, random streams."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import simpy

from weir.sim.kernel.clock import NodeClock
from weir.sim.kernel.timer import Inbox, after
from weir.sim.stream.exchange import Gate
from weir.sim.kernel.world import TIMED_OUT, Status, World
from weir.sim.kernel.rng import Draws, RngStreams, stable_hash
from weir.sim.kernel.trace import Kind, Msg


def world(**kw) -> World:
    opts = dict(latency=100, jitter=0, max_time=10_000, max_events=1_000)
    opts.update(kw)
    return World(1, {"a": NodeClock(), "b": NodeClock()}, **opts)


def ticker(w: World, period: int):
    while True:
        yield w.env.timeout(period)


def test_time_guard_ends_a_run_that_never_finishes():
    w = world(max_time=5_000)
    w.env.process(ticker(w, 100))
    assert w.run() == Status.TIME_LIMIT
    assert w.end_time == 5_000
    assert w.env.now == 5_000  # the last event run was at 5000; the one at 5100 was not


def test_event_guard_ends_a_run_that_never_finishes():
    w = world(max_time=10**12, max_events=50)
    w.env.process(ticker(w, 1))
    assert w.run() == Status.EVENT_LIMIT
    assert w.events == 50


def test_a_run_with_nothing_left_to_do_is_stalled_not_hung():
    w = world()

    def short():
        yield w.env.timeout(10)

    w.env.process(short())
    assert w.run() == Status.STALLED
    assert w.end_time == 10


def test_finish_ends_the_run_with_its_status():
    w = world()

    def stopper():
        yield w.env.timeout(300)
        w.finish(Status.DRAINED)

    w.env.process(ticker(w, 10))
    w.env.process(stopper())
    assert w.run() == Status.DRAINED
    assert w.end_time == 300
    assert Kind(int(w.trace.freeze().columns["kind"][-1])) == Kind.RUN_END


def test_time_is_integer_microseconds():
    w = world()
    w.env.process(ticker(w, 7))
    w.run()
    assert isinstance(w.env.now, int)
    assert w.trace.freeze().columns["time"].dtype == np.int64


def test_crash_interrupts_the_nodes_processes_and_restarts_after_down_for():
    w = world()
    a = w.node("a")
    seen = []

    def worker():
        try:
            yield w.env.timeout(10_000)
        except simpy.Interrupt as i:
            seen.append(("interrupted", w.now, i.cause))

    a.on_crash(lambda node: seen.append(("listener", w.now, node.name)))
    a.on_restart(lambda node: seen.append(("restarted", w.now, node.name)))
    a.spawn(worker())
    w.env.timeout(1_000).callbacks.append(lambda _e: a.crash(500))
    w.run()
    # simpy delivers an interrupt as an event of its own, so the listener (called at once) runs first.
    assert seen == [("listener", 1_000, "a"), ("interrupted", 1_000, "crash"), ("restarted", 1_500, "a")]
    rows = [r for r in w.trace.freeze().rows() if r["kind"] in ("CRASH", "RESTART", "UP")]
    assert rows == [{"time": 1_000, "kind": "CRASH", "node": "a", "down_for_us": 500},
                    {"time": 1_500, "kind": "RESTART", "node": "a", "boot_time_us": 0},
                    {"time": 1_500, "kind": "UP", "node": "a"}]


def test_a_node_with_a_boot_time_is_restarting_before_it_is_up():
    w = World(1, {"a": NodeClock()}, max_time=10**6, max_events=100, boot_times={"a": 300})
    a = w.node("a")
    states = []
    w.env.timeout(1_000).callbacks.append(lambda _e: a.crash(500))  # scheduled first: runs first at t=1000
    for t in (0, 999, 1_001, 1_499, 1_501, 1_799, 1_801):
        w.env.timeout(t).callbacks.append(lambda _e: states.append((w.now, a.state, a.up)))
    w.run()
    assert states == [(0, "up", True), (999, "up", True), (1_001, "crashed", False), (1_499, "crashed", False),
                      (1_501, "restarting", False), (1_799, "restarting", False), (1_801, "up", True)]
    assert [r["kind"] for r in w.trace.freeze().rows() if r["kind"] in ("CRASH", "RESTART", "UP")] == \
        ["CRASH", "RESTART", "UP"]


def test_crashing_a_node_that_is_down_does_nothing():
    w = world()
    a = w.node("a")
    assert a.crash(1_000) is True
    assert a.crash(1_000) is False
    assert a.up is False


def test_when_up_waits_for_restart():
    w = world()
    a = w.node("a")
    a.crash(700)
    times = []

    def waiter():
        yield a.when_up()
        times.append(w.now)

    w.env.process(waiter())
    w.run()
    assert times == [700]


def test_network_links_are_fifo_even_with_jitter():
    w = world(jitter=5_000, max_time=10**9)
    a, b = w.node("a"), w.node("b")
    got = []

    def sender():
        for i in range(200):
            w.net.send(a, b, Msg.BATCH, got.append, i)
            yield w.env.timeout(10)

    w.env.process(sender())
    w.run()
    assert got == list(range(200))


def test_messages_to_a_crashed_node_are_lost():
    w = world()
    a, b = w.node("a"), w.node("b")
    got = []
    w.net.send(a, b, Msg.BATCH, got.append, "before", ref=(3, 40))
    b.crash(1_000)
    w.run()
    assert got == []
    rows = [r for r in w.trace.freeze().rows() if r["kind"] in ("SEND", "RECV", "DROP")]
    assert rows == [
        {"time": 0, "kind": "SEND", "node": "a", "to_node": "b", "message": "BATCH", "ref1": 3, "ref2": 40},
        {"time": 100, "kind": "DROP", "node": "b", "from_node": "a", "message": "BATCH", "ref1": 3, "ref2": 40},
    ]


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(list(Kind)), st.integers(0, 2**16 - 1),
                               *[st.integers(-(2**63), 2**63 - 1)] * 4), max_size=20),
       now=st.integers(0, 2**62))
def test_the_trace_holds_every_value_it_is_given(rows, now):
    """Rows are packed into the trace's buffer whole: kinds, nodes and any int64 read back unchanged."""
    from weir.sim.kernel.trace import Trace
    trace = Trace(("a",), SimpleNamespace(_now=now))
    for kind, node, a, b, c, d in rows:
        trace.add(kind, node, a, b, c, d)
    cols = trace.freeze().columns
    got = list(zip(*(cols[name].tolist() for name in ("time", "kind", "node", "a", "b", "c", "d"))))
    assert got == [(now, int(kind), node, a, b, c, d) for kind, node, a, b, c, d in rows]


def test_a_trace_value_beyond_int64_is_refused():
    from weir.sim.kernel.trace import Trace
    trace = Trace(("a",), SimpleNamespace(_now=0))
    import struct
    with pytest.raises(struct.error, match="out of range"):
        trace.add(Kind.SEND, 0, 2**63)
    assert len(trace) == 0  # nothing half-written


def test_kind_and_msg_are_their_enums_members_read_from_a_plain_class():
    """weir.sim.kernel.trace._Members: `Kind.SEND` is the IntEnum member itself, found in a plain
    class (no Enum `__getattr__` to go through); a call, iteration, index, `in`, `len`,
    `isinstance` and pickle behave as the enum's."""
    import pickle
    from weir.sim.kernel.trace import _Kind, _Msg
    for front, enum in ((Kind, _Kind), (Msg, _Msg)):
        assert not hasattr(type(front), "__getattr__")
        assert list(front) == list(enum) and len(front) == len(enum) > 10 and front.__members__ == enum.__members__
        for member in enum:
            assert getattr(front, member.name) is member is front(member.value) is front[member.name]
            assert member in front and isinstance(member, front)
            assert pickle.loads(pickle.dumps(member)) is member
    assert repr(Kind.SEND) == "<Kind.SEND: 4>" and Kind.SEND == 4 and not isinstance(4, Kind)
    with pytest.raises(ValueError):
        Msg(999)


def test_every_message_is_traced_when_sent_and_when_received():
    w = world()
    a, b = w.node("a"), w.node("b")
    answers = []

    def client():
        answers.append((yield w.net.request(a, b, Msg.FETCH, lambda: "pong", timeout=1_000, ref=(2, 9))))

    w.env.process(client())
    w.run()
    assert answers == ["pong"]
    rows = [(r["time"], r["kind"], r["node"], r["message"], r["ref1"], r["ref2"])
            for r in w.trace.freeze().rows() if r["kind"] in ("SEND", "RECV")]
    assert rows == [(0, "SEND", "a", "FETCH", 2, 9), (100, "RECV", "b", "FETCH", 2, 9),
                    (100, "SEND", "b", "REPLY", Msg.FETCH, 2), (200, "RECV", "a", "REPLY", Msg.FETCH, 2)]


def test_request_to_a_down_node_times_out():
    w = world()
    a, b = w.node("a"), w.node("b")
    b.crash(5_000)
    answers = []

    def client():
        answers.append((yield w.net.request(a, b, Msg.FETCH, lambda: "pong", timeout=1_000)))
        answers.append(w.now)
        answers.append((yield w.net.request(a, b, Msg.FETCH, lambda: "pong", timeout=1_000)))

    w.env.process(client())
    w.run()
    assert answers[0] is TIMED_OUT and answers[1] == 1_000
    assert answers[2] is TIMED_OUT  # still down at 1000..2000


def test_call_retries_until_answered():
    w = world(max_time=100_000)
    a, b = w.node("a"), w.node("b")
    b.crash(3_500)
    answers = []

    def client():
        answers.append((yield from w.net.call(a, b, Msg.FETCH, lambda: "pong", timeout=1_000)))
        answers.append(w.now)

    w.env.process(client())
    w.run()
    assert answers == ["pong", 4_200]  # timeouts at 1000, 2000, 3000, 4000; the 5th try lands at 4100


def _deadlines(unless: bool, plan, pauses, drift_ppm: int) -> tuple[list, int]:
    """Timeouts on node a, set with `unless` or with `later` (its reference): each (set at, delay,
    answered after or never) of `plan`; a's pauses; what happened, in order, and the run's events."""
    w = World(1, {"a": NodeClock(drift_ppm=drift_ppm)}, max_time=10**9, max_events=10**6)
    env, a, log = w.env, w.node("a"), []

    def start(i: int, delay: int, answer_after: int | None) -> None:
        answer = env.event()

        def expire() -> None:
            if not answer.triggered:
                log.append((env.now, "expired", i))
                answer.succeed(None)

        if unless:
            a.unless(delay, answer, expire)
        else:
            a.later(delay, expire)
        if answer_after is not None:
            def reply(_ev) -> None:
                if not answer.triggered:
                    log.append((env.now, "answered", i))
                    answer.succeed(i)
            env.timeout(answer_after).callbacks.append(reply)

    for i, (at, delay, answer_after) in enumerate(plan):
        env.timeout(at).callbacks.append(lambda _ev, i=i, d=delay, x=answer_after: start(i, d, x))
    for at, duration in pauses:
        env.timeout(at).callbacks.append(lambda _ev, d=duration: a.pause(d))
    assert w.run() == Status.STALLED
    return log, w.events


@settings(max_examples=300, deadline=None)
@given(plan=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 30), st.none() | st.integers(0, 40)), max_size=25),
       pauses=st.lists(st.tuples(st.integers(0, 60), st.integers(1, 20)), max_size=3),
       drift_ppm=st.sampled_from([0, 100_000, -100_000]))
def test_an_unless_timer_goes_off_where_a_later_timer_would_and_costs_nothing_once_answered(plan, pauses, drift_ppm):
    """Node.unless against Node.later on the same timeouts (many due at the same microsecond, of
    different delays, answered before, at or after their time, held by pauses, on a drifting
    clock): the same expiries and answers in the same order, with fewer events once some are answered."""
    ours, our_events = _deadlines(True, plan, pauses, drift_ppm)
    theirs, their_events = _deadlines(False, plan, pauses, drift_ppm)
    assert ours == theirs, f"plan {plan}, pauses {pauses}, drift {drift_ppm}"
    assert our_events <= their_events, (our_events, their_events, f"plan {plan}, pauses {pauses}")


def test_requests_answered_in_time_leave_one_timer_in_the_queue_not_one_each():
    """100 requests in a row, each answered in 200us, each with a 10ms timeout: `later` leaves 100
    timers for simpy to run, `unless` one at a time (each due deadline drops the answered ones and
    arms the next)."""
    plan = [(at, 10_000, 200) for at in range(0, 100_000, 1_000)]
    ours, our_events = _deadlines(True, plan, [], 0)
    theirs, their_events = _deadlines(False, plan, [], 0)
    assert ours == theirs and len(ours) == 100 and all(what == "answered" for _t, what, _i in ours)
    assert their_events - our_events >= 90, (our_events, their_events)


def _timers(ours: bool, delays: list[int]) -> list[tuple[int, int]]:
    """Timers set at 0 and from each other's callbacks, by `after` or by simpy's Timeout, each
    beside a Timeout of the same delay: the order they go off in."""
    env, fired = simpy.Environment(), []

    def set_timer(i: int, delay: int) -> None:
        def go(_ev, i=i) -> None:
            fired.append((env.now, i))
            if 2 * i + 1 < len(delays):
                set_timer(2 * i + 1, delays[2 * i + 1])
        if ours:
            after(env, delay, go)
        else:
            env.timeout(delay).callbacks.append(go)
        env.timeout(delay).callbacks.append(lambda _ev, i=i: fired.append((env.now, -i - 1)))

    for i in range(0, len(delays), 2):
        set_timer(i, delays[i])
    env.run()
    return fired


@settings(max_examples=200, deadline=None)
@given(delays=st.lists(st.integers(0, 5), max_size=30))
def test_after_goes_off_where_simpys_timeout_would(delays):
    """weir.sim.kernel.timer.after against env.timeout, on timers due at the same microseconds
    and set from each other's callbacks: the same order, event for event."""
    assert _timers(True, delays) == _timers(False, delays), f"delays {delays}"


def test_after_refuses_a_negative_delay():
    with pytest.raises(ValueError, match="delay -1"):
        after(simpy.Environment(), -1)


def test_settle_triggers_an_event_without_scheduling_it():
    """weir.sim.kernel.timer.settle: the event reads as triggered (what Node.unless asks of its
    `answered`), and no event id is taken, nothing enters the queue, no callback runs."""
    from weir.sim.kernel.timer import pending, settle
    env = simpy.Environment()
    event = pending(env)
    event.callbacks.append(lambda _ev: pytest.fail("a settled event's callbacks must not run"))
    eid = next(env._eid)
    settle(event)
    assert event.triggered and event.ok and event.value is None
    assert not env._queue and next(env._eid) == eid + 1
    env.run()


def _handoffs(ours: bool, filtered: bool, plan, interrupts, blocks) -> tuple[list, int]:
    """Items put into a queue (ours: Inbox or Gate; theirs: simpy's Store or FilterStore) at the
    times `plan` says, each with a tick set beside it, taken by a consumer that works each item's
    time; the consumer interrupted at `interrupts` and a new one started (the old one's get stays
    waiting, as simpy's does); channel 1 blocked and unblocked at `blocks` (filtered only). What
    happened, in order, and how many event ids the run took."""
    env, log, blocked = simpy.Environment(), [], [False, False]
    if filtered:
        queue = Gate(env, 2) if ours else simpy.FilterStore(env)
    else:
        queue = Inbox(env) if ours else simpy.Store(env)

    def accept(item) -> bool:
        return not blocked[item[0]]

    def consumer(tag: int):
        try:
            while True:
                item = yield (queue.get(accept) if filtered else queue.get())
                log.append((env.now, tag, item))
                if item[2]:
                    yield env.timeout(item[2])
        except simpy.Interrupt:
            log.append((env.now, tag, "interrupted"))

    procs = [env.process(consumer(0))]

    def put(_ev, item) -> None:
        queue.put(item)
        env.timeout(0).callbacks.append(lambda _e: log.append((env.now, "tick", item[1])))

    def restart(_ev) -> None:
        if procs[-1].is_alive:
            procs[-1].interrupt()
        procs.append(env.process(consumer(len(procs))))

    def block(_ev, on: bool) -> None:
        blocked[1] = on

    for i, (at, channel, work) in enumerate(plan):
        env.timeout(at).callbacks.append(lambda ev, item=(channel if filtered else 0, i, work): put(ev, item))
    for at in interrupts:
        env.timeout(at).callbacks.append(restart)
    for at, on in blocks if filtered else ():
        env.timeout(at).callbacks.append(lambda ev, on=on: block(ev, on))
    env.run()
    return log, next(env._eid)


@settings(max_examples=300, deadline=None)
@given(plan=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 1), st.integers(0, 4)), max_size=25),
       interrupts=st.lists(st.integers(0, 30), max_size=3),
       blocks=st.lists(st.tuples(st.integers(0, 30), st.booleans()), max_size=4),
       filtered=st.booleans())
def test_inbox_and_gate_hand_over_as_simpys_store_and_filter_store_do(plan, interrupts, blocks, filtered):
    """weir's Inbox and Gate (weir.sim.kernel.timer, weir.sim.stream.exchange) against simpy's
    Store and FilterStore: items put at the same microseconds as other events, a consumer that
    works between gets, interrupted with its get left waiting, channels blocked and unblocked.
    The same items to the same consumers at the same place among the other events, and the same
    number of events: so a run's order, and its hash, are the Store's."""
    ours = _handoffs(True, filtered, plan, interrupts, blocks)
    theirs = _handoffs(False, filtered, plan, interrupts, blocks)
    assert ours == theirs, f"filtered {filtered}, plan {plan}, interrupts {interrupts}, blocks {blocks}"


def test_clock_offset_and_drift():
    assert NodeClock().read(123) == 123
    assert NodeClock(offset=-2_000_000).read(5_000_000) == 3_000_000
    assert NodeClock(drift_ppm=50).read(1_000_000) == 1_000_050  # 50 us fast per second
    assert NodeClock(offset=10, drift_ppm=-100).read(2_000_000) == 2_000_010 - 200


def test_node_local_time_reads_its_own_clock():
    w = World(1, {"a": NodeClock(offset=1_000), "b": NodeClock(drift_ppm=1_000)}, max_time=10**9, max_events=10)
    w.env.process(ticker(w, 1_000_000))
    w.run()
    assert w.node("a").local_time() == w.now + 1_000
    assert w.node("b").local_time() == w.now + w.now // 1_000


def test_stable_hash_is_pinned():
    # These values must never change: they decide every stream of every saved seed.
    assert stable_hash("network.jitter") == 969590443144840669
    assert stable_hash("") == 1449310910991872227


def test_streams_depend_on_seed_and_name_only():
    assert RngStreams(7).stream("workload").integers(0, 1000, 5).tolist() == [517, 82, 35, 514, 757]
    r = RngStreams(7)
    r.stream("other").integers(0, 10, 100)  # creating and using another stream first changes nothing
    assert r.stream("workload").integers(0, 1000, 5).tolist() == [517, 82, 35, 514, 757]
    assert RngStreams(8).stream("workload").integers(0, 1000, 5).tolist() != [517, 82, 35, 514, 757]


def test_draws_hands_out_the_generators_sequence():
    expected = np.random.Generator(np.random.PCG64(3)).integers(10, 21, 4096)[:10].tolist()
    d = Draws(np.random.Generator(np.random.PCG64(3)), 10, 20)
    assert [d.next() for _ in range(10)] == expected
    assert Draws(np.random.Generator(np.random.PCG64(3)), 4, 4).next() == 4


def test_draws_without_a_generator_hand_out_their_one_value_and_refuse_a_range():
    assert [Draws(None, 0, 0).next() for _ in range(3)] == [0, 0, 0]
    with pytest.raises(ValueError, match="no generator"):
        Draws(None, 0, 5)


def test_a_run_makes_the_random_streams_it_draws_from_and_no_others(monkeypatch):
    """A stream costs some 40 us to make, a fifth of a small run's fixed cost when every link and
    the sink made theirs: a link without jitter draws nothing, and the sink's retry streams wait
    for a retry. With jitter, every link that carried a message has its stream."""
    from dataclasses import replace

    import weir
    from weir.sim.scenario.run import execute

    made: list[str] = []
    stream = RngStreams.stream
    monkeypatch.setattr(RngStreams, "stream", lambda self, name: made.append(name) or stream(self, name))
    base = weir.load_scenario("exactly_once_crash")
    execute(replace(base, pipeline=replace(base.pipeline, network_jitter=0)))
    assert sorted(set(made)) == ["workload"], made
    made.clear()
    execute(replace(base, pipeline=replace(base.pipeline, network_jitter=200)))
    links = {name for name in made if name.startswith("network.jitter.")}
    assert "network.jitter.processor->sink" in links and "network.jitter.source->broker" in links, made
    assert not {"sink.retry", "sink.failures"} & set(made), made


@pytest.mark.parametrize("bad", [-1, 1.5, "7", True])
def test_seed_must_be_a_whole_number(bad):
    with pytest.raises(ValueError, match="seed"):
        RngStreams(bad)


def test_jitter_shapes():
    import numpy as np

    from weir.sim.kernel.rng import Draws, RngStreams
    exp = Draws(RngStreams(1).stream("x"), 0, 1000, shape="exponential")
    values = np.array([exp.next() for _ in range(20_000)])
    assert 900 < values.mean() < 1100 and values.max() <= 100_000
    heavy = Draws(RngStreams(1).stream("y"), 0, 1000, shape="pareto")
    tail = np.array([heavy.next() for _ in range(20_000)])
    assert np.percentile(tail, 99.9) > 5 * np.percentile(values, 99.9) / 2 and tail.max() <= 100_000
    with pytest.raises(ValueError):
        Draws(RngStreams(1).stream("z"), 0, 10, shape="normal")


def test_a_heavy_tailed_network_still_drains_and_replays():
    from dataclasses import replace

    from weir.sim.scenario.run import execute
    from weir.sim.scenario.loader import load_scenario
    s = load_scenario("exactly_once_crash")
    s = replace(s, pipeline=replace(s.pipeline, network_jitter_shape="pareto", network_jitter="2ms"))
    a, b = execute(s), execute(s)
    assert a.status == "drained" and a.trace_sha256 == b.trace_sha256
    assert sum(1 for r in a.trace.rows() if r["kind"] == "TIMEOUT") > 0  # the tail outlasts request_timeout
