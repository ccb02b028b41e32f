"""One execution attempt of the job (Flink's Execution): everything the job keeps in memory.

An attempt holds the source, stream and sink tasks of one execution, the checkpoint coordinator's
checkpoint in flight, and what the tasks share: each partition's positions, the channels'
credits, and the counts of messages still on their way that decide whether the run has drained.
When any task's node crashes the attempt is failed, its processes are interrupted and the whole
object is dropped (weir.sim.stream.failover); the restart builds a new one from durable state only.

Messages between tasks are delivered through the attempt, by subtask index, and only while it is
alive: a message of a failed attempt reaches nothing, and in rebalance mode one addressed to a
consumer reaches whichever task stands for that consumer now.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import simpy

from weir.sim.kernel.node import wake
from weir.sim.stream.coordinator import CheckpointCoordinator
from weir.sim.stream.sink_task import SinkTask
from weir.sim.stream.source_task import SourceTask
from weir.sim.stream.stream_task import StreamTask

if TYPE_CHECKING:
    from weir.sim.stream.job import Job

__all__ = ["Attempt"]


class Attempt:
    """Everything the job keeps in memory during one execution attempt. A failover drops it all."""

    def __init__(self, job: Job, generation: int, offsets: list[int] | None, operators: list, channel_state: list,
                 checkpoint_id: int):
        self.job = job
        self.generation = generation
        self.alive = True
        self.restored_from = checkpoint_id  # -1: committed offsets, 0: job start, n: checkpoint n
        # per partition, each owned by one source subtask: the next offset to fetch, the end of what
        # the sinks acknowledged, and what the broker confirmed committed (None until joined)
        self.positions = offsets
        self.acked = list(offsets) if offsets else None
        self.confirmed = list(offsets) if offsets else None
        self.offset_waiters: list[simpy.Event] = []  # idle committers, woken when positions or acks move
        self.restored_offsets = list(offsets) if offsets else None  # the checkpoint's (None: none kept)
        self.consumer = job.new_consumer_policy()  # where partitions resume, what is committed when
        s = job.source_parallelism
        self.sources = [SourceTask(job, self, i, tuple(range(i, job.partitions, s))) for i in range(s)]
        # credits[i][j]: free places in the channel from source subtask i to processor subtask j
        self.credits = [[job.cfg.queue_capacity] * job.parallelism for _ in range(s)]
        self.subtasks = [StreamTask(job, self, j, op, s, replay) for j, (op, replay) in enumerate(zip(operators, channel_state))]
        self.sinks = [SinkTask(job, self, j) for j in range(job.parallelism)]  # sink subtask j is chained to subtask j
        self.coordinator = CheckpointCoordinator(job, self)
        self.watermarks_in_flight = 0  # watermark messages sent by sources, not yet taken in by a subtask
        self.outputs_in_flight = 0  # watermark-fired outputs on their way to a sink subtask
        self.replays_in_flight = 0  # restored in-flight batches not yet written by their sink subtask
        self.txn_seq = 0  # transactions opened so far by this attempt's sink subtasks
        self.tags = 0  # the last tag handed to a source subtask (rebalance mode: a new one per assignment)
        self.restored_sink: tuple | None = None  # the restored checkpoint's transactions, per sink subtask
        self.procs: list[simpy.Process] = []

    def offsets_moved(self) -> None:
        """A position or an acknowledged offset moved: wake the committers that had nothing to commit."""
        if self.offset_waiters:
            wake(self.offset_waiters)

    @property
    def in_flight(self) -> int:
        total = 0
        for s in self.sources:  # (a loop, not sum over a generator: asked at every acknowledgement)
            total += s.in_flight
        return total

    # Message handlers: each runs on arrival at its node, and only while this attempt is alive.
    def to_processor(self, j: int, channel: int, msg, tag: int = 0) -> None:
        if self.alive:
            self.subtasks[j].receive(channel, msg, tag)

    def to_sink(self, j: int, msg) -> None:
        if self.alive:
            self.sinks[j].inbox.put(msg)

    def on_ack(self, i: int, tag: int, p: int, first: int, n: int, end: int) -> None:
        if self.alive:
            self.sources[i].on_ack(tag, p, first, n, end)

    def notify_operator(self, j: int, n: int, complete: bool) -> None:
        if self.alive:
            self.subtasks[j].notify(n, complete)

    def request_barrier(self, i: int, n: int) -> None:
        if self.alive:
            self.sources[i].request_barrier(n)
