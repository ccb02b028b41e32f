"""A consumer policy of your own (weir.ConsumerPolicy): where each partition resumes after a
restart, and what is committed when. Used by examples/consumer_policy.toml and
tests/test_consumer_policy.py."""

from __future__ import annotations

import weir


class CheckpointedOffsets(weir.ConsumerPolicy):
    """Correct, Flink's way: commit a checkpoint's offsets when it completes (for monitoring and
    lag), and on a restore resume from the checkpoint's offsets, which match the state restored."""

    commits_on_checkpoint = True

    def on_checkpoint(self, partition, checkpointed):
        return checkpointed


class ResumeFromCommitted(CheckpointedOffsets):
    """Flawed: on a restore, trusts the group's committed offsets over the checkpoint's. They
    usually agree; but a checkpoint's offsets are committed only after it completes, so a crash
    between the completion and the commit restores checkpoint n's state and resumes from n-1's
    offsets: the records between are counted again by the restored state."""

    def resume(self, partition, checkpointed, committed):
        return committed
