"""The network: messages between nodes over FIFO links with seeded latency, and requests with timeouts."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import simpy
from simpy.events import PENDING

from weir.sim.kernel.rng import Draws
from weir.sim.kernel.node import Node
from weir.sim.kernel.timer import after, pending, succeed
from weir.sim.kernel.trace import Kind, Msg, pack_row

if TYPE_CHECKING:
    from weir.sim.kernel.world import World

__all__ = ["Network", "TIMED_OUT"]


TIMED_OUT = object()  # the value of a request that got no answer in time
_SEND, _RECV = Kind.SEND, Kind.RECV  # (every message writes both rows: trace.add's work, inlined)


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
        # link -> [its base latency, its jitter draws, whether it draws any, the last arrival on it]
        # (_route); one jitter stream per link: traffic on one never shifts another's
        self._routes: dict[tuple[int, int], list] = {}
        self.links: dict[tuple[int, int], tuple[int, int, str]] = {}  # link -> (latency, jitter, shape), if its own
        self.cut: dict[tuple[int, int], int] = {}  # links a partition cuts (src, dst) -> how many partitions do
        self._on_cut: list[Callable[[Node, Node, Msg], None]] = []
        self.link_faults: list = []  # active delay, loss, duplicate and reorder faults: (fault, links it covers)

    def set_link(self, src: Node, dst: Node, latency: int, jitter: int, shape: str) -> None:
        """Give the link src -> dst its own latency distribution (before anything is sent on it)."""
        self.links[(src.index, dst.index)] = (latency, jitter, shape)

    def round_trip(self, a: Node, b: Node) -> int:
        """The longest a request from a to b and its reply take without faults, as the scenario
        rules count it (`[[links]]`): each way's latency plus its jitter (uniform jitter's most; the
        mean, for the other shapes), by the link's own distribution where it has one."""
        total = 0
        for link in ((a.index, b.index), (b.index, a.index)):
            latency, jitter, _shape = self.links.get(link, (self.latency, self.jitter, self.jitter_shape))
            total += latency + jitter
        return total

    def _route(self, src: Node, dst: Node) -> list:
        """The link src -> dst's [latency, draws, jittered, last arrival], made at its first message."""
        link = (src.index, dst.index)
        latency, jitter, shape = self.links.get(link, (self.latency, self.jitter, self.jitter_shape))
        # a link without jitter draws nothing (Draws.next returns 0): it needs no stream
        stream = self.world.rngs.stream(f"network.jitter.{src.name}->{dst.name}") if jitter else None
        draws = Draws(stream, 0, jitter, shape=shape)
        route = self._routes[link] = [latency, draws, draws.high > 0, 0]
        return route

    def send(self, src: Node, dst: Node, msg: Msg, deliver: Callable[..., Any], *args: Any,
             ref: tuple[int, int] = (0, 0), ordered: bool = True) -> None:
        """Deliver `deliver(*args)` at `dst` after the link's latency, if `dst` is up then.

        The trace gets SEND now and RECV (or DROP, if `dst` is down) on arrival, each with the
        message kind and two integers `ref` that say which batch, checkpoint or request it is.

        `ordered` messages travel on a connection (TCP): they arrive in the order sent, and the
        transport drops a duplicate copy. Requests and their replies are not ordered (`request`):
        a `reorder` fault lets them overtake each other, a `duplicate` fault delivers them twice.
        """
        world = self.world
        env = world.env
        r1, r2 = ref
        now = env._now  # (Environment.now, without the property's call: this runs for every message)
        world.trace.rows.frombytes(pack_row(now, _SEND, src.index, dst.index, msg, r1, r2))
        link = (src.index, dst.index)
        route = self._routes.get(link) or self._route(src, dst)
        paused = src.paused_until
        departure = paused if paused > now else now  # a paused sender sends when it resumes
        # jitter is drawn from [0, high]: with high 0 Draws.next returns 0 and draws nothing, so skip it
        arrival = departure + route[0] + (route[1].next() if route[2] else 0)
        lost = reordered = False
        copy_at = None
        if self.link_faults:
            arrival, lost, reordered, copy_at = self._faulted(src, dst, link, route, arrival, ordered)
        if ordered or not reordered:
            if arrival < route[3]:
                arrival = route[3]
            route[3] = arrival
        after(env, arrival - now, self._arrive).message = (src, dst, msg, ref, lost, deliver, args, ordered)
        if copy_at is not None:
            world.trace.add(Kind.DUPLICATE, src.index, dst.index, msg, r1, r2)
            self._schedule(src, dst, msg, ref, arrival - now + copy_at, lost, deliver, args, ordered)

    def _faulted(self, src: Node, dst: Node, link: tuple[int, int], route: list, arrival: int,
                 ordered: bool) -> tuple[int, bool, bool, int | None]:
        """What the active link faults do to a message due at `arrival`: (its arrival now, whether
        it is lost, whether it may overtake others, when a second copy follows it or None)."""
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
                        trip = route[0] + route[1].high
                        copy_at = int(self._fault_stream("duplicate", src, dst).integers(0, trip + 1))
        return arrival, lost, reordered, copy_at

    def _fault_stream(self, kind: str, src: Node, dst: Node):
        return self.world.rngs.stream(f"network.{kind}.{src.name}->{dst.name}")

    def _schedule(self, src: Node, dst: Node, msg: Msg, ref: tuple[int, int], delay: int, lost: bool,
                  deliver: Callable[..., Any], args: tuple, ordered: bool = True) -> None:
        """Arrive `delay` from now (`_arrive`). The message rides on its timer, as the event's
        `message`, and the callback is the bound method `_arrive`: a partial of it made and unwound
        a call more on every message, and a closure over these names makes a cell for each (one that
        named itself, to arrive again after a pause, would be a reference cycle that only the cyclic
        collector frees: tests/test_memory.py)."""
        after(self.world.env, delay, self._arrive).message = (src, dst, msg, ref, lost, deliver, args, ordered)

    def _arrive(self, ev: simpy.Event) -> None:
        """The message `ev` carries arrives: RECV and deliver, or DROP (and, for a message on a
        connection, tell the on_cut listeners: the connection broke; a lost request is for its
        caller's timeout)."""
        src, dst, msg, ref, lost, deliver, args, ordered = ev.message  # type: ignore[attr-defined]
        now = self.world.env._now
        resumes = dst.paused_until
        if resumes > now:  # a paused receiver takes it in when it resumes (in order): arrive again then
            self._schedule(src, dst, msg, ref, resumes - now, lost, deliver, args, ordered)
            return
        if not lost and dst.up and not (self.cut and self.cut.get((src.index, dst.index))):
            self.world.trace.rows.frombytes(pack_row(now, _RECV, dst.index, src.index, msg, ref[0], ref[1]))
            deliver(*args)
        else:
            self.world.trace.add(Kind.DROP, dst.index, src.index, msg, ref[0], ref[1])
            if dst.up and ordered:  # cut by a partition, or lost: the connection broke
                for listener in self._on_cut:
                    listener(src, dst, msg)

    def on_cut(self, listener: Callable[[Node, Node, Msg], None]) -> None:
        """Call `listener(src, dst, msg)` when a partition loses a message: the connection between the
        two broke. (A request's caller finds out by its timeout; a stream's end must be told.)"""
        self._on_cut.append(listener)

    def request(self, src: Node, dst: Node, msg: Msg, serve: Callable[[], Any], timeout: int,
                ref: tuple[int, int] = (0, 0)) -> simpy.Event:
        """Ask `dst` to run `serve()` and send back its result (if `serve()` returns a simpy event,
        its value, when it succeeds: a request the server holds, as a broker holds a long poll).

        The returned event's value is the result, or TIMED_OUT if no answer came within `timeout`
        (the destination was down, or it crashed before answering). The caller retries if it wants.
        """
        answer = pending(self.world.env)

        def _reply(value: Any) -> None:
            if answer._value is PENDING:  # (not answer.triggered, without the property's call)
                succeed(answer, value)

        def _serve() -> None:
            value = serve()
            if isinstance(value, simpy.Event):  # answered later (a long poll): the reply goes when it is known
                value.callbacks.append(lambda ev: self.send(dst, src, Msg.REPLY, _reply, ev.value, ref=(msg, ref[0]),
                                                            ordered=False))
                return
            self.send(dst, src, Msg.REPLY, _reply, value, ref=(msg, ref[0]), ordered=False)

        def _expire() -> None:
            if answer._value is PENDING:
                self.world.trace.add(Kind.TIMEOUT, src.index, dst.index)
                succeed(answer, TIMED_OUT)

        self.send(src, dst, msg, _serve, ref=ref, ordered=False)
        src.unless(timeout, answer, _expire)  # the caller's timer: a pause of the caller holds it
        return answer

    def call(self, src: Node, dst: Node, msg: Msg, serve: Callable[[], Any], timeout: int,
             ref: tuple[int, int] = (0, 0)) -> Generator:
        """Request until answered (a process step: `value = yield from net.call(...)`)."""
        while True:
            answer = yield self.request(src, dst, msg, serve, timeout, ref)
            if answer is not TIMED_OUT:
                return answer
