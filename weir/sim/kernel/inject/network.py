"""Network partitions and clock steps.

A partition cuts the links between `fault.node` (with the nodes in `group` on its side) and its
`peers` (every other node if none are named) from `at` for `down_for`: both ways, or only outbound (node -> peers) or inbound (peers ->
node), so asymmetric partitions are possible. A message that arrives on a cut link is lost (DROP
in the trace); requests time out and are retried, heartbeats stop arriving. Nodes stay up: nothing
they hold in memory is lost, which is what makes a partition different from a crash.

A pause freezes a node for `down_for` (a stop-the-world GC pause, Node.pause): its timers
(heartbeats, polls, checkpoint triggers, request timeouts) go off only when it resumes, work under
way on it ends that much later, what it sends leaves when it resumes and what is sent to it is taken
in then. What it does between two waits takes no simulated time, so it is never cut in half.

A delay makes the messages on the same links take `slow_by` longer (links stay FIFO: TCP does not
reorder; messages on different links do interleave differently); a loss loses each of them with
chance `rate`, from the link's own seeded stream, with the same consequences as a partition.
A duplicate delivers a request or reply twice with chance `rate` (a retrying proxy, a packet resent
on a new connection): the server runs the request twice, so only idempotent handlers are safe; the
client takes the first answer. A reorder adds a drawn delay of up to `slow_by` to each message and
lets requests and replies overtake each other (an older offset commit can land after a newer one).
On connections between tasks (ordered), the transport hides both: duplicates are dropped, and a
reordered message holds back the ones behind it.

A clock step moves one node's clock by `by` at `at` (an NTP correction; negative: backwards).
Everything that reads that node's clock feels it: event-time stamps of a producer,
processing-time timers, the sink's `written_at`, TTLs stamped with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import replace

from weir.sim.kernel.world import World

if TYPE_CHECKING:
    from weir.sim.scenario.model import Fault

__all__ = ["install_partition", "install_clock_step", "install_pause", "install_link_fault"]


def _links(world: World, fault: Fault) -> list[tuple[int, int]]:
    """The links (src, dst) a partition, delay or loss fault covers."""
    side = [world.node(n) for n in (fault.node, *fault.group)]
    peers = [world.node(n) for n in fault.peers] or [n for n in world.nodes.values() if n not in side]
    links = []
    for node in side:
        for peer in peers:
            if fault.direction in ("both", "outbound"):
                links.append((node.index, peer.index))
            if fault.direction in ("both", "inbound"):
                links.append((peer.index, node.index))
    return links


def install_link_fault(world: World, fault: Fault) -> None:
    """delay (messages take slow_by longer), loss (each is lost with chance `rate`), duplicate (each
    request or reply is delivered twice with chance `rate`) or reorder (each takes up to slow_by
    longer, and requests may overtake each other), for down_for. See Network.send."""
    release = world.hold()
    entry = (fault, frozenset(_links(world, fault)))
    active = world.net.link_faults
    world.env.timeout(fault.at).callbacks.append(lambda _ev: active.append(entry))

    def _heal(_ev) -> None:
        active.remove(entry)
        release()

    world.env.timeout(fault.at + fault.down_for).callbacks.append(_heal)


def install_partition(world: World, fault: Fault) -> None:
    release = world.hold()
    links = _links(world, fault)
    cut = world.net.cut

    def _start(_ev) -> None:
        for link in links:
            cut[link] = cut.get(link, 0) + 1

    def _heal(_ev) -> None:
        for link in links:
            cut[link] -= 1
        release()

    world.env.timeout(fault.at).callbacks.append(_start)
    world.env.timeout(fault.at + fault.down_for).callbacks.append(_heal)


def install_clock_step(world: World, fault: Fault) -> None:
    node = world.node(fault.node)

    def _step(_ev) -> None:
        node.clock = replace(node.clock, offset=node.clock.offset + fault.by)

    world.env.timeout(fault.at).callbacks.append(_step)


def install_pause(world: World, fault: Fault) -> None:
    """A stop-the-world pause: from `at` for `down_for` the node's messages wait, both ways."""
    release = world.hold()
    node = world.node(fault.node)
    node.may_pause = True
    world.env.timeout(fault.at).callbacks.append(lambda _ev: node.pause(fault.down_for))
    world.env.timeout(fault.at + fault.down_for).callbacks.append(lambda _ev: release())
