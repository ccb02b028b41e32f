"""Nodes: up -> crashed -> up, paused, with their own clock, timers and processes.

A crash interrupts the processes a node runs and tells its listeners, which drop the volatile
state they keep for that node; durable state lives elsewhere and survives. A pause freezes the
node: its timers (`wait`, `later`) go off and its work (`work`) ends only after it resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from functools import partial
from typing import TYPE_CHECKING

import heapq

import simpy
from simpy.events import PENDING

from weir.sim.kernel.clock import NodeClock
from weir.sim.kernel.errors import SimulationError
from weir.sim.kernel.timer import after, at
from weir.sim.kernel.trace import Kind

if TYPE_CHECKING:
    from weir.sim.kernel.world import World

__all__ = ["Node", "Status"]


class Status:
    """How a run ended."""

    DRAINED = "drained"  # the pipeline finished its work: every produced record went through
    TIME_LIMIT = "time_limit"  # simulated time passed the scenario's max_time first
    EVENT_LIMIT = "event_limit"  # the event budget ran out first
    STALLED = "stalled"  # nothing left to happen, yet not drained
    USER_CODE_RAISED = "user_code_raised"  # a user hook raised or returned what it must not (the run's user_errors say what)
    USER_CODE_TIMED_OUT = "user_code_timed_out"  # a user hook ran past run.user_timeout of wall-clock time
    SETTLED = "settled"  # stopped early (explore): every fault healed, and nothing durable changes any more

    CODES = {DRAINED: 0, TIME_LIMIT: 1, EVENT_LIMIT: 2, STALLED: 3, USER_CODE_RAISED: 4, SETTLED: 5,
             USER_CODE_TIMED_OUT: 6}
    USER = (USER_CODE_RAISED, USER_CODE_TIMED_OUT)  # the run stopped because of user code


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
        self.may_pause = False  # a pause fault is installed on this node (set before the run starts)
        self._deadlines: list[list] = []  # `unless` timers, a heap: [due, event id, answered, fn]
        self._armed: list[tuple[int, int]] = []  # (due, event id) of those in simpy's queue, a heap

    def __repr__(self) -> str:
        return f"Node({self.name!r}, {self.state})"

    def local_time(self) -> int:
        """What this node's clock reads now."""
        return self.clock.read(self.world.env._now)  # (Environment.now without the property's call)

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
        yield after(env, self.clock.true_span(delay))
        while self.paused_until > env._now:  # (env.now, without the property's call)
            yield after(env, self.paused_until - env._now)

    def next_tick(self, waiters: list[simpy.Event], period: int) -> Generator:
        """For a loop that wakes every `period` (by this node's clock) and found nothing to do now:
        sleep until `wake(waiters)` says there may be something, instead of a timer per period, then
        wait for the tick the period would have given, the first after that. While idle it costs no
        event at all. A pause while it sleeps does not move the ticks (it would have delayed a
        timer's); one at the tick holds it, as it holds any timer."""
        env = self.world.env
        since, work = env.now, env.event()
        waiters.append(work)
        yield work
        span = self.clock.true_span(period)
        yield after(env, since + ((env.now - since) // span + 1) * span - env.now)
        while self.paused_until > env.now:
            yield after(env, self.paused_until - env.now)

    def work(self, duration: int) -> Generator:
        """`duration` of work on this node: a pause that overlaps it makes it end that much later."""
        env = self.world.env
        start = env._now
        yield after(env, duration)
        while self._pauses:
            if self.paused_until > env.now:
                yield after(env, self.paused_until - env.now)
                continue
            owed = start + duration + self._frozen(start, env.now) - env.now
            if owed <= 0:
                return
            yield after(env, owed)

    def later(self, delay: int, fn: Callable[[], None]) -> None:
        """Call `fn()` after `delay` by this node's clock, as a timer of this node (held while the
        node is paused)."""
        after(self.world.env, self.clock.true_span(delay), partial(self._due, fn))

    def unless(self, delay: int, answered: simpy.Event, fn: Callable[[], None]) -> None:
        """`later(delay, fn)` for a timeout: the timer goes off as `later`'s would, in the same place
        among the events due at its time, unless `answered` has triggered by then; fn() may be
        skipped then, so it must do nothing once `answered` has (a request's expiry, a long poll's).

        A timer that `later` sets is an event even when its request was answered long before,
        one for every request. Here only the node's earliest deadline is in simpy's queue, under
        the id `later`'s timer would have taken; one that goes off drops the answered ones due
        before the next unanswered one and puts that one in, under its own id. So a request
        answered before the deadline armed ahead of it comes due costs no event, the queue holds a
        node's earliest deadlines, not one timer per request, and every timer that does go off does
        so exactly where `later`'s would have. (A request still in flight when the one before it
        comes due is armed in its turn: a long poll that outlasts half its timeout saves nothing.)"""
        env = self.world.env
        due = env._now + self.clock.true_span(delay)
        self._deadline(due, next(env._eid), answered, fn)

    def _deadline(self, due: int, eid: int, answered: simpy.Event, fn: Callable[[], None]) -> None:
        heapq.heappush(self._deadlines, [due, eid, answered, fn])
        armed = self._armed
        if not armed or (due, eid) < armed[0]:
            self._arm(due, eid)

    def _arm(self, due: int, eid: int) -> None:
        """Put deadline (due, eid) in simpy's queue, where a Timeout made with that id would be."""
        at(self.world.env, due, eid, self._deadlines_due)
        heapq.heappush(self._armed, (due, eid))

    def _deadlines_due(self, _ev: simpy.Event) -> None:
        """The earliest armed deadline is due: drop the answered ones ahead of the next unanswered,
        run this one's timer as `_due` runs `later`'s (held if the node is paused: due again when it
        resumes, under a new id as `_due`'s new timer would be), and arm the next."""
        key = heapq.heappop(self._armed)
        deadlines = self._deadlines
        while deadlines:
            due, eid, answered, fn = deadlines[0]
            if answered._value is not PENDING:  # (answered.triggered, without the property's call)
                heapq.heappop(deadlines)
            elif (due, eid) == key:
                heapq.heappop(deadlines)
                env = self.world.env
                if self.paused_until > env._now:
                    self._deadline(self.paused_until, next(env._eid), answered, fn)
                else:
                    fn()
            else:
                break
        if deadlines:
            due, eid = deadlines[0][0], deadlines[0][1]
            if not self._armed or (due, eid) < self._armed[0]:
                self._arm(due, eid)

    def _due(self, fn: Callable[[], None], _ev: simpy.Event) -> None:
        """A `later` timer went off: `fn()`, or, if the node is paused now, a timer for when it
        resumes. (Its callback is a partial, not a closure: no cells to make for each timer, and
        no closure that names itself, a reference cycle that only the cyclic collector frees.)"""
        now = self.world.env._now
        if self.paused_until > now:
            after(self.world.env, self.paused_until - now, partial(self._due, fn))
        else:
            fn()

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


def wake(waiters: list[simpy.Event]) -> None:
    """Wake the loops sleeping in Node.next_tick on `waiters` (there may be work), and empty it."""
    events = list(waiters)
    waiters.clear()
    for event in events:
        event.succeed()
