"""Record batches: numpy columns, the unit in which records move."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["RecordBatch", "Column", "values_digest", "NARROW_COLUMNS", "dtype_of"]

#: Columns held as int32 where weir stores records (the log, its own sinks, a run's `source` and
#: `sink`): record ids, keys, partitions and offsets are bounded (at most 10 million records and
#: keys, a payment re-send at most doubling the ids, 10,000 partitions), so half the bytes of int64
#: are enough. A batch handed to an operator or a sink carries int64 columns all the same.
NARROW_COLUMNS = ("record_id", "key", "partition", "offset")


def dtype_of(column: str) -> type:
    """The dtype weir stores a record column in: int32 for NARROW_COLUMNS, int8 for a record's
    transaction state, int64 for everything else (times and values)."""
    return np.int32 if column in NARROW_COLUMNS else np.int8 if column == "state" else np.int64


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
        self._data: np.ndarray = np.empty(max(capacity, 16), dtype=dtype)
        self._n = 0

    @classmethod
    def over(cls, room: np.ndarray) -> "Column":
        """An empty column that fills `room` (a slice of a larger buffer) in place, and moves to a
        buffer of its own only if it outgrows it."""
        col = cls.__new__(cls)
        col._data, col._n = room, 0
        return col

    def __len__(self) -> int:
        return self._n

    def extend(self, values: np.ndarray) -> None:
        need = self._n + len(values)
        if need > len(self._data):
            self._grow(need)
        self._data[self._n : need] = values
        self._n = need

    def _grow(self, need: int) -> None:
        """Room for `need`: a quarter more (amortised O(1) still, and at most 25% unused at the end)."""
        grown = np.empty(max(need, len(self._data) + len(self._data) // 4), dtype=self._data.dtype)
        grown[: self._n] = self._data[: self._n]
        self._data = grown

    def extend_with(self, n: int, value: int) -> None:
        """Append `n` copies of `value` (extend with no temporary array)."""
        need = self._n + n
        if need > len(self._data):
            self._grow(need)
        self._data[self._n : need] = value
        self._n = need

    def fill(self, start: int, stop: int, value: int) -> None:
        """Set [start, stop) to `value` (for marking, such as a transaction's outcome)."""
        self._data[start:stop] = value

    def shrink(self) -> None:
        """Let go of the room beyond what is held (a copy of it, the exact length): before views of
        the whole column are handed out for good, which would keep the room alive with them. Not
        for a little room (at most an eighth, as when the column was sized for what it holds):
        the copy would cost more, in time and in fresh memory, than the room it gives back."""
        if len(self._data) - self._n > max(self._n // 8, 64):
            self._data = self._data[: self._n].copy()

    def release(self) -> None:
        """Drop the data (the column is empty after): what is read out of it is all that is left."""
        self._data = np.empty(0, dtype=self._data.dtype)  # not a view of the old buffer: that would keep it
        self._n = 0

    def copy(self, start: int, stop: int) -> np.ndarray:
        """A copy of [start, stop) as int64 (however narrow the column is held), read-only like a view."""
        v = self._data[start : min(stop, self._n)].astype(np.int64)
        v.setflags(write=False)  # (a third cheaper than v.flags.writeable = False: no flags object)
        return v

    def view(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """A read-only view of [start, stop) (no copy)."""
        v = self._data[start : self._n if stop is None else min(stop, self._n)]
        v.setflags(write=False)
        return v


def values_digest(values: np.ndarray) -> int:
    """A CRC-32 of a batch's output values as int64: what the trace keeps of them."""
    return zlib.crc32(np.ascontiguousarray(values, dtype=np.int64).data)  # its buffer: no bytes copy
