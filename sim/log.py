"""A Kafka-like partitioned log on a broker node, with committed consumer offsets.

Everything here is durable: the log is replicated and fsync'd, and the consumer group's committed
offsets are stored on the broker, so a broker crash makes it unavailable but loses nothing.
"""

from __future__ import annotations

import zlib

import numpy as np

from .batch import Column, RecordBatch
from .kernel import Node, World
from .partitioner import partition_for
from .trace import Kind

__all__ = ["PartitionedLog", "Broker"]


class PartitionedLog:
    """N partitions, each an append-only sequence of records with dense offsets from 0."""

    def __init__(self, partitions: int, capacity: int | list[int] = 1024):
        self.partitions = partitions
        caps = capacity if isinstance(capacity, list) else [capacity] * partitions
        self._cols = [{name: Column(caps[p]) for name in ("record_id", "key", "event_time", "value")}
                      for p in range(partitions)]

    def end_offset(self, p: int) -> int:
        """The offset the next record appended to partition `p` will get (its length)."""
        return len(self._cols[p]["record_id"])

    def end_offsets(self) -> list[int]:
        return [self.end_offset(p) for p in range(self.partitions)]

    def append(self, p: int, record_id: np.ndarray, key: np.ndarray, event_time: np.ndarray, value: np.ndarray) -> int:
        """Append records to partition `p`; return the offset of the first."""
        first = self.end_offset(p)
        cols = self._cols[p]
        cols["record_id"].extend(record_id)
        cols["key"].extend(key)
        cols["event_time"].extend(event_time)
        cols["value"].extend(value)
        return first

    def read(self, p: int, offset: int, max_records: int) -> RecordBatch:
        """Up to `max_records` records of partition `p` from `offset` (an empty batch at the end)."""
        cols = self._cols[p]
        stop = offset + max_records
        return RecordBatch(p, offset, cols["record_id"].view(offset, stop), cols["key"].view(offset, stop),
                           cols["event_time"].view(offset, stop), cols["value"].view(offset, stop))

    def contents(self) -> dict[str, np.ndarray]:
        """Every record as columns (partition, offset, record_id, key, event_time, value), by partition then offset."""
        sizes = self.end_offsets()
        out = {"partition": np.repeat(np.arange(self.partitions, dtype=np.int64), sizes),
               "offset": np.concatenate([np.arange(n, dtype=np.int64) for n in sizes])}
        for name in ("record_id", "key", "event_time", "value"):
            out[name] = np.concatenate([self._cols[p][name].view() for p in range(self.partitions)])
        return out


class Broker:
    """The log's node: appends from the producer, fetches and offset commits from the consumer.

    Durable: the log, the committed offsets, the producer's next expected record id (so a retried
    append is not written twice: Kafka's idempotent producer, for a single producer; with
    `idempotent` off a retry is appended again, a duplicate in the log) and the group
    generation (a commit from an older generation of the consumer group is rejected, as Kafka
    rejects commits with an illegal generation after a rebalance).
    """

    def __init__(self, world: World, node: Node, partitions: int, capacity: int | list[int], idempotent: bool = True):
        self.world = world
        self.node = node
        self.idempotent = idempotent
        self.log = PartitionedLog(partitions, capacity)
        self.committed = [0] * partitions
        self.generation = 0
        self._producer_next_id = 0
        self._on_commit: list = []

    def on_commit(self, listener) -> None:
        self._on_commit.append(listener)

    def append(self, first_id: int, key: np.ndarray, event_time: np.ndarray, value: np.ndarray) -> bool:
        """Append a producer batch of records first_id.. (each to its key's partition, as Kafka's partitioner does)."""
        n = len(key)
        checksum = zlib.crc32(value.tobytes(), zlib.crc32(key.tobytes()))
        if self.idempotent and first_id < self._producer_next_id:  # a retry of a batch already written
            self.world.trace.add(Kind.PRODUCE, self.node.index, first_id, n, 1, checksum)
            return True
        record_id = np.arange(first_id, first_id + n, dtype=np.int64)
        part = partition_for(key, self.log.partitions)
        order = np.argsort(part, kind="stable")  # by partition, keeping the batch's order within each
        bounds = np.searchsorted(part[order], np.arange(self.log.partitions + 1))
        for p in range(self.log.partitions):
            lo, hi = bounds[p], bounds[p + 1]
            if hi > lo:
                idx = order[lo:hi]
                self.log.append(p, record_id[idx], key[idx], event_time[idx], value[idx])
        self._producer_next_id = max(self._producer_next_id, first_id + n)
        self.world.trace.add(Kind.PRODUCE, self.node.index, first_id, n, 0, checksum)
        return True

    def join(self, generation: int) -> list[int]:
        """A consumer (re)joins the group as `generation`: older generations are fenced from now on."""
        self.generation = max(self.generation, generation)
        return list(self.committed)

    def fetch(self, positions: list[int], start: int, max_records: int) -> RecordBatch | None:
        """The next batch from the first partition, round-robin from `start`, that has records."""
        log = self.log
        for i in range(log.partitions):
            p = (start + i) % log.partitions
            if positions[p] < log.end_offset(p):
                return log.read(p, positions[p], max_records)
        return None

    def commit(self, offsets: dict[int, int], generation: int) -> bool:
        """Set committed offsets (the next offset to read), unless `generation` is stale."""
        accepted = generation == self.generation
        for p, offset in offsets.items():
            if accepted:
                self.committed[p] = offset
            self.world.trace.add(Kind.COMMIT, self.node.index, p, offset, generation, int(accepted))
        if accepted:
            for listener in self._on_commit:
                listener()
        return accepted

    def caught_up(self) -> bool:
        """Whether every partition's committed offset is at its end."""
        log = self.log
        return all(self.committed[p] == log.end_offset(p) for p in range(log.partitions))
