"""The bases a user subclasses to put their own code in a pipeline: Flink's user functions.

Each kind:
- `Operator`: what the processor computes from each batch (one output value per record); its
  state is what checkpoints snapshot and restores give back.
- `Sink`: the table the records' output lands in; `contents()` is what the checkers read.
- `TwoPhaseCommitSink`: a sink written through transactions that weir commits on checkpoints,
  after Flink's TwoPhaseCommitSinkFunction: the user writes the calls to the external system,
  weir keeps the protocol's bookkeeping and carries the transaction handles in checkpoints.
- `WatermarkStrategy`: derives a partition's watermark from the event times it reads.
- `Source`: the upstream data the producer writes (every record's key, value and event-time delay).

A scenario names one by import path (weir.sim.scenario.components); the runtime only ever calls
these methods, so a built-in component and a user's are driven the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from weir.sim.kernel.batch import RecordBatch

__all__ = ["Operator", "Sink", "TwoPhaseCommitSink", "WatermarkStrategy", "Source", "Retryable", "Rejected",
           "DeadLetter", "DeadLetterReplay", "ConsumerPolicy", "OutboxRelay"]


class _Refusal(Exception):
    """A sink refusing some or all of a batch's rows: `rows` are their indices in the batch, or a
    boolean mask over it (None: all of them)."""

    def __init__(self, message: str = "", rows: Any = None):
        super().__init__(message)
        self.rows = rows

    def mask(self, n: int) -> np.ndarray:
        """The refused rows, as a boolean mask over a batch of n rows."""
        if self.rows is None:
            return np.ones(n, dtype=bool)
        rows = np.asarray(self.rows)
        if rows.dtype == bool and rows.shape == (n,):
            return rows.copy()
        mask = np.zeros(n, dtype=bool)
        mask[rows.astype(np.int64)] = True
        return mask


class Retryable(_Refusal):
    """Raise from `Sink.write` to push back (overloaded, throttled, a timeout): the refused rows
    were not written, and weir retries them with the pipeline's retry policy ([retry]), then
    dead-letters them when the retries run out. Rows not refused count as written."""


class Rejected(_Refusal):
    """Raise from `Sink.write` for rows that can never be written (they fail validation): weir
    dead-letters them at once, without retrying (retrying cannot help), as Kafka Connect does with
    a non-retriable error under errors.tolerance = all. Rows not rejected count as written."""


class Operator(ABC):
    """The processor's computation: a batch in, one output value per record out.

    Keep all state on the instance. `snapshot()` must return a copy that later changes do not
    touch; after a failover weir builds a fresh instance with the same parameters and calls
    `restore(snapshot)` with the last completed checkpoint's copy (or nothing, without one).
    """

    windowed = False
    #: Whether a record's output depends only on the records before it (not on `now`, batch
    #: boundaries or anything outside the records): then exactly_once checks its values against
    #: the fault-free run's. Set False if your output depends on processing time.
    deterministic = True

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
        """Write the batch's rows (its records with the operator's values); return how many already existed.

        To push back, raise `weir.Retryable` (retried with the pipeline's policy) or
        `weir.Rejected` (dead-lettered at once), naming the refused rows. Any other exception
        fails the job over, as an exception in a Flink sink fails its task."""

    @abstractmethod
    def contents(self) -> dict[str, np.ndarray]:
        """The table's rows as int64 columns; at least "record_id" (the checkers count those)."""

    def close(self) -> None:
        """Release what the table holds (called once the run's results are read)."""


class TwoPhaseCommitSink(Sink):
    """A sink that writes through transactions, committed when a checkpoint completes.

    After Flink's TwoPhaseCommitSinkFunction (flink-streaming-java, .../functions/sink/
    TwoPhaseCommitSinkFunction.java): you write what each step does to the external system; weir
    drives the steps and keeps their bookkeeping, as Flink's base class does. Per sink subtask:

    - `begin_transaction` opens a transaction when the attempt starts and after every barrier; it
      returns the transaction's handle, which weir passes back to every other method;
    - `write` puts a batch's rows into the open transaction;
    - at checkpoint n's barrier, `pre_commit(handle)` (flush: after it, a commit must succeed);
      the transaction is now pending for n and a new one begins. Checkpoint n's state holds the
      pending handles and the open one (deep copies: change a handle later and the checkpoint
      keeps what it was);
    - when the notification that checkpoint n completed arrives (best effort: it can be lost,
      late or out of order), `commit(handle)` for every pending transaction of a checkpoint <= n,
      oldest first. An exception from `commit` fails the job over, as in Flink;
    - on a restore from checkpoint n, in the order they were created: `recover_and_commit` for
      each of n's pending transactions (they may have been committed already: a commit must be
      idempotent), `recover_and_abort` for the one that was open at n's barrier, then
      `finish_recovering(subtask, handled)` (also on a start with nothing to restore: abort here
      what a crashed attempt left open, as Flink's Kafka sink aborts lingering transactions);
    - when the run ends, `abort` for each subtask's open, empty, transaction (Flink's close()).

    The instance is the external system and outlives every crash; the attempt that called it does
    not. Keep nothing that a real writer would hold in memory on `self`, or reset it in
    `finish_recovering`: weir cannot tell your memory from your table.
    """

    kind = "two_phase"

    def begin_transaction(self, subtask: int, txn_id: int) -> Any:
        """Open a transaction for sink subtask `subtask`; return its handle (by default weir's id,
        `txn_id`, unique in the run and the same on every replay)."""
        return txn_id

    @abstractmethod
    def write(self, batch: RecordBatch, value: np.ndarray, written_at: int, txn: Any = None) -> int:
        """Write the batch's rows into transaction `txn` (invisible until it commits); return how
        many rows already existed (0 if you cannot tell)."""

    def pre_commit(self, txn: Any) -> None:
        """Checkpoint barrier: make `txn` ready to commit (flush it). Nothing to do by default."""

    @abstractmethod
    def commit(self, txn: Any) -> bool | None:
        """Make a pre-committed transaction's rows visible, atomically. Return False if it was
        already committed (weir traces it), anything else otherwise."""

    @abstractmethod
    def abort(self, txn: Any) -> None:
        """Throw a transaction's rows away."""

    def recover_and_commit(self, txn: Any) -> bool | None:
        """On restore: commit a transaction the restored checkpoint pre-committed. It may have been
        committed before the crash, so this must be idempotent. By default, `commit(txn)`."""
        return self.commit(txn)

    def recover_and_abort(self, txn: Any) -> None:
        """On restore: abort the transaction that was open at the restored checkpoint's barrier.
        By default, `abort(txn)`."""
        self.abort(txn)

    def finish_recovering(self, subtask: int, handled: list[Any]) -> int | None:
        """Sink subtask `subtask` recovered the transactions in `handled` (committed or aborted);
        abort any other that it left open before the crash. Return how many you aborted (for the
        trace), or None. Nothing by default."""
        return None


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

    @staticmethod
    def merge(watermarks: list[int], idle: list[bool]) -> int | None:
        """The source subtask's watermark from its partitions' (`watermarks`, and which of them are
        `idle`). Flink's rule (WatermarkOutputMultiplexer): the minimum over the partitions that
        are not idle; None when all are idle, so the watermark holds instead of jumping ahead.
        Override it (a staticmethod) to merge otherwise; weir still never moves a source's
        watermark backwards."""
        active = [w for w, i in zip(watermarks, idle) if not i]
        return min(active) if active else None


class Source(ABC):
    """The upstream data: every record's key, value and event-time delay, drawn up front."""

    @abstractmethod
    def generate(self, rng: np.random.Generator, records: int, keys: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (keys in 0..keys-1, values, delays in us >= 0), each an int64 array of length `records`.

        Draw every random number from `rng` (the run's `workload` stream): that keeps runs replayable.
        """


@dataclass(frozen=True)
class DeadLetter:
    """A record waiting in the dead-letter queue: where it came from and what it carried."""

    rowid: int  # its entry in the queue
    record_id: int
    key: int
    value: int
    partition: int
    offset: int


class DeadLetterReplay:
    """The DLQ replay job (`retry.replay_after`): every `retry.replay_interval`, weir takes up to
    `retry.replay_batch` waiting dead letters and replays them on the sink node, in two steps
    that each take a `write_time` (so a crash can land between them): writing the fixed records
    to the sink, and marking their queue entries processed. Subclass it to decide how a record is
    fixed and in which order the steps go; weir's own job is `weir.sim.patterns.dlq.FixAndReplay`.
    """

    #: Mark the entries processed before writing the records (a crash between loses them: at most
    #: once), or after (a crash between writes them again: at least once, harmless with an
    #: idempotent sink). weir's own job writes first.
    mark_first = False

    def fix(self, letter: DeadLetter) -> int | None:
        """The value to write for `letter`, or None to give up on it (it is marked processed and
        not written). By default, the record's own value."""
        return letter.value


class ConsumerPolicy:
    """A source's offset management, as a Kafka consumer's: where each partition resumes when an
    attempt starts, and which offsets it commits to the broker, when. weir's own policies (one per
    `pipeline.offset_commit`) are subclasses, in weir.sim.stream.consumer; `pipeline.consumer`
    names yours. One instance per attempt: a failover drops it, as it drops the consumer.

    Committed offsets are what a restart without a checkpoint resumes from (and what the broker's
    lag and the checkers' commits_monotonic and commits_after_ack read). weir sends each commit
    with the job's generation, so a fenced (older) attempt's commits are refused.
    """

    #: whether `periodic` is called every pipeline.commit_interval
    commits_periodically = False
    #: whether `on_checkpoint` is called when a checkpoint completes
    commits_on_checkpoint = False

    def resume(self, partition: int, checkpointed: int | None, committed: int) -> int:
        """The offset `partition` resumes from: by default the restored checkpoint's (None without
        checkpoints), else the group's committed offset."""
        return committed if checkpointed is None else checkpointed

    def on_poll(self, partition: int, first: int, end: int) -> int | None:
        """A batch of [first, end) was polled: an offset to commit now, before it is processed (the
        source waits for the broker's answer), or None."""
        return None

    def periodic(self, partition: int, polled: int, acked: int) -> int | None:
        """Every commit_interval (if `commits_periodically`): an offset to commit, given where the
        source has polled to and what the sink acknowledged, or None. A function of those: once a
        tick finds nothing new to commit, weir asks again only at the first tick after one of them
        moves (an idle consumer's committer costs nothing)."""
        return None

    def on_checkpoint(self, partition: int, checkpointed: int) -> int | None:
        """A checkpoint completed (if `commits_on_checkpoint`): an offset to commit, given the
        checkpoint's, or None."""
        return None


class OutboxRelay:
    """The transactional outbox's relay (CDC): every `outbox.relay_interval` weir takes up to
    `outbox.relay_batch` pending outbox rows, publishes them to the log and marks them sent, in
    the order this class says. Publishing is a round trip to the broker and marking a write to
    the database (a `db_write_time`), so a crash can land between them. weir's own relay is
    `weir.sim.patterns.outbox.CdcRelay`; `outbox.relay` names yours.
    """

    #: Mark the rows sent before publishing them (a crash between loses their events: at most
    #: once) or after (a crash between publishes them again: at least once). weir's relay: after.
    mark_first = False
    #: Keep the relay's producer id across restarts (as a transactional id would), so the broker
    #: drops what is published again; a fresh id per restart makes those copies duplicates.
    keep_producer_id = True

    def select(self, pending: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
        """Which of the pending rows (event_id, account, amount, event_time), oldest first, to
        publish this round (by default all of them, in order). While no row is pending the relay
        sleeps, and polls again at the first tick after an order commits."""
        return pending
