"""The source task (Flink's SourceStreamTask): one subtask reads its share of the partitions.

A source subtask joins the consumer group, then polls its partitions in turn, cuts each batch by
key over the processor subtasks (the keyed exchange, weir.sim.stream.exchange) and sends the parts
on bounded channels: a batch needs a credit (room at the receiver), while watermarks and barriers
follow the batches queued ahead of them. It keeps a watermark generator per partition and, every
watermark interval, sends the merged watermark downstream in the stream itself. It injects the
coordinator's barriers and snapshots its offsets, and commits offsets to the broker as the delivery
mode says (weir.sim.stream.job): right after the poll, every commit interval, or never (on
checkpoints, the coordinator's notification commits them).

Its volatile state is the fields set in `__init__`; the positions in each partition are the
attempt's (weir.sim.stream.attempt), since a rebalance moves partitions between subtasks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import simpy
from simpy.events import PENDING

from weir.sim.kafka.group import Assignment
from weir.sim.kafka.producer import marker_mask
from weir.sim.kernel.batch import RecordBatch
from weir.sim.kernel.timer import pending, succeed
from weir.sim.kernel.trace import Kind, Msg
from weir.sim.stream.exchange import Barrier, PendingAcks, Watermark, split
from weir.sim.stream.watermarks import PartitionWatermarks
from weir.sim.stream.windows import MAX_TIME

if TYPE_CHECKING:
    from weir.sim.stream.attempt import Attempt
    from weir.sim.stream.job import Job

__all__ = ["SourceTask"]


class SourceTask:
    """One source subtask: the partitions it reads, its position in them, its channels' queues."""

    def __init__(self, job: Job, attempt: Attempt, index: int, partitions: tuple[int, ...]):
        self.job, self.attempt = job, attempt
        self.index = index
        self.node = job.source_nodes[index]
        self.partitions = partitions
        self.generation = 0  # the consumer group's generation this consumer last joined (rebalance mode)
        self.tag = 0  # batches carry it, and their acknowledgements: one from an older tag is ignored
        # per processor subtask: what waits to be sent (message kind, payload, ref), and how many
        # of those are batches (which need a credit)
        channels = job.parallelism
        self.out = [deque() for _ in range(channels)]
        self.queued = [0] * channels
        self.next = 0  # index into `partitions` of where the next fetch starts
        self.in_flight = 0  # batches polled and not yet acknowledged by every sink subtask they went to
        self.acks = PendingAcks()
        self.credit: simpy.Event | None = None
        self.barrier_request: int | None = None
        self.watermarks: PartitionWatermarks | None = None
        self.idle_sent = False  # told downstream that all its partitions are idle
        self.finished = False  # a bounded source read everything and sent the end-of-input watermark
        self.running = False  # joined the group and took up its partitions: it can take a barrier
        self.waiting = False  # waiting for a fetch's answer or for the next poll: nothing half-done
        self.next_watermark_at = 0
        self.last_read_at = -1  # when it last read records
        self.last_emit_at = -1  # when it last emitted (or found nothing new to emit)
        # the default long poll (Pipeline.fetch_wait), shortened where this source's link to the
        # broker (`[[links]]`) is slower than the pipeline's latency: answered before the request times out
        cfg = job.cfg
        self.default_wait = max(0, min(cfg.fetch_wait, cfg.request_timeout - job.world.net.round_trip(
            self.node, job.broker.node) - 1))

    def wake(self) -> None:
        if self.credit is not None and self.credit._value is PENDING:  # (not credit.triggered)
            succeed(self.credit)

    def start(self) -> None:
        """Start its processes on its node: the fetch loop, and in rebalance mode the heartbeat."""
        a = self.attempt
        a.procs.append(self.node.spawn(self.run()))
        if self.job.rebalance:
            a.procs.append(self.node.spawn(self.heartbeat()))

    # ---- messages from downstream and from the coordinator (routed by the attempt) ---------------
    def on_ack(self, tag: int, p: int, first: int, n: int, end: int) -> None:
        if tag != self.tag:  # sent before a rebalance (or by a crashed instance): it counts for nothing now
            return
        a = self.attempt
        done, acked = self.acks.ack(p, first)
        if done:
            self.in_flight -= 1
        if acked is not None:
            a.acked[p] = acked
            a.offsets_moved()
        self.job.world.trace.add(Kind.ACK, self.node.index, p, first, n, a.generation)
        self.wake()
        self.job.check_drained()

    def request_barrier(self, n: int) -> None:
        """The coordinator's trigger. Injected at once while the subtask waits on a fetch or for
        its next poll (as a FLIP-27 source's task takes a checkpoint while its fetcher thread is
        blocked on the broker: a broker outage does not hold barriers back), else at the top of
        the fetch loop: never between a poll's answer and sending its batch on."""
        self.barrier_request = n
        if self.waiting and self.running:
            self.inject_barrier()
        else:
            self.wake()

    def on_credit(self, j: int) -> None:
        """Processor subtask j took a batch from this subtask's channel: one more credit."""
        self.attempt.credits[self.index][j] += 1
        capacity = self.job.cfg.queue_capacity
        was_full = self.queued[j] >= capacity
        self.pump(j)
        if was_full and self.queued[j] < capacity:
            self.wake()

    # ---- the fetch loop ----------------------------------------------------------------------
    def run(self):
        job, a = self.job, self.attempt
        world, broker, node, cfg = job.world, job.broker, self.node, job.cfg
        env, net, trace = world.env, world.net, world.trace
        read_committed = cfg.isolation == "read_committed"
        parallelism, salts = job.parallelism, cfg.salts
        try:
            if job.rebalance:  # join the group: a rebalance, and this consumer's share of the partitions
                group = broker.group
                assignment = yield from net.call(node, broker.node, Msg.JOIN, lambda: group.join(self.index),
                                                 cfg.request_timeout, ref=(self.index, 0))
                if a.positions is None:
                    a.positions, a.acked, a.confirmed = list(broker.committed), list(broker.committed), list(broker.committed)
                self.assign(assignment)
            else:  # join the group as the job's generation: fences older generations' commits
                committed = yield from net.call(node, broker.node, Msg.JOIN, lambda: broker.join(a.generation),
                                                cfg.request_timeout, ref=(a.generation, 0))
                if a.positions is None:
                    a.positions, a.acked, a.confirmed = list(committed), list(committed), list(committed)
                self.resume(committed)
            self.running = True
            if self.index == 0:
                behind = sum(broker.log.end_offsets()) - sum(a.positions)
                trace.add(Kind.RESTORE, node.index, a.restored_from, a.generation, behind)
            wm = job.scenario.watermarks
            if wm is not None:
                if self.watermarks is None:
                    self.watermarks = PartitionWatermarks(len(self.partitions), wm.generator(), wm.bound,
                                                          wm.idle_timeout, start_time=node.local_time(), params=wm.params)
                self.next_watermark_at = env.now + wm.interval
            if a.consumer.commits_periodically and (job.rebalance or self.index == 0):
                a.procs.append(node.spawn(self.committer()))
            while True:
                if self.barrier_request is not None:
                    self.inject_barrier()
                if self.in_flight >= cfg.max_in_flight or max(self.queued) >= cfg.queue_capacity:
                    waited = env.now
                    self.credit = pending(env)
                    yield self.credit
                    job.source_backpressured[self.index] += env.now - waited
                    continue
                self.waiting = True
                batch = yield from self.poll(read_committed)
                self.waiting = False
                if type(batch) is Assignment:
                    self.assign(batch)
                    continue
                if batch is None:
                    self.emit_watermark()
                    job.check_drained()
                    if not cfg.fetch_wait:  # a long poll waited at the broker; a plain poll waits here
                        self.waiting = True
                        yield from node.wait(cfg.poll_interval)
                        self.waiting = False
                    continue
                p, end = batch.partition_id, batch.end_offset
                self.next = (self.partitions.index(p) + 1) % len(self.partitions)
                a.positions[p] = end
                a.offsets_moved()
                n = len(batch)
                trace.add(Kind.POLL, node.index, p, batch.first_offset, n, a.generation)
                if not n:  # read_committed skipped only aborted records: move on, nothing to process
                    continue
                if job.ingested_at is not None:  # ingestion time: event time is when the source read it
                    stamp = node.local_time()
                    batch = replace(batch, event_time=np.full(n, stamp, dtype=np.int64))
                    job.ingested_at[batch.record_id] = stamp
                parts = split(batch, parallelism, salts)
                self.in_flight += 1  # from the poll on: the run has not drained while the batch is on its way
                self.acks.add(p, batch.first_offset, end, len(parts))
                commit = a.consumer.on_poll(p, batch.first_offset, end)
                if commit is not None:  # committed before processing (at most once, with weir's policy)
                    yield from net.call(node, broker.node, Msg.COMMIT,
                                        lambda p=p, c=int(commit): broker.commit({p: c}, a.generation),
                                        cfg.request_timeout, ref=(a.generation, 1))
                for j, part in parts:
                    if parallelism > 1:
                        trace.add(Kind.EXCHANGE, node.index, j, p, batch.first_offset, len(part))
                    self.enqueue(j, Msg.BATCH, part, (p, batch.first_offset))
                if self.watermarks is not None:
                    local = self.partitions.index(p)
                    self.watermarks.on_event(local, int(batch.event_time.max()), node.local_time())
                    if job.marker_every:
                        markers = marker_mask(batch.record_id, job.marker_every)
                        if markers.any():
                            self.watermarks.on_event(local, int(batch.event_time[markers].max()), node.local_time(), True)
                    self.last_read_at = env.now
                    self.emit_watermark()
        except simpy.Interrupt:
            return

    def poll(self, read_committed: bool) -> Generator:
        """Fetch the next batch of the subtask's partitions (None if there is nothing new). In
        rebalance mode the fetch carries the consumer's generation: if a rebalance happened since,
        the answer is the consumer's new Assignment instead. Returns the fetch's process step
        (`batch = yield from self.poll(...)`): net.call's own generator, no layer around it."""
        job, a = self.job, self.attempt
        broker, cfg = job.broker, job.cfg
        start = self.partitions[self.next] if self.partitions else -1

        def attempt():
            if job.rebalance:
                change = broker.group.current(self.index, self.generation)
                if change is not None:
                    return change
                if not self.partitions:
                    return None
            return broker.fetch(a.positions, start, cfg.batch_size, read_committed, self.partitions)

        wait = self.fetch_wait()
        return job.world.net.call(self.node, broker.node, Msg.FETCH, lambda: broker.hold(attempt, wait),
                                  cfg.request_timeout, ref=(start, cfg.batch_size))

    def fetch_wait(self) -> int:
        """How long the broker may hold this fetch (Pipeline.fetch_wait): no longer than until
        the next watermark is due, when one may be (records read since the last one was sent, or
        a strategy whose watermark moves with time: idleness, ingestion time, a user's own)."""
        job, cfg = self.job, self.job.cfg
        wait = cfg.fetch_wait
        if wait and cfg.fetch_max_wait is None:  # the default: it fits this source's own link to the broker
            wait = self.default_wait
        wm = job.scenario.watermarks
        if not wait or wm is None or self.watermarks is None or self.finished:
            return wait
        timed = wm.idle_timeout is not None or wm.strategy not in ("bounded_out_of_orderness", "punctuated")
        if timed or self.last_read_at > self.last_emit_at:
            wait = min(wait, max(self.next_watermark_at - job.world.env.now, 1))
        return wait

    # ---- channels to the processor subtasks --------------------------------------------------
    def enqueue(self, j: int, kind: Msg, payload, ref: tuple[int, int]) -> None:
        """Put a message on the channel to processor subtask j, behind what waits there already,
        and send what can go."""
        self.out[j].append((kind, payload, ref))
        if kind is Msg.BATCH:
            self.queued[j] += 1
        self.pump(j)

    def pump(self, j: int) -> None:
        """Send from the head of the channel's queue: a batch while there is a credit for it (the
        receiver has room), a watermark or barrier as soon as everything ahead of it is sent."""
        a = self.attempt
        queue, credits = self.out[j], a.credits[self.index]
        while queue:
            kind, payload, ref = queue[0]
            if kind is Msg.BATCH:
                if not credits[j]:
                    return
                credits[j] -= 1
                self.queued[j] -= 1
            queue.popleft()
            if kind is Msg.WATERMARK:  # which subtask it goes to, and whether its sender is idle
                a.watermarks_in_flight += 1
                ref = (ref[0], 2 * j + int(payload.idle))
            self.job.world.net.send(self.node, self.job.processor, kind, a.to_processor, j, self.index, payload,
                                    self.tag, ref=ref)

    def broadcast(self, kind: Msg, msg, ref: tuple[int, int]) -> None:
        """Send a barrier or a watermark to every processor subtask, each behind the batches on its channel."""
        for j in range(self.job.parallelism):
            self.enqueue(j, kind, msg, ref)

    def emit_watermark(self) -> None:
        """Every watermark interval: merge the subtask's partitions' watermarks and send it on if it moved.

        With several source subtasks, one whose partitions are all idle says so (and says when it
        is active again), so that the processors leave it out of their minimum meanwhile.
        """
        job = self.job
        env = job.world.env
        if self.watermarks is None or self.finished:
            return
        if self.at_end():  # the end of input: the watermark that fires every window (Long.MAX_VALUE)
            self.finished = True
            self.last_emit_at = env.now
            self.watermarks.emitted = MAX_TIME
            self.broadcast(Msg.WATERMARK, Watermark(MAX_TIME, False), (MAX_TIME, 0))
            return
        if env.now < self.next_watermark_at:
            return
        self.next_watermark_at = env.now + job.scenario.watermarks.interval
        self.last_emit_at = env.now
        merged = self.watermarks.on_periodic_emit(self.node.local_time())
        if job.source_parallelism > 1:
            idle = all(self.watermarks.idle)
            if idle != self.idle_sent:
                self.idle_sent = idle
                merged = self.watermarks.emitted
        if merged is not None:
            self.broadcast(Msg.WATERMARK, Watermark(merged, self.idle_sent), (merged, 0))

    def at_end(self) -> bool:
        """A bounded source (pipeline.bounded) has read everything there is: the producer is done
        and this subtask's partitions are read to their ends (in rebalance mode every partition,
        since any of them may still be dealt to it). Like Flink's bounded KafkaSource, which stops
        at the offsets it was given and then emits Watermark.MAX_WATERMARK (SourceOperator's
        emitNext on END_OF_INPUT): so also right after a restore that left nothing new to read."""
        job, a = self.job, self.attempt
        if not job.cfg.bounded or not job.producer.done or a.positions is None:
            return False
        log = job.broker.log
        owned = range(job.partitions) if job.rebalance else self.partitions
        return all(a.positions[p] >= log.end_offset(p) for p in owned)

    def inject_barrier(self) -> None:
        """Snapshot this subtask's offsets for the requested checkpoint and send its barrier on."""
        job, a = self.job, self.attempt
        world, node = job.world, self.node
        n, self.barrier_request = self.barrier_request, None
        offsets = {p: a.positions[p] for p in self.partitions}
        for p, offset in offsets.items():
            world.trace.add(Kind.CKPT_SNAPSHOT, node.index, n, p, offset)
        saved: dict[int, list[RecordBatch]] = {}
        if job.unaligned:  # the barrier overtakes the batches waiting to be sent; they go into the snapshot
            for j, queue in enumerate(self.out):
                saved[j] = [payload for kind, payload, _ref in queue if kind is Msg.BATCH]
                world.net.send(node, job.processor, Msg.BARRIER, a.to_processor, j, self.index, Barrier(n),
                               ref=(n, 0))
        world.net.send(node, job.coordinator, Msg.SNAPSHOT, a.coordinator.on_part, n,
                       ("offsets", self.index), (offsets, saved), ref=(n, 0))
        if not job.unaligned:
            self.broadcast(Msg.BARRIER, Barrier(n), (n, 0))

    # ---- offsets and the consumer group ----------------------------------------------------------
    def resume(self, committed: list[int]) -> None:
        """Where this subtask's partitions resume: the consumer policy says, from the restored
        checkpoint's offsets and the group's committed ones (weir's: the checkpoint's if any)."""
        a = self.attempt
        for p in self.partitions:
            restored = a.restored_offsets[p] if a.restored_offsets is not None else None
            start = int(a.consumer.resume(p, restored, committed[p]))
            if start != a.positions[p]:  # the policy chose another start: nothing past it was acknowledged
                a.positions[p] = a.acked[p] = start
                a.offsets_moved()
            # what the broker has committed is what it answered, whatever the start: a periodic
            # committer that took the checkpoint's offsets as confirmed would never commit a
            # partition the checkpoint already covers, and the run would never drain
            a.confirmed[p] = committed[p]

    def committer(self):
        """Every commit_interval, commit the offsets the consumer policy names if they moved (weir's:
        what the sink acknowledged, "after_ack"; or what was polled, processed or not, "auto",
        Kafka's enable.auto.commit). One committer for all partitions, with the job's generation;
        in rebalance mode one per consumer, for its own partitions, with its group generation.

        A tick that finds nothing to commit sleeps until a position or an acknowledgement moves
        (Node.next_tick), then takes the tick the interval would have given: the policy's answer
        is a function of those offsets (ConsumerPolicy.periodic), so the ticks in between would
        have found nothing either, and an idle consumer's committer costs nothing."""
        job, a = self.job, self.attempt
        world, broker, node, cfg = job.world, job.broker, self.node, job.cfg
        policy = a.consumer
        idle = False
        try:
            while True:
                if not idle:
                    yield from node.wait(cfg.commit_interval)
                idle = False
                owned = self.partitions if job.rebalance else range(job.partitions)
                generation = self.generation if job.rebalance else a.generation
                wanted = {p: policy.periodic(p, a.positions[p], a.acked[p]) for p in owned}
                changed = {p: int(c) for p, c in wanted.items() if c is not None and c != a.confirmed[p]}
                if not changed:
                    job.check_drained()
                    yield from node.next_tick(a.offset_waiters, cfg.commit_interval)
                    idle = True
                    continue
                answer = world.net.request(node, broker.node, Msg.COMMIT,
                                           lambda changed=changed, g=generation: broker.commit(changed, g),
                                           cfg.request_timeout, ref=(generation, len(changed)))
                answer.callbacks.append(lambda ev, changed=changed: self._confirmed(changed, ev.value))
        except simpy.Interrupt:
            return

    def _confirmed(self, offsets: dict[int, int], accepted) -> None:
        a = self.attempt
        if accepted is True and a.alive:
            for p, offset in offsets.items():
                a.confirmed[p] = max(a.confirmed[p], offset)

    def heartbeat(self):
        """Kafka's heartbeat thread: every heartbeat_interval, tell the coordinator it is alive."""
        job = self.job
        world, node, group = job.world, self.node, job.broker.group
        try:
            while True:
                yield from node.wait(job.cfg.heartbeat_interval)
                world.net.send(node, job.broker.node, Msg.HEARTBEAT, group.heartbeat, self.index,
                               ref=(self.index, self.generation))
        except simpy.Interrupt:
            return

    def assign(self, assignment: Assignment) -> None:
        """A rebalance reached this consumer: take the new generation and partitions. Eager
        rebalancing: every partition starts again from its committed offset, and what was in
        flight no longer counts (its acknowledgements are ignored)."""
        job, a = self.job, self.attempt
        self.generation = assignment.generation
        self.partitions = assignment.partitions
        self.next = 0
        for p, committed in zip(assignment.partitions, assignment.committed):
            a.positions[p] = a.acked[p] = int(a.consumer.resume(p, None, committed))
            a.confirmed[p] = committed
        a.offsets_moved()
        a.tags += 1
        self.tag = a.tags
        self.in_flight = 0
        self.acks = PendingAcks()
        wm = job.scenario.watermarks
        if wm is not None:
            emitted = self.watermarks.emitted if self.watermarks is not None else None
            self.watermarks = PartitionWatermarks(len(self.partitions), wm.generator(), wm.bound, wm.idle_timeout,
                                                  start_time=self.node.local_time(), params=wm.params)
            if emitted is not None:
                self.watermarks.emitted = emitted  # never backwards
        self.wake()
