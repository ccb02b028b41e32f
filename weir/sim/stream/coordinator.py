"""The checkpoint protocol: the coordinator's side, and the sink's two-phase commit.

A mixin of `Job` (it uses the job's world, nodes, store, sink table and configuration): the data
path lives in weir/sim/stream/job.py, the protocol that makes it recoverable lives here.

- The coordinator triggers checkpoint n every interval (at most one in flight, min_pause after the
  last ended); every source subtask injects barrier n and snapshots its offsets, every processor
  subtask snapshots its state (with the in-flight records an unaligned checkpoint saves), every
  sink subtask pre-commits; once all have reported, the snapshot is written to the store (time
  from its bytes) and the checkpoint completes; or it times out and is aborted, and too many
  failures in a row fail the job over.
- On completion the source commits the checkpoint's offsets (on_checkpoint) and a transactional
  sink commits every transaction pending up to it; a restore commits the restored checkpoint's
  pending transactions and aborts every other staged one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import simpy

from weir.sim.stream.checkpoint import Checkpoint
from weir.sim.kernel.trace import Kind, Msg

if TYPE_CHECKING:
    from weir.sim.stream.job import _Attempt, _Subtask

__all__ = ["CheckpointCoordination"]


class CheckpointCoordination:
    """The checkpoint and two-phase-commit steps of a Job."""

    # ---- the sink's transactions (Flink's TwoPhaseCommitSinkFunction) ------------------------
    def _begin_transaction(self, a: "_Attempt", t: "_Subtask") -> None:
        a.txn_seq += 1
        t.txn = a.generation * 1_000_000 + a.txn_seq  # unique across attempts and subtasks, deterministic

    def _recover_transactions(self, a: "_Attempt") -> None:
        """On restore: commit the restored checkpoint's pending transactions (they may be committed
        already: commit is idempotent), then abort every other staged one: the transaction that was
        open, and any pre-committed for a checkpoint that never completed."""
        table, now = self.txn_table, self.sink.local_time()
        for n, txn in a.restored_sink:
            committed = table.commit(txn, now)
            self.world.trace.add(Kind.TXN_COMMIT, self.sink.index, n, txn, int(committed))
        aborted = table.abort_all_but(set())
        self.world.trace.add(Kind.TXN_ABORT, self.sink.index, aborted, a.generation)

    def _commit_transactions(self, a: "_Attempt", n: int) -> None:
        """Checkpoint n completed: commit every transaction pre-committed for a checkpoint up to n."""
        if not a.alive:
            return
        for t in a.subtasks:
            due = [(m, txn) for m, txn in t.sink_pending if m <= n]
            t.sink_pending = [(m, txn) for m, txn in t.sink_pending if m > n]
            for m, txn in due:
                committed = self.txn_table.commit(txn, self.sink.local_time())
                self.world.trace.add(Kind.TXN_COMMIT, self.sink.index, m, txn, int(committed))
        self.check_drained()

    # ---- the coordinator ----------------------------------------------------------------------
    def _coordinator_task(self, a: "_Attempt"):
        """Trigger a checkpoint every interval: at most one in flight, and min_pause after the last ended."""
        world, node, cfg, store = self.world, self.coordinator, self.checkpoint, self.store
        try:
            while True:
                yield from node.wait(cfg.interval)
                if a.pending is not None or world.now - store.last_end < cfg.min_pause:
                    continue
                n = store.new_id()
                store.triggered += 1
                a.pending = {"id": n, "started": world.now, "parts": {}}
                world.trace.add(Kind.CKPT_TRIGGER, node.index, n, a.generation)
                for i, source in enumerate(self.source_nodes):
                    world.net.send(node, source, Msg.TRIGGER, a.request_barrier, i, n, ref=(n, 0))
                node.later(cfg.timeout, lambda n=n: self._expired(a, n))
        except simpy.Interrupt:
            return

    def _checkpoint_part(self, a: "_Attempt", n: int, part: tuple[str, int], payload) -> None:
        """A subtask's share of checkpoint n arrived at the coordinator; persist once all are in.

        Persisting takes the store's fixed write time plus the snapshot's bytes over its bandwidth:
        every entry for a full snapshot, only the entries changed since the last one (and any an
        aborted one did not get to write) for an incremental one; plus, for an unaligned one, the
        in-flight records it saved, in the subtasks' queues and at the sources (an entry each).
        """
        pending = a.pending
        if not a.alive or pending is None or pending["id"] != n:
            return
        parts = pending["parts"]
        parts[part] = payload
        if len(parts) == self.source_parallelism + 2 * self.parallelism:
            cfg, store = self.checkpoint, self.store
            states = [parts[("state", j)] for j in range(self.parallelism)]
            size = sum(s[1] for s in states)
            changed = sum(s[2] for s in states)
            in_flight = sum(len(b) for s in states for b in s[3])
            in_flight += sum(len(b) for i in range(self.source_parallelism)
                             for batches in parts[("offsets", i)][1].values() for b in batches)
            pending["changed"] = changed
            entries = min(size, changed + store.unwritten_entries) if cfg.incremental else size
            entries += in_flight
            pending["bytes"] = entries * cfg.state_entry_bytes
            slow = self._active_fault("store_slow")
            write_time = cfg.write_time(entries) + (slow.slow_by if slow else 0)
            self.coordinator.later(write_time, lambda: self._persisted(a, n))  # the store's answer, taken in by the coordinator

    def _persisted(self, a: "_Attempt", n: int) -> None:
        pending = a.pending
        if not a.alive or pending is None or pending["id"] != n:
            return  # the job failed, or the checkpoint timed out, while the snapshot was being written
        world, store = self.world, self.store
        if self._active_fault("store_fail"):  # the store refused the write: the checkpoint fails
            store.write_failures += 1
            self._abort(a, n)
            return
        parts = pending["parts"]
        offsets = [0] * self.partitions
        for i in range(self.source_parallelism):
            for p, offset in parts[("offsets", i)][0].items():
                offsets[p] = offset
        # in-flight records an unaligned checkpoint saved, per processor subtask, in stream order:
        # those its barriers overtook in the subtask's queue, then those still waiting at the sources
        states = tuple((parts[("state", j)][0], tuple(parts[("state", j)][3]) + tuple(
            b for i in range(self.source_parallelism) for b in parts[("offsets", i)][1].get(j, ())))
            for j in range(self.parallelism))
        size = sum(parts[("state", j)][1] for j in range(self.parallelism))
        sink_state = None
        if self.transactional:
            sink_state = sorted(pair for j in range(self.parallelism) for pair in parts[("sink", j)])
        cp = Checkpoint(n, tuple(offsets), states, size, world.now, sink_state)
        if self._active_fault("store_torn"):  # the write was torn: the store holds it, its checksum is wrong
            cp = cp.torn()
            if self.checkpoint.verify_writes:  # read back before completing: the torn write fails the checkpoint
                store.add(cp)
                store.write_failures += 1
                self._abort(a, n)
                return
        store.add(cp)
        duration = world.now - pending["started"]
        store.consecutive_failures, store.unwritten_entries, store.last_end = 0, 0, world.now
        store.max_duration = max(store.max_duration, duration)
        store.max_bytes = max(store.max_bytes, pending["bytes"])
        a.pending = None
        world.trace.add(Kind.CKPT_COMPLETE, self.coordinator.index, n, duration, size, pending["bytes"])
        if self.transactional:
            world.net.send(self.coordinator, self.sink, Msg.NOTIFY, self._commit_transactions, a, n, ref=(n, 1))
        if self.cfg.offset_commit == "on_checkpoint":
            # notifyCheckpointComplete: the source commits the checkpoint's offsets to the broker.
            world.net.send(self.coordinator, self.source, Msg.NOTIFY, self._commit_checkpoint, a, cp, ref=(cp.id, 0))

    def _expired(self, a: "_Attempt", n: int) -> None:
        """Checkpoint n did not complete within the timeout: abort it, and fail the job over once
        more checkpoints failed in a row than `tolerable_failures` allows (Flink's default: none)."""
        pending = a.pending
        if not a.alive or pending is None or pending["id"] != n:
            return
        self.store.timed_out += 1
        self._abort(a, n)

    def _abort(self, a: "_Attempt", n: int) -> None:
        """Checkpoint n failed (timed out, or the store refused it): abort it, and fail the job over
        once more checkpoints failed in a row than `tolerable_failures` allows."""
        pending = a.pending
        world, store = self.world, self.store
        duration = world.now - pending["started"]
        store.consecutive_failures += 1
        store.unwritten_entries += pending.get("changed", 0)
        store.last_end = world.now
        store.max_duration = max(store.max_duration, duration)
        a.pending = None
        world.trace.add(Kind.CKPT_ABORT, self.coordinator.index, n, duration, store.consecutive_failures)
        if store.consecutive_failures > self.checkpoint.tolerable_failures:
            self._fail(self.coordinator)

    def _commit_checkpoint(self, a: "_Attempt", cp: Checkpoint) -> None:
        if a.alive:
            offsets = dict(enumerate(cp.offsets))
            self.world.net.send(self.source, self.broker.node, Msg.COMMIT, self.broker.commit, offsets, a.generation,
                                ref=(a.generation, len(offsets)))
