"""The bases a user subclasses to put their own code in a pipeline: Flink's user functions.

Each kind:
- `Operator`: what the processor computes from each batch (one output value per record); its
  state is what checkpoints snapshot and restores give back.
- `Sink`: the table the records' output lands in; `contents()` is what the checkers read.
- `WatermarkStrategy`: derives a partition's watermark from the event times it reads.
- `Source`: the upstream data the producer writes (every record's key, value and event-time delay).

A scenario names one by import path (weir.sim.scenario.components); the runtime only ever calls
these methods, so a built-in component and a user's are driven the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from weir.sim.kernel.batch import RecordBatch

__all__ = ["Operator", "Sink", "WatermarkStrategy", "Source"]


class Operator(ABC):
    """The processor's computation: a batch in, one output value per record out.

    Keep all state on the instance. `snapshot()` must return a copy that later changes do not
    touch; after a failover weir builds a fresh instance with the same parameters and calls
    `restore(snapshot)` with the last completed checkpoint's copy (or nothing, without one).
    """

    windowed = False

    @abstractmethod
    def on_batch(self, batch: RecordBatch, now: int) -> np.ndarray:
        """Process a batch at processing time `now` (the processor node's clock); return an int64 per record."""

    def open(self) -> None:
        """Called once per attempt, after `restore` (if there was a checkpoint) and before the first batch."""

    def on_watermark(self, watermark: int, now: int) -> None:
        """A watermark reached the operator (only with [watermarks]); nothing to do by default."""
        return None

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """Checkpoint `checkpoint_id` completed (Flink's CheckpointListener). Best effort, as in Flink:
        a notification can be lost (a crash, a partition, a lost message) or arrive late, so a
        later one must subsume the earlier: commit everything pending up to `checkpoint_id`. A
        completion older than one already delivered is not delivered (no lower id is committed
        after a higher one)."""

    def notify_checkpoint_aborted(self, checkpoint_id: int) -> None:
        """Checkpoint `checkpoint_id` was aborted (timed out, or the store refused it). Best effort too;
        it does not mean that what was processed since the last checkpoint is to be discarded."""

    def close(self) -> None:
        """The job finished (the run drained) with this operator running. Not called on a failover:
        a failed attempt's operator is dropped, as Flink disposes of it."""

    def snapshot(self) -> Any:
        """A copy of the state, for a checkpoint. Stateless operators need not override this."""
        return None

    def restore(self, snapshot: Any) -> None:
        """Take back a snapshot made by `snapshot()`."""

    def state_size(self) -> int:
        """How many state entries there are (a snapshot's size is this times state_entry_bytes)."""
        return 0

    def changed_entries(self) -> int:
        """Entries changed since the last snapshot (what an incremental snapshot writes)."""
        return self.state_size()


class Sink(ABC):
    """A durable table that a record pipeline writes to. It survives every crash."""

    kind = "custom"

    @abstractmethod
    def write(self, batch: RecordBatch, value: np.ndarray, written_at: int) -> int:
        """Write the batch's rows (its records with the operator's values); return how many already existed."""

    @abstractmethod
    def contents(self) -> dict[str, np.ndarray]:
        """The table's rows as int64 columns; at least "record_id" (the checkers count those)."""

    def close(self) -> None:
        """Release what the table holds (called once the run's results are read)."""


class WatermarkStrategy(ABC):
    """A partition's watermark generator: sees every event time read, says where the watermark is."""

    def __init__(self, bound: int = 0):
        self.bound = bound

    @abstractmethod
    def on_event(self, ts: int, marker: bool = False) -> None:
        """An event with timestamp `ts` was read from the partition."""

    @abstractmethod
    def current(self) -> int:
        """The partition's watermark now: no more events with a timestamp <= it are expected."""


class Source(ABC):
    """The upstream data: every record's key, value and event-time delay, drawn up front."""

    @abstractmethod
    def generate(self, rng: np.random.Generator, records: int, keys: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (keys in 0..keys-1, values, delays in us >= 0), each an int64 array of length `records`.

        Draw every random number from `rng` (the run's `workload` stream): that keeps runs replayable.
        """
