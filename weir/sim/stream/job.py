"""The job: source, processor and sink subtasks and a coordinator on four nodes, and its failover.

Durable state lives in the Broker (log, committed offsets), the CheckpointStore (completed
checkpoints) and the sink tables. Everything the job keeps in memory lives in one `_Attempt` (Flink's
name for one execution of a job); when any task's node crashes, the attempt is failed, its processes
are interrupted and the whole object is dropped. The restart builds a new attempt from durable
state only: the latest completed checkpoint when checkpointing is on (offsets and operator state
together), otherwise the consumer group's committed offsets and empty state.

Delivery modes differ mainly in when offsets are committed (`pipeline.offset_commit`, defaulted
from the mode):
- before_processing (at_most_once): right after the poll (a crash loses what was in flight);
- after_ack (at_least_once): every commit_interval, up to what the sink acknowledged (a crash
  replays what was written after the last commit, so the sink sees it twice);
- on_checkpoint (exactly_once): when a checkpoint completes, and restarts use the checkpoint's
  offsets; with an idempotent sink the replay overwrites its own rows;
- auto: every commit_interval, whatever was polled, processed or not (Kafka's auto-commit): a
  crash can both lose records and duplicate them.

Parallelism (weir/sim/stream/exchange.py): `source_parallelism` source subtasks on the source node, each
reading its share of the partitions, and `parallelism` processor subtasks on the processor node,
each chained to a sink subtask on the sink node. Records reach processor subtasks through a keyed
exchange over bounded channels. A processor subtask with several inputs aligns barriers (or not,
per `checkpoint.mode` and `checkpoint.unaligned`) and takes the minimum of its inputs' watermarks.

With a `[window]` the processor runs a keyed event-time window aggregation. A source subtask then
keeps a watermark generator per partition and, every watermark interval, sends the merged
watermark downstream in the stream itself, behind the records it covers (Flink's per-split
watermarks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collections import deque
from dataclasses import replace

import numpy as np
import simpy

from weir.sim.kernel.batch import RecordBatch
from weir.sim.stream.checkpoint import CheckpointStore
from weir.sim.stream.functions import Sink
from weir.sim.stream.coordinator import CheckpointCoordination
from weir.sim.kafka.producer import poison_mask
from weir.sim.stream.sink_task import backoff_delay
from weir.sim.stream.exchange import Barrier, Gate, PendingAcks, Watermark, split
from weir.sim.kafka.group import Assignment, ConsumerGroup
from weir.sim.kernel.world import Node, Status, World
from weir.sim.kafka.log import Broker
from weir.sim.stream.operators import RunningTotals, WindowedAggregation
from weir.sim.kernel.trace import Kind, Msg
from weir.sim.stream.watermarks import PartitionWatermarks
from weir.sim.stream.windows import MIN_TIME
from weir.sim.kafka.producer import Producer, marker_mask

if TYPE_CHECKING:
    from weir.sim.patterns.dlq import DeadLetterQueue
    from weir.sim.patterns.sinks import WindowResults
    from weir.sim.scenario.model import Scenario

__all__ = ["Job", "Barrier", "Watermark", "JOB_NODES"]

#: The nodes the job's tasks run on. A crash of any of them fails the whole job over (Flink's full
#: restart strategy), except a consumer's in rebalance mode.
JOB_NODES = ("source", "processor", "sink", "coordinator")


class _SourceTask:
    """One source subtask: the partitions it reads and its position in them."""

    def __init__(self, index: int, partitions: tuple[int, ...], channels: int):
        self.index = index
        self.partitions = partitions
        self.generation = 0  # the consumer group's generation this consumer last joined (rebalance mode)
        self.tag = 0  # batches carry it, and their acknowledgements: one from an older tag is ignored
        # per processor subtask: what waits to be sent (message kind, payload, ref), and how many
        # of those are batches (which need a credit)
        self.out = [deque() for _ in range(channels)]
        self.queued = [0] * channels
        self.next = 0  # index into `partitions` of where the next fetch starts
        self.in_flight = 0  # batches polled and not yet acknowledged by every sink subtask they went to
        self.acks = PendingAcks()
        self.credit: simpy.Event | None = None
        self.barrier_request: int | None = None
        self.watermarks: PartitionWatermarks | None = None
        self.idle_sent = False  # told downstream that all its partitions are idle
        self.next_watermark_at = 0
        self.last_read_at = -1  # when it last read records
        self.last_emit_at = -1  # when it last emitted (or found nothing new to emit)

    def wake(self) -> None:
        if self.credit is not None and not self.credit.triggered:
            self.credit.succeed()


class _Subtask:
    """One processor subtask and the sink subtask chained to it."""

    def __init__(self, env: simpy.Environment, index: int, operator, inputs: int, replay: list):
        self.index = index
        self.operator = operator
        self.gate = Gate(env, inputs)
        self.sink_inbox = simpy.Store(env)
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
        # sink subtask, with a transactional sink (Flink's TwoPhaseCommitSinkFunction)
        self.txn = 0  # the open transaction
        self.sink_pending: list[tuple[int, int]] = []  # (checkpoint, txn) pre-committed, awaiting its completion


class _Attempt:
    """Everything the job keeps in memory during one execution attempt. A failover drops it all."""

    def __init__(self, job: "Job", generation: int, offsets: list[int] | None, operators: list, channel_state: list,
                 checkpoint_id: int):
        env = job.world.env
        self.job = job
        self.generation = generation
        self.alive = True
        self.restored_from = checkpoint_id  # -1: committed offsets, 0: job start, n: checkpoint n
        # source subtasks (positions, acked and confirmed are per partition, each owned by one subtask)
        self.positions = offsets  # next offset to fetch per partition (None until joined)
        self.acked = list(offsets) if offsets else None  # end of what the sinks acknowledged
        self.confirmed = list(offsets) if offsets else None  # what the broker confirmed committed
        s = job.source_parallelism
        self.sources = [_SourceTask(i, tuple(range(i, job.partitions, s)), job.parallelism) for i in range(s)]
        # credits[i][j]: free places in the channel from source subtask i to processor subtask j
        self.credits = [[job.cfg.queue_capacity] * job.parallelism for _ in range(s)]
        # processor and sink subtasks
        self.subtasks = [_Subtask(env, j, op, s, replay) for j, (op, replay) in enumerate(zip(operators, channel_state))]
        if job.unaligned:
            for t in self.subtasks:
                t.gate.urgent_barriers = True
        self.watermarks_in_flight = 0  # watermark messages sent by sources, not yet taken in by a subtask
        self.outputs_in_flight = 0  # watermark-fired outputs on their way to a sink subtask
        self.replays_in_flight = 0  # restored in-flight batches not yet written by their sink subtask
        self.txn_seq = 0
        self.tags = 0  # the last tag handed to a source subtask (rebalance mode: a new one per assignment)
        self.restored_sink: list[tuple[int, int]] = []  # the restored checkpoint's pending transactions
        # coordinator
        self.pending: dict | None = None
        self.procs: list[simpy.Process] = []

    @property
    def in_flight(self) -> int:
        return sum(s.in_flight for s in self.sources)

    # Message handlers: each runs on arrival at its node, and only while this attempt is alive.
    def to_processor(self, j: int, channel: int, msg, tag: int = 0) -> None:
        if not self.alive:
            return
        t = self.subtasks[j]
        if self.job.unaligned:
            self._capture(t, channel, msg)
        t.gate.put((channel, msg, tag))

    def _capture(self, t: _Subtask, channel: int, msg) -> None:
        """Unaligned checkpoints: keep a copy of every record that arrives ahead of its input's barrier."""
        kind = type(msg)
        if kind is RecordBatch:
            if t.capturing[channel]:
                t.captured.append(msg)
        elif kind is Barrier and msg.id >= t.capture_id:
            if msg.id > t.capture_id:  # the first barrier of this checkpoint: what is queued is ahead of it
                t.capture_id = msg.id
                queued = [item[1] for item in t.gate.items if type(item[1]) is RecordBatch]
                t.captured = list(t.replay) + queued  # restored records not yet processed come first
                t.capturing = [True] * len(t.capturing)
            t.capturing[channel] = False

    def to_sink(self, j: int, msg) -> None:
        if self.alive:
            self.subtasks[j].sink_inbox.put(msg)

    def on_ack(self, i: int, tag: int, p: int, first: int, n: int, end: int) -> None:
        if not self.alive:
            return
        src = self.sources[i]
        if tag != src.tag:  # sent before a rebalance (or by a crashed instance): it counts for nothing now
            return
        done, acked = src.acks.ack(p, first)
        if done:
            src.in_flight -= 1
        if acked is not None:
            self.acked[p] = acked
        self.job.world.trace.add(Kind.ACK, self.job.source_nodes[i].index, p, first, n, self.generation)
        src.wake()
        self.job.check_drained()

    def request_barrier(self, i: int, n: int) -> None:
        if self.alive:
            src = self.sources[i]
            src.barrier_request = n
            src.wake()


class Job(CheckpointCoordination):
    """The streaming job: subtasks on four nodes, one restart strategy (restart all tasks).

    The checkpoint protocol (coordinator, snapshots, two-phase commit) is in weir/sim/stream/coordinator.py.
    """

    def __init__(self, world: World, scenario: Scenario, broker: Broker, sink: Sink,
                 store: CheckpointStore | None, producer: Producer, results: WindowResults | None = None,
                 dlq: DeadLetterQueue | None = None):
        self.world, self.scenario, self.broker, self.sink_table = world, scenario, broker, sink
        self.store, self.producer, self.results = store, producer, results
        p = scenario.pipeline
        self.mode = p.mode
        self.cfg = p
        self.partitions = scenario.workload.partitions
        self.parallelism = p.parallelism
        self.source_parallelism = p.source_parallelism
        self.checkpoint = scenario.checkpoint
        self.barrier_mode = "aligned"
        if self.checkpoint is not None:
            if self.checkpoint.mode == "at_least_once":
                self.barrier_mode = "at_least_once"
            elif self.checkpoint.unaligned:
                self.barrier_mode = "unaligned"
        self.unaligned = self.barrier_mode == "unaligned"
        self.window_spec = scenario.window.spec() if scenario.window else None
        wm = scenario.watermarks
        self.marker_every = scenario.workload.marker_every if wm is not None and wm.strategy == "punctuated" else 0
        # ingestion time: the source stamps what it reads; each record's latest stamp, for the checkers
        self.ingested_at = np.full(len(producer.data.keys), -1, dtype=np.int64) if (
            wm is not None and wm.strategy == "ingestion_time") else None
        self.source, self.processor, self.sink, self.coordinator = (world.node(n) for n in JOB_NODES)
        # source subtask i runs on node source-i (subtask 0 on source)
        self.source_nodes = [self.source] + [world.node(f"source-{i}") for i in range(1, self.source_parallelism)]
        # rebalance mode: source subtasks are the members of a Kafka consumer group; a crash of one
        # is not a job failure, the group deals its partitions out to the others
        self.rebalance = p.source_failover == "rebalance"
        if self.rebalance:
            broker.group = ConsumerGroup(world, broker, p.session_timeout)
            for i, node in enumerate(self.source_nodes):
                node.on_crash(lambda _n, i=i: self._consumer_crashed(i))
                node.on_restart(lambda _n, i=i: self._consumer_back(i))
        self.generation = 0
        self.attempt: _Attempt | None = None
        self.restarts = 0
        self.final_watermark: int | None = None  # the window operators' lowest, when the run ended
        self.late_dropped = 0  # metric (numLateRecordsDropped): reported as it happens, so it survives failovers
        self.rows_written = 0  # rows handed to the sink, replays included
        # per-subtask metrics, over all attempts: records taken in, time busy processing, deepest queue
        self.subtask_records = [0] * self.parallelism
        self.subtask_busy = [0] * self.parallelism
        self.subtask_max_queued = [0] * self.parallelism
        self.source_backpressured = [0] * self.source_parallelism  # time a source subtask could not poll
        self.replayed_in_flight = 0  # records restored from unaligned checkpoints' in-flight data and processed
        # retries and the dead-letter queue (record pipelines): durable, like the sink
        self.dlq = dlq
        self.skipped = 0  # records given up on with retry.exhausted = "skip" (dropped)
        self.replayed = 0  # records the DLQ replay job wrote to the sink
        self.retry_rng = world.rngs.stream("sink.retry")  # backoff jitter
        self.failure_rng = world.rngs.stream("sink.failures")  # retry.failure_rate
        self.transactional = scenario.pipeline.sink == "transactional"
        # the table that two-phase commit drives: the window results for a windowed job, else the sink
        self.txn_table = (results if results is not None else sink) if self.transactional else None
        self._restarting = False
        for node in self.task_nodes:
            node.on_crash(self._node_crashed)
        broker.on_commit(self.check_drained)
        producer.on_done(self.check_drained)
        world.net.on_cut(self._connection_lost)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._deploy()
        if self.dlq is not None and self.scenario.retry.replay_after is not None:
            self.sink.spawn(self._replay_task())
            self.sink.on_restart(lambda node: node.spawn(self._replay_task()))

    def _node_crashed(self, node: Node) -> None:
        self._fail(node)

    def _connection_lost(self, src: Node, dst: Node, msg: Msg) -> None:
        """A partition lost a message between two of the job's tasks: the channel is broken, and a
        checkpointed stream needs reliable FIFO channels, so the job fails over (as Flink does when a
        network connection between tasks breaks). Requests to the broker time out and retry instead."""
        tasks = self.source_nodes + [self.processor, self.sink, self.coordinator]
        if src in tasks and dst in tasks and self.attempt is not None:
            self._fail(dst)

    def _fail(self, node: Node) -> None:
        """Fail the job over: stop every task, drop the attempt, and restart when all task nodes are up."""
        a = self.attempt
        if a is not None:
            a.alive = False
            self.world.trace.add(Kind.JOB_FAIL, node.index, a.generation, a.in_flight)
            for proc in a.procs:
                if proc.is_alive:
                    proc.interrupt("job failover")
            self._keep_queue_metrics(a)
            self.attempt = None
        if not self._restarting:
            self._restarting = True
            self.world.env.process(self._restart())

    def _keep_queue_metrics(self, a: _Attempt) -> None:
        for t in a.subtasks:
            self.subtask_max_queued[t.index] = max(self.subtask_max_queued[t.index], t.gate.max_queued_records)

    def _restart(self):
        """The restart strategy (it runs in the cluster, on no node): wait for all task nodes, then redeploy."""
        nodes = self.task_nodes
        while True:
            for node in nodes:
                yield node.when_up()
            yield self.world.env.timeout(self.cfg.restart_delay)
            if all(node.up for node in nodes):
                break
        self._restarting = False
        self.restarts += 1
        self.world.trace.add(Kind.JOB_RESTART, self.coordinator.index, self.generation + 1)
        self._deploy()

    def _new_operator(self, snapshot=None):
        """A fresh operator (the user's, a window aggregation, or running totals), restored if given a snapshot."""
        if self.scenario.operator is not None:
            op = self.scenario.operator.build()
        elif self.window_spec is not None:
            op = WindowedAggregation(self.window_spec)
        else:
            op = RunningTotals(self.scenario.workload.keys)
        if snapshot is not None:
            op.restore(snapshot)
        return op

    def _deploy(self) -> None:
        self.generation += 1
        offsets, states, restored, sink_state = None, None, -1, None
        if self.store is not None:
            cp, torn = self.store.latest_intact()
            for bad in torn:  # a torn write: its checksum does not match, restore from the one before
                self.store.torn_skipped += 1
                self.world.trace.add(Kind.CKPT_TORN, self.coordinator.index, bad.id)
            if cp is None:
                offsets, restored = [0] * self.partitions, 0
            else:
                offsets, states, restored, sink_state = list(cp.offsets), cp.state, cp.id, cp.sink_state
        if states is None:
            states = [(None, [])] * self.parallelism
        operators = [self._new_operator(snapshot) for snapshot, _channels in states]
        if self.store is not None:  # where the state came from (the sources trace where their offsets did)
            self.world.trace.add(Kind.STATE_RESTORE, self.processor.index, restored, self.generation,
                                 sum(op.state_size() for op in operators))
        a = self.attempt = _Attempt(self, self.generation, offsets, operators, [list(ch) for _s, ch in states],
                                    restored)
        a.restored_sink = list(sink_state or [])
        for src in a.sources:
            if self.source_nodes[src.index].up:  # in rebalance mode a consumer that is down joins when back
                self._start_source(a, src)
        for t in a.subtasks:
            a.procs.append(self.processor.spawn(self._processor_task(a, t)))
        for t in a.subtasks:
            a.procs.append(self.sink.spawn(self._sink_task(a, t)))
        if self.store is not None:
            a.procs.append(self.coordinator.spawn(self._coordinator_task(a)))

    @property
    def task_nodes(self) -> list[Node]:
        """The nodes whose crash fails the job over (in rebalance mode, not the consumers')."""
        sources = [] if self.rebalance else self.source_nodes
        return sources + [self.processor, self.sink, self.coordinator]

    # ---- consumers in a group (rebalance mode) ----------------------------------------------------
    def _consumer_crashed(self, i: int) -> None:
        """Consumer i's node crashed: its processes are gone; a fresh, idle subtask stands in until
        the node is back, and the group coordinator will expire it after the session timeout."""
        a = self.attempt
        if a is not None:
            a.sources[i] = _SourceTask(i, (), self.parallelism)

    def _consumer_back(self, i: int) -> None:
        a = self.attempt
        if a is not None and a.alive:
            self._start_source(a, a.sources[i])

    def _start_source(self, a: _Attempt, src: _SourceTask) -> None:
        node = self.source_nodes[src.index]
        a.procs.append(node.spawn(self._source_task(a, src)))
        if self.rebalance:
            a.procs.append(node.spawn(self._heartbeat_task(a, src)))

    def _heartbeat_task(self, a: _Attempt, src: _SourceTask):
        """Kafka's heartbeat thread: every heartbeat_interval, tell the coordinator it is alive."""
        world, node, group = self.world, self.source_nodes[src.index], self.broker.group
        try:
            while True:
                yield from node.wait(self.cfg.heartbeat_interval)
                world.net.send(node, self.broker.node, Msg.HEARTBEAT, group.heartbeat, src.index,
                               ref=(src.index, src.generation))
        except simpy.Interrupt:
            return

    def _assign(self, a: _Attempt, src: _SourceTask, assignment: Assignment) -> None:
        """A rebalance reached consumer src: take the new generation and partitions. Eager rebalancing:
        every partition starts again from its committed offset, and what was in flight no longer
        counts (its acknowledgements are ignored)."""
        src.generation = assignment.generation
        src.partitions = assignment.partitions
        src.next = 0
        for p, committed in zip(assignment.partitions, assignment.committed):
            a.positions[p] = a.acked[p] = a.confirmed[p] = committed
        a.tags += 1
        src.tag = a.tags
        src.in_flight = 0
        src.acks = PendingAcks()
        wm = self.scenario.watermarks
        if wm is not None:
            emitted = src.watermarks.emitted if src.watermarks is not None else None
            src.watermarks = PartitionWatermarks(len(src.partitions), wm.generator(), wm.bound, wm.idle_timeout,
                                                 start_time=self.source_nodes[src.index].local_time(),
                                                 params=wm.params)
            if emitted is not None:
                src.watermarks.emitted = emitted  # never backwards
        src.wake()

    def check_drained(self) -> None:
        """End the run once every produced record went through and all faults have healed.

        With windows, also once every source subtask has emitted its watermark for the last
        records and the window operators have taken it in (so windows the data closes have fired).
        """
        a = self.attempt
        if (a is None or a.in_flight or a.replays_in_flight or a.positions is None or not self.producer.done
                or self.world.held or not self.broker.caught_up()):
            return
        if a.sources[0].watermarks is not None and (a.watermarks_in_flight or a.outputs_in_flight or any(
                s.last_emit_at <= s.last_read_at for s in a.sources)):
            return
        if self.dlq is not None and self.scenario.retry.replay_after is not None and (
                self.world.now < self.scenario.retry.replay_after or self.dlq.depth()):
            return  # the replay job has records to write
        if self.transactional and (any(t.sink_pending for t in a.subtasks) or self.txn_table.staged_rows()):
            return  # rows still staged: the next checkpoint will commit them
        if a.subtasks[0].operator.windowed:
            self.final_watermark = min(t.operator.watermark for t in a.subtasks)
        self._keep_queue_metrics(a)
        self.world.finish(Status.DRAINED)

    # ---- source ------------------------------------------------------------------------------
    def _source_task(self, a: _Attempt, src: _SourceTask):
        world, broker, node, cfg = self.world, self.broker, self.source_nodes[src.index], self.cfg
        env, net, trace = world.env, world.net, world.trace
        read_committed = cfg.isolation == "read_committed"
        parallelism, salts = self.parallelism, cfg.salts
        try:
            if self.rebalance:  # join the group: a rebalance, and this consumer's share of the partitions
                group = broker.group
                assignment = yield from net.call(node, broker.node, Msg.JOIN, lambda: group.join(src.index),
                                                 cfg.request_timeout, ref=(src.index, 0))
                if a.positions is None:
                    a.positions, a.acked, a.confirmed = list(broker.committed), list(broker.committed), list(broker.committed)
                self._assign(a, src, assignment)
            else:  # join the group as the job's generation: fences older generations' commits
                committed = yield from net.call(node, broker.node, Msg.JOIN, lambda: broker.join(a.generation),
                                                cfg.request_timeout, ref=(a.generation, 0))
                if a.positions is None:
                    a.positions, a.acked, a.confirmed = list(committed), list(committed), list(committed)
            if src.index == 0:
                behind = sum(broker.log.end_offsets()) - sum(a.positions)
                trace.add(Kind.RESTORE, node.index, a.restored_from, a.generation, behind)
            wm = self.scenario.watermarks
            if wm is not None:
                if src.watermarks is None:
                    src.watermarks = PartitionWatermarks(len(src.partitions), wm.generator(), wm.bound,
                                                         wm.idle_timeout, start_time=node.local_time(), params=wm.params)
                src.next_watermark_at = env.now + wm.interval
            if self.cfg.offset_commit in ("after_ack", "auto") and (self.rebalance or src.index == 0):
                a.procs.append(node.spawn(self._committer_task(a, src)))
            while True:
                if src.barrier_request is not None:
                    self._inject_barrier(a, src)
                if src.in_flight >= cfg.max_in_flight or max(src.queued) >= cfg.queue_capacity:
                    waited = env.now
                    src.credit = env.event()
                    yield src.credit
                    self.source_backpressured[src.index] += env.now - waited
                    continue
                batch = yield from self._poll(a, src, node, read_committed)
                if type(batch) is Assignment:
                    self._assign(a, src, batch)
                    continue
                if batch is None:
                    self._emit_watermark(a, src)
                    self.check_drained()
                    yield from node.wait(cfg.poll_interval)
                    continue
                p, end = batch.partition_id, batch.end_offset
                src.next = (src.partitions.index(p) + 1) % len(src.partitions)
                a.positions[p] = end
                if not len(batch):  # read_committed skipped only aborted records: move on, nothing to process
                    trace.add(Kind.POLL, node.index, p, batch.first_offset, 0, a.generation)
                    continue
                trace.add(Kind.POLL, node.index, p, batch.first_offset, len(batch), a.generation)
                if self.ingested_at is not None:  # ingestion time: event time is when the source read it
                    stamp = node.local_time()
                    batch = replace(batch, event_time=np.full(len(batch), stamp, dtype=np.int64))
                    self.ingested_at[batch.record_id] = stamp
                parts = split(batch, parallelism, salts)
                src.in_flight += 1  # from the poll on: the run has not drained while the batch is on its way
                src.acks.add(p, batch.first_offset, end, len(parts))
                if self.cfg.offset_commit == "before_processing":
                    yield from net.call(node, broker.node, Msg.COMMIT,
                                        lambda p=p, end=end: broker.commit({p: end}, a.generation),
                                        cfg.request_timeout, ref=(a.generation, 1))
                for j, part in parts:
                    if parallelism > 1:
                        trace.add(Kind.EXCHANGE, node.index, j, p, batch.first_offset, len(part))
                    self._enqueue(a, src, j, Msg.BATCH, part, (p, batch.first_offset))
                if src.watermarks is not None:
                    local = src.partitions.index(p)
                    src.watermarks.on_event(local, int(batch.event_time.max()), node.local_time())
                    if self.marker_every:
                        markers = marker_mask(batch.record_id, self.marker_every)
                        if markers.any():
                            src.watermarks.on_event(local, int(batch.event_time[markers].max()), node.local_time(), True)
                    src.last_read_at = env.now
                    self._emit_watermark(a, src)
        except simpy.Interrupt:
            return

    def _poll(self, a: _Attempt, src: _SourceTask, node: Node, read_committed: bool):
        """Fetch the next batch of the subtask's partitions (None if there is nothing new). In
        rebalance mode the fetch carries the consumer's generation: if a rebalance happened since,
        the answer is the consumer's new Assignment instead."""
        broker, cfg = self.broker, self.cfg
        start = src.partitions[src.next] if src.partitions else -1

        def serve():
            if self.rebalance:
                change = broker.group.current(src.index, src.generation)
                if change is not None:
                    return change
                if not src.partitions:
                    return None
            return broker.fetch(a.positions, start, cfg.batch_size, read_committed, src.partitions)

        return (yield from self.world.net.call(node, broker.node, Msg.FETCH, serve, cfg.request_timeout,
                                               ref=(start, cfg.batch_size)))

    def _enqueue(self, a: _Attempt, src: _SourceTask, j: int, kind: Msg, payload, ref: tuple[int, int]) -> None:
        """Put a message on the channel from source subtask `src` to processor subtask j, behind
        what waits there already, and send what can go."""
        src.out[j].append((kind, payload, ref))
        if kind is Msg.BATCH:
            src.queued[j] += 1
        self._pump(a, src, j)

    def _pump(self, a: _Attempt, src: _SourceTask, j: int) -> None:
        """Send from the head of the channel's queue: a batch while there is a credit for it (the
        receiver has room), a watermark or barrier as soon as everything ahead of it is sent."""
        queue, credits = src.out[j], a.credits[src.index]
        node = self.source_nodes[src.index]
        while queue:
            kind, payload, ref = queue[0]
            if kind is Msg.BATCH:
                if not credits[j]:
                    return
                credits[j] -= 1
                src.queued[j] -= 1
            queue.popleft()
            if kind is Msg.WATERMARK:
                a.watermarks_in_flight += 1
            if kind is Msg.WATERMARK:  # which subtask it goes to, and whether its sender is idle
                ref = (ref[0], 2 * j + int(payload.idle))
            self.world.net.send(node, self.processor, kind, a.to_processor, j, src.index, payload, src.tag, ref=ref)

    def _credit(self, a: _Attempt, i: int, j: int) -> None:
        """Processor subtask j took a batch from source subtask i's channel: one more credit."""
        src = a.sources[i]
        a.credits[i][j] += 1
        was_full = src.queued[j] >= self.cfg.queue_capacity
        self._pump(a, src, j)
        if was_full and src.queued[j] < self.cfg.queue_capacity:
            src.wake()

    def _broadcast(self, a: _Attempt, src: _SourceTask, kind: Msg, msg, ref: tuple[int, int]) -> None:
        """Send a barrier or a watermark from a source subtask to every processor subtask, each
        behind the batches on its channel."""
        for j in range(self.parallelism):
            self._enqueue(a, src, j, kind, msg, ref)

    def _emit_watermark(self, a: _Attempt, src: _SourceTask) -> None:
        """Every watermark interval: merge the subtask's partitions' watermarks and send it on if it moved.

        With several source subtasks, one whose partitions are all idle says so (and says when it
        is active again), so that the processors leave it out of their minimum meanwhile.
        """
        env = self.world.env
        if src.watermarks is None or env.now < src.next_watermark_at:
            return
        src.next_watermark_at = env.now + self.scenario.watermarks.interval
        src.last_emit_at = env.now
        merged = src.watermarks.on_periodic_emit(self.source_nodes[src.index].local_time())
        if self.source_parallelism > 1:
            idle = all(src.watermarks.idle)
            if idle != src.idle_sent:
                src.idle_sent = idle
                merged = src.watermarks.emitted
        if merged is not None:
            self._broadcast(a, src, Msg.WATERMARK, Watermark(merged, src.idle_sent), (merged, 0))

    def _inject_barrier(self, a: _Attempt, src: _SourceTask) -> None:
        n, src.barrier_request = src.barrier_request, None
        offsets = {p: a.positions[p] for p in src.partitions}
        for p, offset in offsets.items():
            self.world.trace.add(Kind.CKPT_SNAPSHOT, self.source_nodes[src.index].index, n, p, offset)
        node = self.source_nodes[src.index]
        saved: dict[int, list[RecordBatch]] = {}
        if self.unaligned:  # the barrier overtakes the batches waiting to be sent; they go into the snapshot
            for j, queue in enumerate(src.out):
                saved[j] = [payload for kind, payload, _ref in queue if kind is Msg.BATCH]
                self.world.net.send(node, self.processor, Msg.BARRIER, a.to_processor, j, src.index, Barrier(n),
                                    ref=(n, 0))
        self.world.net.send(node, self.coordinator, Msg.SNAPSHOT, self._checkpoint_part, a, n,
                            ("offsets", src.index), (offsets, saved), ref=(n, 0))
        if not self.unaligned:
            self._broadcast(a, src, Msg.BARRIER, Barrier(n), (n, 0))

    def _committer_task(self, a: _Attempt, src: _SourceTask):
        """Every commit_interval, commit offsets if they moved: what the sink acknowledged ("after_ack"),
        or what was polled, processed or not ("auto", Kafka's enable.auto.commit). One committer
        for all partitions, with the job's generation; in rebalance mode one per consumer, for its
        own partitions, with its group generation."""
        world, broker, node = self.world, self.broker, self.source_nodes[src.index]
        done = a.acked if self.cfg.offset_commit == "after_ack" else a.positions
        try:
            while True:
                yield from node.wait(self.cfg.commit_interval)
                owned = src.partitions if self.rebalance else range(self.partitions)
                generation = src.generation if self.rebalance else a.generation
                changed = {p: done[p] for p in owned if done[p] != a.confirmed[p]}
                if not changed:
                    self.check_drained()
                    continue
                answer = world.net.request(node, broker.node, Msg.COMMIT,
                                           lambda changed=changed, g=generation: broker.commit(changed, g),
                                           self.cfg.request_timeout, ref=(generation, len(changed)))
                answer.callbacks.append(lambda ev, changed=changed: self._confirmed(a, changed, ev.value))
        except simpy.Interrupt:
            return

    def _confirmed(self, a: _Attempt, offsets: dict[int, int], accepted) -> None:
        if accepted is True and a.alive:
            for p, offset in offsets.items():
                a.confirmed[p] = max(a.confirmed[p], offset)

    # ---- processor and sink ------------------------------------------------------------------
    def _processor_task(self, a: _Attempt, t: _Subtask):
        gate, j = t.gate, t.index
        a.replays_in_flight += len(t.replay)
        try:
            while t.replay:  # an unaligned checkpoint's in-flight records come before anything new
                yield from self._process(a, t, t.replay.pop(0), replayed=True)
            while True:
                channel, msg, tag = yield gate.get(gate.open)
                kind = type(msg)
                if kind is RecordBatch:
                    self._credit(a, channel, j)
                    yield from self._process(a, t, msg, tag=(channel, tag))
                elif kind is Watermark:
                    a.watermarks_in_flight -= 1
                    self._on_watermark(a, t, channel, msg)
                elif kind is Barrier:
                    self._on_barrier(a, t, channel, msg)
                else:  # pragma: no cover - nothing else is ever sent to a processor
                    raise TypeError(kind)
        except simpy.Interrupt:
            return

    def _process(self, a: _Attempt, t: _Subtask, batch: RecordBatch, replayed: bool = False,
                 tag: tuple[int, int] | None = None):
        op, node = t.operator, self.processor
        out = op.on_batch(batch, node.local_time())
        if op.windowed:
            self.late_dropped += out.dropped
        cost = self.cfg.process_time * len(batch)
        slow = self._active_fault("slow", self.processor)
        if slow:
            cost = int(cost * slow.factor)
        self.subtask_records[t.index] += len(batch)
        if replayed:
            self.replayed_in_flight += len(batch)
        if cost:
            yield from node.work(cost)
            self.subtask_busy[t.index] += cost
        self.world.trace.add(Kind.PROCESS, node.index, batch.partition_id, batch.first_offset, len(batch), a.generation)
        self.world.net.send(node, self.sink, Msg.BATCH, a.to_sink, t.index, (batch, out, tag),
                            ref=(batch.partition_id, batch.first_offset))

    def _on_watermark(self, a: _Attempt, t: _Subtask, channel: int, msg: Watermark) -> None:
        """Take in an input's watermark; pass the minimum over active inputs on once it moves."""
        op, node = t.operator, self.processor
        t.input_idle[channel] = msg.idle
        t.input_watermarks[channel] = max(t.input_watermarks[channel], msg.value)
        active = [w for w, idle in zip(t.input_watermarks, t.input_idle) if not idle]
        if not active or min(active) <= t.watermark:
            self.check_drained()
            return
        t.watermark = min(active)
        self.world.trace.add(Kind.WATERMARK, node.index, t.index, t.watermark, len(active))
        out = op.on_watermark(t.watermark, node.local_time())
        if not op.windowed:  # a record operator writes nothing at a watermark
            self.check_drained()
            return
        self.late_dropped += out.dropped
        if out:
            a.outputs_in_flight += 1
            self.world.net.send(node, self.sink, Msg.PANES, a.to_sink, t.index, (None, out, None),
                                ref=(len(out.panes), len(out.late)))
        else:
            self.check_drained()

    def _on_barrier(self, a: _Attempt, t: _Subtask, channel: int, msg: Barrier) -> None:
        """A barrier from one input. Aligned: block that input until every input's barrier is in,
        then snapshot. At-least-once: snapshot when the last one is in, blocking nothing.
        Unaligned: snapshot at the first (it overtook the queue), with the in-flight records
        captured until the last one is in."""
        if msg.id <= t.done or (t.aligning is not None and msg.id < t.aligning):
            return  # from a checkpoint given up on: a newer one is being aligned, or was
        if t.aligning is None or msg.id > t.aligning:
            self._reset_alignment(t)
            t.aligning, t.align_started = msg.id, self.world.now
        t.seen[channel] = True
        complete = all(t.seen)
        mode = self.barrier_mode
        if mode == "unaligned":
            if not t.snapshot_taken:
                self._take_snapshot(t)
                self._forward_barrier(a, t, msg)
            if complete:
                self._report_snapshot(a, t, msg.id, list(t.captured))
                t.done = msg.id
                self._reset_alignment(t)
            return
        if not complete:
            if mode == "aligned":
                t.gate.blocked[channel] = True
            return
        self._take_snapshot(t)
        self._report_snapshot(a, t, msg.id, [])
        self._forward_barrier(a, t, msg)
        t.done = msg.id
        self._reset_alignment(t)

    def _reset_alignment(self, t: _Subtask) -> None:
        t.aligning, t.snapshot_taken, t.snapshot = None, False, None
        t.seen = [False] * len(t.seen)
        t.gate.blocked = [False] * len(t.gate.blocked)

    def _take_snapshot(self, t: _Subtask) -> None:
        op = t.operator
        changed = op.changed_entries()  # before the snapshot, which starts the count again
        t.snapshot = (op.snapshot(), op.state_size(), changed)
        t.snapshot_taken = True

    def _forward_barrier(self, a: _Attempt, t: _Subtask, msg: Barrier) -> None:
        self.world.net.send(self.processor, self.sink, Msg.BARRIER, a.to_sink, t.index, msg, ref=(msg.id, 0))

    def _report_snapshot(self, a: _Attempt, t: _Subtask, n: int, in_flight: list[RecordBatch]) -> None:
        state, size, changed = t.snapshot
        records = sum(len(b) for b in in_flight)
        self.world.trace.add(Kind.CKPT_SNAPSHOT, self.processor.index, n, -1, size)
        if self.source_parallelism > 1 or self.parallelism > 1:
            self.world.trace.add(Kind.ALIGNED, self.processor.index, n, t.index, self.world.now - t.align_started, records)
        self.world.net.send(self.processor, self.coordinator, Msg.SNAPSHOT, self._checkpoint_part, a, n,
                            ("state", t.index), (state, size, changed, in_flight), ref=(n, 0))

    def _sink_task(self, a: _Attempt, t: _Subtask):
        world, node = self.world, self.sink
        net, trace = world.net, world.trace
        write_time = self.cfg.write_time
        if self.transactional:
            if t.index == 0:
                self._recover_transactions(a)
            self._begin_transaction(a, t)
        try:
            while True:
                msg = yield t.sink_inbox.get()
                if type(msg) is Barrier:
                    sink_state = None
                    if self.transactional:  # pre-commit: the open transaction waits for checkpoint msg.id
                        t.sink_pending.append((msg.id, t.txn))
                        self._begin_transaction(a, t)
                        sink_state = list(t.sink_pending)
                    trace.add(Kind.CKPT_SNAPSHOT, node.index, msg.id, -1, len(t.sink_pending))
                    net.send(node, self.coordinator, Msg.SNAPSHOT, self._checkpoint_part, a, msg.id, ("sink", t.index),
                             sink_state, ref=(msg.id, 0))
                    continue
                batch, out, origin = msg  # origin: (source subtask, tag) to acknowledge, or None if replayed
                txn = t.txn if self.transactional else None
                if self.results is not None:
                    if write_time:
                        yield from node.work(write_time)  # the write lands, whole, at the end of this
                    self.results.write(out.panes, out.late, node.local_time(), txn, t.index)
                    trace.add(Kind.WRITE, node.index, -1, len(out.panes), len(out.late), 0)
                    if batch is None:
                        a.outputs_in_flight -= 1
                        self.check_drained()
                        continue
                else:
                    yield from self._write_records(batch, out, txn)
                if origin is None:  # restored from the checkpoint: no source subtask of this attempt waits for it
                    a.replays_in_flight -= 1
                    self.check_drained()
                    continue
                i, tag = origin
                net.send(node, self.source_nodes[i], Msg.ACK, a.on_ack, i, tag, batch.partition_id, batch.first_offset, len(batch),
                         batch.end_offset, ref=(batch.partition_id, batch.first_offset))
        except simpy.Interrupt:
            return

    # ---- record writes: retries, poison records, the dead-letter queue ------------------------------
    def _active_fault(self, kind: str, node: Node | None = None):
        """The `kind` fault (of the sink, of the checkpoint store, or a slow `node`) whose window
        covers now, or None."""
        return self.world.active_fault(kind, None if node is None else node.name)

    def _apply(self, batch: RecordBatch, out, txn: int | None) -> None:
        node, trace = self.sink, self.world.trace
        if self.transactional:
            self.sink_table.write(batch, out, node.local_time(), txn=txn)
            rewritten = 0
        else:
            rewritten = self.sink_table.write(batch, out, node.local_time())
        self.rows_written += len(batch)
        trace.add(Kind.WRITE, node.index, batch.partition_id, batch.first_offset, len(batch), rewritten)

    def _write_records(self, batch: RecordBatch, out, txn: int | None):
        """Write a batch's rows (each write takes write_time, the write landing whole at its end),
        retrying what fails after a backoff; dead-letter (or skip) what still fails when the
        retries run out (weir/sim/patterns/dlq.py)."""
        trace, policy = self.world.trace, self.scenario.retry
        write_time, every = self.cfg.write_time, self.scenario.workload.poison_every
        poison = poison_mask(batch.record_id, every) if every else None
        pending = None  # the rows not yet written (None: all of them)
        attempt = 0
        while True:
            slow = self._active_fault("sink_slow")
            node_slow = self._active_fault("slow", self.sink)
            if write_time or slow:
                took = write_time * (node_slow.factor if node_slow else 1)
                yield from self.sink.work(int(took) + (slow.slow_by if slow else 0))
            if self._active_fault("sink_fail") or (policy.failure_rate and self.failure_rng.random() < policy.failure_rate):
                error = ("TransientWriteError", "the write failed: nothing was applied")
            else:
                todo = np.ones(len(batch), dtype=bool) if pending is None else pending
                good = todo if poison is None else todo & ~poison
                if good.all():
                    self._apply(batch, out, txn)
                elif good.any():
                    self._apply(batch.take(good), out[good], txn)
                if self._active_fault("sink_ack_lost"):
                    if txn is not None:
                        # Inside a transaction a write of unknown outcome cannot be retried (a second
                        # attempt would stage the rows twice): the sink fails, the job fails over and
                        # aborts the transaction, as Flink's exactly-once sinks do on a write error.
                        trace.add(Kind.RETRY, self.sink.index, batch.partition_id, batch.first_offset, attempt + 1, -1)
                        self.world.env.timeout(0).callbacks.append(lambda _ev: self._fail(self.sink))
                        yield self.world.env.event()  # the failover interrupts this task
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
                    n = self.dlq.add(batch, failing, *error, attempt - 1, policy.max_retries, self.sink.local_time())
                    trace.add(Kind.DEAD_LETTER, self.sink.index, batch.partition_id, batch.first_offset, n, attempt - 1)
                else:
                    self.skipped += int(failing.sum())
                return
            delay = backoff_delay(attempt, policy.backoff, policy.multiplier, policy.max_backoff, policy.jitter,
                                  self.retry_rng.random())
            trace.add(Kind.RETRY, self.sink.index, batch.partition_id, batch.first_offset, attempt, delay)
            yield from self.sink.wait(delay)

    def _replay_task(self):
        """The DLQ replay job (on the sink node): from `retry.replay_after`, every replay_interval,
        fix what waits in the dead-letter queue, write it to the sink and mark it processed. A crash
        between the write and the mark writes it again next time: harmless with an idempotent sink."""
        policy, world, dlq = self.scenario.retry, self.world, self.dlq
        try:
            if world.now < policy.replay_after:
                yield from self.sink.wait(policy.replay_after - world.now)
            while True:
                rows = dlq.pending(policy.replay_batch)
                if rows and not self._active_fault("sink_fail"):
                    by_partition: dict[int, list] = {}
                    for row in rows:
                        by_partition.setdefault(row[4], []).append(row)
                    for p, entries in sorted(by_partition.items()):
                        ids, keys, values, offsets = (np.array([e[c] for e in entries], dtype=np.int64)
                                                      for c in (1, 2, 3, 5))
                        fixed = RecordBatch(p, int(offsets.min()), ids, keys, np.zeros(len(ids), dtype=np.int64),
                                            values, offsets, int(offsets.max()) + 1)
                        if self.cfg.write_time:
                            yield from self.sink.work(self.cfg.write_time)
                        self._apply(fixed, values, None)
                    dlq.mark_processed([row[0] for row in rows], self.sink.local_time())
                    self.replayed += len(rows)
                    world.trace.add(Kind.REPLAY, self.sink.index, len(rows), dlq.depth())
                self.check_drained()
                yield from self.sink.wait(policy.replay_interval)
        except simpy.Interrupt:
            return
