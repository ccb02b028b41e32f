"""A DLQ replay job of your own (weir.DeadLetterReplay), and one with the steps in the wrong order.
Used by examples/dlq_replay.toml and tests/test_dlq_replay_hook.py."""

from __future__ import annotations

import weir


class HalveValues(weir.DeadLetterReplay):
    """Correct: the fix halves a poison record's value (say, a unit error upstream), writes the
    fixed records, then marks them processed. A crash between the two writes them again: the
    upsert sink absorbs that."""

    def fix(self, letter):
        return letter.value // 2


class MarkThenWrite(HalveValues):
    """Flawed: marks the entries processed first, then writes. A crash between the two leaves
    entries marked done whose records never reached the sink: lost, and the DLQ says all is well."""

    mark_first = True
