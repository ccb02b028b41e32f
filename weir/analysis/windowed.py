"""Checkers for windowed jobs: results against a batch oracle, and late records.

`window_complete` recomputes every window as a batch job would, over every record in the source
log (late or not; with ingestion time, at the time the source stamped on it), and compares it with
what the job wrote. A bounded source ends its input with the MAX watermark, so a drained run with
one is judged on every window. Otherwise (an unbounded source, `pipeline.bounded = false`, or a run
that did not drain) it judges each window the data has closed:
those whose max_ts is at or below the closing watermark, the latest event time in the log minus
the watermark bound minus 1, less one window (the size, or a session's gap) of slack, because the
partitions' last records differ by a little and the last window may rightly still be open. A
silent partition does not hold this watermark back: that is the point, a stall shows up as closed
windows that never fired. A window the job never fired is "missing"; one whose result differs is
"wrong" (late records dropped, state lost in a failover, ...). Windows still open are reported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np


from weir.sim.kafka.producer import NOT_STAMPED  # a record never stamped: int64's minimum (a negative stamp is a stamp)
from weir.sim.kernel.units import format_duration

from weir.analysis.memo import once_per_check
from weir.analysis.verdict import SHOW_IDS, Verdict

__all__ = ["window_complete", "event_time_complete", "no_late_records", "batch_windows", "job_windows",
           "closing_watermark", "NOT_STAMPED", "WindowTable"]

MIN_TIME = -(2**63)


class WindowTable(Mapping):
    """(key, start, end) -> (value, count), held as int64 columns sorted by key, start and end, one
    row per window: what the vectorised batch and job computations give. It reads as the dict the
    others give (made on first use, in the same order); the checkers compare columns instead."""

    __slots__ = ("key", "start", "end", "value", "count", "_dict", "_found")

    def __init__(self, key: np.ndarray, start: np.ndarray, end: np.ndarray, value: np.ndarray, count: np.ndarray):
        self.key, self.start, self.end, self.value, self.count = key, start, end, value, count
        self._dict: dict[tuple[int, int, int], tuple[Any, int]] | None = None
        self._found: tuple[WindowTable, np.ndarray] | None = None  # the last find(), kept: checkers repeat it

    def _as_dict(self) -> dict[tuple[int, int, int], tuple[Any, int]]:
        if self._dict is None:
            self._dict = {(k, s, e): (v, c) for k, s, e, v, c in zip(
                self.key.tolist(), self.start.tolist(), self.end.tolist(), self.value.tolist(), self.count.tolist())}
        return self._dict

    def __getitem__(self, window: tuple[int, int, int]) -> tuple[Any, int]:
        return self._as_dict()[window]

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        return iter(self._as_dict())

    def __len__(self) -> int:
        return len(self.key)

    def __contains__(self, window: object) -> bool:
        return window in self._as_dict()

    def find(self, other: WindowTable) -> np.ndarray:
        """For each of `other`'s windows, its row here, or -1 where this table has no such window:
        both tables sorted together (this one's row first on a tie), each of `other`'s rows
        matched with the row just before it."""
        if self._found is not None and self._found[0] is other:
            return self._found[1]
        n = len(self.key)
        key, start, end = (np.concatenate([a, b]) for a, b in
                           ((self.key, other.key), (self.start, other.start), (self.end, other.end)))
        mine = np.zeros(len(key), dtype=np.int8)
        mine[n:] = 1
        order = np.lexsort((mine, end, start, key))
        place = np.empty(len(order), dtype=np.int64)
        place[order] = np.arange(len(order))
        before = order[np.maximum(place[n:] - 1, 0)]
        hit = ((place[n:] > 0) & (before < n) & (key[before] == other.key) & (start[before] == other.start)
               & (end[before] == other.end))
        found = np.where(hit, before, -1)
        found.flags.writeable = False
        self._found = (other, found)
        return found

    def compare(self, other: WindowTable) -> tuple[np.ndarray, np.ndarray]:
        """For each of `other`'s windows: whether this table has it, and whether its value here differs."""
        at = self.find(other)
        found = at >= 0
        differs = np.zeros(len(at), dtype=bool)
        differs[found] = self.value[at[found]] != other.value[found]
        return found, differs

    def windows(self, rows: np.ndarray) -> list[tuple[int, int, int]]:
        """The windows of the rows where `rows` (a mask) is set, in order."""
        return list(zip(self.key[rows].tolist(), self.start[rows].tolist(), self.end[rows].tolist()))


def event_times(run: Any, true_time: bool = False):
    """Each source record's event time: from the log, or with ingestion time the source's stamp
    (the latest, if it read the record more than once; NOT_STAMPED for a record it never read).
    With `true_time`, when the event truly happened (the producer's intent, whatever its clock
    or the source's stamp said)."""
    if true_time:
        return np.asarray(run.true_event_time)[run.source["record_id"]]
    stamped = getattr(run, "ingested_at", None)
    if stamped is None:
        return run.source["event_time"]
    return stamped[run.source["record_id"]]


MAX_TIME = 2**63 - 1


def ended_input(run: Any) -> bool:
    """Whether the run reached the end of its input: a bounded source (pipeline.bounded, the
    default) and a drained run, whose sources sent the end-of-input watermark. Then every window
    should have fired."""
    return run.status == "drained" and getattr(run.scenario.pipeline, "bounded", True)


def closing_watermark(run: Any, true_time: bool = False) -> int:
    """The watermark the data closes windows up to (see the module docstring): at the end of
    input every window (MAX_TIME), else what the data's event times close."""
    if ended_input(run):
        return MAX_TIME
    times = event_times(run, true_time)
    times = times[times != NOT_STAMPED]
    if not len(times):
        return MIN_TIME
    windows = run.scenario.window
    slack = windows.gap if windows.kind == "session" else windows.size
    return int(times.max()) - run.scenario.watermarks.bound - 1 - slack


def chained_values(run: Any) -> np.ndarray:
    """The values the window aggregates when user operators run before it ([[operators]]): fresh
    instances of them, fed the log partition by partition in offset order, as the job would if it
    processed each record exactly once. Exact for operators whose output for a record depends on
    its key's earlier records (a key's records are all in one partition, in order), not on batch
    boundaries, processing time or other keys."""
    from weir.sim.kernel.batch import RecordBatch

    src = run.source
    ops = [spec.build() for spec in run.scenario.operators]
    out = np.asarray(src["value"], dtype=np.int64).copy()
    partitions = np.asarray(src["partition"])
    for p in np.unique(partitions).tolist():
        rows = np.flatnonzero(partitions == p)
        rows = rows[np.argsort(np.asarray(src["offset"])[rows], kind="stable")]
        batch = RecordBatch(int(p), 0, np.asarray(src["record_id"])[rows], np.asarray(src["key"])[rows],
                            np.asarray(src["event_time"])[rows], out[rows])
        for op in ops:
            batch = RecordBatch(batch.partition_id, 0, batch.record_id, batch.key, batch.event_time,
                                np.asarray(op.on_batch(batch, 0), dtype=np.int64))
        out[rows] = batch.value
    return out


@once_per_check
def batch_windows(run: Any, true_time: bool = False) -> Mapping[tuple[int, int, int], tuple[Any, int]]:
    """(key, start, end) -> (value, count) computed over all records, as a batch job would: by the
    records' timestamps, or with `true_time` by when their events truly happened."""
    spec = run.scenario.window.spec()
    agg = spec.aggregate
    src = run.source
    out: dict[tuple[int, int, int], tuple[Any, int]] = {}
    times = event_times(run, true_time)
    if true_time and np.array_equal(times, event_times(run, False)):  # no clock moved an event: the same windows
        return batch_windows(run, False)
    read = times != NOT_STAMPED  # never stamped (ingestion time: never read): no event time
    source_values = chained_values(run) if getattr(run.scenario, "operators", ()) else src["value"]
    kind = type(spec.windows).__name__
    if kind in ("Tumbling", "Sliding") and agg.name in _NUMPY_REDUCE:
        every = bool(read.all())  # (most runs: then no copy of a column; _tumbling_batch reads them a chunk at a time)
        columns = (np.asarray(c if every else c[read]) for c in (src["key"], times, source_values))
        if kind == "Tumbling":
            return _tumbling_batch(spec.windows, agg.name, *columns)
        table = _sliding_batch(spec.windows, agg.name, *columns)
        if table is not None:
            return table
    if kind == "Session" and agg.name in _NUMPY_REDUCE:
        return _session_batch(spec.windows.gap, spec.semantics == "beam", agg.name,
                              *(np.asarray(c[read]) for c in (src["key"], times, source_values)))
    keys, times, values = src["key"][read].tolist(), times[read].tolist(), source_values[read].tolist()
    if hasattr(spec.windows, "gap"):
        return session_windows(spec.windows.gap, spec.semantics == "beam", agg, keys, times, values)
    for k, t, v in zip(keys, times, values):
        for w in spec.windows.assign(t):
            acc, n = out.get((k, w.start, w.end), (agg.empty, 0))
            out[(k, w.start, w.end)] = (agg.add(acc, v), n + 1)
    return out


def session_windows(gap: int, beam: bool, agg: Any, keys: list, times: list,
                    values: list) -> dict[tuple[int, int, int], tuple[Any, int]]:
    """batch_windows for sessions and any aggregate, record by record: per key, sorted by time, a
    record joins the session while its window overlaps it (Beam) or touches it (Flink)."""
    out: dict[tuple[int, int, int], tuple[Any, int]] = {}
    by_key: dict[int, list[tuple[int, int]]] = {}
    for k, t, v in zip(keys, times, values):
        by_key.setdefault(k, []).append((t, v))
    for k, events in by_key.items():
        events.sort()
        start, end, acc, n = None, None, agg.empty, 0
        for t, v in events:
            if start is not None and (t < end if beam else t <= end):
                end, acc, n = max(end, t + gap), agg.add(acc, v), n + 1
                continue
            if start is not None:
                out[(k, start, end)] = (acc, n)
            start, end, acc, n = t, t + gap, agg.add(agg.empty, v), 1
        out[(k, start, end)] = (acc, n)
    return out


_NUMPY_REDUCE = {"sum": np.add, "count": None, "min": np.minimum, "max": np.maximum}


#: Records a check reads at a time where it can (weir.analysis.windowed._tumbling_batch): its
#: temporaries are this many rows, not a column of the run (a million-record run's checks peaked
#: at some 25 bytes a record above the run's own peak with whole columns)
CHECK_CHUNK = 1 << 16


def _tumbling_batch(windows, name: str, keys: np.ndarray, times: np.ndarray,
                    values: np.ndarray, chunk: int = CHECK_CHUNK) -> WindowTable:
    """batch_windows for tumbling windows and a built-in aggregate, vectorised. When the (key,
    window) cells are few for the records, count and reduce into them, `chunk` records at a time
    (no sort, and no temporary as long as a column); else group the records by (key, window
    start) with one sort, and reduce each group with the aggregate's ufunc. Any integer dtypes."""
    if not len(keys):
        return WindowTable(*(np.zeros(0, dtype=np.int64) for _ in range(5)))
    size, offset = windows.size, windows.offset

    def start_of(t):  # a window start grows with the time: the first and last come from the extremes
        return t - (t - offset) % size

    kmin, smin = int(keys.min()), start_of(int(times.min()))
    width = (start_of(int(times.max())) - smin) // size + 1
    cells = (int(keys.max()) - kmin + 1) * width
    if cells <= 4 * len(keys) + 65_536:  # few (key, window) cells for the records: count into them, no sort
        ufunc = _NUMPY_REDUCE[name]
        counts = np.zeros(cells, dtype=np.int64)
        results = counts if ufunc is None else np.zeros(cells, dtype=np.int64) if name == "sum" else np.full(
            cells, np.iinfo(np.int64).max if name == "min" else np.iinfo(np.int64).min, dtype=np.int64)
        step = max(chunk, cells)  # (a chunk's bincount is as long as the cells)
        for at in range(0, len(keys), step):
            t = times[at:at + step].astype(np.int64, copy=False)
            cell = (keys[at:at + step].astype(np.int64) - kmin) * width + (start_of(t) - smin) // size
            counts += np.bincount(cell, minlength=cells)
            if ufunc is not None:
                ufunc.at(results, cell, values[at:at + step].astype(np.int64, copy=False))
        used = np.flatnonzero(counts)  # in (key, window start) order, as the sort below gives
        firsts = smin + (used % width) * size
        return WindowTable(kmin + used // width, firsts, firsts + size, results[used].astype(np.int64),
                           counts[used].astype(np.int64))
    keys, times, values = (np.asarray(c, dtype=np.int64) for c in (keys, times, values))
    return _grouped(keys, start_of(times), values, windows.size, name)


def _grouped(keys: np.ndarray, starts: np.ndarray, values: np.ndarray, size: int, name: str) -> WindowTable:
    """Rows of (key, window start, value) as windows of `size`: grouped with one sort, each group
    reduced with the aggregate's ufunc (count: its rows), in (key, start) order."""
    order = np.lexsort((starts, keys))
    keys, starts, values = keys[order], starts[order], values[order]
    new = np.ones(len(keys), dtype=bool)
    new[1:] = (keys[1:] != keys[:-1]) | (starts[1:] != starts[:-1])
    bounds = np.flatnonzero(new)
    counts = np.diff(np.append(bounds, len(keys)))
    ufunc = _NUMPY_REDUCE[name]
    results = counts if ufunc is None else ufunc.reduceat(values, bounds)
    return WindowTable(keys[bounds], starts[bounds], starts[bounds] + size, results.astype(np.int64),
                       counts.astype(np.int64))


def _session_batch(gap: int, beam: bool, name: str, keys: np.ndarray, times: np.ndarray,
                   values: np.ndarray) -> WindowTable:
    """batch_windows for session windows and a built-in aggregate, vectorised: each key's records
    sorted by time, a session ending where the next record comes `gap` or more after the last
    (Beam: its window [t, t + gap) does not overlap the session's), or more than `gap` after it
    (Flink: nor touch it); a session is [its first time, its last time + gap)."""
    if not len(keys):
        return WindowTable(*(np.zeros(0, dtype=np.int64) for _ in range(5)))
    keys, times, values = (np.asarray(c, dtype=np.int64) for c in (keys, times, values))
    order = np.lexsort((times, keys))
    keys, times, values = keys[order], times[order], values[order]
    new = np.ones(len(keys), dtype=bool)
    apart = np.diff(times)
    new[1:] = (keys[1:] != keys[:-1]) | ((apart >= gap) if beam else (apart > gap))
    bounds = np.flatnonzero(new)
    lasts = np.append(bounds[1:], len(keys)) - 1
    counts = np.diff(np.append(bounds, len(keys)))
    ufunc = _NUMPY_REDUCE[name]
    results = counts if ufunc is None else ufunc.reduceat(values, bounds)
    return WindowTable(keys[bounds], times[bounds], times[lasts] + gap, results.astype(np.int64),
                       counts.astype(np.int64))


#: Rows (records times the windows each is in) the sorting path of _sliding_batch takes at most;
#: past it, the records go one by one (Sliding.assign), as for any aggregate. And the (key, window)
#: cells its counting path takes at most (two int64 arrays of them): a tiny slide over a long run
#: has many windows, and its cells are not bounded by the records as a tumbling window's are
SLIDING_ROWS = 1 << 24
SLIDING_CELLS = 1 << 24


def _sliding_batch(windows, name: str, keys: np.ndarray, times: np.ndarray, values: np.ndarray,
                   chunk: int = CHECK_CHUNK) -> WindowTable | None:
    """batch_windows for sliding windows and a built-in aggregate, vectorised; None where the
    records are too many for it (SLIDING_ROWS). As Sliding.assign: a record at t is in the
    windows that start at `last - s * slide` for s = 0, 1, ... while the start is after t - size,
    `last` being the latest start at or before t. Each s (a "shift") is one round of numpy calls
    over the records. When the (key, window) cells are few for the records, count and reduce into
    them (as _tumbling_batch), `chunk` records at a time; else group the rows with one sort."""
    empty = WindowTable(*(np.zeros(0, dtype=np.int64) for _ in range(5)))
    if not len(keys):
        return empty
    size, slide, offset = windows.size, windows.slide, windows.offset
    shifts = -(-size // slide)  # the most windows a record is in
    ufunc = _NUMPY_REDUCE[name]

    def last_start(t):
        return t - (t - offset) % slide

    def rows(at: int, step: int):
        """The chunk's (key, start, value) rows, shift by shift, those whose window holds its record."""
        k = keys[at:at + step].astype(np.int64)
        t = times[at:at + step].astype(np.int64)
        v = values[at:at + step].astype(np.int64)
        last = last_start(t)
        for shift in range(shifts):
            start = last - shift * slide
            inside = start > t - size
            if not inside.any():
                break  # (a later shift's starts are earlier still)
            yield k[inside], start[inside], v[inside]

    kmin, smin = int(keys.min()), last_start(int(times.min())) - (shifts - 1) * slide
    width = (last_start(int(times.max())) - smin) // slide + 1
    cells = (int(keys.max()) - kmin + 1) * width
    if cells <= min(4 * len(keys) * shifts + 65_536, SLIDING_CELLS):  # few cells: count into them, no sort
        counts = np.zeros(cells, dtype=np.int64)
        results = counts if ufunc is None else np.zeros(cells, dtype=np.int64) if name == "sum" else np.full(
            cells, np.iinfo(np.int64).max if name == "min" else np.iinfo(np.int64).min, dtype=np.int64)
        step = max(chunk, cells) // shifts + 1  # (a chunk's bincount is as long as the cells)
        for at in range(0, len(keys), step):
            for k, start, v in rows(at, step):
                cell = (k - kmin) * width + (start - smin) // slide
                counts += np.bincount(cell, minlength=cells)
                if ufunc is not None:
                    ufunc.at(results, cell, v)
        used = np.flatnonzero(counts)  # in (key, window start) order
        firsts = smin + (used % width) * slide
        return WindowTable(kmin + used // width, firsts, firsts + size, results[used], counts[used])
    if len(keys) * shifts > SLIDING_ROWS:
        return None
    parts = list(rows(0, len(keys)))
    if not parts:  # (a slide longer than the size leaves gaps: these records fell in them)
        return empty
    k, start, v = (np.concatenate(c) for c in zip(*parts))
    return _grouped(k, start, v, size, name)


@once_per_check
def job_windows(run: Any) -> Mapping[tuple[int, int, int], tuple[Any, int]]:
    """(key, start, end) -> (value, count) as the job's panes add up to.

    DISCARDING: the panes of a window combine. ACCUMULATING: the pane written last is the window's
    result (an update-mode sink: it is what a reader of the table sees). With key salting, each
    subtask's result is partial, and the subtasks' results combine (the second phase).
    """
    spec = run.scenario.window.spec()
    agg = spec.aggregate
    panes = run.windows
    accumulating = spec.accumulation == "accumulating"
    if agg.name in _NUMPY_REDUCE and np.asarray(panes["value"]).dtype.kind in "iu":
        return _numeric_job_windows(panes, agg.name, accumulating)
    return _looped_job_windows(panes, agg, accumulating)


def _looped_job_windows(panes: dict[str, np.ndarray], agg: Any,
                        accumulating: bool) -> dict[tuple[int, int, int], tuple[Any, int]]:
    """job_windows for any aggregate, pane by pane."""
    subtasks = panes["subtask"].tolist() if "subtask" in panes else [0] * len(panes["key"])
    rows = zip(panes["key"].tolist(), panes["window_start"].tolist(), panes["window_end"].tolist(),
               panes["value"].tolist(), panes["count"].tolist(), panes["written_at"].tolist(), subtasks)
    partial: dict[tuple[int, int, int, int], tuple[Any, int]] = {}
    latest: dict[tuple[int, int, int, int], int] = {}
    for k, start, end, value, count, written, subtask in rows:
        if agg.name in ("min", "max") and count == 0:
            continue
        w = (k, start, end, subtask)
        if accumulating:  # each pane holds everything so far: the subtask's result is the last one written
            if written >= latest.get(w, written):
                partial[w], latest[w] = (value, count), written
        elif w not in partial:
            partial[w] = (value, count)
        else:
            acc, n = partial[w]
            partial[w] = (agg.merge(acc, value), n + count)
    out: dict[tuple[int, int, int], tuple[Any, int]] = {}
    for (k, start, end, _subtask), (value, count) in partial.items():
        w = (k, start, end)
        if w in out:
            acc, n = out[w]
            out[w] = (agg.merge(acc, value), n + count)
        else:
            out[w] = (value, count)
    return out


def _numeric_job_windows(panes: dict[str, np.ndarray], name: str,
                         accumulating: bool) -> WindowTable:
    """job_windows for a built-in numeric aggregate, vectorised. Its merge is its reduce (sum, min,
    max; count adds counts), so DISCARDING panes reduce per window across panes and subtasks at once;
    ACCUMULATING takes each subtask's pane written last (the later one in the table on a tie), then
    reduces across subtasks. min and max skip panes that saw nothing (count 0)."""
    key, start, end = (np.asarray(panes[c], dtype=np.int64) for c in ("key", "window_start", "window_end"))
    value, count = np.asarray(panes["value"], dtype=np.int64), np.asarray(panes["count"], dtype=np.int64)
    subtask = np.asarray(panes["subtask"], dtype=np.int64) if "subtask" in panes else np.zeros(len(key), np.int64)
    keep = np.ones(len(key), dtype=bool) if name not in ("min", "max") else count != 0
    key, start, end, value, count, subtask = key[keep], start[keep], end[keep], value[keep], count[keep], subtask[keep]
    if accumulating:  # the last pane of each (window, subtask): by written_at, then by its place in the table
        written = np.asarray(panes["written_at"], dtype=np.int64)[keep]
        order = np.lexsort((np.arange(len(key)), written, subtask, end, start, key))
        last = np.ones(len(order), dtype=bool)
        same = (key[order][1:] == key[order][:-1]) & (start[order][1:] == start[order][:-1]) & \
               (end[order][1:] == end[order][:-1]) & (subtask[order][1:] == subtask[order][:-1])
        last[:-1] = ~same
        pick = order[last]
        key, start, end, value, count = key[pick], start[pick], end[pick], value[pick], count[pick]
    if not len(key):
        return WindowTable(*(np.zeros(0, dtype=np.int64) for _ in range(5)))
    order = np.lexsort((end, start, key))
    key, start, end, value, count = key[order], start[order], end[order], value[order], count[order]
    new = np.ones(len(key), dtype=bool)
    new[1:] = (key[1:] != key[:-1]) | (start[1:] != start[:-1]) | (end[1:] != end[:-1])
    bounds = np.flatnonzero(new)
    counts = np.add.reduceat(count, bounds)
    ufunc = _NUMPY_REDUCE[name]
    values = (ufunc or np.add).reduceat(value, bounds)  # count: the panes' values are counts, and add up
    return WindowTable(key[bounds], start[bounds], end[bounds], values, counts)


def window_complete(run: Any) -> Verdict:
    """Every window the data has closed was fired, with the result a batch job computes (with
    operators after the window, [[operators]], the result the fault-free run wrote: what they make
    of the panes is theirs to say, and it is judged as exactly_once judges a user operator)."""
    return _judge_windows(run, "window_complete", False)


def event_time_complete(run: Any) -> Verdict:
    """window_complete by the records' true event time: when each event happened, not the
    timestamp it was given. A producer whose clock is skewed stamps its events into the wrong
    windows; with enough allowed lateness the job's windows match its own timestamps, and only
    this check sees that they are not the windows of what happened."""
    if getattr(run, "true_event_time", None) is None:
        return Verdict("event_time_complete", True, "not judged: this run's producer keeps no true event times",
                       {"judged": False})
    return _judge_windows(run, "event_time_complete", True)


@once_per_check
def _window_diff(run: Any, true_time: bool) -> tuple[dict, dict, list, list, list]:
    """(expected, actual, how many windows are closed, those with no result, those with a wrong one;
    each list sorted)."""
    expected, actual = batch_windows(run, true_time), job_windows(run)
    if getattr(run.scenario, "operators_after", ()) and _failed_reference(run) is None:
        from weir.analysis.reference import reference_run
        reference = job_windows(reference_run(run))
        expected = {w: reference.get(w, v) for w, v in expected.items()}
    closing = closing_watermark(run, true_time)
    if isinstance(expected, WindowTable) and isinstance(actual, WindowTable):  # column by column
        closed_rows = expected.end - 1 <= closing
        found, differs = actual.compare(expected)
        return (expected, actual, int(closed_rows.sum()), expected.windows(closed_rows & ~found),
                expected.windows(closed_rows & differs))
    closed = sorted(w for w in expected if w[2] - 1 <= closing)
    missing = [w for w in closed if w not in actual]
    wrong = [w for w in closed if w in actual and actual[w][0] != expected[w][0]]
    return expected, actual, len(closed), missing, wrong


def _failed_reference(run: Any) -> str | None:
    """With operators after the window, whose results only the fault-free run gives: that run's
    first error in the user's code, where it stopped on one (what it wrote is then no reference)."""
    if not getattr(run.scenario, "operators_after", ()):
        return None
    from weir.analysis.reference import reference_run
    errors = reference_run(run).user_errors
    return errors[0].line() if errors else None


def _judge_windows(run: Any, name: str, true_time: bool) -> Verdict:
    by = " by when the events happened" if true_time else ""
    closing = closing_watermark(run, true_time)
    try:
        expected = batch_windows(run, true_time)
    except Exception as e:  # noqa: BLE001 - the user's operators, run again over the log, raised
        if not getattr(run.scenario, "operators", ()):
            raise
        return Verdict(name, False, f"the windows could not be recomputed: your operators raised "
                       f"{type(e).__name__}: {e}", {"error": f"{type(e).__name__}: {e}"})
    same = true_time and expected is batch_windows(run, False) and closing == closing_watermark(run, False)
    expected, actual, closed, missing, wrong = _window_diff(run, true_time and not same)  # no clock moved: the same
    failed = _failed_reference(run)
    if failed is not None:  # which windows fired is still judged; what your operators made of them is not
        wrong = []
    unjudged = "" if failed is None else f"; values not judged: the fault-free run stopped on an error in your code ({failed})"
    still_open = len(expected) - closed
    stalled = run.window_watermark is None or run.window_watermark == MIN_TIME
    evidence = {"closed_windows": closed, "missing": len(missing), "wrong": len(wrong),
                "open_windows": still_open, "closing_watermark": closing,
                "operator_watermark": run.window_watermark,
                "first_missing": [list(w) for w in missing[:SHOW_IDS]],
                "first_wrong": [[*w, expected[w][0], actual[w][0]] for w in wrong[:SHOW_IDS]],
                "values_judged": failed is None}
    if not missing and not wrong:
        match = "match the batch result" if failed is None else "fired"
        if closing == MAX_TIME:
            return Verdict(name, True, f"all {closed} windows {match}{by} (the end "
                           f"of input fired every one){unjudged}", evidence)
        return Verdict(name, True, f"all {closed} closed windows {match}{by} "
                       f"({still_open} still open at the end){unjudged}", evidence)
    parts = []
    if missing and true_time:
        parts.append(f"{len(missing)} of {closed} windows of what happened have no result (never fired, "
                     "or their events were stamped into other windows)")
    elif missing:
        if stalled:
            why = "; the watermark never advanced (stalled at -inf)"
        elif run.window_watermark < closing:
            why = (f"; the watermark stalled at {format_duration(run.window_watermark)} of event time, "
                   f"short of {format_duration(closing)}")
        else:
            why = ""
        parts.append(f"{len(missing)} of {closed} closed windows never fired{why}")
    if wrong:
        k, s, e = wrong[0]
        parts.append(f"{len(wrong)} windows differ from the batch result{by} (first: key {k} [{s}, {e}) "
                     f"expected {expected[wrong[0]][0]}, got {actual[wrong[0]][0]})")
    return Verdict(name, False, "; ".join(parts) + unjudged, evidence)


def no_late_records(run: Any) -> Verdict:
    """No record arrived too late for its windows (none in the side output, none dropped)."""
    side = run.late["record_id"]
    dropped = int(run.late_dropped)
    evidence = {"side_output": len(side), "dropped": dropped, "first_side_output_ids": [int(i) for i in side[:SHOW_IDS]]}
    if len(side) or dropped:
        return Verdict("no_late_records", False, f"{len(side) + dropped} records were too late for their windows: "
                       f"{len(side)} in the side output, {dropped} counted and dropped", evidence)
    return Verdict("no_late_records", True, "no record was too late for its windows", evidence)
