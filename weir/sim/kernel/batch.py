"""Record batches: numpy columns, the unit in which records move."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["RecordBatch", "Column", "values_digest"]


@dataclass(frozen=True, eq=False)
class RecordBatch:
    """Records of one partition read from offset first_offset on.

    The columns are record id, key, event time and value. Usually the records are consecutive,
    offsets first_offset .. first_offset + len - 1, and the offsets are not stored. A
    read_committed fetch skips aborted records: then `offsets` holds the offsets of the records
    kept, and `next_offset` where the consumer continues (past the skipped ones too).
    """

    partition_id: int
    first_offset: int
    record_id: np.ndarray
    key: np.ndarray
    event_time: np.ndarray
    value: np.ndarray
    offsets: np.ndarray | None = None
    next_offset: int | None = None

    def __len__(self) -> int:
        return len(self.record_id)

    @property
    def end_offset(self) -> int:
        """Where the consumer continues: what it commits once it is done with the batch."""
        return self.first_offset + len(self.record_id) if self.next_offset is None else self.next_offset

    @property
    def partition(self) -> np.ndarray:
        return np.full(len(self), self.partition_id, dtype=np.int64)

    def take(self, mask: np.ndarray) -> "RecordBatch":
        """The records where `mask` is set, as a batch of the same partition, first offset and end
        offset (what acknowledging it moves the consumer to), carrying their own offsets."""
        return RecordBatch(self.partition_id, self.first_offset, self.record_id[mask], self.key[mask],
                           self.event_time[mask], self.value[mask], self.offset[mask], self.end_offset)

    @property
    def offset(self) -> np.ndarray:
        if self.offsets is not None:
            return self.offsets
        return np.arange(self.first_offset, self.first_offset + len(self.record_id), dtype=np.int64)


class Column:
    """A growable column, int64 unless told (amortised O(1) append of a block)."""

    __slots__ = ("_data", "_n")

    def __init__(self, capacity: int = 1024, dtype: type = np.int64):
        self._data = np.empty(max(capacity, 16), dtype=dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def extend(self, values: np.ndarray) -> None:
        k = len(values)
        need = self._n + k
        if need > len(self._data):
            grown = np.empty(max(need, 2 * len(self._data)), dtype=self._data.dtype)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : need] = values
        self._n = need

    def fill(self, start: int, stop: int, value: int) -> None:
        """Set [start, stop) to `value` (for marking, such as a transaction's outcome)."""
        self._data[start:stop] = value

    def release(self) -> None:
        """Drop the data (the column is empty after): what is read out of it is all that is left."""
        self._data = np.empty(0, dtype=self._data.dtype)  # not a view of the old buffer: that would keep it
        self._n = 0

    def copy(self, start: int, stop: int) -> np.ndarray:
        """A copy of [start, stop), read-only like a view."""
        v = self._data[start : min(stop, self._n)].copy()
        v.flags.writeable = False
        return v

    def view(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """A read-only view of [start, stop) (no copy)."""
        v = self._data[start : self._n if stop is None else min(stop, self._n)]
        v.flags.writeable = False
        return v


def values_digest(values: np.ndarray) -> int:
    """A CRC-32 of a batch's output values as int64: what the trace keeps of them."""
    return zlib.crc32(np.ascontiguousarray(values, dtype=np.int64).tobytes())
