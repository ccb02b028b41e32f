"""What keeps a run's memory down (issue 14, item 7; the numbers are in bench/memory.py): the
sink's table read a chunk at a time and sorted in numpy, the log read out once and let go, batches
that copy their rows, and arrays only the runs that read them keep."""

from __future__ import annotations

import sqlite3

import numpy as np
from hypothesis import given, settings, strategies as st

import weir
from weir.sim.kafka.log import ABORTED, PartitionedLog
from weir.sim.patterns import sinks
from weir.sim.patterns.sinks import int_columns

ROWS = st.lists(st.tuples(st.integers(0, 30), st.integers(-5, 5), st.integers(-(2**62), 2**62)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(rows=ROWS, chunk=st.integers(1, 7))
def test_chunked_columns_sorted_in_numpy_are_what_sql_order_by_gives(rows, chunk):
    sinks.READ_CHUNK, saved = chunk, sinks.READ_CHUNK
    try:
        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE t (a INTEGER, b INTEGER, c INTEGER)")
        db.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
        got = int_columns(db, "SELECT a, b, c FROM t", ("a", "b", "c"), "t", sort_by=("a", "b"))
        # ties keep the table's (rowid) order, as a stable sort does
        want = db.execute("SELECT a, b, c FROM t ORDER BY a, b, rowid").fetchall()
        assert list(zip(*(got[n].tolist() for n in ("a", "b", "c")))) == want
        assert all(got[n].dtype == np.int64 for n in got)
    finally:
        sinks.READ_CHUNK = saved


def _log() -> PartitionedLog:
    log = PartitionedLog(3, 4)
    for p, n in ((0, 5), (2, 3), (0, 2)):
        ids = np.arange(100 * p + n, 100 * p + 2 * n, dtype=np.int64)
        log.append(p, ids, ids % 7, ids * 10, ids + 1)
    log.mark(0, 1, 3, ABORTED)
    return log


def test_the_log_read_out_and_let_go_is_the_log_read_out_and_kept():
    kept, released = _log(), _log()
    batch = released.read(0, 0, 4)
    want, got = kept.contents(), released.contents(release=True)
    assert list(want) == list(got) and all(np.array_equal(want[c], got[c]) for c in want)
    assert got["state"].dtype == np.int8 and got["state"].tolist().count(ABORTED) == 2
    assert released.end_offsets() == [0, 0, 0]  # nothing left behind
    assert batch.record_id.tolist() == [5, 6, 7, 8] and not batch.record_id.flags.writeable  # a copy, still whole


def test_only_the_runs_that_read_them_keep_true_event_times_and_payments():
    records = weir.execute(weir.load_scenario("exactly_once_crash"))
    assert records.true_event_time is None and records.payment_of is None
    windowed = weir.execute(weir.load_scenario("late_data_side_output"))
    assert windowed.true_event_time is not None and len(windowed.true_event_time) == windowed.scenario.workload.records
    payments = weir.execute(weir.load_scenario("dedup_ttl_too_short"))
    assert payments.payment_of is not None and weir.result_of(payments).matches
