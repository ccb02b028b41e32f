"""Sink tables: where the pipeline's output lands. Both kinds are durable.

- `AppendSink` writes every row it is given, like a file or an append-only table: a replayed batch
  becomes duplicate rows.
- `UpsertSink` runs real SQL on SQLite: `INSERT ... ON CONFLICT (dedup key) DO UPDATE`, the
  statement a user would write for an idempotent sink, so a replayed batch overwrites its own rows.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Iterator

import numpy as np

from weir.sim.kernel.batch import Column, RecordBatch, dtype_of
from weir.sim.stream.functions import Sink, TwoPhaseCommitSink
from weir.sim.stream.windows import Panes

__all__ = ["AppendSink", "UpsertSink", "TransactionalSink", "WindowResults", "make_sink", "memory_db",
           "SINK_COLUMNS", "DEDUP_COLUMNS"]

SINK_COLUMNS = ("record_id", "key", "partition", "offset", "value", "written_at")
SMALL_WRITE = 32  # rows: an append sink's write of at most this many waits in Python lists
FLUSH_ROWS = 1_024  # and these join its columns once they hold this many rows


class AppendSink(Sink):
    """An append-only table held as numpy columns (weir.sim.kernel.batch.dtype_of's dtypes).

    A write of at most SMALL_WRITE rows (a pipeline at batch size 1, say) waits in Python lists
    and joins the columns with the writes around it, FLUSH_ROWS rows at a time, or when the table
    is read: six slice assignments cost some 6 us whatever a write holds, a row's Python ints a
    tenth of that. Nothing reads the table but `contents`, and the rows keep the order written."""

    kind = "append"

    def __init__(self, capacity: int = 1024):
        self._cols = {name: Column(capacity, dtype_of(name)) for name in SINK_COLUMNS}
        self._small: tuple[list[int], ...] = tuple([] for _ in SINK_COLUMNS)  # rows not yet in the columns

    def write(self, batch: RecordBatch, value: np.ndarray, written_at: int) -> int:
        """Append the batch's rows; return how many rows already existed (always 0: append never checks)."""
        n = len(batch.record_id)
        if n <= SMALL_WRITE:
            ids, keys, partitions, offsets, values, times = self._small
            ids += batch.record_id.tolist()
            keys += batch.key.tolist()
            partitions += [batch.partition_id] * n
            if batch.offsets is None:
                offsets += range(batch.first_offset, batch.first_offset + n)
            else:
                offsets += batch.offsets.tolist()
            values += np.asarray(value, dtype=np.int64).tolist()  # (the column's cast, done here)
            times += [written_at] * n
            if len(ids) >= FLUSH_ROWS:
                self._flush()
            return 0
        if self._small[0]:
            self._flush()
        cols = self._cols
        cols["record_id"].extend(batch.record_id)
        cols["key"].extend(batch.key)
        cols["partition"].extend_with(n, batch.partition_id)
        cols["offset"].extend(batch.offset)
        cols["value"].extend(value)
        cols["written_at"].extend_with(n, written_at)
        return 0

    def _flush(self) -> None:
        """The small writes' rows into the columns: one numpy call a column."""
        for name, rows in zip(SINK_COLUMNS, self._small):
            self._cols[name].extend(np.array(rows, dtype=dtype_of(name)))
            rows.clear()

    def contents(self) -> dict[str, np.ndarray]:
        """The table's rows, in the order they were written: read-only views of the columns, each cut
        to its length first where it has much unused room (Column.shrink), so that the views do
        not keep it alive."""
        if self._small[0]:
            self._flush()
        for col in self._cols.values():
            col.shrink()
        return {name: col.view() for name, col in self._cols.items()}

    def close(self) -> None:
        pass


#: Columns an upsert sink's dedup key may use (event_date is the record's event time in whole days).
DEDUP_COLUMNS = ("record_id", "key", "partition", "offset", "event_time", "event_date", "written_at")
DAY_US = 86_400_000_000  # a day in microseconds: event_date is event_time // DAY_US
_UPSERT_COLUMNS = ("record_id", "key", "partition", '"offset"', "event_time", "event_date", "value", "written_at")


def _quoted(column: str) -> str:
    return '"offset"' if column == "offset" else column


#: SQLite's page size for weir's in-memory tables, in bytes. At SQLite's default (4 KiB) an
#: in-memory table's inserts slow as it grows past a million rows or so: the 3.6 million upserts of
#: `make bench`'s simulated hour took 1.0 s per 400,000 rows at first and 2.2 s at the end, 12 to 15 s
#: in all, where at 16 KiB they take 0.6 to 0.9 s per 400,000 all along, 6.6 to 7.8 s in all (the
#: cache size changes neither). Up to a million rows the two are alike; 64 KiB pages slowed the
#: two-phase-commit sink by a quarter.
PAGE_SIZE = 16_384


class Connection(sqlite3.Connection):
    """A connection that knows which row counts its multi-row statements have been written in
    (`shapes`, for statement_rows): SQLite prepares a statement once per text, and a multi-row
    VALUES list of n rows is a text of its own for each n."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.shapes: dict[tuple[str, str, int], set[int]] = {}  # (statement, suffix, width) -> row counts


def memory_db() -> Connection:
    """A fresh in-memory SQLite database in autocommit mode (weir opens its transactions itself),
    with PAGE_SIZE pages. Its durability is weir's to simulate: SQLite's own (journal, sync) is not
    needed, and an in-memory database keeps its journal in memory, so a rollback still works."""
    db = sqlite3.connect(":memory:", isolation_level=None, factory=Connection)
    db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    return db


#: Rows read from SQLite at a time (weir.sim.patterns.sinks.int_columns): a chunk's texts are garbage
#: once parsed, and at 65,536 rows they held some 11 bytes a record of a 1M run's peak; 8,192 as fast.
READ_CHUNK = 8192
#: Rows written by one statement at most: SQLite binds at most 32,766 values to a statement
WRITE_CHUNK = 2_048
#: Row counts that a statement kind (statement_rows) is written in, beyond the multiples of
#: SHAPE_STEP and the counts below it: the first EXACT_SHAPES counts it is given.
SHAPE_STEP = 32
EXACT_SHAPES = 16


Chunks = Iterator[tuple[str, tuple]]  # WHERE clauses and their parameters, a part of a table each


def rowid_chunks(db: sqlite3.Connection, table: str) -> Chunks:
    """A rowid table's rows READ_CHUNK rowids at a time (fewer rows where rowids were deleted)."""
    low, high = db.execute(f"SELECT min(rowid), max(rowid) FROM {table}").fetchone()
    if low is None:  # (empty)
        return
    for start in range(low, high + 1, READ_CHUNK):
        yield "rowid >= ? AND rowid < ?", (start, min(start + READ_CHUNK, high + 1))


def key_chunks(db: sqlite3.Connection, table: str, key: tuple[str, ...]) -> Chunks:
    """A WITHOUT ROWID table's rows (it has no rowid) READ_CHUNK at a time in the order of its
    primary key `key`: each chunk's last key is found by walking the key's b-tree (OFFSET), then
    the chunk is a range of it, read as rowid ranges are."""
    columns, marks = ", ".join(key), ", ".join("?" * len(key))
    after: tuple = ()
    while True:
        where = f"({columns}) > ({marks})" if after else "true"
        last = db.execute(f"SELECT {columns} FROM {table} WHERE {where} ORDER BY {columns} LIMIT 1 OFFSET ?",
                          (*after, READ_CHUNK - 1)).fetchone()
        if last is None:  # the rest is one chunk
            yield where, after
            return
        yield f"{where} AND ({columns}) <= ({marks})", (*after, *last)
        after = tuple(last)


def int_columns(db: sqlite3.Connection, columns: tuple[str, ...], names: tuple[str, ...], table: str,
                sort_by: tuple[str, ...] = (), chunks: Chunks | None = None, rows: int | None = None,
                rowid: str | None = None) -> dict[str, np.ndarray]:
    """The integer `columns` (SQL expressions) of every row of `table`, as arrays named `names`.

    Read a chunk at a time (READ_CHUNK rowids, or the `chunks` given, each in order, together
    every row once: key_chunks for a WITHOUT ROWID table): one query per chunk folds each column
    into a text (group_concat) that numpy parses, so no Python object is made per row or per
    value, and the columns of a chunk line up (one scan feeds every aggregate). `sort_by` orders
    the rows by those columns here, stably (ties stay in the order read), not in SQL (SQLite's
    sorter would hold a second copy of the table while it sorts). Each column in
    weir.sim.kernel.batch.dtype_of's dtype. `rows`: how many rows the chunks hold, if the caller
    knows (else count(*) counts). `rowid`: the name of a column that is the table's rowid (an
    INTEGER PRIMARY KEY), read in rowid chunks: a chunk that holds every rowid of its range has
    that range for the column, which is not read then (a sixth of an upsert sink's read-out)."""
    n = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] if rows is None else rows
    cols = [np.empty(n, dtype=dtype_of(name)) for name in names]
    skip = names.index(rowid) if rowid is not None and chunks is None else -1  # (a column of rowid ranges)
    folded = ", ".join(f"group_concat({c})" for i, c in enumerate(columns) if i != skip)
    done = 0
    for where, params in rowid_chunks(db, table) if chunks is None else chunks:
        count, *texts = db.execute(f"SELECT count(*), {folded} FROM {table} WHERE {where}", params).fetchone()
        if not count:  # (a gap in the rowids)
            continue
        if done + count > n:
            raise AssertionError(f"{table} holds more than the {n} rows it was said to")
        if skip >= 0:
            start, stop = params
            if count == stop - start:  # every rowid of the range: the column is the range
                cols[skip][done:done + count] = np.arange(start, stop)
            else:
                cols[skip][done:done + count] = np.fromstring(db.execute(
                    f"SELECT group_concat({columns[skip]}) FROM {table} WHERE {where}", params).fetchone()[0],
                    dtype=np.int64, sep=",")
        for col, text in zip((c for i, c in enumerate(cols) if i != skip), texts):
            col[done:done + count] = np.fromstring(text, dtype=np.int64, sep=",")
        done += count
    if done != n:
        raise AssertionError(f"{table} holds {done} rows, not the {n} it was said to")
    out = dict(zip(names, cols))
    del cols  # `out` is all that holds them: a column replaced below is freed at once
    if sort_by:
        order = np.lexsort(tuple(out[name] for name in reversed(sort_by)))
        for name in out:  # one column at a time: one column's worth of extra memory
            out[name] = out[name][order]
    return out


def statement_rows(db: sqlite3.Connection, statement: str, suffix: str, width: int, n: int) -> list[int]:
    """How many rows each statement writes when `n` rows of `width` values go in by `statement`
    (then `suffix`), in order: WRITE_CHUNK at a time, and the rest in one statement if its count
    is a shape of this kind, else in two: the largest multiple of SHAPE_STEP, then what is left.

    A multi-row statement of k rows is a text of its own, which SQLite parses and plans once and
    then keeps in the connection's statement cache (128 statements, the least recently used
    dropped). Preparing it costs some four times what running it does. Batches whose sizes vary
    (a consumer that keeps up fetches what arrived since its last poll) gave 179 sizes in
    `make bench`'s simulated hour: one write in ten prepared its statement again, and the cache
    held up to 128 statements of some 150 KB each. Shapes are bounded here: a kind is written in
    at most 64 multiples of SHAPE_STEP, 31 counts below it and the first EXACT_SHAPES other
    counts it is given (so steady batches, all of one size, still take one statement).
    `db` is a Connection (memory_db); any other connection writes every count in one statement."""
    counts = [WRITE_CHUNK] * (n // WRITE_CHUNK)
    rest = n - WRITE_CHUNK * len(counts)
    if not rest:
        return counts
    shapes = getattr(db, "shapes", None)
    if shapes is None or rest < SHAPE_STEP or rest % SHAPE_STEP == 0:
        return counts + [rest]
    exact = shapes.setdefault((statement, suffix, width), set())
    if rest in exact or len(exact) < EXACT_SHAPES:
        exact.add(rest)
        return counts + [rest]
    return counts + [rest - rest % SHAPE_STEP, rest % SHAPE_STEP]


def _statement_parts(db: sqlite3.Connection, statement: str, suffix: str, width: int, rows,
                     counts: list[int] | None = None):
    """`rows` (an array or a list) cut as statement_rows says (or as `counts` says, where the
    caller asked it already): (row count, rows) per statement, in order."""
    at = 0
    for count in statement_rows(db, statement, suffix, width, len(rows)) if counts is None else counts:
        yield count, rows[at:at + count]
        at += count


def insert_rows(db: sqlite3.Connection, statement: str, rows: np.ndarray, suffix: str = "",
                constants: tuple = (), counts: list[int] | None = None) -> None:
    """`statement` ('INSERT INTO t (...) VALUES') for each row of the 2-D integer array `rows`, a
    multi-row VALUES list at a time (statement_rows: then `suffix`, an ON CONFLICT clause): the
    rows are applied in order, as many single-row statements would be, at half the cost of
    executemany. `constants` are bound ahead of each statement's rows (to parameters `statement`
    holds itself). `counts`: statement_rows's answer for these rows, if the caller has it."""
    width = rows.shape[1]
    for count, part in _statement_parts(db, statement, suffix, width, rows, counts):
        values = part.ravel().tolist()
        db.execute(_values(statement, width, count, suffix), [*constants, *values] if constants else values)


def insert_atomically(db: sqlite3.Connection, statement: str, rows: np.ndarray, suffix: str = "") -> None:
    """insert_rows, all or nothing: in a transaction if it takes more than one statement (a single
    statement is atomic on its own, and BEGIN and COMMIT cost two more)."""
    counts = statement_rows(db, statement, suffix, rows.shape[1], len(rows))
    if len(counts) <= 1:
        insert_rows(db, statement, rows, suffix, counts=counts)
        return
    db.execute("BEGIN")
    insert_rows(db, statement, rows, suffix, counts=counts)
    db.execute("COMMIT")


def insert_tuples(db: sqlite3.Connection, statement: str, rows: list[tuple], suffix: str = "",
                  counts: list[int] | None = None) -> None:
    """insert_rows for rows that are tuples of any SQL values (all of one width)."""
    if not rows:
        return
    width = len(rows[0])
    for count, part in _statement_parts(db, statement, suffix, width, rows, counts):
        db.execute(_values(statement, width, count, suffix), list(itertools.chain.from_iterable(part)))


@functools.lru_cache(maxsize=256)  # (statement_rows bounds the shapes of each kind)
def _values(statement: str, width: int, rows: int, suffix: str) -> str:
    """`statement` with a VALUES list of `rows` rows of `width` parameters, then `suffix`."""
    one = "(" + ", ".join("?" * width) + ")"
    return f"{statement} {', '.join([one] * rows)}{suffix}"


class UpsertSink(Sink):
    """An idempotent table on SQLite: `INSERT ... ON CONFLICT (dedup key) DO UPDATE`.

    The dedup key is one or more columns (`pipeline.dedup_key`, by default the record id; e.g.
    `["record_id", "event_date"]` for the seed's `transaction_id, event_date`); it is the table's
    UNIQUE constraint and the statement's conflict target, so the statement a user would write is
    the one that runs. A replayed record overwrites its own row; a key that does not identify a
    record overwrites other records' rows.
    """

    kind = "upsert"

    def __init__(self, capacity: int = 1024, dedup_key: tuple[str, ...] = ("record_id",)):
        self.dedup_key = tuple(dedup_key)
        key = ", ".join(_quoted(c) for c in self.dedup_key)
        self._db = memory_db()
        # keyed by record id alone, the key is the rowid (INTEGER PRIMARY KEY): no second index to keep
        by_record = self.dedup_key == ("record_id",)
        # event time and date are kept only where the key needs them: nothing reads them back, and
        # they are some 7 of a row's 30-odd bytes in SQLite's pages (a million-record run holds them all)
        self._times = [c for c in ("event_time", "event_date") if c in self.dedup_key]
        columns = [c for c in _UPSERT_COLUMNS if c not in ("event_time", "event_date") or c in self._times]
        self._db.execute(
            f"CREATE TABLE sink (record_id INTEGER {'PRIMARY KEY' if by_record else 'NOT NULL'}, "
            + ", ".join(f"{c} INTEGER NOT NULL" for c in columns[1:])
            + ("" if by_record else f", UNIQUE ({key})") + ")")
        others = [c for c in columns if c not in {_quoted(k) for k in self.dedup_key}]
        self._insert = f"INSERT INTO sink ({', '.join(columns)}) VALUES"
        self._upsert = f" ON CONFLICT ({key}) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in others)
        self._by_record = self.dedup_key == ("record_id",)
        # Which record ids the sink was handed (the table is the truth; this is bookkeeping): keyed
        # by record id, a record handed again is a rewrite of its own row (SQLite's count(*) is a
        # full scan, too slow to ask on every batch); keyed otherwise, what tells a replay (a record
        # written again) from a merge (another record's row overwritten), `records_written`.
        self._written = np.zeros(max(capacity, 16), dtype=bool)
        self._rows = 0

    def write(self, batch: RecordBatch, value: np.ndarray, written_at: int) -> int:
        """Upsert the batch's rows in one transaction; return how many rows already existed."""
        n = len(batch)
        rows = np.empty((n, 6 + len(self._times)), dtype=np.int64)
        rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3] = batch.record_id, batch.key, batch.partition_id, batch.offset
        for i, c in enumerate(self._times):  # (only where the dedup key uses them)
            rows[:, 4 + i] = batch.event_time if c == "event_time" else batch.event_time // DAY_US
        rows[:, -2], rows[:, -1] = value, written_at
        db = self._db
        insert_atomically(db, self._insert, rows, self._upsert)
        top = int(batch.record_id.max()) + 1 if n else 0
        if top > len(self._written):
            self._written = np.concatenate([self._written, np.zeros(max(top, 2 * len(self._written)) - len(self._written), bool)])
        if not self._by_record:  # another key: count the table (a scan) to know what was new
            self._written[batch.record_id] = True
            rows_now = db.execute("SELECT count(*) FROM sink").fetchone()[0]
            rewritten, self._rows = n - (rows_now - self._rows), rows_now
            return rewritten
        rewritten = int(self._written[batch.record_id].sum())
        self._written[batch.record_id] = True
        return rewritten

    def records_written(self) -> int:
        """How many distinct records the sink was handed: its writes beyond these were replays (a
        record written again); these beyond its rows were merged into other records' rows (a dedup
        key that two records share)."""
        return int(self._written.sum())

    def contents(self) -> dict[str, np.ndarray]:
        """The table's rows, by record id."""
        columns = tuple(_quoted(c) for c in SINK_COLUMNS)
        if self._by_record:  # the record id is the rowid: the table's own order
            return int_columns(self._db, columns, SINK_COLUMNS, "sink", rowid="record_id")
        return int_columns(self._db, columns, SINK_COLUMNS, "sink", sort_by=("record_id", "written_at"))

    def close(self) -> None:
        self._db.close()


def make_sink(kind: str, capacity: int = 1024, dedup_key: tuple[str, ...] = ("record_id",)) -> Sink:
    if kind == "upsert":
        return UpsertSink(capacity, dedup_key)
    return {"append": AppendSink, "transactional": TransactionalSink}[kind](capacity)


#: The pane table's key leads with the window, so that panes, which fire in time order, are
#: appended to it rather than spread through it (a third of the cost of writing them); the
#: upsert's conflict target names the same columns (SQLite matches them as a set). The table is
#: WITHOUT ROWID: its rows live in its key's b-tree, where a rowid table keeps the key in an index
#: beside its rows, and an upsert seeks that index before it writes both (2.5 times the cost of
#: writing panes, as the table was until 2026-12)
_RESULTS_DDL = (
    """CREATE TABLE window_results (
        key INTEGER NOT NULL, window_start INTEGER NOT NULL, window_end INTEGER NOT NULL,
        pane_index INTEGER NOT NULL, timing TEXT NOT NULL, is_last INTEGER NOT NULL,
        value INTEGER, count INTEGER NOT NULL, watermark INTEGER NOT NULL, written_at INTEGER NOT NULL,
        subtask INTEGER NOT NULL,
        PRIMARY KEY (window_start, window_end, key, subtask, pane_index)) WITHOUT ROWID""",
    """CREATE TABLE late_records (
        record_id INTEGER PRIMARY KEY, key INTEGER NOT NULL, event_time INTEGER NOT NULL,
        value INTEGER NOT NULL, watermark INTEGER NOT NULL, written_at INTEGER NOT NULL)""",
)
_PANE_KEY = ("window_start", "window_end", "key", "subtask", "pane_index")
_PANE_CONFLICT = """
ON CONFLICT (key, window_start, window_end, subtask, pane_index) DO UPDATE SET
    timing = excluded.timing, is_last = excluded.is_last, value = excluded.value, count = excluded.count,
    watermark = excluded.watermark, written_at = excluded.written_at
"""
_LATE_CONFLICT = """
ON CONFLICT (record_id) DO UPDATE SET watermark = excluded.watermark, written_at = excluded.written_at
"""
_RESULTS_STAGING_DDL = (
    "CREATE TABLE panes_staging (txn INTEGER NOT NULL, key, window_start, window_end, pane_index, timing, is_last, "
    "value, count, watermark, written_at, subtask)",
    "CREATE TABLE late_staging (txn INTEGER NOT NULL, record_id, key, event_time, value, watermark, written_at)",
)
TIMINGS = ("EARLY", "ON_TIME", "LATE")
#: a PaneBlock's rows: ON_TIME panes of one window (index 0), its constants bound once ahead of the
#: (key, value, count) rows, which the SELECT spreads over the table's columns (WHERE true: SQLite's
#: parser needs it before an upsert clause on INSERT ... SELECT); by txn staged, or not
_BLOCK_INSERT = {
    True: "INSERT INTO window_results SELECT column1, ?, ?, 0, 'ON_TIME', ?, column2, column3, ?, ?, ? FROM (VALUES",
    False: "INSERT INTO panes_staging SELECT ?, column1, ?, ?, 0, 'ON_TIME', ?, column2, column3, ?, ?, ? FROM (VALUES",
}
WINDOW_COLUMNS = ("key", "window_start", "window_end", "pane_index", "timing", "is_last", "value", "count",
                  "watermark", "written_at", "subtask")
LATE_COLUMNS = ("record_id", "key", "event_time", "value", "watermark", "written_at")


_PROTOCOL_DDL = (
    # every transaction opened, by the sink subtask that opened it: what a restore may have to abort
    "CREATE TABLE txns (txn INTEGER PRIMARY KEY, subtask INTEGER NOT NULL, state TEXT NOT NULL)",
    "CREATE TABLE commit_log (txn INTEGER PRIMARY KEY, rows INTEGER NOT NULL)",
)


class _TwoPhaseTables:
    """Weir's two-phase-commit steps (weir.TwoPhaseCommitSink) on SQLite tables, shared by the
    stores written through transactions.

    A subclass names its staging tables and publishes a transaction's staged rows in `_publish`
    (then they leave the staging tables), or overrides `_discard` and `staged_rows` where
    publishing leaves the rows where they are. This class registers each transaction with the
    subtask that opened it (`txns`), makes a commit atomic and idempotent (recorded in
    `commit_log`, in the spirit of Delta Lake's `_delta_log`), aborts by discarding staged rows,
    and on recovery aborts what a subtask left open before its crash (`finish_recovering`, as
    Flink's Kafka sink aborts lingering transactions).
    """

    _db: sqlite3.Connection
    _staging: tuple[str, ...] = ()

    def _publish(self, txn: int) -> int:
        """Make transaction `txn`'s staged rows visible (they are staged no more); return how many."""
        raise NotImplementedError

    def _discard(self, txn: int) -> None:
        """Delete transaction `txn`'s staged rows, which were never published."""
        for table in self._staging:
            self._db.execute(f"DELETE FROM {table} WHERE txn = ?", (txn,))

    def begin_transaction(self, subtask: int, txn_id: int) -> int:
        self._db.execute("INSERT INTO txns VALUES (?, ?, 'open')", (txn_id, subtask))
        return txn_id

    def pre_commit(self, txn: int) -> None:
        """Nothing to flush: every write is durable in staging when it returns."""

    def commit(self, txn: int) -> bool:
        """Publish a transaction atomically; False if it was committed before (idempotent)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        if db.execute("SELECT 1 FROM commit_log WHERE txn = ?", (txn,)).fetchone():
            db.execute("COMMIT")
            return False
        moved = self._publish(txn)
        db.execute("INSERT INTO commit_log VALUES (?, ?)", (txn, moved))
        db.execute("UPDATE txns SET state = 'committed' WHERE txn = ?", (txn,))
        db.execute("COMMIT")
        return True

    def abort(self, txn: int) -> None:
        """Delete a transaction's staged rows (nothing, if it committed)."""
        db = self._db
        db.execute("BEGIN")
        self._discard(txn)
        db.execute("UPDATE txns SET state = 'aborted' WHERE txn = ? AND state = 'open'", (txn,))
        db.execute("COMMIT")

    def recover_and_commit(self, txn: int) -> bool:
        return self.commit(txn)

    def recover_and_abort(self, txn: int) -> None:
        self.abort(txn)

    def finish_recovering(self, subtask: int, handled: list) -> int:
        """Abort every transaction `subtask` opened that is still open and was not just handled:
        what its crashed attempt pre-committed for checkpoints that never completed, and the one
        it had open. Return how many."""
        done = set(handled)
        lingering = [t for (t,) in self._db.execute(
            "SELECT txn FROM txns WHERE subtask = ? AND state = 'open' ORDER BY txn", (subtask,)) if t not in done]
        for t in lingering:
            self.abort(t)
        return len(lingering)

    def staged_rows(self) -> int:
        return sum(self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in self._staging)

    def committed(self) -> list[int]:
        return [t for (t,) in self._db.execute("SELECT txn FROM commit_log ORDER BY txn")]


class WindowResults(_TwoPhaseTables):
    """Where a windowed job writes: panes by (key, window, subtask, pane index), late records by id. SQLite.

    Each processor subtask writes its own panes (`subtask`): without key salting a key lives on one
    subtask only; with it, a key's records are spread over several, and each writes a partial
    result for the window. `merged()` is the second phase of that two-phase aggregation: the SQL
    that combines the partials into one result per key and window.

    Both tables are upserted, so a pane or a late record written again after a restore replaces
    its own row. With the transactional sink the writes are staged under a transaction and
    published at once when their checkpoint completes (as TransactionalSink does for records), so
    panes from after the restored checkpoint are aborted, never left behind.
    """

    def __init__(self) -> None:
        self._db = memory_db()
        for ddl in _RESULTS_DDL + _RESULTS_STAGING_DDL + _PROTOCOL_DDL:
            self._db.execute(ddl)

    def write(self, panes, late, written_at: int, txn: int | None = None, subtask: int = 0) -> None:
        """Upsert panes (from processor `subtask`) and late records; stage them under `txn` instead, if given.

        `panes` is a sequence of Pane objects, or a weir.sim.stream.windows.Panes, whose blocks (the
        columnar store's firings: one window each) are written as columns: a row's constants bound
        once, three values per pane."""
        if not panes and not late:  # (most of a windowed job's writes: a batch that fired nothing)
            return
        db = self._db
        objects, blocks = (panes.objects, panes.blocks) if isinstance(panes, Panes) else (panes, ())
        staged = () if txn is None else (txn,)
        pane_rows = [(*staged, p.key, p.window.start, p.window.end, p.index, p.timing.value, int(p.is_last), p.value,
                      p.count, p.watermark, written_at, subtask) for p in objects]
        late_rows = [(*staged, e.ref, e.key, e.timestamp, e.value, e.watermark, written_at) for e in late]
        panes_into, late_into = ("window_results", "late_records") if txn is None else ("panes_staging", "late_staging")
        pane_conflict, late_conflict = (_PANE_CONFLICT, _LATE_CONFLICT) if txn is None else ("", "")
        block_insert, block_suffix = _BLOCK_INSERT[txn is None], ") WHERE true" + pane_conflict
        # multi-row statements per table and block (statement_rows); a single statement is atomic on its own
        pane_insert, late_insert = f"INSERT INTO {panes_into} VALUES", f"INSERT INTO {late_into} VALUES"
        pane_counts, late_counts = (statement_rows(db, statement, suffix, len(rows[0]), len(rows)) if rows else []
                                    for statement, suffix, rows in ((pane_insert, pane_conflict, pane_rows),
                                                                    (late_insert, late_conflict, late_rows)))
        block_counts = [statement_rows(db, block_insert, block_suffix, 3, len(block)) for block in blocks]
        statements = len(pane_counts) + len(late_counts) + sum(map(len, block_counts))
        if statements > 1:
            db.execute("BEGIN")
        insert_tuples(db, pane_insert, pane_rows, pane_conflict, pane_counts)
        for block, counts in zip(blocks, block_counts):
            window = block.window
            constants = (*staged, window.start, window.end, int(block.is_last), block.watermark, written_at, subtask)
            insert_rows(db, block_insert, np.column_stack((block.keys, block.values, block.counts)), block_suffix,
                        constants, counts)
        insert_tuples(db, late_insert, late_rows, late_conflict, late_counts)
        if statements > 1:
            db.execute("COMMIT")

    _staging = ("panes_staging", "late_staging")

    def _publish(self, txn: int) -> int:
        db = self._db
        panes = db.execute("INSERT INTO window_results SELECT key, window_start, window_end, pane_index, timing, "
                           "is_last, value, count, watermark, written_at, subtask FROM panes_staging WHERE txn = ? ORDER BY rowid"
                           + _PANE_CONFLICT, (txn,)).rowcount
        db.execute("INSERT INTO late_records SELECT record_id, key, event_time, value, watermark, written_at "
                   "FROM late_staging WHERE txn = ? ORDER BY rowid" + _LATE_CONFLICT, (txn,))
        self._discard(txn)  # (moved: staged no more)
        return panes

    def _columns(self, sql: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        rows = self._db.execute(sql).fetchall()
        cols = list(zip(*rows)) if rows else [()] * len(names)
        out = {}
        for name, col in zip(names, cols):
            if name == "timing":
                out[name] = np.array([TIMINGS.index(t) for t in col], dtype=np.int64)
            else:
                out[name] = np.array([0 if v is None else v for v in col], dtype=np.int64)
        return out

    def contents(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(panes, late records) as numpy int64 columns; timing coded as an index into TIMINGS. Read
        as int_columns reads (no Python object per value), ordered as the primary keys order them."""
        timing = "CASE timing " + " ".join(f"WHEN '{t}' THEN {i}" for i, t in enumerate(TIMINGS)) + " END"
        expressions = {"timing": timing, "value": "IFNULL(value, 0)"}
        panes = int_columns(self._db, tuple(expressions.get(c, c) for c in WINDOW_COLUMNS), WINDOW_COLUMNS,
                            "window_results", sort_by=("key", "window_start", "window_end", "subtask", "pane_index"),
                            chunks=key_chunks(self._db, "window_results", _PANE_KEY))
        late = int_columns(self._db, LATE_COLUMNS, LATE_COLUMNS, "late_records", sort_by=("record_id",))
        # int_columns keeps ids and keys as int32 (what a run's sink holds); the pane tables stay int64
        return ({name: col.astype(np.int64, copy=False) for name, col in panes.items()},
                {name: col.astype(np.int64, copy=False) for name, col in late.items()})

    def merged(self, aggregate: str, accumulating: bool = False) -> dict[str, np.ndarray]:
        """Phase two: one result per (key, window), combining the subtasks' partial panes in SQL.

        Discarding panes add up (a subtask's panes are increments); accumulating panes each hold
        everything so far, so the subtask's latest one stands for it. Columns: key, window_start,
        window_end, value, count. `aggregate` is count, sum, min or max.
        """
        combine = {"count": "SUM", "sum": "SUM", "min": "MIN", "max": "MAX"}[aggregate]
        panes = "window_results WHERE count > 0"
        if accumulating:
            panes = ("(SELECT *, ROW_NUMBER() OVER (PARTITION BY key, window_start, window_end, subtask "
                     "ORDER BY written_at DESC, pane_index DESC) AS newest FROM window_results WHERE count > 0) "
                     "WHERE newest = 1")
        sql = (f"SELECT key, window_start, window_end, {combine}(value), SUM(count) FROM {panes} "
               "GROUP BY key, window_start, window_end ORDER BY key, window_start, window_end")
        return self._columns(sql, ("key", "window_start", "window_end", "value", "count"))

    def close(self) -> None:
        self._db.close()


_TXN_DDL = (
    # the rows as written, by transaction, in the order written (seq: the sink's count of rows so far)
    """CREATE TABLE staged (
        txn INTEGER NOT NULL, seq INTEGER NOT NULL, record_id INTEGER NOT NULL, key INTEGER NOT NULL,
        partition INTEGER NOT NULL, "offset" INTEGER NOT NULL, value INTEGER NOT NULL, written_at INTEGER NOT NULL,
        PRIMARY KEY (txn, seq)) WITHOUT ROWID""",
    # what each commit published: its transaction's rows written before it (seq below through_seq)
    "CREATE TABLE published (txn INTEGER PRIMARY KEY, through_seq INTEGER NOT NULL)",
    """CREATE VIEW published_rows AS SELECT s.* FROM staged s JOIN published p ON p.txn = s.txn
        WHERE s.seq < p.through_seq""",
    # the table a reader reads: the published rows
    """CREATE VIEW sink AS SELECT record_id, key, partition, "offset", value, written_at, txn
        FROM published_rows""",
)


class TransactionalSink(_TwoPhaseTables, TwoPhaseCommitSink):
    """A table written through transactions that become visible at once, on SQLite.

    Rows are written under a transaction id, invisible to readers (`staged`). Committing a
    transaction publishes the rows it holds and records it in a commit log, in one SQLite
    transaction: it happens whole or not at all, and committing it again does nothing (the log
    says it is done). As in Delta Lake, where a commit is an entry in `_delta_log` naming data
    files already written, a commit writes no row again: readers read the view `sink`, the rows
    of the published transactions (rows written under a transaction after its commit stay
    unpublished). Aborting deletes a transaction's unpublished rows. It is a
    weir.TwoPhaseCommitSink, driven like any user's: pre-commit on a barrier, commit when the
    checkpoint completes, recover-and-commit and abort-the-rest on restore.

    (Until 2026-12 a commit copied its rows from a staging table into the table and deleted
    them from staging: each row written three times, and an index on the staging table's
    transaction kept up besides.)
    """

    kind = "transactional"

    def __init__(self, capacity: int = 1024):
        self._db = memory_db()
        for ddl in _TXN_DDL + _PROTOCOL_DDL:
            self._db.execute(ddl)
        self._seq = 0  # rows written so far: the next row's seq

    def write(self, batch: RecordBatch, value: np.ndarray, written_at: int, txn: int = 0) -> int:
        """Stage the batch's rows under transaction `txn` (invisible until it commits)."""
        n = len(batch)
        rows = np.empty((n, 8), dtype=np.int64)
        rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3] = txn, np.arange(self._seq, self._seq + n), batch.record_id, batch.key
        rows[:, 4], rows[:, 5], rows[:, 6], rows[:, 7] = batch.partition_id, batch.offset, value, written_at
        insert_atomically(self._db, "INSERT INTO staged VALUES", rows)
        self._seq += n  # (after the insert: one that raised wrote nothing)
        return 0

    def _publish(self, txn: int) -> int:
        db = self._db
        db.execute("INSERT INTO published VALUES (?, ?)", (txn, self._seq))
        return db.execute("SELECT count(*) FROM staged WHERE txn = ?", (txn,)).fetchone()[0]

    def _discard(self, txn: int) -> None:
        self._db.execute("DELETE FROM staged WHERE txn = ? AND seq >= "
                         "IFNULL((SELECT through_seq FROM published WHERE txn = ?), 0)", (txn, txn))

    def staged_rows(self) -> int:
        db = self._db
        return (db.execute("SELECT count(*) FROM staged").fetchone()[0]
                - db.execute("SELECT count(*) FROM published_rows").fetchone()[0])

    def contents(self) -> dict[str, np.ndarray]:
        """The committed table's rows (what a reader sees), by record id; of one record, by
        transaction, and in one transaction in the order written. The chunks come by transaction,
        each in the order written, so a stable sort by record id alone gives that order: the
        transaction is not read (it was, to sort by: 8 bytes a row more at the read-out's peak)."""
        db = self._db
        return int_columns(db, tuple(_quoted(c) for c in SINK_COLUMNS), SINK_COLUMNS, "staged", sort_by=("record_id",),
                           chunks=self._published_chunks(),
                           rows=db.execute("SELECT IFNULL(sum(rows), 0) FROM commit_log").fetchone()[0])

    def _published_chunks(self) -> Chunks:
        """The published rows (`published_rows`, without a join per row): each published
        transaction's rows written before its commit, READ_CHUNK seqs at a time, in the key's order."""
        db = self._db
        for txn, first, through in db.execute(
                "SELECT txn, (SELECT min(seq) FROM staged s WHERE s.txn = p.txn), through_seq FROM published p "
                "ORDER BY txn").fetchall():
            for start in range(through if first is None else first, through, READ_CHUNK):
                yield "txn = ? AND seq >= ? AND seq < ?", (txn, start, min(start + READ_CHUNK, through))

    def close(self) -> None:
        self._db.close()
