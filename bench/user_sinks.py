"""User-written copies of weir's built-in upsert and two-phase-commit sinks, for `make bench`: the
same SQL a user would write, through the public hooks (weir.Sink, weir.TwoPhaseCommitSink), so the
bench can measure what going through the hooks costs against the built-ins."""

from __future__ import annotations

import sqlite3

import numpy as np

import weir

_COLUMNS = ("record_id", "key", "partition", "offset", "value", "written_at")
_DDL = ('CREATE TABLE sink (record_id INTEGER PRIMARY KEY, key INTEGER, partition INTEGER, "offset" INTEGER, '
        "value INTEGER, written_at INTEGER)")


def _rows(batch, value, written_at):
    n = len(batch)
    return zip(batch.record_id.tolist(), batch.key.tolist(), [batch.partition_id] * n, batch.offset.tolist(),
               value.tolist(), [written_at] * n)


def _contents(db: sqlite3.Connection, table: str) -> dict[str, np.ndarray]:
    rows = db.execute(f'SELECT record_id, key, partition, "offset", value, written_at FROM {table} ORDER BY record_id').fetchall()
    data = np.array(rows, dtype=np.int64).reshape(-1, len(_COLUMNS))
    return {name: np.ascontiguousarray(data[:, i]) for i, name in enumerate(_COLUMNS)}


class UserUpsertSink(weir.Sink):
    """INSERT ... ON CONFLICT (record_id) DO UPDATE, as a user would write it."""

    def __init__(self):
        self.db = sqlite3.connect(":memory:", isolation_level=None)
        self.db.execute(_DDL)

    def write(self, batch, value, written_at):
        self.db.execute("BEGIN")
        self.db.executemany('INSERT INTO sink VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (record_id) DO UPDATE SET '
                            'key = excluded.key, partition = excluded.partition, "offset" = excluded."offset", '
                            "value = excluded.value, written_at = excluded.written_at", _rows(batch, value, written_at))
        self.db.execute("COMMIT")
        return 0

    def contents(self):
        return _contents(self.db, "sink")

    def close(self):
        self.db.close()


class UserTwoPhaseSink(weir.TwoPhaseCommitSink):
    """A staging table and a commit log, as a user would write a two-phase-commit sink on SQLite."""

    def __init__(self):
        self.db = sqlite3.connect(":memory:", isolation_level=None)
        self.db.execute(_DDL.replace("record_id INTEGER PRIMARY KEY", "record_id INTEGER"))
        self.db.execute('CREATE TABLE staging (txn INTEGER, record_id INTEGER, key INTEGER, partition INTEGER, '
                        '"offset" INTEGER, value INTEGER, written_at INTEGER)')
        self.db.execute("CREATE INDEX staging_txn ON staging (txn)")
        self.db.execute("CREATE TABLE log (txn INTEGER PRIMARY KEY)")

    def write(self, batch, value, written_at, txn=None):
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO staging VALUES (?, ?, ?, ?, ?, ?, ?)",
                            ((txn, *row) for row in _rows(batch, value, written_at)))
        self.db.execute("COMMIT")
        return 0

    def commit(self, txn):
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        if db.execute("SELECT 1 FROM log WHERE txn = ?", (txn,)).fetchone():
            db.execute("COMMIT")
            return False
        db.execute('INSERT INTO sink SELECT record_id, key, partition, "offset", value, written_at FROM staging WHERE txn = ?',
                   (txn,))
        db.execute("INSERT INTO log VALUES (?)", (txn,))
        db.execute("DELETE FROM staging WHERE txn = ?", (txn,))
        db.execute("COMMIT")
        return True

    def abort(self, txn):
        self.db.execute("DELETE FROM staging WHERE txn = ?", (txn,))

    def contents(self):
        return _contents(self.db, "sink")

    def close(self):
        self.db.close()
