"""The checkpoint coordinator (Flink's CheckpointCoordinator), for one attempt.

- It triggers checkpoint n every interval (at most one in flight, min_pause after the last ended,
  and only once every source subtask runs);
  every source subtask injects barrier n and snapshots its offsets, every processor subtask
  snapshots its state (with the in-flight records an unaligned checkpoint saves), every sink
  subtask pre-commits; once all have reported, the snapshot is written to the store (time from
  its bytes) and the checkpoint completes; or it times out and is aborted, and too many failures
  in a row fail the job over.
- On completion it notifies the source, which commits the checkpoint's offsets (on_checkpoint),
  and a transactional sink, which commits every transaction pending up to it
  (weir.sim.stream.sink_task).

Its volatile state is the checkpoint in flight (`pending`); what survives a failover is in the
CheckpointStore (completed checkpoints, and the counts a run reports).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import simpy

from weir.sim.kernel.timer import pending as pending_event, settle
from weir.sim.kernel.trace import Kind, Msg
from weir.sim.stream.checkpoint import Checkpoint
from weir.sim.stream.sink_task import commit_transactions

if TYPE_CHECKING:
    from weir.sim.stream.attempt import Attempt
    from weir.sim.stream.job import Job

__all__ = ["CheckpointCoordinator"]


class CheckpointCoordinator:
    """Triggers checkpoints, collects every subtask's part, persists them, completes or aborts."""

    def __init__(self, job: Job, attempt: Attempt):
        self.job, self.attempt = job, attempt
        self.pending: dict | None = None  # the checkpoint in flight: id, started, parts (and changed, bytes)

    def run(self):
        """Trigger a checkpoint every interval: at most one in flight, and min_pause after the last ended."""
        job, a = self.job, self.attempt
        world, node, cfg, store = job.world, job.coordinator, job.checkpoint, job.store
        try:
            while True:
                yield from node.wait(cfg.interval)
                if self.pending is not None or world.now - store.last_end < cfg.min_pause:
                    continue
                if not all(s.running for s in a.sources):
                    # a source subtask is not running yet (still joining): Flink does not trigger
                    # then, and does not count it as a failure (CheckpointFailureReason
                    # NOT_ALL_REQUIRED_TASKS_RUNNING, ignored by CheckpointFailureManager)
                    continue
                n = store.new_id()
                store.triggered += 1
                # "ended": settled when it completes or aborts, so that its timeout costs no event after
                self.pending = {"id": n, "started": world.now, "parts": {}, "ended": pending_event(world.env)}
                world.trace.add(Kind.CKPT_TRIGGER, node.index, n, a.generation)
                for i, source in enumerate(job.source_nodes):
                    world.net.send(node, source, Msg.TRIGGER, a.request_barrier, i, n, ref=(n, 0))
                # (`unless`, not `later`: a timer per checkpoint, due a timeout (10 s by default) after
                # it began, stayed in simpy's queue long after its checkpoint ended, and went off for
                # nothing: every event paid for a queue a hundred timers deep in a run of 100ms
                # checkpoints, and the run an event a checkpoint once it outlasted the timeout)
                node.unless(cfg.timeout, self.pending["ended"], lambda n=n: self._expired(n))
        except simpy.Interrupt:
            return

    def on_part(self, n: int, part: tuple[str, int], payload) -> None:
        """A subtask's share of checkpoint n arrived at the coordinator; persist once all are in.

        Persisting takes the store's fixed write time plus the snapshot's bytes over its bandwidth:
        every entry for a full snapshot, only the entries changed since the last one (and any an
        aborted one did not get to write) for an incremental one; plus, for an unaligned one, the
        in-flight records it saved, in the subtasks' queues and at the sources (an entry each).
        """
        job, pending = self.job, self.pending
        if not self.attempt.alive or pending is None or pending["id"] != n:
            return
        parts = pending["parts"]
        parts[part] = payload
        if len(parts) == job.source_parallelism + 2 * job.parallelism:
            cfg, store = job.checkpoint, job.store
            states = [parts[("state", j)] for j in range(job.parallelism)]
            size = sum(s[1] for s in states)
            changed = sum(s[2] for s in states)
            in_flight = sum(len(b) for s in states for b in s[3])
            in_flight += sum(len(b) for i in range(job.source_parallelism)
                             for batches in parts[("offsets", i)][1].values() for b in batches)
            pending["changed"] = changed
            entries = min(size, changed + store.unwritten_entries) if cfg.incremental else size
            entries += in_flight
            pending["bytes"] = entries * cfg.state_entry_bytes
            slow = job.active_fault("store_slow")
            write_time = cfg.write_time(entries) + (slow.slow_by if slow else 0)
            job.coordinator.later(write_time, lambda: self._persisted(n))  # the store's answer, taken in by the coordinator

    def _persisted(self, n: int) -> None:
        job, a, pending = self.job, self.attempt, self.pending
        if not a.alive or pending is None or pending["id"] != n:
            return  # the job failed, or the checkpoint timed out, while the snapshot was being written
        world, store = job.world, job.store
        if job.active_fault("store_fail"):  # the store refused the write: the checkpoint fails
            store.write_failures += 1
            self._abort(n)
            return
        parts = pending["parts"]
        offsets = [0] * job.partitions
        for i in range(job.source_parallelism):
            for p, offset in parts[("offsets", i)][0].items():
                offsets[p] = offset
        # in-flight records an unaligned checkpoint saved, per processor subtask, in stream order:
        # those its barriers overtook in the subtask's queue, then those still waiting at the sources
        states = tuple((parts[("state", j)][0], tuple(parts[("state", j)][3]) + tuple(
            b for i in range(job.source_parallelism) for b in parts[("offsets", i)][1].get(j, ())))
            for j in range(job.parallelism))
        size = sum(parts[("state", j)][1] for j in range(job.parallelism))
        sink_state = None
        if job.transactional:
            sink_state = tuple(parts[("sink", j)] for j in range(job.parallelism))
        cp = Checkpoint(n, tuple(offsets), states, size, world.now, sink_state)
        if job.active_fault("store_torn"):  # the write was torn: the store holds it, its checksum is wrong
            cp = cp.torn()
            if job.checkpoint.verify_writes:  # read back before completing: the torn write fails the checkpoint
                store.add(cp)
                store.write_failures += 1
                self._abort(n)
                return
        store.add(cp)
        duration = world.now - pending["started"]
        store.consecutive_failures, store.unwritten_entries, store.last_end = 0, 0, world.now
        store.max_duration = max(store.max_duration, duration)
        store.max_bytes = max(store.max_bytes, pending["bytes"])
        self.pending = None
        settle(pending["ended"])
        world.trace.add(Kind.CKPT_COMPLETE, job.coordinator.index, n, duration, size, pending["bytes"])
        if job.transactional:
            # an RPC, as in Flink: lost, late or out of order, it fails nothing; a later one subsumes it
            world.net.send(job.coordinator, job.sink, Msg.NOTIFY, commit_transactions, a, n, ref=(n, 1), ordered=False)
        if self.attempt.consumer.commits_on_checkpoint:
            # notifyCheckpointComplete: the source commits the checkpoint's offsets to the broker.
            world.net.send(job.coordinator, job.source, Msg.NOTIFY, self._commit_checkpoint, cp, ref=(cp.id, 0))
        self._notify_operators(n, True)

    def _notify_operators(self, n: int, complete: bool) -> None:
        """Tell every processor subtask's operator that checkpoint n completed or was aborted: an RPC,
        not a message on a task connection, so it can be lost, delayed or reordered without failing
        the job over. Sent only to an operator that listens (overrides a notify method)."""
        job = self.job
        if job.operator_listens:
            for j in range(job.parallelism):
                job.world.net.send(job.coordinator, job.processor, Msg.NOTIFY, self.attempt.notify_operator, j, n, complete,
                                   ref=(n, 2 if complete else 3), ordered=False)

    def _expired(self, n: int) -> None:
        """Checkpoint n did not complete within the timeout: abort it, and fail the job over once
        more checkpoints failed in a row than `tolerable_failures` allows (Flink's default: none)."""
        pending = self.pending
        if not self.attempt.alive or pending is None or pending["id"] != n:
            return
        self.job.store.timed_out += 1
        self._abort(n)

    def _abort(self, n: int) -> None:
        """Checkpoint n failed (timed out, or the store refused it): abort it, and fail the job over
        once more checkpoints failed in a row than `tolerable_failures` allows."""
        job, pending = self.job, self.pending
        world, store = job.world, job.store
        duration = world.now - pending["started"]
        store.consecutive_failures += 1
        store.unwritten_entries += pending.get("changed", 0)
        store.last_end = world.now
        store.max_duration = max(store.max_duration, duration)
        self.pending = None
        settle(pending["ended"])
        world.trace.add(Kind.CKPT_ABORT, job.coordinator.index, n, duration, store.consecutive_failures)
        self._notify_operators(n, False)
        if store.consecutive_failures > job.checkpoint.tolerable_failures:
            job.fail(job.coordinator)

    def _commit_checkpoint(self, cp: Checkpoint) -> None:
        job, a = self.job, self.attempt
        if a.alive:
            wanted = {p: a.consumer.on_checkpoint(p, offset) for p, offset in enumerate(cp.offsets)}
            offsets = {p: int(c) for p, c in wanted.items() if c is not None}
            if offsets:
                job.world.net.send(job.source, job.broker.node, Msg.COMMIT, job.broker.commit, offsets, a.generation,
                                   ref=(a.generation, len(offsets)))
