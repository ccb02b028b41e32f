"""Kafka's consumer group, as its coordinator in the broker sees it: members, generations, assignment.

Used when `pipeline.source_failover = "rebalance"`: each source subtask is a consumer (member i)
of one group. A member joins when it starts; it stays a member while its heartbeats arrive, and
is expired `session_timeout` after the last one. Every join and every expiry is a rebalance: the
generation goes up by one and the partitions are dealt out again over the members, round-robin
by member id (Kafka's RoundRobinAssignor: member k of m gets the partitions p with p mod m = k).

A member learns of a rebalance when it next polls: a fetch from an older generation is refused
and answered with the member's new partitions and their committed offsets (Kafka's poll() is
where a consumer rejoins). A commit from an older generation is refused (the broker's generation
check). Simplifications: a rebalance takes effect at once, with no PreparingRebalance phase in
which members could commit what they owned (Kafka's onPartitionsRevoked); so a partition that
moves starts again from its last commit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from simpy import Event

from weir.sim.kernel.timer import pending, settle
from weir.sim.kernel.world import Node, World
from weir.sim.kernel.trace import Kind

__all__ = ["ConsumerGroup", "Assignment", "JOINED", "EXPIRED"]

JOINED, EXPIRED = 0, 1  # why a rebalance happened (the trace's `reason`)


@dataclass(frozen=True)
class Assignment:
    """What a member is told at a rebalance: the generation, its partitions, where each starts."""

    generation: int
    partitions: tuple[int, ...]
    committed: tuple[int, ...]  # the committed offset of each of `partitions`


class ConsumerGroup:
    """The group coordinator's state, kept in the broker (durable across consumer crashes)."""

    def __init__(self, world: World, broker, session_timeout: int):
        self.world, self.broker = world, broker
        self.node: Node = broker.node
        self.session_timeout = session_timeout
        self.last_heartbeat: dict[int, int] = {}  # member -> when its last heartbeat (or join) arrived
        self.assignment: dict[int, tuple[int, ...]] = {}
        self.rebalances = 0
        # session checks not yet known to do nothing: (the last-heard time at or before which a member
        # is expired when the check runs, the event that marks it answered), in the order they were set
        self._checks: deque[tuple[int, Event]] = deque()
        # A coordinator that comes back gives every member a fresh session (Kafka's new coordinator
        # loads the group and starts their timers again), rather than expiring them all.
        self.node.on_restart(lambda _n: self._fresh_sessions())

    def _fresh_sessions(self) -> None:
        now = self.world.now
        for m in self.last_heartbeat:
            self.last_heartbeat[m] = now
            self._expire_later()

    # ---- requests from members (they run on the broker node) ------------------------------------
    def join(self, member: int) -> Assignment:
        """Member `member` (re)joins: a rebalance, and its share of the partitions."""
        self.last_heartbeat[member] = self.world.now
        self._rebalance(member, JOINED)
        self._expire_later()
        return self.assignment_of(member)

    def heartbeat(self, member: int) -> None:
        if member in self.last_heartbeat:
            self.last_heartbeat[member] = self.world.now
            self._expire_later()

    def current(self, member: int, generation: int) -> Assignment | None:
        """None if `generation` is current; else the member's assignment now. A member that was
        expired (a zombie: alive, but its heartbeats did not arrive) is fenced and rejoins: a
        rebalance, as Kafka's consumer rejoins after UNKNOWN_MEMBER_ID."""
        if member not in self.last_heartbeat:
            return self.join(member)
        if generation == self.broker.generation:
            return None
        return self.assignment_of(member)

    def assignment_of(self, member: int) -> Assignment:
        parts = self.assignment.get(member, ())
        return Assignment(self.broker.generation, parts, tuple(self.broker.committed[p] for p in parts))

    # ---- the coordinator's own work -----------------------------------------------------------------
    def _expire_later(self) -> None:
        """A session check `session_timeout` from now (by the coordinator's clock), as Kafka's
        coordinator sets one on each heartbeat. It is a Node.unless timeout: it goes off where a
        `later` timer would have, unless _answer_checks has found by then that it will expire nobody."""
        node, now = self.node, self.world.now
        if node.may_pause:  # (_answer_checks answers none: a plain timer, and nothing kept for it)
            node.later(self.session_timeout, self._expire)
            return
        answered = pending(self.world.env)
        self._checks.append((now + node.clock.true_span(self.session_timeout) - self.session_timeout, answered))
        node.unless(self.session_timeout, answered, self._expire)
        self._answer_checks()  # (every caller has just heard from a member)

    def _answer_checks(self) -> None:
        """Mark answered the session checks that will expire nobody, oldest first: those whose
        threshold is below every member's last heartbeat now and below now. A member's last
        heartbeat only moves forward, and one who joins later is heard from later, so such a check
        finds every member within its session when it runs, and does nothing: it need not be an
        event. Only while the coordinator's node cannot pause (no pause fault on it): a pause holds
        a check past its due time, when its threshold would be later than the one judged here."""
        checks = self._checks
        if not checks:  # (none are kept while the coordinator may pause: _expire_later)
            return
        now = self.world.now
        oldest = min(self.last_heartbeat.values(), default=now)
        while checks and checks[0][0] < min(now, oldest):
            settle(checks.popleft()[1])

    def _expire(self) -> None:
        if not self.node.up:
            return  # a coordinator that is down expires nobody
        now = self.world.now
        gone = [m for m, last in sorted(self.last_heartbeat.items()) if now - last >= self.session_timeout]
        for m in gone:
            del self.last_heartbeat[m]
        if gone:
            self._rebalance(gone[0], EXPIRED)
            self._answer_checks()

    def _rebalance(self, member: int, reason: int) -> None:
        self.broker.generation += 1
        self.rebalances += 1
        members = sorted(self.last_heartbeat)
        partitions = self.broker.log.partitions
        self.assignment = {m: tuple(p for p in range(partitions) if p % len(members) == k)
                           for k, m in enumerate(members)}
        self.world.trace.add(Kind.REBALANCE, self.node.index, self.broker.generation, len(members), member, reason)
        self.broker.wake()  # a held fetch of a member whose assignment changed is answered with it
