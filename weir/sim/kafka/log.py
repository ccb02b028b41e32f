"""A Kafka-like partitioned log on a broker node, with committed consumer offsets.

Everything here is durable: the log is replicated and fsync'd, and the consumer group's committed
offsets are stored on the broker, so a broker crash makes it unavailable but loses nothing.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
from simpy.events import PENDING

from weir.sim.kernel.batch import Column, RecordBatch, dtype_of
from weir.sim.kernel.memory import BIG_RUN, trim
from weir.sim.kernel.world import Node, World
from weir.sim.kafka.partitioner import partition_for
from weir.sim.kernel.timer import pending, succeed
from weir.sim.kernel.trace import Kind

__all__ = ["PartitionedLog", "Broker", "COMMITTED", "OPEN", "ABORTED"]


COMMITTED, OPEN, ABORTED = 0, 1, 2  # a record's transaction state (plain records are committed at once)
_COLUMNS = ("record_id", "key", "event_time", "value", "state")
_NARROW_PARTITIONS = np.iinfo(np.int16).max  # up to this many, partition ids fit in 16 bits
_FEW_RECORDS = 8  # a producer batch of at most this many is split by partition in Python, not numpy


class PartitionedLog:
    """N partitions, each an append-only sequence of records with dense offsets from 0."""

    def __init__(self, partitions: int, capacity: int | list[int] = 1024):
        self.partitions = partitions
        caps = capacity if isinstance(capacity, list) else [capacity] * partitions
        # One buffer per column for all partitions, each partition's room after the one before's:
        # a log that ends with every partition exactly as long as its room (a run sized for its
        # workload, produced once) is read out as those buffers, no copy (`contents`). A partition
        # that outgrows its room moves to a buffer of its own (weir.sim.kernel.batch.Column).
        # A record's transaction state takes a byte, its id and key four (batches read out are int64).
        self._rooms = np.concatenate([[0], np.cumsum(caps)]).tolist()
        self._buffers = {name: np.empty(self._rooms[-1], dtype_of(name)) for name in _COLUMNS}
        self._cols = [{name: Column.over(self._buffers[name][self._rooms[p]:self._rooms[p + 1]]) for name in _COLUMNS}
                      for p in range(partitions)]

    def end_offset(self, p: int) -> int:
        """The offset the next record appended to partition `p` will get (its length)."""
        return len(self._cols[p]["record_id"])

    def end_offsets(self) -> list[int]:
        return [self.end_offset(p) for p in range(self.partitions)]

    def records_from(self, offsets: list[int]) -> int:
        """How many records are at or past `offsets` (one per partition)."""
        return sum(max(0, self.end_offset(p) - o) for p, o in enumerate(offsets))

    def append(self, p: int, record_id: np.ndarray, key: np.ndarray, event_time: np.ndarray, value: np.ndarray,
               state: int = COMMITTED) -> int:
        """Append records to partition `p`; return the offset of the first."""
        first = self.end_offset(p)
        cols = self._cols[p]
        cols["record_id"].extend(record_id)
        cols["key"].extend(key)
        cols["event_time"].extend(event_time)
        cols["value"].extend(value)
        cols["state"].extend_with(len(record_id), state)
        return first

    def mark(self, p: int, start: int, stop: int, state: int) -> None:
        """Set the transaction state of partition p's records [start, stop)."""
        self._cols[p]["state"].fill(start, stop, state)

    def read(self, p: int, offset: int, stop: int, skip_aborted: bool = False) -> RecordBatch:
        """The records of partition `p` in [offset, stop); without the aborted ones if asked."""
        cols = self._cols[p]
        # copies, not views: a batch kept somewhere (in flight, in a checkpoint) must not keep the
        # whole partition's buffer alive once the log is read out at the end of the run
        columns = [cols[name].copy(offset, stop) for name in ("record_id", "key", "event_time", "value")]
        if skip_aborted:
            kept = cols["state"].view(offset, stop) != ABORTED
            if not kept.all():
                offsets = np.flatnonzero(kept) + offset
                return RecordBatch(p, offset, *(c[kept] for c in columns), offsets=offsets,
                                   next_offset=min(stop, self.end_offset(p)))
        return RecordBatch(p, offset, *columns)

    def contents(self, release: bool = False) -> dict[str, np.ndarray]:
        """Every record as columns (partition, offset, record_id, key, event_time, value, state), by
        partition then offset; in weir.sim.kernel.batch.dtype_of's dtypes (int32 ids, keys,
        partitions and offsets; int64 times and values; int8 state). With `release` the log lets go of each
        column once it is copied out (it is empty after): the end of a run, where the log and its
        copy would otherwise both be held; a column whose partitions each fill their room exactly
        is not copied at all, but handed over."""
        sizes = self.end_offsets()
        # every partition exactly as long as its room (so it never outgrew it): the buffers are the columns
        hand_over = release and sizes == np.diff(self._rooms).tolist()
        big = sum(sizes) >= BIG_RUN  # a small log's columns are not worth a trim
        stored = {}
        for name in _COLUMNS:  # the stored columns first, so that at most one is held twice at a time
            cols = [self._cols[p][name] for p in range(self.partitions)]
            if hand_over:
                stored[name] = self._buffers[name]  # handed over
            else:
                stored[name] = np.concatenate([col.view() for col in cols])
            if release:
                for col in cols:
                    col.release()
                self._buffers[name] = np.empty(0, dtype_of(name))
                if big:
                    trim()
        return {"partition": np.repeat(np.arange(self.partitions, dtype=dtype_of("partition")), sizes),
                "offset": np.concatenate([np.arange(n, dtype=dtype_of("offset")) for n in sizes]), **stored}


class Broker:
    """The log's node: appends from the producer, fetches and offset commits from the consumer.

    Durable: the log, the committed offsets, each producer's next expected record id (so a retried
    append is not written twice: Kafka's idempotent producer, by producer id and sequence; with
    `idempotent` off a retry is appended again, a duplicate in the log) and the group
    generation (a commit from an older generation of the consumer group is rejected, as Kafka
    rejects commits with an illegal generation after a rebalance).
    """

    def __init__(self, world: World, node: Node, partitions: int, capacity: int | list[int], idempotent: bool = True,
                 fencing: bool = True, transaction_timeout: int | None = None):
        self.world = world
        self.node = node
        self.idempotent = idempotent
        self.log = PartitionedLog(partitions, capacity)
        self.committed = [0] * partitions
        self.generation = 0
        self._producer_next_id: dict[int, int] = {}  # per producer id: the next record id it may send
        self._on_commit: list = []
        # The transaction coordinator's view of the one transactional producer:
        self.producer_epoch = 0
        self.producer_position = 0  # the upstream position, committed with each transaction (sendOffsetsToTransaction)
        self.open_txn: int | None = None
        self._open_ranges: dict[int, list[int]] = {}  # partition -> [first, end) of the open transaction's records
        self.fenced = 0  # requests refused from an older epoch (zombies)
        # Kafka's coordinator refuses an older epoch's requests; off, a zombie's writes and commits land
        self.fencing = fencing
        # transaction.timeout.ms: an open transaction older than this is aborted by the coordinator,
        # which bumps the epoch, so the producer that had it open is fenced (None: no timeout)
        self.transaction_timeout = transaction_timeout
        self._init_request = 0  # the last InitProducerId request answered
        self._txn_opened = 0  # transactions opened so far (a timer knows the one it was started for)
        # partition_slow faults: per partition, (time, end offset) after each append; decided at the
        # first append (the faults are installed before anything is produced): False if there are none
        self._appended: list[list[tuple[int, int]]] | bool | None = None
        # fetches held for records (long polls, fetch.max.wait.ms): [try again, answer], in arrival order;
        # a crash of the broker loses them (their callers time out and ask again)
        self._held: list[list[Any]] = []
        self._waking = self._woken = False  # wake() is running; a try it made woke the broker again
        node.on_crash(lambda _node: self._held.clear())

    # ---- long polls ----------------------------------------------------------------------------
    def hold(self, attempt: Callable[[], Any], max_wait: int) -> Any:
        """A fetch, Kafka's way: `attempt()` now, and if it finds nothing (None) and `max_wait` > 0,
        hold the fetch (the fetch purgatory) and try again each time records may have become
        readable (an append, a transaction's end, a rebalance); answer with the first find, or None
        once `max_wait` has passed. Returns the find, or a simpy event that succeeds with it."""
        found = attempt()
        if found is not None or max_wait <= 0:
            return found
        answer = pending(self.world.env)
        entry = [attempt, answer]
        self._held.append(entry)

        def _expire() -> None:
            if answer._value is PENDING and entry in self._held:  # (not answer.triggered)
                self._held.remove(entry)
                succeed(answer, None)
        self.node.unless(max_wait, answer, _expire)
        return answer

    def wake(self) -> None:
        """Records may have become readable: try the held fetches again, oldest first.

        A try can wake the broker itself: the fetch of a member the group expired rejoins it, a
        rebalance, which wakes the held fetches. That wake is folded into this one, which goes
        round them again once it is through them. (Until 2026-12-02 the inner wake went round the
        same list, answered fetches the outer one then answered again, and the run stopped with an
        internal error: a pause of the broker in a consumer group could do it.)"""
        if self._waking:
            self._woken = True
            return
        self._waking = True
        try:
            while self._held:
                self._woken = False
                held, self._held = self._held, []
                still = []
                for entry in held:
                    attempt, answer = entry
                    found = attempt()
                    if found is None:
                        still.append(entry)
                    else:
                        succeed(answer, found)
                self._held = still + self._held
                if not self._woken:
                    break
        finally:
            self._waking = False

    def on_commit(self, listener) -> None:
        self._on_commit.append(listener)

    # ---- transactions ------------------------------------------------------------------------
    def init_producer(self, request: int = 0) -> tuple[int, int]:
        """A transactional producer (re)starts: bump the epoch, fencing the older one, and abort its
        open transaction. Returns (epoch, the upstream position its last committed transaction stored).

        The same `request` again (a copy the network duplicated, or the client's retry) gets the same
        answer, as Kafka's coordinator answers a retried InitProducerId: a second bump would fence the
        producer that asked."""
        if request and request == self._init_request:
            return self.producer_epoch, self.producer_position
        self._init_request = request
        if self.open_txn is not None:
            self._end(self.open_txn, commit=False)
        self.producer_epoch += 1
        self._producer_next_id = {}  # sequences start again with the epoch
        return self.producer_epoch, self.producer_position

    def end_txn(self, epoch: int, txn: int, commit: bool, position: int | None = None) -> bool:
        """Commit or abort the open transaction; False (fenced) from an older epoch.

        A commit stores `position` (how far upstream the producer has read) with the transaction,
        atomically, as Kafka's sendOffsetsToTransaction does: a producer that crashes before it
        hears the answer learns from init_producer whether the commit happened.
        """
        if epoch != self.producer_epoch and self._fence(epoch, txn):
            return False
        if self.open_txn == txn:
            self._end(txn, commit)
            if commit and position is not None:
                self.producer_position = position
        return True  # ended before: a retried request

    def _fence(self, epoch: int, ref: int) -> bool:
        """A request from an older epoch: refused (True) and traced, unless fencing is off."""
        if not self.fencing:
            return False
        self.fenced += 1
        self.world.trace.add(Kind.FENCED, self.node.index, epoch, self.producer_epoch, ref)
        return True

    def _end(self, txn: int, commit: bool, timed_out: bool = False) -> None:
        state = COMMITTED if commit else ABORTED
        for p, (start, stop) in self._open_ranges.items():
            self.log.mark(p, start, stop, state)
        self.world.trace.add(Kind.TXN_END, self.node.index, txn, int(commit), self.producer_epoch, int(timed_out))
        self.open_txn, self._open_ranges = None, {}
        self.wake()  # the last stable offset moved: read_committed fetches may find records

    def _open(self, txn: int) -> None:
        """Transaction `txn` opens (its first records): with a timeout, the coordinator's timer starts."""
        self.open_txn = txn
        if self.transaction_timeout is not None:
            self._txn_opened += 1
            opened = self._txn_opened
            self.world.env.timeout(self.transaction_timeout).callbacks.append(
                lambda _ev: self._expire(txn, opened))

    def _expire(self, txn: int, opened: int) -> None:
        """The transaction timed out: abort it and bump the epoch (Kafka's coordinator fences the
        producer that held it: its next request is refused)."""
        if self.open_txn == txn and self._txn_opened == opened:
            self._end(txn, commit=False, timed_out=True)
            self.producer_epoch += 1
            self._producer_next_id = {}

    def last_stable_offset(self, p: int) -> int:
        """Where read_committed consumers stop: the first record of the open transaction, or the end."""
        open_range = self._open_ranges.get(p)
        return open_range[0] if open_range else self.log.end_offset(p)

    # ---- records ---------------------------------------------------------------------------
    def append(self, first_id: int, key: np.ndarray, event_time: np.ndarray, value: np.ndarray,
               epoch: int | None = None, txn: int | None = None, producer: int = 0,
               record_ids: np.ndarray | None = None) -> bool:
        """Append a producer batch of records first_id.. (each to its key's partition, as Kafka's partitioner does).

        `record_ids` gives the records' ids when they are not first_id, first_id + 1, ... (an outbox
        relay publishes the rows it finds, which may skip ids); they must increase, from first_id.

        A transactional batch carries the producer's epoch and transaction: from an older epoch it is
        refused (a zombie is fenced), otherwise its records stay OPEN until the transaction ends.
        """
        n = len(key)
        checksum = zlib.crc32(np.ascontiguousarray(value), zlib.crc32(np.ascontiguousarray(key)))  # their bytes, uncopied
        if epoch is not None and epoch != self.producer_epoch and self._fence(epoch, first_id):
            return False
        if record_ids is not None and self.idempotent:
            # An outbox relay may send again what it sent before a crash, with newer rows behind it:
            # the records the broker has already are dropped, the rest appended.
            fresh = record_ids >= self._producer_next_id.get(producer, 0)
            if not fresh.all():
                self.world.trace.add(Kind.PRODUCE, self.node.index, first_id, int((~fresh).sum()), 1, checksum)
                if not fresh.any():
                    return True
                record_ids, key, event_time, value = record_ids[fresh], key[fresh], event_time[fresh], value[fresh]
                first_id, n = int(record_ids[0]), int(fresh.sum())
        elif self.idempotent and first_id < self._producer_next_id.get(producer, 0):  # a retry of a batch already written
            self.world.trace.add(Kind.PRODUCE, self.node.index, first_id, n, 1, checksum)
            return True
        record_id = np.arange(first_id, first_id + n, dtype=np.int64) if record_ids is None else record_ids
        partitions = self.log.partitions
        part = partition_for(key, partitions)
        # by partition, keeping the batch's order within each
        if n <= _FEW_RECORDS:  # (a record at a time: an application's, an outbox relay's) in Python
            parts = part.tolist()
            runs = [(p, [i for i, q in enumerate(parts) if q == p]) for p in sorted(set(parts))]
        else:  # numpy sorts 16-bit integers stably by radix, in linear time (int64 takes timsort, several times the cost)
            order = np.argsort(part.astype(np.int16) if partitions <= _NARROW_PARTITIONS else part, kind="stable")
            bounds = np.zeros(partitions + 1, dtype=np.int64)
            np.cumsum(np.bincount(part, minlength=partitions), out=bounds[1:])
            runs = [(p, order[bounds[p]:bounds[p + 1]]) for p in range(partitions) if bounds[p + 1] > bounds[p]]
        state = COMMITTED if txn is None else OPEN
        for p, idx in runs:
            first = self.log.append(p, record_id[idx], key[idx], event_time[idx], value[idx], state)
            end = first + len(idx)
            if self._appended is None:
                slow = any(f.kind == "partition_slow" for f in self.world.fault_windows)
                self._appended = [[] for _ in range(self.log.partitions)] if slow else False
            if self._appended:
                self._appended[p].append((self.world.now, end))
            if txn is not None:
                if self.open_txn != txn:
                    self._open(txn)
                span = self._open_ranges.setdefault(p, [first, first])
                span[1] = end
        self._producer_next_id[producer] = max(self._producer_next_id.get(producer, 0), int(record_id[-1]) + 1 if n else first_id)
        self.world.trace.add(Kind.PRODUCE, self.node.index, first_id, n, 0, checksum)
        self.wake()
        return True

    def join(self, generation: int) -> list[int]:
        """A consumer (re)joins the group as `generation`: older generations are fenced from now on."""
        self.generation = max(self.generation, generation)
        return list(self.committed)

    def fetch(self, positions: list[int], start: int, max_records: int, read_committed: bool = False,
              assigned: tuple[int, ...] | None = None) -> RecordBatch | None:
        """The next batch from the first partition, round-robin from partition `start`, that has records to read.

        `assigned` limits the fetch to those partitions (a consumer's assignment; default all).
        read_uncommitted (Kafka's default) reads to the end of the log; read_committed reads only to
        the last stable offset and skips aborted records (the batch may then hold fewer, or none,
        while still moving the consumer on).
        """
        log = self.log
        order = range(log.partitions) if assigned is None else assigned
        first = order.index(start)
        slow = self._slow_partitions() if self._appended else None
        for i in range(len(order)):
            p = order[(first + i) % len(order)]
            limit = self.last_stable_offset(p) if read_committed else log.end_offset(p)
            if slow and p in slow:
                limit = min(limit, slow[p])
            if positions[p] < limit:
                return log.read(p, positions[p], min(positions[p] + max_records, limit), skip_aborted=read_committed)
        return None

    def _slow_partitions(self) -> dict[int, int]:
        """partition_slow faults active now: partition -> how far it is readable, its end offset
        at the last burst (the fault's start plus a whole number of slow_by)."""
        now = self.world.now
        out = {}
        for f in self.world.fault_windows:
            if f.kind == "partition_slow" and f.at <= now < f.at + f.down_for:
                tick = f.at + (now - f.at) // f.slow_by * f.slow_by
                history = self._appended[f.partition]
                k = bisect.bisect_right(history, (tick, 2**63))
                end = history[k - 1][1] if k else 0
                out[f.partition] = min(out.get(f.partition, end), end)
        return out

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
