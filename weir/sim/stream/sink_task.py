"""The sink task: one sink subtask writes what its processor subtask sends.

Each sink subtask is chained to one processor subtask. It writes record batches to the sink table,
retrying what fails after a backoff and dead-lettering (or skipping) what still fails when the
retries run out (weir.sim.patterns.dlq); writes panes to the window results; and acknowledges each
batch to the source subtask that polled it. On a barrier it reports to the coordinator and, with a
two-phase-commit sink (weir.TwoPhaseCommitSink), pre-commits its open transaction and opens the
next one. It keeps the protocol's bookkeeping as Flink's TwoPhaseCommitSinkFunction does
(flink-streaming-java, .../functions/sink/TwoPhaseCommitSinkFunction.java): the transactions
pending per checkpoint, committed when a completion notification for that checkpoint or a later
one arrives, and carried in checkpoint state with the open one; on restore, it commits what the
checkpoint pre-committed, aborts what was open at its barrier, then lets the sink abort what the
crashed attempt left behind.

The DLQ replay job also runs on the sink node (`replay_dead_letters`); it outlives attempts, like
the dead-letter queue it reads.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from weir.sim.kafka.producer import poison_mask
from weir.sim.kernel.batch import RecordBatch
from weir.sim.kernel.node import wake
from weir.sim.kernel.errors import UserHookError
from weir.sim.kernel.timer import Inbox
from weir.sim.kernel.trace import Kind, Msg
from weir.sim.stream.exchange import Barrier
from weir.sim.stream.functions import Rejected, Retryable
from weir.sim.stream.guard import describe_call

if TYPE_CHECKING:
    from weir.sim.stream.attempt import Attempt
    from weir.sim.stream.job import Job

__all__ = ["SinkTask", "TxnHolder", "backoff_delay", "commit_transactions", "replay_dead_letters"]


_FAILED = object()  # a sink call raised
_TIMED_OUT = object()  # a commit of a transaction past pipeline.transaction_timeout


def _result(returned) -> int:
    """What the trace records of a commit: 1 newly committed, 0 already (False), -1 it raised,
    -2 the transaction had timed out (aborted by the external system: the commit fails)."""
    if returned is _TIMED_OUT:
        return -2
    return -1 if returned is _FAILED else int(returned is not False)


def backoff_delay(attempt: int, backoff: int, multiplier: float, max_backoff: int, jitter: float, u: float) -> int:
    """The wait before retry `attempt` (1, 2, ...): backoff * multiplier^(attempt-1), at most
    max_backoff, times (1 + jitter * u) for a uniform draw u in [0, 1); whole microseconds. (A
    retry for ever reaches attempts whose multiplier^(attempt-1) is past any float: max_backoff.)"""
    try:
        base = min(backoff * multiplier ** (attempt - 1), max_backoff)
    except OverflowError:
        base = max_backoff
    return int(base * (1 + jitter * u))


@dataclass(frozen=True)
class TxnHolder:
    """A transaction the sink task tracks (Flink's TransactionHolder): weir's id for it (what the
    trace shows), the sink's handle, and when it began."""

    id: int
    handle: Any
    began: int

    def copy(self) -> TxnHolder:
        """A copy for checkpoint state: a later change to the handle does not reach it."""
        return replace(self, handle=copy.deepcopy(self.handle))


class SinkTask:
    """One sink subtask: its inbox and, with a two-phase-commit sink, its open and pre-committed transactions."""

    def __init__(self, job: Job, attempt: Attempt, index: int):
        self.job, self.attempt = job, attempt
        self.index = index
        self.inbox = Inbox(job.world.env)
        self.txn: TxnHolder | None = None  # the open transaction
        self.txn_rows = 0  # rows written into it
        self.pending: list[tuple[int, TxnHolder]] = []  # (checkpoint, txn) pre-committed, awaiting its completion
        self.recovered = not job.transactional  # the restore's transactions are all handled

    def begin_transaction(self) -> None:
        a, job = self.attempt, self.job
        a.txn_seq += 1
        txn_id = a.generation * 1_000_000 + a.txn_seq  # unique across attempts and subtasks, deterministic
        handle = job.txn_table.begin_transaction(self.index, txn_id)
        self.txn, self.txn_rows = TxnHolder(txn_id, handle, job.world.now), 0  # the external system's clock

    def state(self) -> tuple:
        """This subtask's share of a checkpoint: its pending transactions and the open one (copies)."""
        return tuple((m, h.copy()) for m, h in self.pending), self.txn.copy()

    def commit_up_to(self, n: int) -> None:
        """Checkpoint n completed: commit every transaction pre-committed for a checkpoint up to n,
        oldest first. If a commit raises, the rest are still committed and then the job fails over
        (Flink's notifyCheckpointComplete); the restore commits it again."""
        job = self.job
        due = [(m, h) for m, h in self.pending if m <= n]
        self.pending = [(m, h) for m, h in self.pending if m > n]
        failed = False
        for m, h in due:
            committed = _TIMED_OUT if self.timed_out(h) else self._commit(job.txn_table.commit, h.handle)
            ok = committed is not _FAILED and committed is not _TIMED_OUT
            failed |= not ok
            if ok:
                job.txn_committed.add(h.id)
            job.world.trace.add(Kind.TXN_COMMIT, job.sink.index, m, h.id, _result(committed))
        if failed:
            self.fail()

    def _call(self, method, *args):
        """Call the sink's `method`; _FAILED if it raised (the job fails over, as Flink's task would)."""
        try:
            return method(*args)
        except UserHookError as e:  # an exception from a user's sink fails the task, as in Flink (or ends the run)
            self.job.note_user_error(e)
            return _FAILED

    def timed_out(self, h: TxnHolder) -> bool:
        """Whether transaction `h` has been open longer than pipeline.transaction_timeout. Then the
        external system has aborted it (as Kafka's transaction coordinator does), so weir aborts
        it for the sink, and a commit of it fails."""
        job = self.job
        timeout = job.cfg.transaction_timeout
        if timeout is None or job.world.now - h.began <= timeout or h.id in job.txn_committed:
            return False  # a committed transaction is done: it does not time out
        self._call(job.txn_table.abort, h.handle)
        return True

    def _commit(self, method, handle):
        """A commit, unless a sink_commit_fail window says it fails (then _FAILED, the sink not called)."""
        if self.job.active_fault("sink_commit_fail"):
            return _FAILED
        return self._call(method, handle)

    def fail(self) -> None:
        """The sink subtask failed: fail the job over, after the current event (a process cannot
        interrupt itself)."""
        job = self.job
        job.world.env.timeout(0).callbacks.append(lambda _ev: job.fail(job.sink))

    def recover(self):
        """Restore this subtask's transactions from the checkpoint, one call at a time (each a
        round trip to the sink: a write_time), so a crash can land in the middle: then the next
        attempt recovers from the same checkpoint again. In the order they were created:
        recover_and_commit each pending one, recover_and_abort the one open at the barrier, then
        finish_recovering (abort what the crashed attempt left behind)."""
        job, a = self.job, self.attempt
        table, node, trace = job.txn_table, job.sink, job.world.trace
        step = job.cfg.write_time
        handled = []
        restored = a.restored_sink[self.index] if a.restored_sink else ((), None)
        pending, open_txn = restored
        for m, h in pending:
            if step:
                yield from node.work(step)
            committed = _TIMED_OUT if self.timed_out(h) else self._commit(table.recover_and_commit, h.handle)
            trace.add(Kind.TXN_RECOVER, node.index, m, h.id, 1, _result(committed))
            if committed is not _FAILED and committed is not _TIMED_OUT:
                job.txn_committed.add(h.id)
            # Flink's recoverAndCommitInternal: a failure fails the task again, unless the transaction
            # is past its timeout and ignoreFailuresAfterTransactionTimeout is on: then its data is lost
            if committed is _FAILED or (committed is _TIMED_OUT and not job.cfg.ignore_commit_failures_after_timeout):
                self.fail()
                yield job.world.env.event()  # the failover interrupts this task
            handled.append(h.handle)
        if open_txn is not None:
            if step:
                yield from node.work(step)
            if self._call(table.recover_and_abort, open_txn.handle) is _FAILED:
                self.fail()
                yield job.world.env.event()
            trace.add(Kind.TXN_RECOVER, node.index, a.restored_from, open_txn.id, -1, 1)
            handled.append(open_txn.handle)
        aborted = self._call(table.finish_recovering, self.index, handled)
        if aborted is _FAILED:
            self.fail()
            yield job.world.env.event()
        trace.add(Kind.TXN_RECOVER, node.index, a.restored_from, self.index, 0, aborted or 0)
        self.recovered = True

    def run(self):
        job, a = self.job, self.attempt
        world, node = job.world, job.sink
        net, trace = world.net, world.trace
        write_time = job.cfg.write_time
        try:
            if job.transactional:
                yield from self.recover()
                self.begin_transaction()
            while True:
                msg = yield self.inbox.get()
                if type(msg) is Barrier:
                    sink_state = None
                    if job.transactional:  # pre-commit: the open transaction waits for checkpoint msg.id
                        if self.timed_out(self.txn):  # the system aborted it: writing on fails (Kafka: fenced)
                            trace.add(Kind.TXN_ABORT, node.index, self.txn.id, a.generation, 2)
                            self.fail()
                            yield job.world.env.event()
                        if self._call(job.txn_table.pre_commit, self.txn.handle) is _FAILED:
                            self.fail()
                            yield job.world.env.event()
                        self.pending.append((msg.id, self.txn))
                        self.begin_transaction()
                        sink_state = self.state()
                    trace.add(Kind.CKPT_SNAPSHOT, node.index, msg.id, -1, len(self.pending))
                    net.send(node, job.coordinator, Msg.SNAPSHOT, a.coordinator.on_part, msg.id, ("sink", self.index),
                             sink_state, ref=(msg.id, 0))
                    continue
                batch, out, origin = msg  # origin: (source subtask, tag) to acknowledge, or None if replayed
                txn = self.txn.handle if job.transactional else None
                if job.results is not None:
                    if write_time:
                        yield from node.work(write_time)  # the write lands, whole, at the end of this
                    job.results.write(out.panes, out.late, node.local_time(), txn, self.index)
                    self.txn_rows += len(out.panes) + len(out.late)
                    trace.add(Kind.WRITE, node.index, -1, len(out.panes), len(out.late), 0)
                    if batch is None:
                        a.outputs_in_flight -= 1
                        job.check_drained()
                        continue
                else:
                    yield from self.write_records(batch, out, txn)
                if origin is None:  # restored from the checkpoint: no source subtask of this attempt waits for it
                    a.replays_in_flight -= 1
                    job.check_drained()
                    continue
                i, tag = origin
                net.send(node, job.source_nodes[i], Msg.ACK, a.on_ack, i, tag, batch.partition_id, batch.first_offset,
                         len(batch), batch.end_offset, ref=(batch.partition_id, batch.first_offset))
        except simpy.Interrupt:
            return

    def write_records(self, batch: RecordBatch, out, txn):
        """Write a batch's rows (each write takes write_time, the write landing whole at its end),
        retrying what fails after a backoff; dead-letter (or skip) what still fails when the
        retries run out (weir.sim.patterns.dlq), and at once what the sink rejects (weir.Rejected)."""
        job = self.job
        trace, policy, node = job.world.trace, job.scenario.retry, job.sink
        write_time, every = job.cfg.write_time, job.scenario.workload.poison_every
        poison = poison_mask(batch.record_id, every) if every else None
        pending = None  # the rows not yet written (None: all of them)
        attempt = 0
        while True:
            slow = job.active_fault("sink_slow")
            node_slow = job.active_fault("slow", node)
            if write_time or slow:
                took = write_time * (node_slow.factor if node_slow else 1)
                yield from node.work(int(took) + (slow.slow_by if slow else 0))
            if job.active_fault("sink_fail") or (policy.failure_rate and job.failure_rng.random() < policy.failure_rate):
                error = ("TransientWriteError", "the write failed: nothing was applied")
            elif self.overloaded():
                error = ("SinkOverloaded", "the sink refused the write: too many writes (sink_overload)")
            else:
                if pending is None and poison is None:  # a batch's first attempt, nothing poisoned: no masks
                    todo = good = None  # (every row)
                else:
                    todo = np.ones(len(batch), dtype=bool) if pending is None else pending
                    good = todo if poison is None else todo & ~poison
                refused = self.apply(batch, out, good, txn)
                if refused is _FAILED:  # the user's sink raised: its task fails, the job fails over
                    self.fail()
                    yield job.world.env.event()
                retry = rejected = None  # None: every row of `good` applied (the common case)
                if refused is not None:
                    retry, rejected, message = refused
                    if rejected.any():
                        self.dead_letter(batch, rejected, ("Rejected", message), attempt)
                    if good is None:
                        todo = good = np.ones(len(batch), dtype=bool)
                    good = good & ~retry & ~rejected  # a new array: good may be todo itself
                if txn is not None:
                    self.txn_rows += len(batch) if good is None else int(good.sum())
                if job.active_fault("sink_ack_lost"):
                    if txn is not None:
                        # Inside a transaction a write of unknown outcome cannot be retried (a second
                        # attempt would stage the rows twice): the sink fails, the job fails over and
                        # aborts the transaction, as Flink's exactly-once sinks do on a write error.
                        trace.add(Kind.RETRY, node.index, batch.partition_id, batch.first_offset, attempt + 1, -1)
                        self.fail()
                        yield job.world.env.event()  # the failover interrupts this task
                    if todo is None:
                        todo = np.ones(len(batch), dtype=bool)
                    # applied, but the sink cannot know: it will write them again
                    pending = todo if rejected is None else todo & ~rejected
                    error = ("AckLostError", "the write was applied but its acknowledgement was lost (timed out)")
                else:
                    if good is None:  # all written
                        return
                    pending = todo & ~good if rejected is None else todo & ~good & ~rejected
                    if not pending.any():
                        return
                    error = ("Retryable", message) if retry is not None and retry.any() else (
                        "PoisonRecordError", "the record fails the sink's validation")
            attempt += 1
            failing = np.ones(len(batch), dtype=bool) if pending is None else pending
            if not policy.forever and attempt > policy.max_retries:
                self.dead_letter(batch, failing, error, attempt - 1)
                return
            delay = backoff_delay(attempt, policy.backoff, policy.multiplier, policy.max_backoff, policy.jitter,
                                  job.retry_rng.random())
            trace.add(Kind.RETRY, node.index, batch.partition_id, batch.first_offset, attempt, delay)
            yield from node.wait(delay)

    def overloaded(self) -> bool:
        """A sink_overload window: the sink takes one write attempt per `slow_by`, over all sink
        subtasks; an attempt sooner than that after the last one is refused, and counts as the
        last one (a server under overload spends itself on the requests it refuses)."""
        job = self.job
        fault = job.active_fault("sink_overload")
        if fault is None:
            return False
        now, last = job.world.now, job.sink_last_attempt
        job.sink_last_attempt = now
        return last is not None and now - last < fault.slow_by

    def apply(self, batch: RecordBatch, out, good: np.ndarray | None, txn):
        """Write the `good` rows (None: every row). Return None if the sink took them all; (rows to
        retry, rows rejected, the sink's message) as masks over the batch, from a weir.Retryable or
        weir.Rejected the sink raised; _FAILED if it raised anything else."""
        job = self.job
        if good is None:  # every row
            if not len(batch):
                return None
            whole = True
        else:
            if not good.any():
                return None
            whole = bool(good.all())
        try:
            if whole:
                apply_rows(job, batch, out, txn)
            else:
                apply_rows(job, batch.take(good), out[good], txn)
            return None
        except (Retryable, Rejected) as e:
            none = np.zeros(len(batch), dtype=bool)
            mask = none.copy()
            try:
                if whole:
                    mask = e.mask(len(batch))
                else:
                    mask[np.flatnonzero(good)[e.mask(int(good.sum()))]] = True
            except (IndexError, TypeError, ValueError) as bad:  # rows that are not rows of the batch
                job.note_user_error(UserHookError(
                    type(job.sink_table).__name__, "write", f"raised weir.{type(e).__name__} naming rows that are not "
                    f"the batch's ({type(bad).__name__}: {bad})", describe_call((batch,))))
                return _FAILED
            job.world.trace.add(Kind.REFUSED, job.sink.index, batch.partition_id, batch.first_offset, int(mask.sum()),
                                int(isinstance(e, Rejected)))
            return (mask, none, str(e)) if isinstance(e, Retryable) else (none, mask, str(e))
        except UserHookError as e:  # an exception from the user's sink fails its task, as in Flink (or ends the run)
            job.note_user_error(e)
            return _FAILED

    def dead_letter(self, batch: RecordBatch, rows: np.ndarray, error: tuple[str, str], retries: int) -> None:
        """Give up on `rows`: into the dead-letter queue, or skipped (retry.exhausted)."""
        job = self.job
        policy, node = job.scenario.retry, job.sink
        if policy.exhausted == "dlq":
            n = job.dlq.add(batch, rows, *error, retries, policy.max_retries, node.local_time())
            job.world.trace.add(Kind.DEAD_LETTER, node.index, batch.partition_id, batch.first_offset, n, retries)
            wake(job.dlq_waiters)
        else:
            job.skipped += int(rows.sum())


def apply_rows(job: Job, batch: RecordBatch, out, txn: int | None) -> None:
    """Hand a batch's rows to the sink table (staged in transaction `txn`, with a transactional sink)."""
    node, trace = job.sink, job.world.trace
    if txn is not None:
        rewritten = job.sink_table.write(batch, out, node.local_time(), txn)
    else:
        rewritten = job.sink_table.write(batch, out, node.local_time())
    rewritten = int(rewritten or 0)  # a user's write may return None: "I cannot tell"
    n = len(batch)
    job.rows_written += n
    trace.add(Kind.WRITE, node.index, batch.partition_id, batch.first_offset, n, rewritten)


def commit_transactions(a: Attempt, n: int) -> None:
    """The coordinator's notification that checkpoint n completed, at the sink: every sink subtask
    commits what it pre-committed for a checkpoint up to n."""
    if not a.alive:
        return
    a.job.world.trace.add(Kind.NOTIFIED, a.job.sink.index, n, 1, -1)
    for t in a.sinks:
        t.commit_up_to(n)
    a.job.check_drained()


def replay_dead_letters(job: Job):
    """The DLQ replay job (on the sink node; weir.DeadLetterReplay says how): from
    `retry.replay_after`, every replay_interval, take what waits in the dead-letter queue, fix it,
    write it to the sink and mark it processed, in the order the job says. Each step takes a
    write_time, so a crash can land between them. A look that finds the queue empty sleeps until
    a record is dead-lettered (Node.next_tick), then looks at the tick the interval would have
    given: an idle replay job costs nothing, and the run is the one a timer every interval gives
    (but for a pause of the sink node while the job sleeps, which does not move its ticks)."""
    policy, world, dlq, node = job.scenario.retry, job.world, job.dlq, job.sink
    replay = job.replay_job
    try:
        if world.now < policy.replay_after:
            yield from node.wait(policy.replay_after - world.now)
        while True:
            letters = dlq.pending(policy.replay_batch)
            if letters and not job.active_fault("sink_fail"):
                job.replaying = True
                if replay.mark_first:
                    yield from _mark(job, letters)
                yield from _write_fixed(job, letters)
                if not replay.mark_first:
                    yield from _mark(job, letters)
                job.replaying = False
            job.check_drained()
            if letters:  # (held back by a sink fault, or more may wait: the next tick looks again)
                yield from node.wait(policy.replay_interval)
            else:  # nothing waits: sleep until a record is dead-lettered, then take the tick it would
                yield from node.next_tick(job.dlq_waiters, policy.replay_interval)
    except simpy.Interrupt:  # the sink node crashed: whatever the round had not done is not done
        job.replaying = False
        return


def _write_fixed(job: Job, letters: list) -> Generator:
    """Write the fixed records, a batch per partition (a write_time each)."""
    by_partition: dict[int, list] = {}
    for letter in letters:
        value = job.replay_job.fix(letter)
        if value is not None:
            by_partition.setdefault(letter.partition, []).append((letter, int(value)))
    written = 0
    for p, entries in sorted(by_partition.items()):
        ids, keys, values, offsets = (np.array(col, dtype=np.int64) for col in zip(
            *((e.record_id, e.key, v, e.offset) for e, v in entries)))
        fixed = RecordBatch(p, int(offsets.min()), ids, keys, np.zeros(len(ids), dtype=np.int64),
                            values, offsets, int(offsets.max()) + 1)
        if job.cfg.write_time:
            yield from job.sink.work(job.cfg.write_time)
        apply_rows(job, fixed, values, None)
        written += len(ids)
    job.replayed += written
    job.world.trace.add(Kind.REPLAY, job.sink.index, written, job.dlq.depth())


def _mark(job: Job, letters: list) -> Generator:
    """Mark the entries processed (a write to the queue's table: a write_time)."""
    if job.cfg.write_time:
        yield from job.sink.work(job.cfg.write_time)
    job.dlq.mark_processed([letter.rowid for letter in letters], job.sink.local_time())
    job.world.trace.add(Kind.REPLAY_MARK, job.sink.index, len(letters), job.dlq.depth())
