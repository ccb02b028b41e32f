"""Crash-restart (a node stops at `at`, loses its volatile state, and comes back `down_for` later)
and crash-stop (it never comes back)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from weir.sim.kernel.world import World

if TYPE_CHECKING:
    from weir.sim.scenario.model import Fault

__all__ = ["install_crash", "install_stop"]


def install_crash(world: World, fault: Fault) -> None:
    """Schedule the crash. The run may not end before the node is up again (boot time included)."""
    release = world.hold()
    node = world.node(fault.node)

    def _fault():
        yield world.env.timeout(fault.at)
        if node.crash(fault.down_for):
            yield world.env.timeout(fault.down_for)
            yield node.when_up()
        release()

    world.env.process(_fault())


def install_stop(world: World, fault: Fault) -> None:
    """Crash-stop: the node crashes at `at` and never comes back (`down_for` is not used)."""
    release = world.hold()
    node = world.node(fault.node)

    def _stop(_ev) -> None:
        node.crash(None)
        release()

    world.env.timeout(fault.at).callbacks.append(_stop)
