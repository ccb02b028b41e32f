"""The sink task: one sink subtask writes what its processor subtask sends.

Each sink subtask is chained to one processor subtask. It writes record batches to the sink table,
retrying what fails after a backoff and dead-lettering (or skipping) what still fails when the
retries run out (weir.sim.patterns.dlq); writes panes to the window results; and acknowledges each
batch to the source subtask that polled it. On a barrier it reports to the coordinator and, with a
transactional sink, pre-commits its open transaction and opens the next one (Flink's
TwoPhaseCommitSinkFunction: beginTransaction, preCommit, commit on notifyCheckpointComplete,
abort; and on restore, commit what the checkpoint pre-committed and abort the rest).

The DLQ replay job also runs on the sink node (`replay_dead_letters`); it outlives attempts, like
the dead-letter queue it reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import simpy

from weir.sim.kafka.producer import poison_mask
from weir.sim.kernel.batch import RecordBatch
from weir.sim.kernel.trace import Kind, Msg
from weir.sim.stream.exchange import Barrier

if TYPE_CHECKING:
    from weir.sim.stream.attempt import Attempt
    from weir.sim.stream.job import Job

__all__ = ["SinkTask", "backoff_delay", "recover_transactions", "commit_transactions", "replay_dead_letters"]


def backoff_delay(attempt: int, backoff: int, multiplier: float, max_backoff: int, jitter: float, u: float) -> int:
    """The wait before retry `attempt` (1, 2, ...): backoff * multiplier^(attempt-1), at most
    max_backoff, times (1 + jitter * u) for a uniform draw u in [0, 1); whole microseconds."""
    base = min(backoff * multiplier ** (attempt - 1), max_backoff)
    return int(base * (1 + jitter * u))


class SinkTask:
    """One sink subtask: its inbox and, with a transactional sink, its open and pre-committed transactions."""

    def __init__(self, job: Job, attempt: Attempt, index: int):
        self.job, self.attempt = job, attempt
        self.index = index
        self.inbox = simpy.Store(job.world.env)
        self.txn = 0  # the open transaction
        self.pending: list[tuple[int, int]] = []  # (checkpoint, txn) pre-committed, awaiting its completion

    def begin_transaction(self) -> None:
        a = self.attempt
        a.txn_seq += 1
        self.txn = a.generation * 1_000_000 + a.txn_seq  # unique across attempts and subtasks, deterministic

    def commit_up_to(self, n: int) -> None:
        """Checkpoint n completed: commit every transaction pre-committed for a checkpoint up to n."""
        job = self.job
        due = [(m, txn) for m, txn in self.pending if m <= n]
        self.pending = [(m, txn) for m, txn in self.pending if m > n]
        for m, txn in due:
            committed = job.txn_table.commit(txn, job.sink.local_time())
            job.world.trace.add(Kind.TXN_COMMIT, job.sink.index, m, txn, int(committed))

    def run(self):
        job, a = self.job, self.attempt
        world, node = job.world, job.sink
        net, trace = world.net, world.trace
        write_time = job.cfg.write_time
        if job.transactional:
            if self.index == 0:
                recover_transactions(job, a)
            self.begin_transaction()
        try:
            while True:
                msg = yield self.inbox.get()
                if type(msg) is Barrier:
                    sink_state = None
                    if job.transactional:  # pre-commit: the open transaction waits for checkpoint msg.id
                        self.pending.append((msg.id, self.txn))
                        self.begin_transaction()
                        sink_state = list(self.pending)
                    trace.add(Kind.CKPT_SNAPSHOT, node.index, msg.id, -1, len(self.pending))
                    net.send(node, job.coordinator, Msg.SNAPSHOT, a.coordinator.on_part, msg.id, ("sink", self.index),
                             sink_state, ref=(msg.id, 0))
                    continue
                batch, out, origin = msg  # origin: (source subtask, tag) to acknowledge, or None if replayed
                txn = self.txn if job.transactional else None
                if job.results is not None:
                    if write_time:
                        yield from node.work(write_time)  # the write lands, whole, at the end of this
                    job.results.write(out.panes, out.late, node.local_time(), txn, self.index)
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

    def write_records(self, batch: RecordBatch, out, txn: int | None):
        """Write a batch's rows (each write takes write_time, the write landing whole at its end),
        retrying what fails after a backoff; dead-letter (or skip) what still fails when the
        retries run out (weir.sim.patterns.dlq)."""
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
            else:
                todo = np.ones(len(batch), dtype=bool) if pending is None else pending
                good = todo if poison is None else todo & ~poison
                if good.all():
                    apply_rows(job, batch, out, txn)
                elif good.any():
                    apply_rows(job, batch.take(good), out[good], txn)
                if job.active_fault("sink_ack_lost"):
                    if txn is not None:
                        # Inside a transaction a write of unknown outcome cannot be retried (a second
                        # attempt would stage the rows twice): the sink fails, the job fails over and
                        # aborts the transaction, as Flink's exactly-once sinks do on a write error.
                        trace.add(Kind.RETRY, node.index, batch.partition_id, batch.first_offset, attempt + 1, -1)
                        job.world.env.timeout(0).callbacks.append(lambda _ev: job.fail(node))
                        yield job.world.env.event()  # the failover interrupts this task
                    pending = todo  # applied, but the sink cannot know: it will write them again
                    error = ("AckLostError", "the write was applied but its acknowledgement was lost (timed out)")
                else:
                    pending = todo & ~good
                    if not pending.any():
                        return
                    error = ("PoisonRecordError", "the record fails the sink's validation")
            attempt += 1
            failing = np.ones(len(batch), dtype=bool) if pending is None else pending
            if not policy.forever and attempt > policy.max_retries:
                if policy.exhausted == "dlq":
                    n = job.dlq.add(batch, failing, *error, attempt - 1, policy.max_retries, node.local_time())
                    trace.add(Kind.DEAD_LETTER, node.index, batch.partition_id, batch.first_offset, n, attempt - 1)
                else:
                    job.skipped += int(failing.sum())
                return
            delay = backoff_delay(attempt, policy.backoff, policy.multiplier, policy.max_backoff, policy.jitter,
                                  job.retry_rng.random())
            trace.add(Kind.RETRY, node.index, batch.partition_id, batch.first_offset, attempt, delay)
            yield from node.wait(delay)


def apply_rows(job: Job, batch: RecordBatch, out, txn: int | None) -> None:
    """Hand a batch's rows to the sink table (staged in transaction `txn`, with a transactional sink)."""
    node, trace = job.sink, job.world.trace
    if job.transactional:
        job.sink_table.write(batch, out, node.local_time(), txn=txn)
        rewritten = 0
    else:
        rewritten = job.sink_table.write(batch, out, node.local_time())
    job.rows_written += len(batch)
    trace.add(Kind.WRITE, node.index, batch.partition_id, batch.first_offset, len(batch), rewritten)


def recover_transactions(job: Job, a: Attempt) -> None:
    """On restore: commit the restored checkpoint's pending transactions (they may be committed
    already: commit is idempotent), then abort every other staged one: the transaction that was
    open, and any pre-committed for a checkpoint that never completed."""
    table, now = job.txn_table, job.sink.local_time()
    for n, txn in a.restored_sink:
        committed = table.commit(txn, now)
        job.world.trace.add(Kind.TXN_COMMIT, job.sink.index, n, txn, int(committed))
    aborted = table.abort_all_but(set())
    job.world.trace.add(Kind.TXN_ABORT, job.sink.index, aborted, a.generation)


def commit_transactions(a: Attempt, n: int) -> None:
    """The coordinator's notification that checkpoint n completed, at the sink: every sink subtask
    commits what it pre-committed for a checkpoint up to n."""
    if not a.alive:
        return
    for t in a.sinks:
        t.commit_up_to(n)
    a.job.check_drained()


def replay_dead_letters(job: Job):
    """The DLQ replay job (on the sink node): from `retry.replay_after`, every replay_interval,
    fix what waits in the dead-letter queue, write it to the sink and mark it processed. A crash
    between the write and the mark writes it again next time: harmless with an idempotent sink."""
    policy, world, dlq, node = job.scenario.retry, job.world, job.dlq, job.sink
    try:
        if world.now < policy.replay_after:
            yield from node.wait(policy.replay_after - world.now)
        while True:
            rows = dlq.pending(policy.replay_batch)
            if rows and not job.active_fault("sink_fail"):
                by_partition: dict[int, list] = {}
                for row in rows:
                    by_partition.setdefault(row[4], []).append(row)
                for p, entries in sorted(by_partition.items()):
                    ids, keys, values, offsets = (np.array([e[c] for e in entries], dtype=np.int64)
                                                  for c in (1, 2, 3, 5))
                    fixed = RecordBatch(p, int(offsets.min()), ids, keys, np.zeros(len(ids), dtype=np.int64),
                                        values, offsets, int(offsets.max()) + 1)
                    if job.cfg.write_time:
                        yield from node.work(job.cfg.write_time)
                    apply_rows(job, fixed, values, None)
                dlq.mark_processed([row[0] for row in rows], node.local_time())
                job.replayed += len(rows)
                world.trace.add(Kind.REPLAY, node.index, len(rows), dlq.depth())
            job.check_drained()
            yield from node.wait(policy.replay_interval)
    except simpy.Interrupt:
        return
