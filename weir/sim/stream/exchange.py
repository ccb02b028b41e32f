"""Parallel subtasks and what connects them: the keyed exchange, input gates with credits, acks.

A job runs S source subtasks (each reads the partitions p with p % S == i) and P processor
subtasks, each chained to its own sink subtask. Every source subtask has one channel to every
processor subtask; a record goes to its key's home subtask `partition_for(key, P)` (Kafka's
murmur2, as for partitions). With key salting, `(home + salt) % P` where the salt is
`offset % salts`: a key's records spread evenly over `min(salts, P)` subtasks (hashing the salted
key instead would leave that to chance), and a replay routes every record as the first time did.

Each channel is bounded at both ends, as in Flink's credit-based flow control: the receiver
buffers at most `queue_capacity` batches (the sender holds that many credits, spends one per batch
it sends and gets it back when the processor subtask takes the batch out of its queue; the credit
announcement is modelled as immediate, not as a message), and what has no credit waits in the
sender's queue for the channel. A source subtask polls only while each of its sender queues holds
fewer than `queue_capacity` batches, so a slow subtask stops its sources: backpressure. Watermarks
and barriers need no credit but keep their place behind the batches before them, at the sender as
at the receiver; an unaligned barrier overtakes both queues.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import simpy
from simpy.events import Event

from weir.sim.kernel.batch import RecordBatch
from weir.sim.kafka.partitioner import partition_for
from weir.sim.kernel.timer import Inbox, after, pending, succeed

__all__ = ["Barrier", "Watermark", "Gate", "PendingAcks", "route", "split", "subtask_of"]


@dataclass(frozen=True)
class Barrier:
    """Checkpoint barrier n, flowing in the record stream behind every record before it."""

    id: int


@dataclass(frozen=True)
class Watermark:
    """A watermark flowing in the record stream: no more records with event time <= value.

    `idle` marks a source subtask all of whose partitions are idle (Flink's WatermarkStatus.IDLE):
    the processor leaves that input out of its minimum until a watermark says it is active again.
    """

    value: int
    idle: bool = False


def route(batch: RecordBatch, parallelism: int, salts: int = 1) -> np.ndarray:
    """The processor subtask of each record of `batch` (the keyed exchange)."""
    return subtask_of(batch.key, batch.offset, parallelism, salts)


def subtask_of(keys: np.ndarray, offsets: np.ndarray, parallelism: int, salts: int = 1) -> np.ndarray:
    """The processor subtask of records with these keys at these offsets: the key's home subtask
    (murmur2, as Kafka's partitioner), shifted by `offset mod salts` when the key is salted."""
    home = partition_for(keys, parallelism)
    if salts > 1:
        return (home + offsets % salts) % parallelism
    return home


def split(batch: RecordBatch, parallelism: int, salts: int = 1) -> list[tuple[int, RecordBatch]]:
    """The batch cut into one sub-batch per subtask that gets records, in subtask order.

    A sub-batch keeps the batch's partition, first offset and end offset (what the source
    acknowledges) and carries its records' own offsets.
    """
    if parallelism == 1:
        return [(0, batch)]
    target = route(batch, parallelism, salts)
    return [(j, batch.take(target == j)) for j in np.unique(target).tolist()]


class Gate(Inbox):
    """A processor subtask's input: items (channel, message) in arrival order.

    The subtask takes the first item whose channel is not blocked (aligned checkpoints block the
    channels whose barrier arrived). In unaligned mode a barrier jumps the queue (`urgent`).

    Event for event a simpy FilterStore (weir.sim.kernel.timer.Inbox is the Store's twin): a put
    makes an event that succeeds now, and when that is processed every waiting get, in turn, takes
    the first item its filter accepts, as the FilterStore's `_trigger_get` does.
    """

    __slots__ = ("blocked", "queued_records", "max_queued_records", "urgent_barriers")

    def __init__(self, env: simpy.Environment, channels: int):
        super().__init__(env)
        self.blocked = [False] * channels
        self.queued_records = 0
        self.max_queued_records = 0
        self.urgent_barriers = False

    def open(self, item) -> bool:
        return not self.blocked[item[0]]

    def put(self, item) -> Event:
        if self.urgent_barriers and type(item[1]) is Barrier:
            self.items.insert(0, item)
        else:
            self.items.append(item)
            if type(item[1]) is RecordBatch:
                self.queued_records += len(item[1].record_id)  # (not len(batch): a Python call less)
                if self.queued_records > self.max_queued_records:
                    self.max_queued_records = self.queued_records
        return after(self.env, 0, self._trigger_get)

    def get(self, filter) -> Event:  # type: ignore[override]
        event = pending(self.env)
        event.filter = filter  # type: ignore[attr-defined]
        self.get_queue.append(event)
        self._trigger_get(None)
        return event

    def _trigger_get(self, _put: Event | None) -> None:
        queue, items = self.get_queue, self.items
        i = 0
        while i < len(queue):
            event = queue[i]
            accept = event.filter  # type: ignore[attr-defined]
            for j, item in enumerate(items):
                if accept(item):
                    del items[j]
                    if type(item[1]) is RecordBatch:
                        self.queued_records -= len(item[1].record_id)
                    succeed(event, item)
                    del queue[i]
                    break
            else:
                i += 1


class PendingAcks:
    """A source subtask's batches in flight per partition, acknowledged piece by piece.

    A batch cut into k sub-batches is done when all k are acknowledged; the committed end of a
    partition moves over the prefix of batches that are done (sub-batches finish out of order).
    """

    def __init__(self) -> None:
        self._batches: dict[int, deque] = {}

    def add(self, p: int, first: int, end: int, parts: int) -> None:
        self._batches.setdefault(p, deque()).append([first, end, parts])

    def ack(self, p: int, first: int) -> tuple[bool, int | None]:
        """One sub-batch of the batch at `first` is written: (whether that batch is now done, the
        partition's new acknowledged end or None if it did not move)."""
        q = self._batches[p]
        for entry in q:
            if entry[0] == first:
                entry[2] -= 1
                done = entry[2] == 0
                break
        else:
            raise KeyError((p, first))
        end = None
        while q and q[0][2] == 0:
            end = q.popleft()[1]
        return done, end
