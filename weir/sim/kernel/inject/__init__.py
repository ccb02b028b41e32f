"""How each kind of fault acts on a world: timed calls on the kernel's own fault mechanisms.

A fault (`weir.Fault`, one entry of a scenario's `[[faults]]`) names a kind, a node and a time.
Installing it schedules what the kernel already knows how to do: crash or stop a node
(`Node.crash`), pause it (`Node.pause`), cut links or make them slow, lossy, duplicating or
reordering (`Network.cut`, `Network.link_faults`), step a clock, or open a window of time that the
code it affects consults when it acts (`World.active_fault`: sink and checkpoint-store faults, slow
nodes, late bursts).

This sits in the kernel, below the scenario layer that runs it (`weir.sim.scenario.run`), so that
the run needs nothing from above it. Choosing and searching fault schedules (random schedules,
hypothesis strategies, exploration, crash points, the matrix) is `weir.faults`, above the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from weir.sim.kernel.inject.crash import install_crash, install_stop
from weir.sim.kernel.inject.network import install_clock_step, install_link_fault, install_partition, install_pause
from weir.sim.kernel.inject.windows import install_window
from weir.sim.kernel.world import World

if TYPE_CHECKING:
    from weir.sim.scenario.model import Fault

__all__ = ["install", "install_crash", "install_stop", "install_window", "install_partition", "install_clock_step",
           "install_pause", "install_link_fault"]

_INSTALLERS = {"crash": install_crash, "stop": install_stop, "sink_fail": install_window, "sink_slow": install_window,
               "sink_ack_lost": install_window, "sink_commit_fail": install_window,
               "sink_overload": install_window, "partition": install_partition, "clock_step": install_clock_step,
               "store_fail": install_window, "store_slow": install_window, "store_torn": install_window,
               "pause": install_pause, "slow": install_window, "delay": install_link_fault,
               "loss": install_link_fault, "late_burst": install_window,
               "duplicate": install_link_fault, "reorder": install_link_fault, "partition_slow": install_window}


def install(world: World, faults: Iterable[Fault]) -> None:
    """Schedule every fault of a schedule in `world`, in the order given."""
    for fault in faults:
        _INSTALLERS[fault.kind](world, fault)
