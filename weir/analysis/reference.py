"""The reference run: the same scenario and seed without faults, kept for the next call.

The value oracles judge a run by what the fault-free run wrote (weir.analysis.oracles), and so
does window_complete for a chain with operators after its window (weir.analysis.windowed). The
reference of the last few (scenario, seed) pairs is kept, so explore and sweeps that check many
schedules of one scenario and seed run it once.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from weir.sim.scenario.run import Run, execute

__all__ = ["reference_run"]

_KEEP = 2  # references kept: a reference of a million-record run holds tens of MB
_references: OrderedDict[tuple[str, int], Run] = OrderedDict()


def reference_run(run: Any) -> Run:
    """The run of `run`'s scenario with the same seed and no faults (kept for the next call)."""
    base = run.scenario.with_faults(())
    key = (repr(base), int(run.seed))
    found = _references.get(key)
    if found is None:
        found = execute(base, run.seed, ())
        _references[key] = found
        while len(_references) > _KEEP:
            _references.popitem(last=False)
    else:
        _references.move_to_end(key)
    return found
