"""The stream task (Flink's StreamTask): one processor subtask runs the operator.

It takes its inputs' messages from one gate (weir.sim.stream.exchange.Gate): batches go through the
operator and on to its sink subtask, watermarks move its watermark to the minimum over its active
inputs, and barriers are aligned (or not) before it snapshots the operator's state for the
coordinator. With unaligned checkpoints it keeps a copy of what arrives ahead of each input's
barrier, and after a restore it first processes what such a checkpoint saved in flight.

Its volatile state is the fields set in `__init__`, the operator among them: a failover drops it,
and the restart restores a fresh operator from the last completed checkpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import simpy

from weir.sim.kernel.batch import RecordBatch, values_digest
from weir.sim.kernel.errors import UserHookError
from weir.sim.kernel.trace import Kind, Msg
from weir.sim.stream.exchange import Barrier, Gate, Watermark
from weir.sim.stream.windows import MIN_TIME

if TYPE_CHECKING:
    from weir.sim.stream.attempt import Attempt
    from weir.sim.stream.job import Job

__all__ = ["StreamTask"]


class StreamTask:
    """One processor subtask: its operator, its input gate, and where its checkpoint alignment is."""

    def __init__(self, job: Job, attempt: Attempt, index: int, operator, inputs: int, replay: list):
        self.job, self.attempt = job, attempt
        self.index = index
        self.operator = operator
        self.gate = Gate(job.world.env, inputs)
        if job.unaligned:
            self.gate.urgent_barriers = True
        self.replay = replay  # in-flight records restored from an unaligned checkpoint: processed first
        self.input_watermarks = [MIN_TIME] * inputs
        self.input_idle = [False] * inputs
        self.watermark = MIN_TIME  # the minimum over active inputs, as last passed to the operator
        # the checkpoint being aligned: its id, which inputs delivered its barrier, when the first did
        self.aligning: int | None = None
        self.seen = [False] * inputs
        self.align_started = 0
        self.snapshot_taken = False
        self.snapshot = None
        self.done = 0  # the last checkpoint it snapshotted
        # unaligned checkpoints: in-flight records captured for the checkpoint `capture_id`
        self.capture_id = 0
        self.capturing = [False] * inputs
        self.captured: list[RecordBatch] = []
        self.notified = 0  # the last checkpoint whose completion was delivered to the operator

    # ---- messages from the source subtasks (routed by the attempt) ------------------------------
    def receive(self, channel: int, msg, tag: int) -> None:
        if self.job.unaligned:
            self._capture(channel, msg)
        self.gate.put((channel, msg, tag))

    def _capture(self, channel: int, msg) -> None:
        """Unaligned checkpoints: keep a copy of every record that arrives ahead of its input's barrier."""
        kind = type(msg)
        if kind is RecordBatch:
            if self.capturing[channel]:
                self.captured.append(msg)
        elif kind is Barrier and msg.id >= self.capture_id:
            if msg.id > self.capture_id:  # the first barrier of this checkpoint: what is queued is ahead of it
                self.capture_id = msg.id
                queued = [item[1] for item in self.gate.items if type(item[1]) is RecordBatch]
                self.captured = list(self.replay) + queued  # restored records not yet processed come first
                self.capturing = [True] * len(self.capturing)
            self.capturing[channel] = False

    # ---- the task's loop -------------------------------------------------------------------------
    def run(self):
        a, gate = self.attempt, self.gate
        a.replays_in_flight += len(self.replay)
        self.operator.open()
        try:
            while self.replay:  # an unaligned checkpoint's in-flight records come before anything new
                yield from self.process(self.replay.pop(0), replayed=True)
            while True:
                channel, msg, tag = yield gate.get(gate.open)
                kind = type(msg)
                if kind is RecordBatch:
                    a.sources[channel].on_credit(self.index)
                    yield from self.process(msg, tag=(channel, tag))
                elif kind is Watermark:
                    a.watermarks_in_flight -= 1
                    self.on_watermark(channel, msg)
                elif kind is Barrier:
                    self.on_barrier(channel, msg)
                else:  # pragma: no cover - nothing else is ever sent to a processor
                    raise TypeError(kind)
        except simpy.Interrupt:
            return

    def process(self, batch: RecordBatch, replayed: bool = False, tag: tuple[int, int] | None = None):
        job, a = self.job, self.attempt
        op, node = self.operator, job.processor
        try:
            out = op.on_batch(batch, node.local_time())
        except UserHookError as e:  # the user's operator raised: its task fails, as in Flink (or the run ends)
            if job.note_user_error(e, node):
                job.world.env.timeout(0).callbacks.append(lambda _ev: job.fail(node))
            yield job.world.env.event()  # the failover interrupts this task
        if op.windowed:
            job.late_dropped += out.dropped
            if job.user_operator and out.panes:  # a chain with user operators: what it made of the panes
                job.world.trace.add(Kind.OUTPUT, node.index, batch.partition_id, batch.first_offset, _pane_digest(out))
        else:  # what it computed enters the trace, so a run that computes other values has another hash
            job.world.trace.add(Kind.OUTPUT, node.index, batch.partition_id, batch.first_offset, values_digest(out))
        n = len(batch)
        cost = job.cfg.process_time * n
        slow = job.active_fault("slow", node)
        if slow:
            cost = int(cost * slow.factor)
        job.subtask_records[self.index] += n
        if replayed:
            job.replayed_in_flight += n
        if cost:
            yield from node.work(cost)
            job.subtask_busy[self.index] += cost
        job.world.trace.add(Kind.PROCESS, node.index, batch.partition_id, batch.first_offset, n, a.generation)
        job.world.net.send(node, job.sink, Msg.BATCH, a.to_sink, self.index, (batch, out, tag),
                           ref=(batch.partition_id, batch.first_offset))

    def on_watermark(self, channel: int, msg: Watermark) -> None:
        """Take in an input's watermark; pass the minimum over active inputs on once it moves."""
        job, a = self.job, self.attempt
        op, node = self.operator, job.processor
        self.input_idle[channel] = msg.idle
        self.input_watermarks[channel] = max(self.input_watermarks[channel], msg.value)
        active = [w for w, idle in zip(self.input_watermarks, self.input_idle) if not idle]
        if not active or min(active) <= self.watermark:
            job.check_drained()
            return
        self.watermark = min(active)
        job.world.trace.add(Kind.WATERMARK, node.index, self.index, self.watermark, len(active))
        out = op.on_watermark(self.watermark, node.local_time())
        if not op.windowed:  # a record operator writes nothing at a watermark
            job.check_drained()
            return
        job.late_dropped += out.dropped
        if job.user_operator and out.panes:
            job.world.trace.add(Kind.OUTPUT, node.index, -1, self.watermark, _pane_digest(out))
        if out:
            a.outputs_in_flight += 1
            job.world.net.send(node, job.sink, Msg.PANES, a.to_sink, self.index, (None, out, None),
                               ref=(len(out.panes), len(out.late)))
        else:
            job.check_drained()

    # ---- checkpoints -------------------------------------------------------------------------------
    def on_barrier(self, channel: int, msg: Barrier) -> None:
        """A barrier from one input. Aligned: block that input until every input's barrier is in,
        then snapshot. At-least-once: snapshot when the last one is in, blocking nothing.
        Unaligned: snapshot at the first (it overtook the queue), with the in-flight records
        captured until the last one is in."""
        if msg.id <= self.done or (self.aligning is not None and msg.id < self.aligning):
            return  # from a checkpoint given up on: a newer one is being aligned, or was
        if self.aligning is None or msg.id > self.aligning:
            self._reset_alignment()
            self.aligning, self.align_started = msg.id, self.job.world.now
        self.seen[channel] = True
        complete = all(self.seen)
        mode = self.job.barrier_mode
        if mode == "unaligned":
            if not self.snapshot_taken:
                self._take_snapshot()
                self._forward_barrier(msg)
            if complete:
                self._report_snapshot(msg.id, list(self.captured))
                self.done = msg.id
                self._reset_alignment()
            return
        if not complete:
            if mode == "aligned":
                self.gate.blocked[channel] = True
            return
        self._take_snapshot()
        self._report_snapshot(msg.id, [])
        self._forward_barrier(msg)
        self.done = msg.id
        self._reset_alignment()

    def notify(self, n: int, complete: bool) -> None:
        """The coordinator's best-effort word that checkpoint n completed (or was aborted). A completion
        older than one already delivered is dropped, and so is an abort of a checkpoint at or below
        it: "no checkpoint with lower ID will ever be committed after a checkpoint with a higher ID"
        (Flink's Checkpoint Subsuming Contract, flink-core/.../api/common/state/CheckpointListener.java)."""
        if n <= self.notified:
            return
        self.job.world.trace.add(Kind.NOTIFIED, self.job.processor.index, n, int(complete), self.index)
        if complete:
            self.notified = n
            self.operator.notify_checkpoint_complete(n)
        else:
            self.operator.notify_checkpoint_aborted(n)

    def _reset_alignment(self) -> None:
        self.aligning, self.snapshot_taken, self.snapshot = None, False, None
        self.seen = [False] * len(self.seen)
        self.gate.blocked = [False] * len(self.gate.blocked)

    def _take_snapshot(self) -> None:
        op = self.operator
        changed = op.changed_entries()  # before the snapshot, which starts the count again
        self.snapshot = (op.snapshot(), op.state_size(), changed)
        self.snapshot_taken = True

    def _forward_barrier(self, msg: Barrier) -> None:
        job = self.job
        job.world.net.send(job.processor, job.sink, Msg.BARRIER, self.attempt.to_sink, self.index, msg, ref=(msg.id, 0))

    def _report_snapshot(self, n: int, in_flight: list[RecordBatch]) -> None:
        job, world = self.job, self.job.world
        state, size, changed = self.snapshot
        records = sum(len(b) for b in in_flight)
        world.trace.add(Kind.CKPT_SNAPSHOT, job.processor.index, n, -1, size)
        if job.source_parallelism > 1 or job.parallelism > 1:
            world.trace.add(Kind.ALIGNED, job.processor.index, n, self.index, world.now - self.align_started, records)
        world.net.send(job.processor, job.coordinator, Msg.SNAPSHOT, self.attempt.coordinator.on_part, n,
                       ("state", self.index), (state, size, changed, in_flight), ref=(n, 0))


def _pane_digest(out) -> int:
    """A CRC-32 of the fired panes' values (what user operators in a windowed chain made of them)."""
    return values_digest(np.array([0 if p.value is None else p.value for p in out.panes], dtype=np.int64))
