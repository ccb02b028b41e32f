"""Failover: the job's restart strategy (Flink's full restart), and consumers that come and go.

When a node that runs one of the job's tasks crashes, or a message between two of its tasks is
lost (a checkpointed stream needs reliable FIFO channels), the attempt is failed: every task stops
and everything it kept in memory is dropped. Once every task node is up again (and the restart
delay has passed) the job deploys a new attempt from durable state (Job.deploy).

In rebalance mode the source subtasks are members of a Kafka consumer group instead: a crash of
one is not a job failure, an idle stand-in takes its place until its node is back, and the group
deals its partitions out to the others meanwhile (weir.sim.kafka.group).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from weir.sim.kernel.trace import Kind, Msg
from weir.sim.kernel.world import Node
from weir.sim.stream.source_task import SourceTask

if TYPE_CHECKING:
    from weir.sim.stream.job import Job

__all__ = ["Failover"]


class Failover:
    """Fails attempts over and restarts the job; counts the restarts."""

    def __init__(self, job: Job):
        self.job = job
        self.restarts = 0
        self._restarting = False

    def watch_consumers(self) -> None:
        """Rebalance mode: a consumer's crash and return are the group's business, not a failover."""
        for i, node in enumerate(self.job.source_nodes):
            node.on_crash(lambda _n, i=i: self._consumer_crashed(i))
            node.on_restart(lambda _n, i=i: self._consumer_back(i))

    def connection_lost(self, src: Node, dst: Node, msg: Msg) -> None:
        """A partition lost a message between two of the job's tasks: the channel is broken, and a
        checkpointed stream needs reliable FIFO channels, so the job fails over (as Flink does when a
        network connection between tasks breaks). Requests to the broker time out and retry instead."""
        job = self.job
        tasks = job.source_nodes + [job.processor, job.sink, job.coordinator]
        if src in tasks and dst in tasks and job.attempt is not None:
            self.fail(dst)

    def fail(self, node: Node) -> None:
        """Fail the job over: stop every task, drop the attempt, and restart when all task nodes are up."""
        job = self.job
        a = job.attempt
        if a is not None:
            a.alive = False
            job.world.trace.add(Kind.JOB_FAIL, node.index, a.generation, a.in_flight)
            for proc in a.procs:
                if proc.is_alive:
                    proc.interrupt("job failover")
            job.keep_queue_metrics(a)
            job.attempt = None
        if not self._restarting:
            self._restarting = True
            job.world.env.process(self._restart())

    def _restart(self):
        """The restart strategy (it runs in the cluster, on no node): wait for all task nodes, then redeploy."""
        job = self.job
        nodes = job.task_nodes
        while True:
            for node in nodes:
                yield node.when_up()
            yield job.world.env.timeout(job.cfg.restart_delay)
            if all(node.up for node in nodes):
                break
        self._restarting = False
        self.restarts += 1
        job.world.trace.add(Kind.JOB_RESTART, job.coordinator.index, job.generation + 1)
        job.deploy()

    def _consumer_crashed(self, i: int) -> None:
        """Consumer i's node crashed: its processes are gone; a fresh, idle subtask stands in until
        the node is back, and the group coordinator will expire it after the session timeout."""
        a = self.job.attempt
        if a is not None:
            a.sources[i] = SourceTask(self.job, a, i, ())

    def _consumer_back(self, i: int) -> None:
        a = self.job.attempt
        if a is not None and a.alive:
            a.sources[i].start()
