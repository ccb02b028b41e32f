"""The reconciliation job: the seed's daily reconciliation query (section 7.5), as real SQL on SQLite.

It loads the run's durable results into an in-memory SQLite database, as the tables the query
names, and runs the query nearly as the seed writes it:

- `raw_events`: every committed record of the source log, with `transaction_id` (the record id),
  `event_time` and `source_system` (the producer instance that wrote it: `producer`, `producer-1`,
  ...);
- `processed_transactions`: every row of the sink, with `transaction_id`, `event_date` and
  `source_system` carried from its source record (as a pipeline would carry them).

A "day" is `reconcile.period` of simulated event time (`event_date = event_time / period`). The
seed's query divides one whole number by another to get the missing share; SQLite (like
PostgreSQL) truncates that to 0, which would make any loss under 100% look like 'WARN', so here the
numerator is multiplied by 1.0 first. The seed orders by `status DESC`, which sorts the words
(WARN, OK, CRITICAL: the worst rows last); here the worst come first. The query has no "last 7
days" filter: a run is short.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np

from weir.analysis.verdict import Verdict

__all__ = ["RECONCILIATION_SQL", "COLUMNS", "load_tables", "reconcile", "reconciled", "source_systems"]

RECONCILIATION_SQL = """
WITH source_counts AS (
    SELECT
        CAST(event_time / :period AS INTEGER) AS event_date,
        source_system,
        COUNT(*) AS source_count,
        COUNT(DISTINCT transaction_id) AS source_unique
    FROM raw_events
    GROUP BY 1, 2
),
sink_counts AS (
    SELECT
        event_date,
        source_system,
        COUNT(*) AS sink_count,
        COUNT(DISTINCT transaction_id) AS sink_unique
    FROM processed_transactions
    GROUP BY 1, 2
)
SELECT
    COALESCE(s.event_date, t.event_date) AS event_date,
    COALESCE(s.source_system, t.source_system) AS source_system,
    s.source_count,
    s.source_unique,
    t.sink_count,
    t.sink_unique,
    s.source_unique - COALESCE(t.sink_unique, 0) AS missing_records,
    t.sink_count - t.sink_unique AS duplicate_records,
    CASE
        WHEN s.source_unique = t.sink_unique THEN 'OK'
        WHEN ABS(s.source_unique - t.sink_unique) * 1.0 / s.source_unique < :threshold THEN 'WARN'
        ELSE 'CRITICAL'
    END AS status
FROM source_counts s
FULL OUTER JOIN sink_counts t
    ON s.event_date = t.event_date
    AND s.source_system = t.source_system
ORDER BY CASE status WHEN 'CRITICAL' THEN 0 WHEN 'WARN' THEN 1 ELSE 2 END, event_date DESC, source_system
"""

COLUMNS = ("event_date", "source_system", "source_count", "source_unique", "sink_count", "sink_unique",
           "missing_records", "duplicate_records", "status")


def source_systems(record_ids: np.ndarray, produce_batch: int, producers: int) -> list[str]:
    """Which producer instance wrote each record: instance i sends batches i, i + N, ... ."""
    instance = (np.asarray(record_ids) // produce_batch) % producers
    names = ["producer"] + [f"producer-{i}" for i in range(1, producers)]
    return [names[i] for i in instance.tolist()]


def load_tables(run: Any, period: int) -> sqlite3.Connection:
    """An in-memory SQLite database holding the run's `raw_events` and `processed_transactions`, the
    tables the query reads (a "day" is `period` us of event time); for your own queries. Close it."""
    src = run.source
    state = src.get("state")
    keep = np.ones(len(src["record_id"]), dtype=bool) if state is None else np.asarray(state) == 0
    ids = np.asarray(src["record_id"])[keep]
    times = np.asarray(src["event_time"])[keep]
    workload = run.scenario.workload
    systems = source_systems(ids, workload.produce_batch, workload.producers)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE raw_events (transaction_id INTEGER, event_time INTEGER, source_system TEXT)")
    db.execute("CREATE TABLE processed_transactions (transaction_id INTEGER, event_date INTEGER, source_system TEXT)")
    db.executemany("INSERT INTO raw_events VALUES (?, ?, ?)", zip(ids.tolist(), times.tolist(), systems))
    first_time = dict(zip(ids.tolist(), times.tolist()))
    sink_ids = np.asarray(run.sink["record_id"]).tolist()
    sink_systems = source_systems(np.asarray(sink_ids, dtype=np.int64), workload.produce_batch, workload.producers)
    rows = [(rid, first_time[rid] // period if rid in first_time else None, system)
            for rid, system in zip(sink_ids, sink_systems)]
    db.executemany("INSERT INTO processed_transactions VALUES (?, ?, ?)", rows)
    return db


def reconcile(run: Any, period: int, threshold: float) -> list[dict[str, Any]]:
    """The query's rows for a finished run (source and sink as numpy columns)."""
    db = load_tables(run, period)
    try:
        result = db.execute(RECONCILIATION_SQL, {"period": period, "threshold": threshold}).fetchall()
    finally:
        db.close()
    return [dict(zip(COLUMNS, row)) for row in result]


def reconciled(run: Any) -> Verdict:
    """The reconciliation job reports every (day, source system) OK."""
    settings = run.scenario.reconcile
    rows = reconcile(run, settings.period, settings.threshold)
    bad = [r for r in rows if r["status"] != "OK"]
    missing = sum(r["missing_records"] or 0 for r in rows)
    duplicates = sum(r["duplicate_records"] or 0 for r in rows)
    evidence = {"rows": rows, "not_ok": len(bad), "missing_records": missing, "duplicate_records": duplicates}
    if bad:
        worst = bad[0]
        return Verdict("reconciled", False, f"{len(bad)} of {len(rows)} (day, source) rows not OK; first: day "
                       f"{worst['event_date']} {worst['source_system']} {worst['status']} with "
                       f"{worst['missing_records']} missing", evidence)
    return Verdict("reconciled", True, f"all {len(rows)} (day, source) rows OK ({duplicates} duplicate rows in the sink)",
                   evidence)
