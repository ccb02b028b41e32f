"""Faults that weir injects, and the schedules that place them in time."""

from __future__ import annotations

from collections.abc import Iterable

from sim.kernel import World
from sim.scenario import Fault

from .crash import install_crash, install_stop
from .network import install_clock_step, install_link_fault, install_partition, install_pause
from .sink import install_sink_fault

__all__ = ["Fault", "install", "install_crash", "install_sink_fault", "install_partition", "install_clock_step",
           "install_pause"]

_INSTALLERS = {"crash": install_crash, "stop": install_stop, "sink_fail": install_sink_fault, "sink_slow": install_sink_fault,
               "sink_ack_lost": install_sink_fault, "partition": install_partition, "clock_step": install_clock_step,
               "store_fail": install_sink_fault, "store_slow": install_sink_fault, "store_torn": install_sink_fault,
               "pause": install_pause, "slow": install_sink_fault, "delay": install_link_fault,
               "loss": install_link_fault, "late_burst": install_sink_fault}


def install(world: World, faults: Iterable[Fault]) -> None:
    """Schedule every fault of a schedule in `world`, in the order given."""
    for fault in faults:
        _INSTALLERS[fault.kind](world, fault)
