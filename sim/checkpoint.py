"""Completed checkpoints and the durable store that keeps them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Checkpoint", "CheckpointStore"]


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A completed checkpoint: source offsets and operator state taken at the same barrier."""

    id: int
    offsets: tuple[int, ...]
    state: Any  # per processor subtask: (its operator's snapshot, the in-flight batches an unaligned checkpoint saved)
    state_size: int  # keys or open windows in it, over all subtasks
    completed_at: int
    sink_state: Any = None  # a transactional sink's pending transactions, as (checkpoint, txn) pairs


class CheckpointStore:
    """Durable storage for completed checkpoints (the last `retain`) and the checkpoint id counter."""

    def __init__(self, retain: int):
        self.retain = retain
        self.completed: list[Checkpoint] = []
        self.total_completed = 0
        self._next_id = 1
        # The coordinator's bookkeeping, kept with the store (Flink keeps it in its HA services).
        self.triggered = 0
        self.timed_out = 0
        self.consecutive_failures = 0
        self.last_end = -(2**62)  # when the last checkpoint completed or failed (for min_pause)
        self.max_duration = 0
        self.max_bytes = 0
        self.unwritten_entries = 0  # changes an aborted incremental checkpoint did not get to write

    def new_id(self) -> int:
        n = self._next_id
        self._next_id += 1
        return n

    def add(self, checkpoint: Checkpoint) -> None:
        self.completed.append(checkpoint)
        self.total_completed += 1
        del self.completed[: -self.retain]

    def latest(self) -> Checkpoint | None:
        return self.completed[-1] if self.completed else None
