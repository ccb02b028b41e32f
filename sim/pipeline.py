"""The job: four tasks (source, processor, sink, coordinator) on four nodes, and its failover.

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

With a `[window]` the processor runs a keyed event-time window aggregation. The source then keeps
a watermark generator per partition and, every watermark interval, sends the merged watermark
downstream in the stream itself, behind the records it covers (Flink's per-split watermarks).
"""

from __future__ import annotations

from dataclasses import dataclass

import simpy

from .checkpoint import CheckpointStore
from .coordination import CheckpointCoordination
from .kernel import Node, Status, World
from .log import Broker
from .operators import RunningTotals, WindowedAggregation
from .scenario import JOB_NODES, Scenario
from .components import Sink
from .sinks import WindowResults
from .trace import Kind, Msg
from .watermarks import PartitionWatermarks
from .workload import Producer

__all__ = ["Job", "Barrier", "Watermark"]


@dataclass(frozen=True)
class Barrier:
    """Checkpoint barrier n, flowing in the record stream behind every record before it."""

    id: int


@dataclass(frozen=True)
class Watermark:
    """A watermark flowing in the record stream: no more records with event time <= value."""

    value: int


class _Attempt:
    """Everything the job keeps in memory during one execution attempt. A failover drops it all."""

    def __init__(self, job: "Job", generation: int, offsets: list[int] | None, operator, checkpoint_id: int):
        env = job.world.env
        self.job = job
        self.generation = generation
        self.alive = True
        self.restored_from = checkpoint_id  # -1: committed offsets, 0: job start, n: checkpoint n
        # source task
        self.positions = offsets  # next offset to fetch per partition (None until joined)
        self.acked = list(offsets) if offsets else None  # end of what the sink acknowledged
        self.confirmed = list(offsets) if offsets else None  # what the broker confirmed committed
        self.next_partition = 0
        self.in_flight = 0  # batches polled and not yet acknowledged by the sink
        self.credit: simpy.Event | None = None
        self.barrier_request: int | None = None
        self.watermarks: PartitionWatermarks | None = None
        self.next_watermark_at = 0
        self.last_read_at = -1  # when the source last read records
        self.last_emit_at = -1  # when it last emitted (or found nothing new to emit)
        # processor and sink tasks
        self.operator = operator
        self.watermarks_in_flight = 0  # watermarks sent by the source, not yet taken in by the processor
        self.outputs_in_flight = 0  # watermark-fired outputs on their way to the sink
        self.processor_inbox = simpy.Store(env)
        self.sink_inbox = simpy.Store(env)
        # sink task, with a transactional sink (Flink's TwoPhaseCommitSinkFunction)
        self.txn = 0  # the open transaction
        self.txn_seq = 0
        self.sink_pending: list[tuple[int, int]] = []  # (checkpoint, txn) pre-committed, awaiting its completion
        self.restored_sink: list[tuple[int, int]] = []  # the restored checkpoint's pending transactions
        # coordinator
        self.pending: dict | None = None
        self.procs: list[simpy.Process] = []

    # Message handlers: each runs on arrival at its node, and only while this attempt is alive.
    def to_processor(self, msg) -> None:
        if self.alive:
            self.processor_inbox.put(msg)

    def to_sink(self, msg) -> None:
        if self.alive:
            self.sink_inbox.put(msg)

    def on_ack(self, p: int, first: int, n: int, end: int) -> None:
        if not self.alive:
            return
        self.in_flight -= 1
        self.acked[p] = end
        self.job.world.trace.add(Kind.ACK, self.job.source.index, p, first, n, self.generation)
        self._wake()
        self.job.check_drained()

    def request_barrier(self, n: int) -> None:
        if self.alive:
            self.barrier_request = n
            self._wake()

    def _wake(self) -> None:
        if self.credit is not None and not self.credit.triggered:
            self.credit.succeed()


class Job(CheckpointCoordination):
    """The streaming job: tasks on four nodes, one restart strategy (restart all tasks).

    The checkpoint protocol (coordinator, snapshots, two-phase commit) is in sim/coordination.py.
    """

    def __init__(self, world: World, scenario: Scenario, broker: Broker, sink: Sink,
                 store: CheckpointStore | None, producer: Producer, results: WindowResults | None = None):
        self.world, self.scenario, self.broker, self.sink_table = world, scenario, broker, sink
        self.store, self.producer, self.results = store, producer, results
        p = scenario.pipeline
        self.mode = p.mode
        self.cfg = p
        self.partitions = scenario.workload.partitions
        self.checkpoint = scenario.checkpoint
        self.window_spec = scenario.window.spec() if scenario.window else None
        self.source, self.processor, self.sink, self.coordinator = (world.node(n) for n in JOB_NODES)
        self.generation = 0
        self.attempt: _Attempt | None = None
        self.restarts = 0
        self.final_watermark: int | None = None  # the window operator's, when the run ended
        self.late_dropped = 0  # metric (numLateRecordsDropped): reported as it happens, so it survives failovers
        self.rows_written = 0  # rows handed to the sink, replays included
        self.transactional = scenario.pipeline.sink == "transactional"
        # the table that two-phase commit drives: the window results for a windowed job, else the sink
        self.txn_table = (results if results is not None else sink) if self.transactional else None
        self._restarting = False
        for node in (self.source, self.processor, self.sink, self.coordinator):
            node.on_crash(self._node_crashed)
        broker.on_commit(self.check_drained)
        producer.on_done(self.check_drained)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._deploy()

    def _node_crashed(self, node: Node) -> None:
        self._fail(node)

    def _fail(self, node: Node) -> None:
        """Fail the job over: stop every task, drop the attempt, and restart when all task nodes are up."""
        a = self.attempt
        if a is not None:
            a.alive = False
            self.world.trace.add(Kind.JOB_FAIL, node.index, a.generation, a.in_flight)
            for proc in a.procs:
                if proc.is_alive:
                    proc.interrupt("job failover")
            self.attempt = None
        if not self._restarting:
            self._restarting = True
            self.world.env.process(self._restart())

    def _restart(self):
        """The restart strategy (it runs in the cluster, on no node): wait for all task nodes, then redeploy."""
        nodes = (self.source, self.processor, self.sink, self.coordinator)
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
        offsets, snapshot, restored, sink_state = None, None, -1, None
        if self.store is not None:
            cp = self.store.latest()
            if cp is None:
                offsets, restored = [0] * self.partitions, 0
            else:
                offsets, snapshot, restored, sink_state = list(cp.offsets), cp.state, cp.id, cp.sink_state
        a = self.attempt = _Attempt(self, self.generation, offsets, self._new_operator(snapshot), restored)
        a.restored_sink = list(sink_state or [])
        a.procs.append(self.source.spawn(self._source_task(a)))
        a.procs.append(self.processor.spawn(self._processor_task(a)))
        a.procs.append(self.sink.spawn(self._sink_task(a)))
        if self.store is not None:
            a.procs.append(self.coordinator.spawn(self._coordinator_task(a)))

    def check_drained(self) -> None:
        """End the run once every produced record went through and all faults have healed.

        With windows, also once the source has emitted its watermark for the last records and
        the window operator has taken it in (so windows the data closes have fired).
        """
        a = self.attempt
        if (a is None or a.in_flight or a.positions is None or not self.producer.done or self.world.held
                or not self.broker.caught_up()):
            return
        if a.watermarks is not None and (a.watermarks_in_flight or a.outputs_in_flight
                                         or a.last_emit_at <= a.last_read_at):
            return
        if self.transactional and (a.sink_pending or self.txn_table.staged_rows()):
            return  # rows still staged: the next checkpoint will commit them
        if a.operator.windowed:
            self.final_watermark = a.operator.watermark
        self.world.finish(Status.DRAINED)

    # ---- source ------------------------------------------------------------------------------
    def _source_task(self, a: _Attempt):
        world, broker, node, cfg = self.world, self.broker, self.source, self.cfg
        env, net, trace = world.env, world.net, world.trace
        read_committed = cfg.isolation == "read_committed"
        try:
            # Join the consumer group: fences commits of older generations, returns committed offsets.
            committed = yield from net.call(node, broker.node, Msg.JOIN, lambda: broker.join(a.generation),
                                            cfg.request_timeout, ref=(a.generation, 0))
            if a.positions is None:
                a.positions, a.acked, a.confirmed = list(committed), list(committed), list(committed)
            behind = sum(broker.log.end_offsets()) - sum(a.positions)
            trace.add(Kind.RESTORE, node.index, a.restored_from, a.generation, behind)
            wm = self.scenario.watermarks
            if wm is not None:
                a.watermarks = PartitionWatermarks(self.partitions, wm.generator(), wm.bound, wm.idle_timeout,
                                                   start_time=node.local_time(), params=wm.params)
                a.next_watermark_at = env.now + wm.interval
            if self.cfg.offset_commit in ("after_ack", "auto"):
                a.procs.append(node.spawn(self._committer_task(a)))
            while True:
                if a.barrier_request is not None:
                    self._inject_barrier(a)
                if a.in_flight >= cfg.max_in_flight:
                    a.credit = env.event()
                    yield a.credit
                    continue
                batch = yield from net.call(node, broker.node, Msg.FETCH,
                                            lambda: broker.fetch(a.positions, a.next_partition, cfg.batch_size,
                                                                 read_committed),
                                            cfg.request_timeout, ref=(a.next_partition, cfg.batch_size))
                if batch is None:
                    self._emit_watermark(a)
                    self.check_drained()
                    yield env.timeout(cfg.poll_interval)
                    continue
                p, end = batch.partition_id, batch.end_offset
                a.next_partition = (p + 1) % self.partitions
                a.positions[p] = end
                if not len(batch):  # read_committed skipped only aborted records: move on, nothing to process
                    trace.add(Kind.POLL, node.index, p, batch.first_offset, 0, a.generation)
                    continue
                a.in_flight += 1
                trace.add(Kind.POLL, node.index, p, batch.first_offset, len(batch), a.generation)
                if self.cfg.offset_commit == "before_processing":
                    yield from net.call(node, broker.node, Msg.COMMIT,
                                        lambda p=p, end=end: broker.commit({p: end}, a.generation),
                                        cfg.request_timeout, ref=(a.generation, 1))
                net.send(node, self.processor, Msg.BATCH, a.to_processor, batch, ref=(p, batch.first_offset))
                if a.watermarks is not None:
                    a.watermarks.on_event(p, int(batch.event_time.max()), node.local_time())
                    a.last_read_at = env.now
                    self._emit_watermark(a)
        except simpy.Interrupt:
            return

    def _emit_watermark(self, a: _Attempt) -> None:
        """Every watermark interval: merge the partitions' watermarks and send it on if it moved."""
        env = self.world.env
        if a.watermarks is None or env.now < a.next_watermark_at:
            return
        a.next_watermark_at = env.now + self.scenario.watermarks.interval
        a.last_emit_at = env.now
        merged = a.watermarks.on_periodic_emit(self.source.local_time())
        if merged is not None:
            a.watermarks_in_flight += 1
            self.world.net.send(self.source, self.processor, Msg.WATERMARK, a.to_processor, Watermark(merged),
                                ref=(merged, 0))

    def _inject_barrier(self, a: _Attempt) -> None:
        n, a.barrier_request = a.barrier_request, None
        offsets = tuple(a.positions)
        for p, offset in enumerate(offsets):
            self.world.trace.add(Kind.CKPT_SNAPSHOT, self.source.index, n, p, offset)
        self.world.net.send(self.source, self.coordinator, Msg.SNAPSHOT, self._checkpoint_part, a, n, "offsets", offsets,
                            ref=(n, 0))
        self.world.net.send(self.source, self.processor, Msg.BARRIER, a.to_processor, Barrier(n), ref=(n, 0))

    def _committer_task(self, a: _Attempt):
        """Every commit_interval, commit offsets if they moved: what the sink acknowledged ("after_ack"),
        or what was polled, processed or not ("auto", Kafka's enable.auto.commit)."""
        world, broker, node = self.world, self.broker, self.source
        done = a.acked if self.cfg.offset_commit == "after_ack" else a.positions
        try:
            while True:
                yield world.env.timeout(self.cfg.commit_interval)
                changed = {p: done[p] for p in range(self.partitions) if done[p] != a.confirmed[p]}
                if not changed:
                    self.check_drained()
                    continue
                answer = world.net.request(node, broker.node, Msg.COMMIT, lambda: broker.commit(changed, a.generation),
                                           self.cfg.request_timeout, ref=(a.generation, len(changed)))
                answer.callbacks.append(lambda ev, changed=changed: self._confirmed(a, changed, ev.value))
        except simpy.Interrupt:
            return

    def _confirmed(self, a: _Attempt, offsets: dict[int, int], accepted) -> None:
        if accepted is True and a.alive:
            for p, offset in offsets.items():
                a.confirmed[p] = max(a.confirmed[p], offset)

    # ---- processor and sink ------------------------------------------------------------------
    def _processor_task(self, a: _Attempt):
        world, node = self.world, self.processor
        env, net, trace = world.env, world.net, world.trace
        per_record = self.cfg.process_time
        op = a.operator
        try:
            while True:
                msg = yield a.processor_inbox.get()
                kind = type(msg)
                if kind is Barrier:
                    changed = op.changed_entries()  # before the snapshot, which starts the count again
                    snapshot = op.snapshot()
                    trace.add(Kind.CKPT_SNAPSHOT, node.index, msg.id, -1, op.state_size())
                    net.send(node, self.coordinator, Msg.SNAPSHOT, self._checkpoint_part, a, msg.id, "state",
                             (snapshot, op.state_size(), changed), ref=(msg.id, 0))
                    net.send(node, self.sink, Msg.BARRIER, a.to_sink, msg, ref=(msg.id, 0))
                elif kind is Watermark:
                    a.watermarks_in_flight -= 1
                    out = op.on_watermark(msg.value, node.local_time())
                    if not op.windowed:  # a record operator writes nothing at a watermark
                        self.check_drained()
                        continue
                    self.late_dropped += out.dropped
                    if out:
                        a.outputs_in_flight += 1
                        net.send(node, self.sink, Msg.PANES, a.to_sink, (None, out), ref=(len(out.panes), len(out.late)))
                    else:
                        self.check_drained()
                else:
                    out = op.on_batch(msg, node.local_time())
                    if op.windowed:
                        self.late_dropped += out.dropped
                    if per_record:
                        yield env.timeout(per_record * len(msg))
                    trace.add(Kind.PROCESS, node.index, msg.partition_id, msg.first_offset, len(msg), a.generation)
                    net.send(node, self.sink, Msg.BATCH, a.to_sink, (msg, out), ref=(msg.partition_id, msg.first_offset))
        except simpy.Interrupt:
            return

    def _sink_task(self, a: _Attempt):
        world, node = self.world, self.sink
        env, net, trace = world.env, world.net, world.trace
        write_time = self.cfg.write_time
        if self.transactional:
            self._recover_transactions(a)
        try:
            while True:
                msg = yield a.sink_inbox.get()
                if type(msg) is Barrier:
                    sink_state = None
                    if self.transactional:  # pre-commit: the open transaction waits for checkpoint msg.id
                        a.sink_pending.append((msg.id, a.txn))
                        self._begin_transaction(a)
                        sink_state = list(a.sink_pending)
                    trace.add(Kind.CKPT_SNAPSHOT, node.index, msg.id, -1, len(a.sink_pending))
                    net.send(node, self.coordinator, Msg.SNAPSHOT, self._checkpoint_part, a, msg.id, "sink", sink_state,
                             ref=(msg.id, 0))
                    continue
                batch, out = msg
                if write_time:
                    yield env.timeout(write_time)  # the write lands, whole, at the end of this
                if self.results is not None:
                    self.results.write(out.panes, out.late, node.local_time(), a.txn if self.transactional else None)
                    trace.add(Kind.WRITE, node.index, -1, len(out.panes), len(out.late), 0)
                    if batch is None:
                        a.outputs_in_flight -= 1
                        self.check_drained()
                        continue
                elif self.transactional:
                    self.sink_table.write(batch, out, node.local_time(), txn=a.txn)
                    trace.add(Kind.WRITE, node.index, batch.partition_id, batch.first_offset, len(batch), 0)
                    self.rows_written += len(batch)
                else:
                    rewritten = self.sink_table.write(batch, out, node.local_time())
                    self.rows_written += len(batch)
                    trace.add(Kind.WRITE, node.index, batch.partition_id, batch.first_offset, len(batch), rewritten)
                net.send(node, self.source, Msg.ACK, a.on_ack, batch.partition_id, batch.first_offset, len(batch),
                         batch.end_offset, ref=(batch.partition_id, batch.first_offset))
        except simpy.Interrupt:
            return
