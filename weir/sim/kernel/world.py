"""The deterministic kernel: a World over simpy with integer-microsecond time.

A World owns the simpy Environment, the named random streams, the trace, the nodes (kernel/node.py)
and the network (kernel/network.py). `World.run()` steps the event queue under two guards (maximum
simulated time, maximum events), so a run that never finishes ends with a verdict instead of hanging.
"""

from __future__ import annotations

from heapq import heappop
from collections.abc import Callable
from typing import Any

import simpy

from weir.sim.kernel.clock import NodeClock
from weir.sim.kernel.errors import UserCodeTimedOut
from weir.sim.kernel.network import TIMED_OUT, Network
from weir.sim.kernel.node import Node, Status
from weir.sim.kernel.rng import RngStreams
from weir.sim.kernel.trace import Kind, Trace

# Node and Status (kernel/node.py), Network and TIMED_OUT (kernel/network.py) are re-exported: the
# world is where the rest of the simulator meets them.
__all__ = ["World", "Node", "Network", "Status", "TIMED_OUT", "PROGRESS_MASK"]

#: World.on_progress is called after every 2**16 events (some half a second of a run's wall time).
PROGRESS_MASK = (1 << 16) - 1


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
        # the trace reads the time of every row as the environment's `_now`, simpy's own attribute
        # behind Environment.now (a lambda and the property were two Python calls a row)
        self.trace = Trace(names, self.env)
        boot = boot_times or {}
        self.nodes = {name: Node(self, i, name, clock, boot.get(name, 0)) for i, (name, clock) in enumerate(nodes.items())}
        self.net = Network(self, latency, jitter, jitter_shape)
        self.max_time = max_time
        self.max_events = max_events
        self.status: str | None = None
        # called with an exception an event raised; True: it was user code, the run ends as FAILED
        # an exception from an event: the status to end the run with (user code), or None (weir's bug: raise it)
        self.on_error: Callable[[BaseException], str | None] | None = None
        # called every PROGRESS_MASK + 1 events while the run runs: to show progress, never to act
        self.on_progress: Callable[[], None] | None = None
        self.events = 0
        self.end_time = 0
        self._holds = 0  # things (faults not yet healed) that must finish before the run may end

    @property
    def now(self) -> int:
        return self.env._now  # (Environment.now, without its property's call)

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

    def settle(self, fingerprint: Callable[[], tuple[Any, ...] | None], period: int) -> None:
        """End the run as SETTLED once, with every fault healed, `fingerprint()` (what durable state
        the run has made) is the same at two checks `period` apart: a run that would only go on
        until a guard stops it, whose verdict can no longer change. Opt in (explore): it adds a
        timer of its own to the event queue, and nothing to the trace."""
        env = self.env

        def watch():
            last = None
            while True:
                yield env.timeout(period)
                now = None if self.held else fingerprint()
                if now is not None and now == last:
                    self.finish(Status.SETTLED)
                    return
                last = now

        env.process(watch())

    def finish(self, status: str) -> None:
        """End the run after the current event (first call wins)."""
        if self.status is None:
            self.status = status

    def run(self) -> str:
        """Step events until something calls `finish`, or a guard ends the run. Returns the status."""
        env = self.env
        queue = env._queue  # simpy's queue of (time, priority, event id, event)
        limit_time, limit_events = self.max_time, self.max_events
        on_progress = self.on_progress
        n = 0
        try:
            while self.status is None:
                if not queue:
                    self.status = Status.STALLED
                    break
                if queue[0][0] > limit_time:
                    self.status = Status.TIME_LIMIT
                    break
                # Environment.step, inlined (a Python call less for every event): simpy 4.1's own
                # lines, less its StopSimulation branch, which only Environment.run's `until` raises
                env._now, _, _, event = heappop(queue)
                callbacks, event.callbacks = event.callbacks, None
                for callback in callbacks:
                    callback(event)
                if not event._ok and not hasattr(event, "_defused"):  # a failed event nobody handled
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    raise exc
                n += 1
                if n >= limit_events and self.status is None:
                    self.status = Status.EVENT_LIMIT
                if not n & PROGRESS_MASK and on_progress is not None:
                    on_progress()  # (it reads the run, never changes it: no event, no draw)
        except (Exception, UserCodeTimedOut) as e:  # an event raised: the run's owner says whether it was user code
            status = self.on_error(e) if self.on_error is not None else None
            if status is None:
                raise
            self.status = status
        self.events = n
        self.end_time = limit_time if self.status == Status.TIME_LIMIT else env.now
        self.trace.add(Kind.RUN_END, 0, Status.CODES[self.status])  # not the step count: kernel bookkeeping
        return self.status
