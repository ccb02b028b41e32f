"""What the upsert sink did with what it was handed: replays told apart from merges.

A record the sink is handed again overwrites its own row: a replay the upsert absorbs, which is
the point of it. A distinct record whose dedup key another record shares overwrites that record's
row: a merge, which loses the first record's row as surely as a drop. The run's count of writes
cannot tell them apart; the sink's count of distinct records it was handed can
(`weir.sim.patterns.sinks.UpsertSink.records_written`).
"""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np

from weir.sim.patterns.sinks import DAY_US

__all__ = ["UpsertJSON", "upsert_summary", "merged_pair"]


class UpsertJSON(TypedDict):
    """What the upsert sink did with what it was handed: rows written again for records it already
    had (replays it absorbed), and distinct records merged into other records' rows (a dedup key
    two records share), with an example pair [the record whose row is kept, one merged into it]."""

    dedup_key: list[str]
    records: int  # distinct records the sink was handed
    rows: int
    replays: int
    merged: int
    example: list[int] | None


def upsert_summary(finished: Any) -> UpsertJSON | None:
    """The upsert sink's writes told apart (UpsertJSON): a record written again is a replay; a
    distinct record with no row of its own was merged into another's (the dedup key is not unique
    per record). None for other sinks."""
    if finished.sink_records is None:
        return None
    key = list(finished.scenario.pipeline.dedup_key)
    records, rows = finished.sink_records, len(finished.sink["record_id"])
    merged = max(records - rows, 0)
    return {"dedup_key": key, "records": records, "rows": rows, "replays": finished.sink_writes - records,
            "merged": merged, "example": merged_pair(finished, key) if merged else None}


def merged_pair(finished: Any, key: list[str]) -> list[int] | None:
    """[a record whose row the sink keeps, the lowest record id that shares its dedup key], from the
    log's columns; None if the key uses a column the log does not hold (written_at)."""
    src = finished.source
    if not set(key) <= {"record_id", "key", "partition", "offset", "event_time", "event_date"}:
        return None
    ids = np.asarray(src["record_id"], dtype=np.int64)
    columns = [np.asarray(src["event_time"], dtype=np.int64) // DAY_US if c == "event_date" else
               np.asarray(src[c], dtype=np.int64) for c in key]
    _, group = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
    group = group.ravel()
    kept = np.isin(ids, finished.sink["record_id"])
    keeper = np.full(int(group.max()) + 1 if len(group) else 0, -1, dtype=np.int64)
    keeper[group[kept]] = ids[kept]
    merged = ~kept & (keeper[group] >= 0)
    if not merged.any():
        return None
    j = np.flatnonzero(merged)[np.argmin(ids[merged])]
    return [int(keeper[group[j]]), int(ids[j])]
