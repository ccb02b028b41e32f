"""Metrics as time series, computed from a finished run's trace and tables, named as the seed names them.

- `records.lag-max`: the consumer's lag, the largest over partitions of (log end offset - position),
  sampled on a regular grid (Kafka's consumer metric of that name);
- `records.lag` per partition, on the same grid;
- `checkpoint.duration`: each completed checkpoint's duration, at its completion (failed ones in
  `checkpoint.failed.duration`);
- `late.records`: late records sent to the side output so far (windowed jobs);
- `dlq.depth`: records waiting in the dead-letter queue;
- `throughput`: records written by the sink per second, per grid step;
- `source.count` and `sink.count`: records appended to the log and rows written by the sink so far
  (for a windowed job, panes written to the results table);
- `watermark.lag` per partition: the largest event time read from the partition minus the watermark
  its source subtask last emitted (windowed jobs);
- `reconciliation.drift` per source system: over the reconciliation's periods (its `time` is the
  period number), the records missing from the sink in percent of the source's.

Every series is numpy arrays (time in us, value), vectorised over the trace's columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from weir.sim.kernel.trace import Kind, Msg
from weir.sim.scenario.nodes import source_subtask

__all__ = ["Series", "metrics", "GRID_POINTS", "source_nodes", "watermark_series", "partition_watermarks", "operator_watermark",
           "late_marks", "visible_at", "visible_latency"]

GRID_POINTS = 200  # samples of the grid-based series over the run


@dataclass(frozen=True, eq=False)
class Series:
    name: str
    label: str  # which partition, subtask or row ("" for the whole run)
    time: np.ndarray  # us
    value: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "time": self.time.tolist(), "value": self.value.tolist()}

    def __len__(self) -> int:
        return len(self.time)


def _grid(run: Any) -> np.ndarray:
    end = max(int(run.end_time), 1)
    return np.unique(np.linspace(0, end, GRID_POINTS).astype(np.int64))


def _steps(times: np.ndarray, values: np.ndarray, at: np.ndarray, initial: float = 0) -> np.ndarray:
    """The value of a step function (value[i] from times[i] on) at each of `at`."""
    idx = np.searchsorted(times, at, side="right") - 1
    out = np.where(idx >= 0, values[np.maximum(idx, 0)] if len(values) else initial, initial)
    return out


def append_times(run: Any) -> np.ndarray:
    """When each record in the source log was appended (per source row): the first PRODUCE event
    of the broker that holds its record id (or -1 if none does, e.g. a hand-made run)."""
    cols = run.trace.columns
    rows = np.flatnonzero((cols["kind"] == Kind.PRODUCE) & (cols["c"] == 0))
    first, count, time = cols["a"][rows], cols["b"][rows], cols["time"][rows]
    order = np.argsort(first, kind="stable")
    first, count, time = first[order], count[order], time[order]
    ids = run.source["record_id"]
    at = np.searchsorted(first, ids, side="right") - 1
    ok = (at >= 0) & (ids < first[np.maximum(at, 0)] + count[np.maximum(at, 0)]) if len(first) else np.zeros(len(ids), bool)
    return np.where(ok, time[np.maximum(at, 0)] if len(time) else -1, -1)


def _lag(run: Any, grid: np.ndarray, appended: np.ndarray) -> list[Series]:
    cols = run.trace.columns
    src = run.source
    polls = np.flatnonzero(cols["kind"] == Kind.POLL)
    out = []
    partitions = np.unique(src["partition"]).tolist()
    lags = []
    for p in partitions:
        mine = src["partition"] == p
        end = np.searchsorted(np.sort(appended[mine]), grid, side="right")  # log end offset at each grid time
        mine_polls = polls[cols["a"][polls] == p]
        position = _steps(cols["time"][mine_polls], cols["b"][mine_polls] + cols["c"][mine_polls], grid)
        lag = np.maximum(end - position, 0)
        lags.append(lag)
        out.append(Series("records.lag", f"partition {p}", grid, lag))
    if lags:
        out.insert(0, Series("records.lag-max", "", grid, np.max(np.vstack(lags), axis=0)))
    return out


def _counts(run: Any, grid: np.ndarray, appended: np.ndarray) -> list[Series]:
    cols = run.trace.columns
    appended = np.sort(appended)
    writes = np.flatnonzero(cols["kind"] == Kind.WRITE)
    # a windowed job's writes (partition -1) count the panes they wrote; a record job's, its rows
    written = np.cumsum(np.where(cols["a"][writes] == -1, cols["b"][writes], cols["c"][writes]))
    sink_count = _steps(cols["time"][writes], written, grid)
    step_s = np.diff(grid, prepend=0) / 1e6
    per_step = np.diff(sink_count, prepend=0)
    throughput = np.where(step_s > 0, per_step / np.where(step_s > 0, step_s, 1), 0.0)
    return [Series("source.count", "", grid, np.searchsorted(appended, grid, side="right")),
            Series("sink.count", "", grid, sink_count),
            Series("throughput", "", grid, throughput)]


def _checkpoints(run: Any) -> list[Series]:
    cols = run.trace.columns
    out = []
    for kind, name in ((Kind.CKPT_COMPLETE, "checkpoint.duration"), (Kind.CKPT_ABORT, "checkpoint.failed.duration")):
        rows = np.flatnonzero(cols["kind"] == kind)
        out.append(Series(name, "", cols["time"][rows], cols["b"][rows]))
    return out


def _dlq(run: Any) -> list[Series]:
    cols = run.trace.columns
    rows = np.flatnonzero((cols["kind"] == Kind.DEAD_LETTER) | (cols["kind"] == Kind.REPLAY_MARK))  # marking drains it
    depth, values = 0, []
    for i in rows.tolist():
        depth = depth + int(cols["c"][i]) if cols["kind"][i] == Kind.DEAD_LETTER else int(cols["b"][i])
        values.append(depth)
    return [Series("dlq.depth", "", cols["time"][rows], np.asarray(values, dtype=np.int64))]


def _late(run: Any) -> list[Series]:
    cols = run.trace.columns
    rows = np.flatnonzero((cols["kind"] == Kind.SEND) & (cols["b"] == Msg.PANES))
    return [Series("late.records", "side output", cols["time"][rows], np.cumsum(cols["d"][rows]))]


def source_nodes(names: tuple[str, ...]) -> list[str]:
    """The source subtasks' node names in subtask order (source, source-1, source-2, ...): subtask
    i reads partitions i, i + n, i + 2n, ... of n subtasks."""
    return sorted((n for n in names if source_subtask(n) is not None), key=source_subtask)


def watermark_series(run: Any) -> tuple[list[Series], list[Series]]:
    """Per partition: the largest event time read from it so far (at each poll), and the watermark
    its source subtask emitted (at each emission; not the end-of-input MAX watermark, which is
    no lag and no point on a time axis)."""
    cols = run.trace.columns
    names = run.trace.nodes
    src = run.source
    polls = np.flatnonzero((cols["kind"] == Kind.POLL) & (cols["c"] > 0))
    sent = np.flatnonzero((cols["kind"] == Kind.SEND) & (cols["b"] == Msg.WATERMARK) & (cols["d"] < 2)  # to subtask 0
                          & (cols["c"] != np.iinfo(np.int64).max))
    sources = source_nodes(names)
    s_count = max(1, len(sources))
    maxima, marks = [], []
    for p in np.unique(src["partition"]).tolist():
        mine = src["partition"] == p
        by_offset = np.full(int(src["offset"][mine].max()) + 1, np.iinfo(np.int64).min, dtype=np.int64)
        by_offset[src["offset"][mine]] = src["event_time"][mine]
        prefix = np.maximum.accumulate(by_offset)
        these = polls[cols["a"][polls] == p]
        last = np.minimum(cols["b"][these] + cols["c"][these] - 1, len(prefix) - 1)
        seen = np.maximum.accumulate(prefix[last]) if len(last) else prefix[:0]
        maxima.append(Series("event_time.max", f"partition {p}", cols["time"][these], seen))
        owner = names.index(sources[p % s_count]) if sources else -1
        emitted = sent[cols["node"][sent] == owner]
        marks.append(Series("watermark", f"partition {p}", cols["time"][emitted], cols["c"][emitted]))
    return maxima, marks


def partition_watermarks(run: Any) -> tuple[list[Series], np.ndarray]:
    """Per partition, its own watermark (before the source merges them) after each read of it:
    replayed from the trace with a fresh generator of the scenario's strategy per attempt, fed what
    the source fed it (each poll's largest event time, and its largest marker's). Also the times
    the job restarted, when every generator starts again from nothing. Empty with ingestion time
    (the source stamps event times; the log does not hold them) or without watermarks."""
    sc = run.scenario
    wm = getattr(sc, "watermarks", None)
    cols = run.trace.columns
    restarts = cols["time"][cols["kind"] == Kind.JOB_RESTART]
    if wm is None or wm.strategy == "ingestion_time":
        return [], restarts
    from weir.sim.kafka.producer import marker_mask
    from weir.sim.stream.watermarks import STRATEGIES
    strategy = wm.generator()
    cls = STRATEGIES[strategy] if isinstance(strategy, str) else strategy
    markers = sc.workload.marker_every if wm.strategy == "punctuated" else 0
    src = run.source
    kind, a, b, c, time = (cols[k] for k in ("kind", "a", "b", "c", "time"))
    polls = np.flatnonzero((kind == Kind.POLL) & (c > 0))
    by_partition: dict[int, list[int]] = {}
    for i in polls.tolist():
        by_partition.setdefault(int(a[i]), []).append(i)
    restart_rows = np.flatnonzero(kind == Kind.JOB_RESTART)
    out = []
    for p in np.unique(src["partition"]).tolist():
        mine = np.flatnonzero(src["partition"] == p)
        mine = mine[np.argsort(src["offset"][mine], kind="stable")]
        times_by_offset, ids_by_offset = src["event_time"][mine], src["record_id"][mine]
        gen, at, values, attempt = None, [], [], -1
        for i in by_partition.get(p, []):
            since = int(np.searchsorted(restart_rows, i))  # restarts before this poll: a new attempt, a new generator
            if since != attempt:
                gen, attempt = None, since
            first, n = int(b[i]), int(c[i])
            times, ids = times_by_offset[first:first + n], ids_by_offset[first:first + n]
            if gen is None:
                gen = cls(wm.bound, **wm.params)
            if len(times):
                gen.on_event(int(times.max()), False)
                if markers:
                    marked = marker_mask(ids, markers)
                    if marked.any():
                        gen.on_event(int(times[marked].max()), True)
            at.append(int(time[i]))
            values.append(int(gen.current()))
        out.append(Series("watermark.partition", f"partition {p}", np.asarray(at, dtype=np.int64),
                          np.asarray(values, dtype=np.int64)))
    return out, restarts


def operator_watermark(run: Any) -> Series:
    """The window operator's input watermark (processor subtask 0's, the minimum over its inputs:
    what decides which windows fire and which records are late), at each move; MIN_TIME again at
    each restart. The end of input (+infinity) is left out."""
    cols = run.trace.columns
    kind = cols["kind"]
    rows = np.flatnonzero(((kind == Kind.WATERMARK) & (cols["a"] == 0) & (cols["b"] != np.iinfo(np.int64).max))
                          | (kind == Kind.JOB_RESTART))
    values = np.where(kind[rows] == Kind.JOB_RESTART, np.iinfo(np.int64).min, cols["b"][rows])
    return Series("watermark.operator", "window operator", cols["time"][rows], values)


def late_marks(run: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Records that met a window operator past their window's end, as (processing time, event time):
    "late" ones still within the allowed lateness (they fire LATE panes) and "dropped" ones past it
    (counted and dropped, or in the side output), each at the moment its batch was processed,
    against the operator's watermark then; and "on_time", the rest. With parallelism the watermark of subtask 0 stands for
    all (they move together, from the same sources). Tumbling and sliding windows; sessions merge,
    so a record's window is not its own: left out."""
    spec = run.scenario.window
    empty = np.zeros(0, dtype=np.int64)
    if spec is None or spec.kind == "session" or getattr(run, "ingested_at", None) is not None:
        return {"late": (empty, empty), "dropped": (empty, empty), "on_time": (empty, empty)}
    window = spec.spec()
    size = window.windows.size
    step = getattr(window.windows, "slide", None) or size
    cols, src = run.trace.columns, run.source
    processor = run.trace.nodes.index("processor")
    rows = np.flatnonzero((cols["kind"] == Kind.PROCESS) & (cols["node"] == processor) & (cols["c"] > 0))
    mark = operator_watermark(run)
    start_of = {}  # partition -> index of its offset 0 in the source columns (sorted by partition, offset)
    for p in np.unique(src["partition"]).tolist():
        start_of[p] = int(np.flatnonzero(src["partition"] == p)[0])
    when, which = [], []
    for i in rows.tolist():
        p, first, n = int(cols["a"][i]), int(cols["b"][i]), int(cols["c"][i])
        if p not in start_of:
            continue
        which.append(np.arange(start_of[p] + first, start_of[p] + first + n))
        when.append(np.full(n, cols["time"][i]))
    if not which:
        return {"late": (empty, empty), "dropped": (empty, empty), "on_time": (empty, empty)}
    idx, at = np.concatenate(which), np.concatenate(when)
    ts = src["event_time"][idx]
    k = np.searchsorted(mark.time, at, side="left") - 1  # the watermark before the batch was processed
    if len(mark.value):
        w = np.where(k >= 0, mark.value[np.maximum(k, 0)], np.iinfo(np.int64).min)
    else:  # the operator never had a watermark (a run too short for one): nothing was late
        w = np.full(len(at), np.iinfo(np.int64).min)
    last_start = ts - (ts - getattr(window.windows, "offset", 0)) % step  # the latest window the record is in
    first_end = last_start - (-(-size // step) - 1) * step + size  # the earliest window's end
    while_open = first_end - 1 + int(window.semantics == "beam")
    cleanup = last_start + size - 1 + window.allowed_lateness + int(window.semantics == "beam")
    dropped = cleanup <= w
    late = (while_open <= w) & ~dropped
    on_time = ~late & ~dropped
    return {"late": (at[late], ts[late]), "dropped": (at[dropped], ts[dropped]), "on_time": (at[on_time], ts[on_time])}


def visible_at(run: Any) -> np.ndarray | None:
    """Per sink row, when a reader of the sink can see it, in us: its write, or with two-phase
    commit the first transaction commit at or after its write (readers see committed transactions
    only). None for a job with no record sink (a windowed one's results are panes). Times are the
    sink's clock, which is true time unless a clock fault hits it."""
    sink = run.sink
    if run.scenario.window is not None or "written_at" not in sink or "record_id" not in sink:
        return None
    visible = np.asarray(sink["written_at"], dtype=np.int64)
    if run.scenario.pipeline.sink == "transactional":
        cols = run.trace.columns
        commits = np.sort(cols["time"][cols["kind"] == Kind.TXN_COMMIT])
        if len(commits):
            visible = commits[np.minimum(np.searchsorted(commits, visible), len(commits) - 1)]
    return visible


def visible_latency(run: Any) -> np.ndarray | None:
    """Per sink row whose record is in the log, the time from its event time to `visible_at`, in us."""
    visible = visible_at(run)
    if visible is None:
        return None
    order = np.argsort(run.source["record_id"], kind="stable")
    ids, event = run.source["record_id"][order], run.source["event_time"][order]
    if not len(ids):
        return np.zeros(0, dtype=np.int64)
    at = np.minimum(np.searchsorted(ids, run.sink["record_id"]), len(ids) - 1)
    known = ids[at] == run.sink["record_id"]
    return (visible[known] - event[at][known]).astype(np.int64)


def _watermark_lag(run: Any) -> list[Series]:
    """At each read of a partition (and each watermark its source emitted): the largest event time
    read from it so far minus the watermark in force then. A stalled watermark shows as a lag that
    grows with every read, since a watermark that does not move is not sent again."""
    maxima, marks = watermark_series(run)
    out = []
    floor = np.iinfo(np.int64).min // 2
    for seen, mark in zip(maxima, marks):
        emitted = mark.value > floor
        if not emitted.any():
            continue
        times, values = mark.time[emitted], mark.value[emitted]
        at = np.union1d(seen.time[seen.time >= times[0]], times)
        top = _steps(seen.time, seen.value, at, initial=values.min())
        current = _steps(times, values, at, initial=values.min())
        out.append(Series("watermark.lag", seen.label, at, np.maximum(top - current, 0)))
    return out


def _reconciliation(run: Any) -> list[Series]:
    """Per source system, over the reconciliation's periods (days): the records missing from the
    sink, in percent of the source's (the seed's drift between source and sink)."""
    settings = getattr(getattr(run, "scenario", None), "reconcile", None)
    if settings is None:
        return []
    from weir.analysis.reconcile import reconcile
    rows = sorted(reconcile(run, settings.period, settings.threshold), key=lambda r: (r["source_system"], r["event_date"]))
    out = []
    for system in sorted({r["source_system"] for r in rows}):
        mine = [r for r in rows if r["source_system"] == system]
        days = np.asarray([r["event_date"] for r in mine], dtype=np.int64)
        drift = np.asarray([100.0 * (r["missing_records"] or 0) / max(r["source_unique"] or 0, 1) for r in mine])
        out.append(Series("reconciliation.drift", system, days, drift))
    return out


def metrics(run: Any) -> dict[str, list[Series]]:
    """Every metric that applies to the run, by name (a name maps to one series, or one per partition)."""
    grid = _grid(run)
    out: dict[str, list[Series]] = {}
    appended = append_times(run)  # each record's append time, for lag and for the source count
    for series in (*_lag(run, grid, appended), *_counts(run, grid, appended), *_checkpoints(run), *_dlq(run)):
        out.setdefault(series.name, []).append(series)
    if getattr(run, "windows", None) is not None:
        for series in (*_late(run), *_watermark_lag(run)):
            out.setdefault(series.name, []).append(series)
    for series in _reconciliation(run):
        out.setdefault(series.name, []).append(series)
    return out
