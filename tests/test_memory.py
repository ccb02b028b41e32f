"""What keeps a run's memory down (issue 14, item 7; the numbers are in bench/memory.py): the
sink's table read a chunk at a time and sorted in numpy, the log read out once and let go, batches
that copy their rows, and arrays only the runs that read them keep."""

from __future__ import annotations

import sqlite3
from unittest import mock
from dataclasses import replace

import numpy as np
from hypothesis import example, given, settings, strategies as st

import weir
from weir.sim.kernel.batch import RecordBatch
from weir.sim.kafka.log import ABORTED, PartitionedLog
from weir.sim.patterns import sinks
from weir.sim.patterns.sinks import int_columns

ROWS = st.lists(st.tuples(st.integers(0, 30), st.integers(-5, 5), st.integers(-(2**62), 2**62)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(rows=ROWS, chunk=st.integers(1, 7), gone=st.sets(st.integers(1, 60), max_size=20))
def test_chunked_columns_sorted_in_numpy_are_what_sql_order_by_gives(rows, chunk, gone):
    """Read by rowid chunks, each column folded into a text numpy parses (weir.sim.patterns.sinks.int_columns),
    with gaps in the rowids where rows were deleted, and extreme values."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (a INTEGER, b INTEGER, c INTEGER)")
    db.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    db.executemany("DELETE FROM t WHERE rowid = ?", [(r,) for r in sorted(gone)])
    with mock.patch.object(sinks, "READ_CHUNK", chunk):
        got = int_columns(db, ("a", "b", "c"), ("a", "b", "c"), "t", sort_by=("a", "b"))
    # ties keep the table's (rowid) order, as a stable sort does
    want = db.execute("SELECT a, b, c FROM t ORDER BY a, b, rowid").fetchall()
    assert list(zip(*(got[n].tolist() for n in ("a", "b", "c")))) == want, f"chunk {chunk}"
    assert all(got[n].dtype == np.int64 for n in got)


@settings(max_examples=60, deadline=None)
@given(ids=st.sets(st.integers(0, 40), max_size=40), chunk=st.integers(1, 9), first=st.integers(-3, 3))
def test_a_rowid_column_is_its_chunk_range_where_no_row_is_missing(ids, chunk, first):
    """int_columns(rowid=...) does not read an INTEGER PRIMARY KEY where a chunk holds every rowid
    of its range (the upsert sink keyed by record id, read out): it is the range then. Where rows
    are missing it is read. Either way the column is the table's."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(first + i, 7 * i - 100) for i in sorted(ids)])
    with mock.patch.object(sinks, "READ_CHUNK", chunk):
        got = int_columns(db, ("id", "v"), ("id", "v"), "t", rowid="id")
    want = db.execute("SELECT id, v FROM t ORDER BY id").fetchall()
    assert list(zip(got["id"].tolist(), got["v"].tolist())) == want, f"chunk {chunk}"


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-3, 3), st.integers(-(2**62), 2**62), st.integers(-(2**62), 2**62)),
                     max_size=60, unique_by=lambda r: r[:2]),
       chunk=st.integers(1, 7), gone=st.sets(st.integers(-3, 3), max_size=3))
def test_a_without_rowid_table_is_read_in_chunks_by_its_key(rows, chunk, gone):
    """int_columns on a WITHOUT ROWID table (the windowed job's panes) reads it in ranges of its
    primary key (weir.sim.patterns.sinks.key_chunks): every row once, what SQL's ORDER BY gives,
    with keys of extreme values, ties in the key's first column across chunks, and rows deleted."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (a INTEGER, b INTEGER, c INTEGER, PRIMARY KEY (a, b)) WITHOUT ROWID")
    db.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    db.executemany("DELETE FROM t WHERE a = ?", [(a,) for a in sorted(gone)])
    with mock.patch.object(sinks, "READ_CHUNK", chunk):
        got = int_columns(db, ("c", "b", "a + 0"), ("c", "b", "a"), "t", sort_by=("a", "b"),
                          chunks=sinks.key_chunks(db, "t", ("a", "b")))
    want = db.execute("SELECT a, b, c FROM t ORDER BY a, b").fetchall()
    assert list(zip(*(got[n].tolist() for n in ("a", "b", "c")))) == want, f"chunk {chunk}"


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.lists(st.tuples(st.integers(0, 12), st.integers(-(2**62), 2**62), st.integers(0, 3)),
                                 max_size=50), max_size=4),
       chunk=st.integers(1, 9), step=st.integers(1, 6), exact=st.integers(0, 2))
@example(batches=[[(k % 4, k, 0) for k in range(n)] for n in (7, 5, 5, 20)], chunk=9, step=2, exact=1)  # splits
def test_multi_row_inserts_apply_rows_in_order_as_executemany_does(batches, chunk, step, exact):
    """weir.sim.patterns.sinks.insert_rows: an upsert of many rows per statement (conflicts within
    one statement included), in whatever shapes statement_rows splits the batches into, leaves the
    table executemany leaves."""
    with mock.patch.multiple(sinks, WRITE_CHUNK=chunk, SHAPE_STEP=step, EXACT_SHAPES=exact):
        tables = []
        for many in (False, True):
            db = sinks.memory_db() if many else sqlite3.connect(":memory:", isolation_level=None)
            db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER NOT NULL, w INTEGER NOT NULL)")
            upsert = " ON CONFLICT (k) DO UPDATE SET v = excluded.v, w = excluded.w"
            for rows in batches:
                if many:
                    if rows:
                        sinks.insert_atomically(db, "INSERT INTO t (k, v, w) VALUES", np.array(rows, dtype=np.int64),
                                                upsert)
                else:
                    db.executemany("INSERT INTO t (k, v, w) VALUES (?, ?, ?)" + upsert, rows)
            tables.append(db.execute("SELECT k, v, w FROM t ORDER BY k").fetchall())
        assert tables[0] == tables[1]


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(0, 5000), max_size=200), steady=st.integers(1, 5000))
@example(sizes=list(range(300)), steady=500)  # (more counts than the cache holds)
def test_a_statement_kind_is_written_in_a_bounded_set_of_shapes(sizes, steady):
    """statement_rows: every row goes in once, in order, at most WRITE_CHUNK a statement; however
    the batch sizes vary, one kind of statement takes at most 64 multiples of SHAPE_STEP, 31 counts
    below it and EXACT_SHAPES others (so SQLite's cache of 128 prepared statements holds them all);
    and batches of a steady size take one statement a chunk."""
    db = sinks.memory_db()
    shapes: set[int] = set()
    for n in sizes:
        counts = sinks.statement_rows(db, "INSERT INTO t VALUES", "", 3, n)
        assert sum(counts) == n and all(0 < c <= sinks.WRITE_CHUNK for c in counts), (n, counts)
        assert counts[:n // sinks.WRITE_CHUNK] == [sinks.WRITE_CHUNK] * (n // sinks.WRITE_CHUNK), (n, counts)
        shapes.update(counts)
    bound = sinks.WRITE_CHUNK // sinks.SHAPE_STEP + sinks.SHAPE_STEP - 1 + sinks.EXACT_SHAPES
    assert len(shapes) <= bound < 128, sorted(shapes)
    fresh = sinks.memory_db()
    for _ in range(3):
        assert len(sinks.statement_rows(fresh, "INSERT INTO t VALUES", "", 3, steady)) == -(-steady // sinks.WRITE_CHUNK)


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


@settings(max_examples=60, deadline=None)
@given(rooms=st.lists(st.integers(0, 6), min_size=1, max_size=4), data=st.data())
def test_a_log_that_fills_its_rooms_is_handed_over_and_reads_as_the_copy(rooms, data):
    """The partitions share one buffer per column, each its room after the one before's. Read out
    with release, a log whose every partition is exactly as long as its room hands the buffers
    over (no copy); any other (a partition short of its room, or grown past it) is copied out. The
    columns are the same either way, and the same as a log read out and kept."""
    sizes = [data.draw(st.integers(0, room + 2), label=f"partition {p}") for p, room in enumerate(rooms)]

    def filled() -> PartitionedLog:
        log = PartitionedLog(len(rooms), rooms)
        for p, n in enumerate(sizes):
            for first in range(0, n, 2):  # appends of two: a partition may outgrow its room midway
                ids = np.arange(100 * p + first, 100 * p + min(first + 2, n), dtype=np.int64)
                log.append(p, ids, ids % 7, ids * 10, ids + 1)
        return log

    kept, released = filled(), filled()
    buffers = dict(released._buffers)
    want, got = kept.contents(), released.contents(release=True)
    assert list(want) == list(got) and all(np.array_equal(want[c], got[c]) for c in want), (rooms, sizes)
    assert got["record_id"].tolist() == [100 * p + i for p, n in enumerate(sizes) for i in range(n)]
    handed = sizes == rooms
    assert all((got[c] is buffers[c]) == handed for c in buffers), (rooms, sizes)
    assert released.end_offsets() == [0] * len(rooms)


def test_only_the_runs_that_read_them_keep_true_event_times_and_payments():
    records = weir.execute(weir.load_scenario("exactly_once_crash"))
    assert records.true_event_time is None and records.payment_of is None
    windowed = weir.execute(weir.load_scenario("late_data_side_output"))
    assert windowed.true_event_time is not None and len(windowed.true_event_time) == windowed.scenario.workload.records
    payments = weir.execute(weir.load_scenario("dedup_ttl_too_short"))
    assert payments.payment_of is not None and weir.result_of(payments).matches


@settings(max_examples=80, deadline=None)
@given(flags=st.lists(st.booleans(), max_size=60), chunk=st.integers(1, 9))
def test_ids_where_flags_are_set_come_in_order_in_32_bits_a_chunk_at_a_time(flags, chunk):
    """weir.analysis.verdict.ids_where, which the checkers' tallies and wrong_values use: the ids
    np.flatnonzero gives, in int32 (4 bytes an id), found a chunk at a time (no int64 array first)."""
    from weir.analysis import verdict

    verdict.IDS_CHUNK, saved = chunk, verdict.IDS_CHUNK
    try:
        mask = np.array(flags, dtype=bool)
        got = verdict.ids_where(mask)
        assert got.dtype == np.int32 and got.tolist() == np.flatnonzero(mask).tolist(), (flags, chunk)
    finally:
        verdict.IDS_CHUNK = saved


def test_a_million_record_at_least_once_runs_checks_hold_ids_in_32_bits():
    """The checks' id arrays (the records in the source, the wrong values') are int32: what took
    the at_least_once_crash row of bench/memory.py from 102 to 93 bytes a record."""
    from weir.analysis.checkers import _tally
    from weir.analysis.oracles import wrong_values

    run = weir.execute(weir.load_scenario("at_least_once_crash"))
    src, copies, _ = _tally(run)
    wrong, first, _source = wrong_values(run)
    assert src.dtype == np.int32 and wrong.dtype == np.int32 and len(wrong) and first
    assert weir.result_of(run).matches


def test_the_producer_lets_go_of_the_workload_once_every_record_is_acknowledged(monkeypatch):
    """The workload's arrays (keys, values, delays: 24 bytes a record) go as soon as the producer is
    done, not when the run ends: the pipeline still works through the log (and replays it after
    a crash) without them. Results, payments included, are unchanged (the hash comparison and
    the payments scenario below)."""
    from weir.sim.kafka.producer import Producer

    released = []
    real = Producer.release

    def release(self):
        released.append((self.world.env.now, self.done, len(self.data.keys)))
        real(self)

    monkeypatch.setattr(Producer, "release", release)
    run = weir.execute(weir.load_scenario("at_least_once_crash"))
    first_at, done, held = released[0]
    assert done and held == run.scenario.workload.records and first_at < run.end_time, (released, run.end_time)
    assert weir.result_of(run).matches
    payments = weir.execute(weir.load_scenario("dedup_ttl_too_short"))
    assert weir.result_of(payments).matches


@settings(max_examples=80, deadline=None)
@given(ids=st.lists(st.integers(0, 40), max_size=70), data=st.data(), chunk=st.integers(1, 9))
def test_chunked_running_totals_and_once_flags_are_the_whole_array_answers(ids, data, chunk):
    """oracles.wrong_values sums each key's running total and finds the ids the log holds once a
    chunk at a time (so its working arrays stay small): the same as doing it over the whole log."""
    from weir.analysis import oracles
    keys = data.draw(st.lists(st.integers(0, 6), min_size=len(ids), max_size=len(ids)))
    values = data.draw(st.lists(st.integers(-(2**40), 2**40), min_size=len(ids), max_size=len(ids)))
    ids_a, keys_a, values_a = (np.array(ids, dtype=np.int32), np.array(keys, dtype=np.int32),
                               np.array(values, dtype=np.int64))
    saved, oracles.CHUNK = oracles.CHUNK, chunk
    try:
        totals = np.zeros(len(ids), dtype=np.int64)
        for rows, sums in oracles._running_totals(keys_a, values_a):
            totals[rows] = sums
        once = np.zeros(45, dtype=bool)
        oracles._once(ids_a, once)
    finally:
        oracles.CHUNK = saved
    want = [sum(v for k, v in zip(keys[: i + 1], values[: i + 1]) if k == keys[i]) for i in range(len(ids))]
    assert totals.tolist() == want, f"chunk {chunk}"
    assert once.tolist() == [ids.count(i) == 1 for i in range(45)], f"chunk {chunk}"


def test_a_run_holds_ids_keys_partitions_and_offsets_in_32_bits_and_batches_in_64():
    run = weir.execute(weir.load_scenario("at_least_once_crash"))
    for table in (run.source, run.sink):
        assert {c: table[c].dtype for c in ("record_id", "key", "partition", "offset")} == dict.fromkeys(
            ("record_id", "key", "partition", "offset"), np.dtype(np.int32))
        assert table["value"].dtype == np.int64
    assert run.source["event_time"].dtype == np.int64 and run.sink["written_at"].dtype == np.int64
    log = _log()
    assert log.read(0, 0, 3).record_id.dtype == np.int64 and log.read(0, 0, 3).key.dtype == np.int64


def test_checkers_judge_32_and_64_bit_columns_alike():
    """A hand-made run (or a user sink's contents) may give int64 columns: the verdicts are the same."""
    run = weir.execute(weir.load_scenario("at_least_once_crash"))
    wide = replace(run, source={c: v.astype(np.int64) if v.dtype == np.int32 else v for c, v in run.source.items()},
                   sink={c: v.astype(np.int64) for c, v in run.sink.items()})
    narrow, widened = weir.check(run), weir.check(wide)
    assert [(v.invariant, v.held, v.evidence) for v in narrow] == [(v.invariant, v.held, v.evidence) for v in widened]
    assert not {v.invariant: v for v in narrow}["exactly_once"].held  # a run that violates, so the evidence has ids


def test_an_append_sink_hands_out_columns_without_the_room_it_grew():
    sink = sinks.AppendSink(capacity=400)
    for first, n in ((0, 300), (300, 101)):  # 401 rows: the columns grow from 400 to 500
        ids = np.arange(first, first + n, dtype=np.int64)
        sink.write(RecordBatch(1, first, ids, ids % 7, ids, ids + 1), ids * 2, 7)
    rows = sink.contents()
    assert all(len(c.base if c.base is not None else c) == 401 for c in rows.values())  # no room behind the views
    assert rows["record_id"].tolist() == list(range(401)) and rows["record_id"].dtype == np.int32
    assert rows["offset"].tolist() == list(range(401)) and rows["written_at"].tolist() == [7] * 401


def _cyclic_garbage(name: str, records: int) -> int:
    """How many objects a run of `name` with `records` records leaves in reference cycles (which
    only the cyclic collector frees: all through a run, and at a cost that grows with the heap)."""
    import gc

    from weir.sim.scenario.run import execute

    base = weir.load_scenario(name)
    scenario = replace(base, workload=replace(base.workload, records=records))
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        execute(scenario)
        gc.collect()
        return len(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_a_run_makes_no_reference_cycles_that_grow_with_it():
    """A closure that names itself (a network delivery or a node's timer that re-arms itself while
    its node is paused) is a cycle per message: some 40 bytes a record for the collector to find,
    and a tenth of a windowed run's time. What is left in cycles is the run's own structure, the
    same at 2,000 records as at 20,000."""
    for name in ("exactly_once_crash", "hot_key_salted", "gc_pause_checkpoint_timeout"):
        small, big = _cyclic_garbage(name, 2_000), _cyclic_garbage(name, 20_000)
        assert big <= small + 200, f"{name}: {small} objects in cycles at 2,000 records, {big} at 20,000"
