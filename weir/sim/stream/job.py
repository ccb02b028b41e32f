"""The job: source, stream and sink tasks and a checkpoint coordinator on four nodes, wired together.

The job holds the configuration, the nodes and what outlives an attempt: the durable parts it was
given (the Broker's log and committed offsets, the CheckpointStore, the sink tables, the
dead-letter queue) and the metrics of the whole run. Everything kept in memory lives in one
`Attempt` (weir.sim.stream.attempt, Flink's name for one execution of a job), made of tasks that
each keep their own volatile state:
- weir.sim.stream.source_task: a source subtask (polls, exchange, watermarks, barriers, commits);
- weir.sim.stream.stream_task: a processor subtask (the operator, alignment, snapshots);
- weir.sim.stream.sink_task: a sink subtask (writes, retries, dead letters, two-phase commit);
- weir.sim.stream.coordinator: the checkpoint in flight.
When any task's node crashes the attempt is failed over (weir.sim.stream.failover); the restart
deploys a new attempt from durable state only: the latest completed checkpoint when checkpointing
is on (offsets and operator state together), otherwise the consumer group's committed offsets and
empty state.

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

import copy
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from weir.sim.kafka.group import ConsumerGroup
from weir.sim.kafka.log import Broker
from weir.sim.kafka.producer import NOT_STAMPED, Producer
from weir.sim.kernel.errors import UserError, UserHookError
from weir.sim.kernel.trace import Kind
from weir.sim.kernel.world import Node, Status, World
from weir.sim.stream.attempt import Attempt
from weir.sim.stream.checkpoint import CheckpointStore
from weir.sim.stream.consumer import POLICIES
from weir.sim.stream.failover import Failover
from weir.sim.stream.functions import ConsumerPolicy, Operator, Sink
from weir.sim.stream.operators import Chain, RunningTotals, WindowedAggregation
from weir.sim.stream.sink_task import replay_dead_letters
from weir.sim.stream.windows import MAX_TIME

if TYPE_CHECKING:
    import simpy

    from weir.sim.patterns.dlq import DeadLetterQueue
    from weir.sim.stream.functions import DeadLetterReplay
    from weir.sim.patterns.sinks import WindowResults
    from weir.sim.scenario.model import Scenario

__all__ = ["Job", "JOB_NODES", "MAX_USER_ERRORS"]

#: Exceptions from user code that a run takes (each failing the job over) before it ends as failed.
MAX_USER_ERRORS = 10

#: The nodes the job's tasks run on. A crash of any of them fails the whole job over (Flink's full
#: restart strategy), except a consumer's in rebalance mode.
JOB_NODES = ("source", "processor", "sink", "coordinator")


class Job:
    """The streaming job: subtasks on four nodes, one restart strategy (restart all tasks)."""

    def __init__(self, world: World, scenario: Scenario, broker: Broker, sink: Sink,
                 store: CheckpointStore | None, producer: Producer, results: WindowResults | None = None,
                 dlq: DeadLetterQueue | None = None, replay_job: DeadLetterReplay | None = None):
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
        self.ingested_at = np.full(len(producer.data.keys), NOT_STAMPED, dtype=np.int64) if (
            wm is not None and wm.strategy == "ingestion_time") else None
        self.source, self.processor, self.sink, self.coordinator = (world.node(n) for n in JOB_NODES)
        # source subtask i runs on node source-i (subtask 0 on source)
        self.source_nodes = [self.source] + [world.node(f"source-{i}") for i in range(1, self.source_parallelism)]
        self.failover = Failover(self)
        # rebalance mode: source subtasks are the members of a Kafka consumer group; a crash of one
        # is not a job failure, the group deals its partitions out to the others
        self.rebalance = p.source_failover == "rebalance"
        if self.rebalance:
            broker.group = ConsumerGroup(world, broker, p.session_timeout)
            self.failover.watch_consumers()
        self.generation = 0
        self.attempt: Attempt | None = None
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
        self.dlq_waiters: list[simpy.Event] = []  # the DLQ replay job, asleep while the queue is empty
        self.replay_job = replay_job  # the DLQ replay job's policy (weir.DeadLetterReplay), with retry.replay_after
        self.replaying = False  # the replay job is in the middle of a round
        self.skipped = 0  # records given up on with retry.exhausted = "skip" (dropped)
        self.replayed = 0  # records the DLQ replay job wrote to the sink
        self.sink_last_attempt: int | None = None  # when a write last reached the sink (sink_overload)
        self.transactional = scenario.pipeline.two_phase
        # the transactions the sink committed (the external system's record of it: a committed
        # transaction does not time out); durable, like the sink
        self.txn_committed: set[int] = set()
        self.user_errors: list[UserError] = []  # findings about user code (at most MAX_USER_ERRORS)
        # the table that two-phase commit drives: the window results for a windowed job, else the sink
        self.txn_table = (results if results is not None else sink) if self.transactional else None
        # the coordinator notifies the operator of completed and aborted checkpoints if it listens
        users = [spec.cls for spec in scenario.operators + scenario.operators_after] or (
            [scenario.operator.cls] if scenario.operator is not None else [])
        self.user_operator = bool(users)
        self.operator_listens = any(
            user.notify_checkpoint_complete is not Operator.notify_checkpoint_complete
            or user.notify_checkpoint_aborted is not Operator.notify_checkpoint_aborted for user in users)
        for node in self.task_nodes:
            node.on_crash(self.failover.fail)
        broker.on_commit(self.check_drained)
        producer.on_done(self.check_drained)
        world.net.on_cut(self.failover.connection_lost)

    @property
    def restarts(self) -> int:
        return self.failover.restarts

    # The sink's two streams, made when first drawn from: most runs never retry a write, and a
    # stream costs some 40 us to make (a stream's numbers depend only on the seed and its name,
    # never on when it is made: weir.sim.kernel.rng).
    @cached_property
    def retry_rng(self) -> np.random.Generator:
        """Backoff jitter (retry.jitter)."""
        return self.world.rngs.stream("sink.retry")

    @cached_property
    def failure_rng(self) -> np.random.Generator:
        """The sink's own failures (retry.failure_rate)."""
        return self.world.rngs.stream("sink.failures")

    @property
    def task_nodes(self) -> list[Node]:
        """The nodes whose crash fails the job over (in rebalance mode, not the consumers')."""
        sources = [] if self.rebalance else self.source_nodes
        return sources + [self.processor, self.sink, self.coordinator]

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.deploy()
        if self.dlq is not None and self.scenario.retry.replay_after is not None:
            self.sink.spawn(replay_dead_letters(self))
            self.sink.on_restart(lambda node: node.spawn(replay_dead_letters(self)))

    def fail(self, node: Node) -> None:
        """Fail the job over (weir.sim.stream.failover), as if `node` had crashed."""
        self.failover.fail(node)

    def new_consumer_policy(self) -> ConsumerPolicy:
        """The attempt's consumer policy: the user's (pipeline.consumer), or weir's for pipeline.offset_commit."""
        spec = self.scenario.pipeline.consumer_spec
        return spec.build() if spec is not None else POLICIES[self.cfg.offset_commit]()

    def new_operator(self, snapshot=None):
        """A fresh operator (the user's, a window aggregation, or running totals), restored if given a snapshot."""
        # windows changed since a snapshot are counted only for incremental checkpoints, which write them
        incremental = self.checkpoint is not None and self.checkpoint.incremental
        if self.scenario.operators or self.scenario.operators_after:
            chained = [spec.build() for spec in self.scenario.operators]
            if self.window_spec is not None:  # the window aggregation, between the record and the pane operators
                chained.append(WindowedAggregation(self.window_spec, incremental))
            chained += [spec.build() for spec in self.scenario.operators_after]
            op = Chain(chained)
        elif self.scenario.operator is not None:
            op = self.scenario.operator.build()
        elif self.window_spec is not None:
            op = WindowedAggregation(self.window_spec, incremental)
        else:
            op = RunningTotals(self.scenario.workload.keys)
        if snapshot is not None:
            op.restore(snapshot)
        return op

    def deploy(self) -> None:
        """Start a new attempt from durable state: the latest intact checkpoint, or committed offsets."""
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
        operators = [self.new_operator(snapshot) for snapshot, _channels in states]
        if self.store is not None:  # where the state came from (the sources trace where their offsets did)
            self.world.trace.add(Kind.STATE_RESTORE, self.processor.index, restored, self.generation,
                                 sum(op.state_size() for op in operators))
        a = self.attempt = Attempt(self, self.generation, offsets, operators, [list(ch) for _s, ch in states],
                                   restored)
        # a copy, as a restore deserializes one: what recovery does to a handle stays out of the checkpoint
        a.restored_sink = copy.deepcopy(sink_state) if sink_state else None
        for src in a.sources:
            if src.node.up:  # in rebalance mode a consumer that is down joins when back
                src.start()
        for t in a.subtasks:
            a.procs.append(self.processor.spawn(t.run()))
        for t in a.sinks:
            a.procs.append(self.sink.spawn(t.run()))
        if self.store is not None:
            a.procs.append(self.coordinator.spawn(a.coordinator.run()))

    def progress(self) -> tuple | None:
        """What durable progress the run has made (World.settle stops a run whose progress stands
        still): the log, the committed offsets, the sink's writes and commits, processing and
        restarts, the dead letters. Not checkpoints: a stuck job may complete them for ever. None
        while the producer still has records to write (a sparse workload's gaps are not a stall)."""
        if not self.producer.done:
            return None
        dlq = self.dlq.depth() if self.dlq is not None else 0
        return (sum(self.broker.log.end_offsets()), tuple(self.broker.committed), self.rows_written,
                len(self.txn_committed), self.generation, sum(self.subtask_records), self.replayed, self.skipped,
                self.late_dropped, dlq, self.producer.done, self.world.status)

    def frontier(self) -> list[int]:
        """Per partition, the offset the job would go on from: what the sinks acknowledged in the
        running attempt; between attempts, where the next one starts (the latest intact
        checkpoint's offsets, else the group's committed ones). A record before it that is not in
        the sink is lost for good; one at or past it was still to be processed."""
        a = self.attempt
        if a is not None and a.acked is not None:
            return list(a.acked)
        if self.store is not None:
            cp, _torn = self.store.latest_intact()
            return list(cp.offsets) if cp is not None else [0] * self.partitions
        return list(self.broker.committed)

    def window_watermark(self) -> int | None:
        """The window operators' lowest watermark at the end (None: no window, or between attempts)."""
        if self.final_watermark is not None:
            return self.final_watermark
        a = self.attempt
        if a is None or not a.subtasks[0].operator.windowed:
            return None
        return min(t.operator.watermark for t in a.subtasks)

    def keep_queue_metrics(self, a: Attempt) -> None:
        for t in a.subtasks:
            self.subtask_max_queued[t.index] = max(self.subtask_max_queued[t.index], t.gate.max_queued_records)

    def note_user_error(self, error: UserHookError, node: Node | None = None) -> bool:
        """A user hook raised or returned what it must not, on `node` (default: the sink): keep the
        finding for the run's result. Whether the job fails over (as Flink's task does, with
        run.on_user_error = "fail_over"); otherwise the run ends after this event, with status
        user_code_raised (user_code_timed_out for a hook the watchdog stopped, always). The
        MAX_USER_ERRORS-th ends it too, as Flink's restart strategy gives up in the end."""
        node = node or self.sink
        self.world.trace.add(Kind.USER_ERROR, node.index, len(self.user_errors))
        self.user_errors.append(error.finding(self.world.now, node.name, bound_us=self.scenario.run.user_timeout))
        if error.timed_out:
            self.world.finish(Status.USER_CODE_TIMED_OUT)
        elif self.scenario.run.on_user_error == "stop" or len(self.user_errors) >= MAX_USER_ERRORS:
            self.world.finish(Status.USER_CODE_RAISED)
        return self.world.status is None

    def active_fault(self, kind: str, node: Node | None = None):
        """The `kind` fault (of the sink, of the checkpoint store, or a slow `node`) whose window
        covers now, or None."""
        world = self.world
        if not world.fault_windows:  # (no window faults in the run: asked on every write)
            return None
        return world.active_fault(kind, None if node is None else node.name)

    def check_drained(self) -> None:
        """End the run once every produced record went through and all faults have healed.

        With windows, also once every source subtask has emitted its watermark for the last
        records and the window operators have taken it in (so windows the data closes have fired).
        """
        a = self.attempt
        if (a is None or a.in_flight or a.replays_in_flight or a.positions is None or not self.producer.done
                or self.world.held or not self.broker.caught_up()):
            return
        if self.scenario.watermarks is not None:
            if a.watermarks_in_flight or a.outputs_in_flight:
                return
            if self.cfg.bounded:  # every source sent the end of input, every subtask took it in: all windows fired
                # (so not before the sources of a restarted attempt have even joined: a restored state may
                # hold windows that only the end of input fires)
                if not all(s.finished for s in a.sources) or any(t.watermark != MAX_TIME for t in a.subtasks):
                    return
            elif a.sources[0].watermarks is not None and any(s.last_emit_at <= s.last_read_at for s in a.sources):
                return  # unbounded: quiet once every source sent the watermark of the last records it read
        if self.dlq is not None and self.scenario.retry.replay_after is not None and (
                self.world.now < self.scenario.retry.replay_after or self.dlq.depth() or self.replaying):
            return  # the replay job has records to write (or is writing what it marked done)
        if self.transactional and any(t.pending or t.txn_rows or not t.recovered for t in a.sinks):
            return  # rows not yet committed: the next checkpoint's completion will commit them
        if a.subtasks[0].operator.windowed:
            self.final_watermark = min(t.operator.watermark for t in a.subtasks)
        self.keep_queue_metrics(a)
        if self.world.status is None:  # the job finished: close its operators, once (end of input)
            for t in a.subtasks:
                t.operator.close()
            for t in a.sinks:  # and the sink's: abort each open (empty) transaction, as Flink's close() does
                if t.txn is not None:
                    t._call(self.txn_table.abort, t.txn.handle)
                    self.world.trace.add(Kind.TXN_ABORT, self.sink.index, t.txn.id, a.generation, 1)
        self.world.finish(Status.DRAINED)
