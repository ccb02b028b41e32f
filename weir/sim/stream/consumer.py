"""weir's own consumer policies (weir.ConsumerPolicy), one per pipeline.offset_commit.

- `before_processing` (at most once): commit each batch's end as it is polled, before processing.
- `after_ack` (at least once): every commit_interval, commit what the sink acknowledged.
- `auto` (Kafka's enable.auto.commit): every commit_interval, commit what was polled, processed or not.
- `on_checkpoint` (exactly once): when a checkpoint completes, commit its offsets (Flink's
  FlinkKafkaConsumer with checkpointing: the committed offsets are for monitoring; a restore
  resumes from the checkpoint's).
Each resumes from the restored checkpoint's offsets if there is one, else from the committed ones.
"""

from __future__ import annotations

from weir.sim.stream.functions import ConsumerPolicy

__all__ = ["CommitBeforeProcessing", "CommitAfterAck", "AutoCommit", "CommitOnCheckpoint", "POLICIES"]


class CommitBeforeProcessing(ConsumerPolicy):
    def on_poll(self, partition: int, first: int, end: int) -> int | None:
        return end


class CommitAfterAck(ConsumerPolicy):
    commits_periodically = True

    def periodic(self, partition: int, polled: int, acked: int) -> int | None:
        return acked


class AutoCommit(ConsumerPolicy):
    commits_periodically = True

    def periodic(self, partition: int, polled: int, acked: int) -> int | None:
        return polled


class CommitOnCheckpoint(ConsumerPolicy):
    commits_on_checkpoint = True

    def on_checkpoint(self, partition: int, checkpointed: int) -> int | None:
        return checkpointed


POLICIES = {"before_processing": CommitBeforeProcessing, "after_ack": CommitAfterAck, "auto": AutoCommit,
            "on_checkpoint": CommitOnCheckpoint}
