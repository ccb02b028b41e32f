"""A two-phase-commit sink of your own (weir.TwoPhaseCommitSink), and the same sink with a subtle
recovery bug. Used by examples/two_phase_sink.toml and the README's "Testing your own pipeline".

The sink stages each transaction's rows as a file in a staging folder (here: a dict, which weir
keeps across crashes as it would a real folder) and commits a transaction by copying its file into
the table and recording it in a commit log, in one step. Staged files are deleted later, when a
restore says which transactions are done (as object stores without an atomic rename often do).
"""

from __future__ import annotations

import numpy as np

import weir


class StagedFileSink(weir.TwoPhaseCommitSink):
    """Correct: a commit looks in the commit log first, so committing a transaction twice (which a
    restore does when the crash came after the commit) publishes it once."""

    def __init__(self):
        self.staged: dict[int, list[tuple[int, int, int]]] = {}  # txn -> its rows: the staging folder
        self.table: list[tuple[int, int, int]] = []  # (record_id, value, written_at): what readers see
        self.log: set[int] = set()  # the commit log: transactions published

    def write(self, batch, value, written_at, txn=None):
        rows = self.staged.setdefault(txn, [])
        rows.extend((rid, v, written_at) for rid, v in zip(batch.record_id.tolist(), value.tolist()))
        return 0

    def commit(self, txn):
        if txn in self.log:
            return False  # published before: nothing to do
        self.table.extend(self.staged.get(txn, ()))
        self.log.add(txn)
        return True

    def abort(self, txn):
        if txn not in self.log:
            self.staged.pop(txn, None)

    def finish_recovering(self, subtask, handled):
        done = [t for t in handled if t in self.log]  # their files can go now
        for t in done:
            self.staged.pop(t, None)
        return None

    def contents(self):
        rows = sorted(self.table)
        return {"record_id": np.array([r[0] for r in rows], dtype=np.int64),
                "value": np.array([r[1] for r in rows], dtype=np.int64),
                "written_at": np.array([r[2] for r in rows], dtype=np.int64)}


class RecommittingSink(StagedFileSink):
    """Flawed: on restore it trusts the checkpoint and publishes each pending transaction again,
    without looking in the commit log. Fine when the crash came before the commit; when it came
    after (the usual case: the commit follows the checkpoint at once), the rows appear twice."""

    def recover_and_commit(self, txn):
        self.table.extend(self.staged.get(txn, ()))
        self.log.add(txn)
        return True
