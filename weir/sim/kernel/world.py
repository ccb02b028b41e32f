"""The deterministic kernel: a World over simpy with integer-microsecond time.

A World owns the simpy Environment, the named random streams, the trace, the nodes and the network.
Nodes go up -> crashed -> up; a crash interrupts the processes a node runs and tells its listeners,
which drop the volatile state they keep for that node; durable state lives elsewhere and survives.
`World.run()` steps the event queue under two guards (maximum simulated time, maximum events), so a
run that never finishes ends with a verdict instead of hanging.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import simpy

from weir.sim.kernel.clock import NodeClock
from weir.sim.kernel.errors import SimulationError
from weir.sim.kernel.rng import Draws, RngStreams
from weir.sim.kernel.trace import Kind, Msg, Trace

__all__ = ["World", "Node", "Network", "Status", "TIMED_OUT"]


class Status:
    """How a run ended."""

    DRAINED = "drained"  # the pipeline finished its work: every produced record went through
    TIME_LIMIT = "time_limit"  # simulated time passed the scenario's max_time first
    EVENT_LIMIT = "event_limit"  # the event budget ran out first
    STALLED = "stalled"  # nothing left to happen, yet not drained

    CODES = {DRAINED: 0, TIME_LIMIT: 1, EVENT_LIMIT: 2, STALLED: 3}


class Node:
    """A named machine: a clock, a lifecycle, and the processes running on it.

    Lifecycle: up -> crashed (for the crash's down_for) -> restarting (for the node's boot_time)
    -> up. Only an up node runs processes and receives messages.
    """

    UP, CRASHED, RESTARTING = "up", "crashed", "restarting"

    def __init__(self, world: "World", index: int, name: str, clock: NodeClock, boot_time: int = 0):
        self.world = world
        self.index = index
        self.name = name
        self.clock = clock
        self.boot_time = boot_time
        self.state = Node.UP
        self.up = True  # state == UP; kept as a plain attribute because every delivery reads it
        self._procs: list[simpy.Process] = []
        self._on_crash: list[Callable[["Node"], None]] = []
        self._on_restart: list[Callable[["Node"], None]] = []
        self._up_waiters: list[simpy.Event] = []
        self.paused_until = 0  # a stop-the-world pause (weir/sim/kernel/inject/network.py) freezes the node until then
        self._pauses: list[tuple[int, int]] = []  # every pause so far: (start, end)

    def __repr__(self) -> str:
        return f"Node({self.name!r}, {self.state})"

    def local_time(self) -> int:
        """What this node's clock reads now."""
        return self.clock.read(self.world.env.now)

    def spawn(self, gen: Generator) -> simpy.Process:
        """Run a process on this node; a crash of the node interrupts it."""
        if not self.up:
            raise SimulationError(f"cannot start a process on crashed node {self.name!r}")
        proc = self.world.env.process(gen)
        self._procs = [p for p in self._procs if p.is_alive]
        self._procs.append(proc)
        return proc

    # ---- stop-the-world pauses ------------------------------------------------------------------
    def pause(self, duration: int) -> None:
        """Freeze the node from now for `duration` (a GC pause): its timers and work stall, its
        messages wait (Network), and all of it carries on when the pause ends."""
        now = self.world.env.now
        until = max(self.paused_until, now + duration)
        self._pauses.append((now, until))
        self.paused_until = until
        self.world.trace.add(Kind.PAUSE, self.index, duration)

    def _frozen(self, start: int, end: int) -> int:
        """How long the node was paused between `start` and `end` (overlapping pauses count once)."""
        total, covered = 0, start
        for a, b in sorted(self._pauses):
            a, b = max(a, covered), min(b, end)
            if b > a:
                total += b - a
                covered = b
        return total

    def wait(self, delay: int) -> Generator:
        """A timer on this node (a process step: `yield from node.wait(d)`): due after `delay`, but
        a timer due during a pause goes off only when the pause ends. `delay` is measured by the
        node's clock, so a drifting clock's timers go off early or late."""
        env = self.world.env
        yield env.timeout(self.clock.true_span(delay))
        while self.paused_until > env.now:
            yield env.timeout(self.paused_until - env.now)

    def work(self, duration: int) -> Generator:
        """`duration` of work on this node: a pause that overlaps it makes it end that much later."""
        env = self.world.env
        start = env.now
        yield env.timeout(duration)
        while self._pauses:
            if self.paused_until > env.now:
                yield env.timeout(self.paused_until - env.now)
                continue
            owed = start + duration + self._frozen(start, env.now) - env.now
            if owed <= 0:
                return
            yield env.timeout(owed)

    def later(self, delay: int, fn: Callable[[], None]) -> None:
        """Call `fn()` after `delay` by this node's clock, as a timer of this node (held while the
        node is paused)."""
        def _due(_ev: simpy.Event) -> None:
            now = self.world.env.now
            if self.paused_until > now:
                self.world.env.timeout(self.paused_until - now).callbacks.append(_due)
            else:
                fn()

        self.world.env.timeout(self.clock.true_span(delay)).callbacks.append(_due)

    def on_crash(self, listener: Callable[["Node"], None]) -> None:
        """Call `listener(node)` whenever this node crashes (to drop volatile state it keeps)."""
        self._on_crash.append(listener)

    def on_restart(self, listener: Callable[["Node"], None]) -> None:
        """Call `listener(node)` whenever this node comes back up (to restart what it runs)."""
        self._on_restart.append(listener)

    def crash(self, down_for: int | None) -> bool:
        """Crash now; after `down_for` us start restarting, and be up `boot_time` us after that
        (`down_for` None: crash-stop, the node never comes back).

        Returns False (and nothing happens) if the node is not up.
        """
        if not self.up:
            return False
        self.state, self.up = Node.CRASHED, False
        self.world.trace.add(Kind.CRASH, self.index, -1 if down_for is None else down_for)
        procs, self._procs = self._procs, []
        for proc in procs:
            if proc.is_alive:
                proc.interrupt("crash")
        for listener in self._on_crash:
            listener(self)
        if down_for is not None:
            self.world.env.timeout(down_for).callbacks.append(lambda _ev: self._restart())
        return True

    def _restart(self) -> None:
        self.state = Node.RESTARTING
        self.world.trace.add(Kind.RESTART, self.index, self.boot_time)
        if self.boot_time:
            self.world.env.timeout(self.boot_time).callbacks.append(lambda _ev: self._come_up())
        else:
            self._come_up()

    def _come_up(self) -> None:
        self.state, self.up = Node.UP, True
        self.world.trace.add(Kind.UP, self.index)
        waiters, self._up_waiters = self._up_waiters, []
        for ev in waiters:
            ev.succeed()
        for listener in self._on_restart:
            listener(self)

    def when_up(self) -> simpy.Event:
        """An event that fires when the node is up (at once if it is up now)."""
        ev = self.world.env.event()
        if self.up:
            ev.succeed()
        else:
            self._up_waiters.append(ev)
        return ev


TIMED_OUT = object()  # the value of a request that got no answer in time


class Network:
    """Messages between nodes: each link is FIFO, with a base latency plus seeded jitter.

    Each link draws its jitter from its own stream (`network.jitter.SRC->DST`), so a run's timing
    on one link does not depend on how much traffic another carries.

    A message is delivered only if its destination is up when it arrives, and no partition cuts
    its link then (weir/sim/kernel/inject/network.py); a message already on the wire still arrives after its
    sender crashes. Messages between tasks travel on connections (TCP): their order on a link
    never changes, so barriers never overtake records, and a duplicate never shows. Requests and
    replies (`request`) are independent messages, which the `reorder` and `duplicate` faults can
    reorder and deliver twice. A paused node (Node.pause) sends and takes in nothing until it resumes.
    """

    def __init__(self, world: "World", latency: int, jitter: int, jitter_shape: str = "uniform"):
        self.world = world
        self.latency = latency
        self.jitter = jitter
        self.jitter_shape = jitter_shape
        self._jitter: dict[tuple[int, int], Draws] = {}  # one stream per link: traffic on one never shifts another's
        self._latency: dict[tuple[int, int], int] = {}  # each link's base latency, set with its draws
        self.links: dict[tuple[int, int], tuple[int, int, str]] = {}  # link -> (latency, jitter, shape), if its own
        self._last_arrival: dict[tuple[int, int], int] = {}
        self.cut: dict[tuple[int, int], int] = {}  # links a partition cuts (src, dst) -> how many partitions do
        self._on_cut: list[Callable[[Node, Node, Msg], None]] = []
        self.link_faults: list = []  # active delay, loss, duplicate and reorder faults: (fault, links it covers)

    def set_link(self, src: Node, dst: Node, latency: int, jitter: int, shape: str) -> None:
        """Give the link src -> dst its own latency distribution (before anything is sent on it)."""
        self.links[(src.index, dst.index)] = (latency, jitter, shape)

    def _draws(self, src: Node, dst: Node) -> Draws:
        link = (src.index, dst.index)
        draws = self._jitter.get(link)
        if draws is None:
            latency, jitter, shape = self.links.get(link, (self.latency, self.jitter, self.jitter_shape))
            self._latency[link] = latency
            stream = self.world.rngs.stream(f"network.jitter.{src.name}->{dst.name}")
            draws = self._jitter[link] = Draws(stream, 0, jitter, shape=shape)
        return draws

    def send(self, src: Node, dst: Node, msg: Msg, deliver: Callable[..., Any], *args: Any,
             ref: tuple[int, int] = (0, 0), ordered: bool = True) -> None:
        """Deliver `deliver(*args)` at `dst` after the link's latency, if `dst` is up then.

        The trace gets SEND now and RECV (or DROP, if `dst` is down) on arrival, each with the
        message kind and two integers `ref` that say which batch, checkpoint or request it is.

        `ordered` messages travel on a connection (TCP): they arrive in the order sent, and the
        transport drops a duplicate copy. Requests and their replies are not ordered (`request`):
        a `reorder` fault lets them overtake each other, a `duplicate` fault delivers them twice.
        """
        env = self.world.env
        trace = self.world.trace
        r1, r2 = ref
        trace.add(Kind.SEND, src.index, dst.index, msg, r1, r2)
        now = env.now
        link = (src.index, dst.index)
        departure = max(now, src.paused_until)  # a paused sender sends when it resumes
        draws = self._draws(src, dst)
        arrival = departure + self._latency[link] + draws.next()
        lost = reordered = False
        copy_at = None
        for fault, links in self.link_faults:
            if link in links:
                kind = fault.kind
                if kind == "delay":
                    arrival += fault.slow_by
                elif kind == "reorder":  # up to slow_by more: what was sent later may arrive first
                    arrival += int(self._fault_stream("reorder", src, dst).integers(0, fault.slow_by + 1))
                    reordered = True
                elif self._fault_stream(kind, src, dst).random() < fault.rate:
                    if kind == "loss":
                        lost = True
                    elif not ordered:  # duplicate: a second copy, up to one more trip behind the first
                        trip = self._latency[link] + draws.high
                        copy_at = int(self._fault_stream("duplicate", src, dst).integers(0, trip + 1))
        if ordered or not reordered:
            last = self._last_arrival.get(link, 0)
            if arrival < last:
                arrival = last
            self._last_arrival[link] = arrival
        self._schedule(src, dst, msg, ref, arrival - now, lost, deliver, args)
        if copy_at is not None:
            trace.add(Kind.DUPLICATE, src.index, dst.index, msg, r1, r2)
            self._schedule(src, dst, msg, ref, arrival - now + copy_at, lost, deliver, args)

    def _fault_stream(self, kind: str, src: Node, dst: Node):
        return self.world.rngs.stream(f"network.{kind}.{src.name}->{dst.name}")

    def _schedule(self, src: Node, dst: Node, msg: Msg, ref: tuple[int, int], after: int, lost: bool,
                  deliver: Callable[..., Any], args: tuple) -> None:
        """Arrive `after` from now: RECV and deliver, or DROP (and tell the on_cut listeners)."""
        env, trace = self.world.env, self.world.trace
        link = (src.index, dst.index)
        r1, r2 = ref

        def _arrive(_ev: simpy.Event) -> None:
            resumes = dst.paused_until
            if resumes > env.now:  # a paused receiver takes it in when it resumes (in order)
                env.timeout(resumes - env.now).callbacks.append(_arrive)
                return
            if dst.up and not self.cut.get(link) and not lost:
                trace.add(Kind.RECV, dst.index, src.index, msg, r1, r2)
                deliver(*args)
            else:
                trace.add(Kind.DROP, dst.index, src.index, msg, r1, r2)
                if dst.up:  # cut by a partition, or lost: the connection broke
                    for listener in self._on_cut:
                        listener(src, dst, msg)

        env.timeout(after).callbacks.append(_arrive)

    def on_cut(self, listener: Callable[[Node, Node, Msg], None]) -> None:
        """Call `listener(src, dst, msg)` when a partition loses a message: the connection between the
        two broke. (A request's caller finds out by its timeout; a stream's end must be told.)"""
        self._on_cut.append(listener)

    def request(self, src: Node, dst: Node, msg: Msg, serve: Callable[[], Any], timeout: int,
                ref: tuple[int, int] = (0, 0)) -> simpy.Event:
        """Ask `dst` to run `serve()` and send back its result.

        The returned event's value is the result, or TIMED_OUT if no answer came within `timeout`
        (the destination was down, or it crashed before answering). The caller retries if it wants.
        """
        env = self.world.env
        answer = env.event()

        def _reply(value: Any) -> None:
            if not answer.triggered:
                answer.succeed(value)

        def _serve() -> None:
            self.send(dst, src, Msg.REPLY, _reply, serve(), ref=(msg, ref[0]), ordered=False)

        def _expire() -> None:
            if not answer.triggered:
                self.world.trace.add(Kind.TIMEOUT, src.index, dst.index)
                answer.succeed(TIMED_OUT)

        self.send(src, dst, msg, _serve, ref=ref, ordered=False)
        src.later(timeout, _expire)  # the caller's timer: a pause of the caller holds it
        return answer

    def call(self, src: Node, dst: Node, msg: Msg, serve: Callable[[], Any], timeout: int,
             ref: tuple[int, int] = (0, 0)) -> Generator:
        """Request until answered (a process step: `value = yield from net.call(...)`)."""
        while True:
            answer = yield self.request(src, dst, msg, serve, timeout, ref)
            if answer is not TIMED_OUT:
                return answer


class World:
    """One run's universe: environment, random streams, trace, nodes, network."""

    def __init__(self, seed: int, nodes: dict[str, NodeClock], *, latency: int = 0, jitter: int = 0,
                 max_time: int, max_events: int, boot_times: dict[str, int] | None = None,
                 jitter_shape: str = "uniform"):
        self.env = simpy.Environment(initial_time=0)
        self.seed = seed
        self.rngs = RngStreams(seed)
        self.fault_windows: list = []  # faults that last a window of time (weir/sim/kernel/inject/windows.py)
        names = tuple(nodes)
        self.trace = Trace(names, lambda: self.env.now)
        boot = boot_times or {}
        self.nodes = {name: Node(self, i, name, clock, boot.get(name, 0)) for i, (name, clock) in enumerate(nodes.items())}
        self.net = Network(self, latency, jitter, jitter_shape)
        self.max_time = max_time
        self.max_events = max_events
        self.status: str | None = None
        self.events = 0
        self.end_time = 0
        self._holds = 0  # things (faults not yet healed) that must finish before the run may end

    @property
    def now(self) -> int:
        return self.env.now

    def node(self, name: str) -> Node:
        return self.nodes[name]

    def active_fault(self, kind: str, node: str | None = None):
        """The first `kind` fault in `fault_windows` (of `node`, if given) whose window covers now, or None."""
        now = self.env.now
        for fault in self.fault_windows:
            if fault.kind == kind and fault.at <= now < fault.at + fault.down_for and (node is None or fault.node == node):
                return fault
        return None

    def hold(self) -> Callable[[], None]:
        """Keep the run from ending until the returned release function is called."""
        self._holds += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._holds -= 1

        return release

    @property
    def held(self) -> bool:
        return self._holds > 0

    def finish(self, status: str) -> None:
        """End the run after the current event (first call wins)."""
        if self.status is None:
            self.status = status

    def run(self) -> str:
        """Step events until something calls `finish`, or a guard ends the run. Returns the status."""
        env = self.env
        step, peek = env.step, env.peek
        limit_time, limit_events = self.max_time, self.max_events
        n = 0
        while self.status is None:
            t = peek()
            if t == math.inf:
                self.status = Status.STALLED
                break
            if t > limit_time:
                self.status = Status.TIME_LIMIT
                break
            step()
            n += 1
            if n >= limit_events and self.status is None:
                self.status = Status.EVENT_LIMIT
        self.events = n
        self.end_time = limit_time if self.status == Status.TIME_LIMIT else env.now
        self.trace.add(Kind.RUN_END, 0, Status.CODES[self.status])  # not the step count: kernel bookkeeping
        return self.status
