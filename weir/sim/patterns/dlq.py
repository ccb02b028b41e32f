"""Retries with exponential backoff, poison records, and the dead-letter queue (on SQLite).

A sink write can fail: a transient error (a `sink_fail` fault window, or `retry.failure_rate`), or
a poison record that fails every time (`workload.poison_every`). The sink subtask retries what
failed after a backoff that doubles (`retry.multiplier`) from `retry.backoff` up to
`retry.max_backoff`, stretched by a seeded jitter of up to `retry.jitter` of itself. After
`retry.max_retries` retries the records that still fail go to the dead-letter queue (or are
skipped, with `retry.exhausted = "skip"`: a silent drop), and the batch is acknowledged, so one
bad record does not block its partition. `retry.forever` retries without end: a poison record then
blocks its partition for good (the liveness failure).

The DLQ keeps the metadata of the seed's `DeadLetterHandler` (section 7.4) for every record. A
replay job (`retry.replay_after`) fixes what is in it, writes it to the sink and marks it
processed; with an idempotent sink a replay that is cut short and run again writes nothing twice.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from weir.sim.kafka.producer import poison_mask
from weir.sim.kernel.batch import RecordBatch
from weir.sim.stream.functions import DeadLetter, DeadLetterReplay
from weir.sim.patterns.sinks import memory_db
from weir.sim.stream.sink_task import backoff_delay

__all__ = ["DeadLetterQueue", "FixAndReplay", "backoff_delay", "poison_mask", "DLQ_COLUMNS", "SOURCE_TOPIC"]

SOURCE_TOPIC = "events"  # the log's one topic, as the DLQ metadata names it
DLQ_COLUMNS = ("record_id", "key", "value", "event_time", "retry_count", "max_retries", "failed_at",
               "source_partition", "source_offset", "replayable", "processed", "processed_at")


_DDL = """
CREATE TABLE dead_letters (
    record_id INTEGER NOT NULL, key INTEGER NOT NULL, value INTEGER NOT NULL, event_time INTEGER NOT NULL,
    error_type TEXT NOT NULL, error_message TEXT NOT NULL, retry_count INTEGER NOT NULL,
    max_retries INTEGER NOT NULL, failed_at INTEGER NOT NULL, source_topic TEXT NOT NULL,
    source_partition INTEGER NOT NULL, source_offset INTEGER NOT NULL, replayable INTEGER NOT NULL,
    processed INTEGER NOT NULL DEFAULT 0, processed_at INTEGER
)
"""


class FixAndReplay(DeadLetterReplay):
    """weir's replay job: fix each record (it carries its own value: the operator is not run
    again), write the batch, then mark it processed. A crash between the write and the mark writes
    those records again next time: an upsert sink absorbs that, an append sink does not."""


class DeadLetterQueue:
    """The dead-letter queue: a durable table of failed records with their metadata."""

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None  # made by the first dead letter (db)
        self.max_depth = 0

    @property
    def db(self) -> sqlite3.Connection:
        """The table's database, made on first use: most runs dead-letter nothing, and making a
        database, its schema, reading it out and closing it cost some 0.3 ms a run. Until then the
        queue reads as the empty table it would hold."""
        if self._db is None:
            self._db = memory_db()
            self._db.execute(_DDL)
        return self._db

    def add(self, batch: RecordBatch, mask: np.ndarray, error_type: str, error_message: str, retry_count: int,
            max_retries: int, failed_at: int) -> int:
        """Dead-letter the records of `batch` where `mask` is set; return how many."""
        idx = np.flatnonzero(mask)
        offsets = batch.offset
        rows = [(int(batch.record_id[i]), int(batch.key[i]), int(batch.value[i]), int(batch.event_time[i]),
                 error_type, error_message, retry_count, max_retries, failed_at, SOURCE_TOPIC, batch.partition_id,
                 int(offsets[i]), int(retry_count < max_retries)) for i in idx.tolist()]
        db = self.db
        db.execute("BEGIN")
        db.executemany("INSERT INTO dead_letters (record_id, key, value, event_time, error_type, error_message, "
                       "retry_count, max_retries, failed_at, source_topic, source_partition, source_offset, "
                       "replayable) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")
        self.max_depth = max(self.max_depth, self.depth())
        return len(rows)

    def depth(self) -> int:
        """Records waiting in the DLQ (not yet replayed)."""
        if self._db is None:
            return 0
        return self._db.execute("SELECT count(*) FROM dead_letters WHERE processed = 0").fetchone()[0]

    def pending(self, limit: int) -> list[DeadLetter]:
        """Up to `limit` unprocessed entries, oldest first."""
        if self._db is None:
            return []
        return [DeadLetter(*row) for row in self._db.execute(
            "SELECT rowid, record_id, key, value, source_partition, source_offset "
            "FROM dead_letters WHERE processed = 0 ORDER BY rowid LIMIT ?", (limit,))]

    def mark_processed(self, rowids: list[int], now: int) -> None:
        db = self.db
        db.execute("BEGIN")
        db.executemany("UPDATE dead_letters SET processed = 1, processed_at = ? WHERE rowid = ?",
                       [(now, r) for r in rowids])
        db.execute("COMMIT")

    def messages(self) -> list[dict]:
        """Every entry as the seed's DeadLetterHandler message (plus whether it was replayed)."""
        if self._db is None:
            return []
        rows = self._db.execute("SELECT record_id, key, value, event_time, error_type, error_message, retry_count, "
                                "max_retries, failed_at, source_topic, source_partition, source_offset, replayable, "
                                "processed FROM dead_letters ORDER BY rowid").fetchall()
        return [{"original_record": {"record_id": r[0], "key": r[1], "value": r[2], "event_time": r[3]},
                 "error_type": r[4], "error_message": r[5], "retry_count": r[6], "max_retries": r[7],
                 "failed_at": r[8], "source_topic": r[9], "source_partition": r[10], "source_offset": r[11],
                 "replayable": bool(r[12]), "processed": bool(r[13])} for r in rows]

    def contents(self) -> dict[str, np.ndarray]:
        rows = [] if self._db is None else self._db.execute(
            "SELECT record_id, key, value, event_time, retry_count, max_retries, failed_at, source_partition, "
            "source_offset, replayable, processed, COALESCE(processed_at, -1) FROM dead_letters ORDER BY rowid").fetchall()
        data = np.array(rows, dtype=np.int64).reshape(-1, len(DLQ_COLUMNS))
        return {name: np.ascontiguousarray(data[:, i]) for i, name in enumerate(DLQ_COLUMNS)}

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
