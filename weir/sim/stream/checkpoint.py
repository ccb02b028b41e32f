"""Completed checkpoints and the durable store that keeps them."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

__all__ = ["Checkpoint", "CheckpointStore"]


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A completed checkpoint: source offsets and operator state taken at the same barrier."""

    id: int
    offsets: tuple[int, ...]
    state: Any  # per processor subtask: (its operator's snapshot, the in-flight batches an unaligned checkpoint saved)
    state_size: int  # keys or open windows in it, over all subtasks
    completed_at: int
    sink_state: Any = None  # per sink subtask: its pending transactions ((checkpoint, TxnHolder) pairs) and the open one
    checksum: int | None = None  # over the id, offsets and size; None: computed (a whole write)

    def __post_init__(self) -> None:
        if self.checksum is None:
            object.__setattr__(self, "checksum", self.expected_checksum())

    def expected_checksum(self) -> int:
        data = np.array([self.id, self.state_size, *self.offsets], dtype=np.int64).tobytes()
        return zlib.crc32(data)

    @property
    def intact(self) -> bool:
        """Whether the stored checksum matches (a torn write does not)."""
        return self.checksum == self.expected_checksum()

    def torn(self) -> "Checkpoint":
        """This checkpoint as a torn write leaves it: stored, with a checksum that does not match."""
        return replace(self, checksum=self.expected_checksum() ^ 0xFFFF)


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
        self.write_failures = 0  # checkpoints the store refused to write (store_fail)
        self.torn_skipped = 0  # torn checkpoints a restore found and skipped

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

    def latest_intact(self) -> tuple[Checkpoint | None, list[Checkpoint]]:
        """The newest checkpoint whose checksum holds, and the torn ones newer than it (skipped)."""
        torn = []
        for cp in reversed(self.completed):
            if cp.intact:
                return cp, torn
            torn.append(cp)
        return None, torn
