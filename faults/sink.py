"""Sink and checkpoint-store faults: windows of time in which writes fail, slow down, lose their
acknowledgement (sink) or are torn (checkpoint store: sim/coordination.py consults the same list).

They are hooks, not processes: `install_sink_fault` puts the fault in `world.sink_faults`, and the
sink consults it on each write (sim/pipeline.py). A write that starts inside a window:
- `sink_fail`: fails, nothing applied (the sink retries it after a backoff, see sim/dlq.py);
- `sink_slow`: takes `slow_by` longer;
- `sink_ack_lost`: is applied, but its acknowledgement is lost: the sink sees a timeout and
  retries, writing the rows again (an append sink duplicates them; an upsert absorbs them).
"""

from __future__ import annotations

from sim.kernel import World
from sim.scenario import Fault

__all__ = ["install_sink_fault"]


def install_sink_fault(world: World, fault: Fault) -> None:
    """Register the window; the run may not end before it is over."""
    release = world.hold()
    world.sink_faults.append(fault)
    world.env.timeout(fault.at + fault.down_for).callbacks.append(lambda _ev: release())
