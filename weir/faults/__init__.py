"""Fault schedules and the search for the ones that break a pipeline.

What a fault is lives in the scenario format (`weir.Fault`, a scenario's `[[faults]]`), and how
each kind acts on a world lives in the kernel (`weir.sim.kernel.inject`), so that a run needs
nothing from this package. Here: random schedules and exploration with shrinking
(`weir.faults.explore`), hypothesis strategies (`weir.faults.strategies`), crash points
(`weir.faults.coverage`) and the pattern x fault matrix (`weir.faults.matrix`).
"""

from __future__ import annotations

from weir.sim.kernel.inject import install
from weir.sim.scenario.model import FAULT_KINDS, LINK_KINDS, Fault

__all__ = ["Fault", "FAULT_KINDS", "LINK_KINDS", "install"]
