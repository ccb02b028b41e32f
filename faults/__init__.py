"""Faults that weir injects, and the schedules that place them in time."""

from __future__ import annotations

from collections.abc import Iterable

from sim.kernel import World
from sim.scenario import Fault

from .crash import install_crash, install_stop
from .network import install_clock_step, install_link_fault, install_partition, install_pause
from .windows import install_window

__all__ = ["Fault", "install", "install_crash", "install_window", "install_partition", "install_clock_step",
           "install_pause"]

_INSTALLERS = {"crash": install_crash, "stop": install_stop, "sink_fail": install_window, "sink_slow": install_window,
               "sink_ack_lost": install_window, "partition": install_partition, "clock_step": install_clock_step,
               "store_fail": install_window, "store_slow": install_window, "store_torn": install_window,
               "pause": install_pause, "slow": install_window, "delay": install_link_fault,
               "loss": install_link_fault, "late_burst": install_window,
               "duplicate": install_link_fault, "reorder": install_link_fault}


def install(world: World, faults: Iterable[Fault]) -> None:
    """Schedule every fault of a schedule in `world`, in the order given."""
    for fault in faults:
        _INSTALLERS[fault.kind](world, fault)
