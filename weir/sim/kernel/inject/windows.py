"""Faults that are windows of time, consulted by whatever they affect when it acts.

The sink's writes fail, slow down or lose their acknowledgement (sink_*); the checkpoint store
refuses, slows down or tears writes (store_*); a node works `factor` times slower (slow); a
producer stamps its records late (late_burst); a partition's records become readable only in
bursts (partition_slow: weir/sim/kafka/log.py, Broker.fetch).

They are hooks, not processes: `install_window` puts the fault in `world.fault_windows`, and the
code it affects asks `world.active_fault(kind, node)` when it acts (weir/sim/stream/sink_task.py,
stream_task.py, coordinator.py, weir/sim/kafka/producer.py). A write that starts inside a window:
- `sink_fail`: fails, nothing applied (the sink retries it after a backoff, see weir/sim/patterns/dlq.py);
- `sink_slow`: takes `slow_by` longer;
- `sink_ack_lost`: is applied, but its acknowledgement is lost: the sink sees a timeout and
  retries, writing the rows again (an append sink duplicates them; an upsert absorbs them). Inside
  a transaction (the transactional sink) it cannot retry: the job fails over and aborts it.
A commit of a two-phase-commit sink (on a completion notification, or on restore) inside a
`sink_commit_fail` window fails: the job fails over, and the restore commits it again. In a
`sink_overload` window the sink takes one write attempt per `slow_by` (all sink subtasks together):
an attempt sooner than that after the previous one, refused or not, is refused as retryable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from weir.sim.kernel.world import World

if TYPE_CHECKING:
    from weir.sim.scenario.model import Fault

__all__ = ["install_window"]


def install_window(world: World, fault: Fault) -> None:
    """Register the window; the run may not end before it is over."""
    release = world.hold()
    world.fault_windows.append(fault)
    world.env.timeout(fault.at + fault.down_for).callbacks.append(lambda _ev: release())
