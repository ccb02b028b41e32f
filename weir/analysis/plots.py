"""Plots of a run (matplotlib): each function takes a finished run and an Axes, draws, and returns
the Axes, so a notebook can lay them out as it likes; `write_plots` renders them all to PNG.

Without an Axes, a function draws on a new `matplotlib.figure.Figure` of its own: never pyplot's
global figures, and never `matplotlib.use()`, so importing weir leaves a notebook's backend (and
the user's own `plt.show()`) as it was. `weir.show(ax)` displays such a figure in Jupyter.

- `timeline`: one lane per node, up / crashed / restarting / paused, the scripted faults shaded,
  checkpoints completed (ticks) and failed (crosses), job failovers (dashed lines);
- `watermarks`: per partition, the largest event time read so far and its own watermark; the
  merged watermark the window operator went by; records late, dropped or in the side output;
- `late_data`: each record's event time against when it reached the window operator, the merged
  watermark and the windows as bands: on time, late but allowed, side output and dropped apart;
- `checkpoint_durations`: each checkpoint's duration, failed ones marked, on a scale that shows
  them (the timeout a line when it is near, a note when it is far above);
- `source_vs_sink`: records in the log and rows written by the sink (panes, for a windowed job), over time;
- `lag`: the consumer lag per partition (each in its own colour and dash, over records.lag-max);
- `panes`: not of a run but of test streams (`TestStream.run`): each window's panes at the
  watermark they fired at, and the late side output, for one or more results side by side.

Every mark a plot draws has a legend entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from weir.sim.kernel.trace import Kind

from weir.sim.kernel.files import atomic_file
from weir.analysis.metrics import (
    late_marks, metrics, operator_watermark, partition_watermarks, watermark_series,
)

__all__ = ["timeline", "watermarks", "late_data", "panes", "checkpoint_durations", "source_vs_sink", "lag",
           "write_plots", "PLOTS"]

#: Line dashes for series that may lie on one another (lag per partition): each stays visible.
_DASHES = ("-", (0, (5, 2)), (0, (1, 1.5)), (0, (6, 2, 1, 2)), (0, (2, 3)), (0, (8, 3, 1, 3, 1, 3)))
_STATE_COLORS = {"up": "#4c9f70", "crashed": "#d1495b", "restarting": "#edae49", "paused": "#7e6bc4"}
_FAULT_COLOR = "#f4a261"


def _axes(ax, height: float):
    """`ax`, or the Axes of a new Figure 10 inches wide (its own, not pyplot's)."""
    return ax if ax is not None else Figure(figsize=(10, height)).add_subplot()


def _seconds(us) -> np.ndarray:
    return np.asarray(us, dtype=float) / 1e6


def _finish(ax, title: str, ylabel: str | None = None, xlabel: str = "simulated time (s)", ncol: int = 1):
    """Label the axes, title and legend of a plot; the Axes back."""
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:  # (nothing drawn, nothing to name: no empty legend, no warning)
        ax.legend(fontsize=7, ncol=ncol)
    return ax


def _node_states(run: Any) -> dict[str, list[tuple[int, int, str]]]:
    """Per node: (start, end, state) spans over the run, from CRASH, RESTART, UP and PAUSE events."""
    cols, names = run.trace.columns, run.trace.nodes
    end = int(run.end_time)
    spans: dict[str, list[tuple[int, int, str]]] = {n: [] for n in names}
    state = {n: ("up", 0) for n in names}
    rows = np.flatnonzero(np.isin(cols["kind"], [Kind.CRASH, Kind.RESTART, Kind.UP, Kind.PAUSE]))
    for i in rows.tolist():
        name, t, kind = names[int(cols["node"][i])], int(cols["time"][i]), int(cols["kind"][i])
        if kind == Kind.PAUSE:
            spans[name].append((t, min(t + int(cols["a"][i]), end), "paused"))
            continue
        current, since = state[name]
        spans[name].append((since, t, current))
        state[name] = ({Kind.CRASH: "crashed", Kind.RESTART: "restarting", Kind.UP: "up"}[kind], t)
    for name, (current, since) in state.items():
        spans[name].append((since, end, current))
    return spans


def timeline(run: Any, ax=None):
    """Nodes over time: states, scripted faults, checkpoints and failovers."""
    ax = _axes(ax, 4)
    cols, names = run.trace.columns, run.trace.nodes
    lanes = {n: i for i, n in enumerate(names)}
    spans = _node_states(run)
    for name, items in spans.items():
        y = lanes[name]
        for state in ("up", "restarting", "crashed", "paused"):  # paused drawn over the up span
            bars = [(s / 1e6, (e - s) / 1e6) for s, e, st in items if st == state and e > s]
            if bars:
                ax.broken_barh(bars, (y - 0.3, 0.6), facecolors=_STATE_COLORS[state],
                               label=state if name == names[0] or state != "up" else None)
    for fault in getattr(run.scenario, "faults", ()):
        if fault.kind in ("crash", "stop", "pause"):
            continue  # already drawn as the node's state
        ax.axvspan(fault.at / 1e6, fault.heals_at / 1e6 if fault.heals_at > fault.at else fault.at / 1e6 + 1e-3,
                   color=_FAULT_COLOR, alpha=0.25, lw=0, label="scripted fault (its kind above)")
        ax.text(fault.at / 1e6, len(names) - 0.4, fault.kind, fontsize=7, color="#9c4a1a", va="bottom")
    coord = lanes.get("coordinator", len(names) - 1)
    for kind, marker, color in ((Kind.CKPT_COMPLETE, "|", "#264653"), (Kind.CKPT_ABORT, "x", "#d1495b")):
        t = cols["time"][cols["kind"] == kind]
        if len(t):
            ax.plot(_seconds(t), np.full(len(t), coord + 0.45), marker, color=color, ms=9,
                    label="checkpoint " + ("completed" if kind == Kind.CKPT_COMPLETE else "failed"))
    for t in cols["time"][cols["kind"] == Kind.JOB_FAIL].tolist():
        ax.axvline(t / 1e6, color="#d1495b", ls="--", lw=0.8, label="job failover")
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.7, len(names) + 0.2)
    ax.set_xlim(0, max(run.end_time, 1) / 1e6)
    ax.set_xlabel("simulated time (s)")
    ax.set_title(f"{run.scenario.name}: nodes, faults and checkpoints")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7,
              ncol=6, frameon=False)  # below the lanes: over them it would hide the checkpoint ticks
    return ax


def _held(times: np.ndarray, values: np.ndarray, end: int) -> tuple[np.ndarray, np.ndarray]:
    """A watermark holds until the next one: shown values only (not -inf), drawn on to the end."""
    shown = values > np.iinfo(np.int64).min // 2
    times, values = times[shown], values[shown]
    if len(times):  # (a stall is flat to the end)
        times, values = np.append(times, end), np.append(values, values[-1])
    return times, values


def watermarks(run: Any, ax=None):
    """Per partition: the largest event time read so far and its own watermark; the merged
    watermark the window operator went by; and the records that met it too late: late but within
    the allowed lateness (a LATE pane), dropped, or sent to the side output."""
    ax = _axes(ax, 4)
    maxima, _marks = watermark_series(run)
    own, _restarts = partition_watermarks(run)
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, seen in enumerate(maxima):
        color = colors[k % len(colors)]
        ax.step(_seconds(seen.time), _seconds(seen.value), where="post", color=color, lw=0.8, alpha=0.6,
                label=f"{seen.label}: max event time")
    for k, series in enumerate(own):
        times, values = _held(series.time, series.value, run.end_time)
        ax.step(_seconds(times), _seconds(values), where="post", color=colors[k % len(colors)], lw=1, ls="--",
                label=f"{series.label}: its watermark")
    merged = operator_watermark(run)
    times, values = _held(merged.time, merged.value, run.end_time)
    ax.step(_seconds(times), _seconds(values), where="post", color="black", lw=1.8, label="merged: the window operator's")
    marks = late_marks(run)
    side = getattr(run, "late", None)
    if side is not None and len(side["record_id"]):
        ax.plot(_seconds(side["written_at"]), _seconds(side["event_time"]), "+", color="#7b2cbf", ms=6,
                label=f"side output ({len(side['record_id'])})")
    late_t, late_ts = marks["late"]
    if len(late_t):
        ax.plot(_seconds(late_t), _seconds(late_ts), ".", color="#f4a261", ms=4, label=f"late, in a LATE pane ({len(late_t)})")
    drop_t, drop_ts = marks["dropped"]
    if len(drop_t) and not (side is not None and len(side["record_id"])):
        ax.plot(_seconds(drop_t), _seconds(drop_ts), "x", color="#d1495b", ms=5, label=f"dropped ({len(drop_t)})")
    return _finish(ax, "watermarks: each partition's, the merged one, and records that came too late", "event time (s)",
                   "simulated (processing) time (s)", ncol=3)


#: How a record met its window, in the late-data picture: (label, marker, colour, size).
_ARRIVALS = {"on_time": ("on time", ".", "#8d99ae", 2), "late": ("late, within the allowed lateness", "o", "#f4a261", 4),
             "side": ("too late: side output", "P", "#7b2cbf", 6), "dropped": ("too late: dropped", "x", "#d1495b", 6)}
#: At most this many window bands are shaded (more would be a grey wash).
MAX_BANDS = 200


def late_data(run: Any, ax=None):
    """Each record's event time against the moment it reached the window operator, with the merged
    watermark the operator went by and the windows as bands of event time: records on time, late
    but within the allowed lateness (they fire LATE panes), and too late (side output, or dropped),
    each in its own colour. A record above the watermark line is on time; below it, late."""
    ax = _axes(ax, 4)
    marks = late_marks(run)
    spec = run.scenario.window
    if spec is not None and spec.kind != "session":
        size, step = spec.size, spec.slide or spec.size
        ts = np.concatenate([marks[k][1] for k in ("on_time", "late", "dropped")])
        if len(ts):
            low, high = int(ts.min()) // step * step, int(ts.max())
            starts = range(low, high + 1, step)
            if len(starts) <= MAX_BANDS:
                for i, start in enumerate(starts):
                    if i % 2 == 0:
                        ax.axhspan(start / 1e6, (start + size) / 1e6, color="#e9ecef", lw=0, zorder=0,
                                   label=f"a window ({spec.kind}, {size / 1000:g}ms), every other shaded" if i == 0 else None)
    at, ts = marks["on_time"]
    label, marker, color, size_pt = _ARRIVALS["on_time"]
    ax.plot(_seconds(at), _seconds(ts), marker, color=color, ms=size_pt, label=f"{label} ({len(at)})", zorder=2)
    at, ts = marks["late"]
    if len(at):
        label, marker, color, size_pt = _ARRIVALS["late"]
        ax.plot(_seconds(at), _seconds(ts), marker, color=color, ms=size_pt, label=f"{label} ({len(at)})", zorder=3)
    at, ts = marks["dropped"]
    if len(at):
        side = getattr(run, "late", None) is not None and bool(getattr(spec, "side_output", False))
        label, marker, color, size_pt = _ARRIVALS["side" if side else "dropped"]
        ax.plot(_seconds(at), _seconds(ts), marker, color=color, ms=size_pt, label=f"{label} ({len(at)})", zorder=4)
    merged = operator_watermark(run)
    times, values = _held(merged.time, merged.value, run.end_time)
    ax.step(_seconds(times), _seconds(values), where="post", color="black", lw=1.5, zorder=5,
            label="watermark (the window operator's)")
    return _finish(ax, "late data: event time against arrival, the watermark and the windows", "event time (s)",
                   "simulated (processing) time the record reached the window operator (s)", ncol=2)


_TIMING_MARKS = {"EARLY": ("o", "#8ecae6"), "ON_TIME": ("o", "#4c9f70"), "LATE": ("o", "#f4a261")}


def panes(results: Any, ax=None):
    """The panes and the late side output of test streams (`TestStream(...).run(spec)`'s results):
    one row per key and window, each pane a dot at the watermark it fired at, coloured by its
    timing (EARLY, ON_TIME, LATE) and labelled with its value; each element of the late side output
    a cross at the watermark it came at, on a row of its own. Given a dict {label: result}, the
    runs share the axes, one band of rows each: one stream under `semantics = "flink"` and
    `"beam"`, or under two settings, side by side. Panes at one watermark stand side by side, in
    the order they fired; panes fired by the end of input (the watermark at +infinity) at the
    right edge, and any before the first watermark at the left."""
    from weir.sim.stream.windows import MAX_TIME, MIN_TIME

    runs = results if isinstance(results, dict) else {"": results}
    for label, result in runs.items():
        if not (hasattr(result, "panes") and hasattr(result, "late")):
            raise TypeError(f"panes takes a test stream's result (TestStream(...).run(spec)), or a dict of them by "
                            f"label; got {type(result).__name__}" + (f" for {label!r}" if label else ""))
    marks = [p.watermark for r in runs.values() for p in r.panes] + [e.watermark for r in runs.values() for e in r.late]
    finite = [w for w in marks if MIN_TIME < w < MAX_TIME]
    low, high = (min(finite), max(finite)) if finite else (0, 0)
    span = max(high - low, 1)
    left, right, nudge = low - 0.12 * span, high + 0.12 * span, 0.025 * span

    def x_of(watermark: int) -> float:
        return right if watermark >= MAX_TIME else left if watermark <= MIN_TIME else watermark

    taken: dict[tuple[int, float], int] = {}  # (row, x) -> how many marks stand there already

    def beside(row: int, watermark: int) -> float:
        """Where the next mark at `watermark` on `row` goes: right of those already there."""
        x = x_of(watermark)
        n = taken[(row, x)] = taken.get((row, x), -1) + 1
        return x + nudge * n

    rows: list[str] = []
    drawn: set[str] = set()  # legend entries so far (one each)
    ax = _axes(ax, 1 + 0.45 * sum(len({(p.key, p.window) for p in r.panes}) + bool(r.late) for r in runs.values()))
    for label, result in runs.items():
        band = f"{label}: " if label else ""
        row_of: dict = {}
        for pane in result.panes:
            row = row_of.setdefault((pane.key, pane.window), len(rows) + len(row_of))
            x = beside(row, pane.watermark)
            timing = pane.timing.value
            marker, color = _TIMING_MARKS[timing]
            ax.plot([x], [row], marker, color=color, ms=9, zorder=3, label=None if timing in drawn else f"{timing} pane")
            drawn.add(timing)
            ax.annotate(f"{pane.value}", (x, row), xytext=(0, 7), textcoords="offset points", ha="center", fontsize=8)
        rows += [f"{band}{key} [{w.start:,}, {w.end:,})" for key, w in row_of]
        if result.late:
            row = len(rows)
            rows.append(f"{band}late side output")
            for element in result.late:
                x = beside(row, element.watermark)
                ax.plot([x], [row], "x", color="#d1495b", ms=9, mew=2, zorder=3,
                        label=None if "late" in drawn else "late element (side output)")
                drawn.add("late")
                ax.annotate(f"{element.value} @{element.timestamp:,}", (x, row), xytext=(0, 7),
                            textcoords="offset points", ha="center", fontsize=8)
        if label != list(runs)[-1]:
            ax.axhline(len(rows) - 0.5, color="#adb5bd", lw=1)
    if not rows:
        ax.text(0.5, 0.5, "no pane fired and no element came too late", transform=ax.transAxes, ha="center")
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_ylim(len(rows) - 0.4, -0.6)  # first row on top
    ax.set_xlim(left - nudge, right + 3 * nudge)
    # the watermark's own ticks where it was finite; the edges named for what stands there
    ticks = [t for t in ax.get_xticks() if low <= t <= high] if finite else []
    names = [f"{t:,.0f}" for t in ticks]
    if any(w <= MIN_TIME for w in marks):
        ticks, names = [left, *ticks], ["before any", *names]
    if any(w >= MAX_TIME for w in marks):
        ticks, names = [*ticks, right], [*names, "+infinity"]
        ax.axvline(right, color="#adb5bd", lw=1, ls=":", label="end of input (watermark +infinity)")
    ax.set_xticks(ticks, names)
    return _finish(ax, "panes by the watermark they fired at (value above each)", xlabel="watermark (us)", ncol=2)


def checkpoint_durations(run: Any, ax=None):
    """Each checkpoint's duration at its end; failed ones as red crosses."""
    ax = _axes(ax, 3)
    m = metrics(run)
    done, failed = m["checkpoint.duration"][0], m["checkpoint.failed.duration"][0]
    ax.plot(_seconds(done.time), done.value / 1000, "o-", color="#264653", ms=4, label=f"completed ({len(done)})")
    if len(failed):
        ax.plot(_seconds(failed.time), failed.value / 1000, "x", color="#d1495b", ms=8, label=f"failed ({len(failed)})")
    longest = max([float(done.value.max()) if len(done) else 0.0, float(failed.value.max()) if len(failed) else 0.0])
    timeout = getattr(getattr(run.scenario, "checkpoint", None), "timeout", None)
    top = max(longest, 1.0) * 1.25 / 1000
    if timeout and timeout / 1000 <= 3 * top:  # near enough to show on the durations' own scale
        ax.axhline(timeout / 1000, color="#999999", ls=":", lw=1, label=f"timeout ({timeout / 1000:g}ms)")
        top = max(top, timeout / 1000 * 1.1)
    elif timeout:  # far above: a line up there would flatten every duration onto the axis
        ax.annotate(f"timeout {timeout / 1000:g}ms: {timeout / max(longest, 1):.0f}x the longest, off the scale",
                    xy=(0.01, 0.97), xycoords="axes fraction", va="top", fontsize=7, color="#666666")
    ax.set_ylim(0, top)
    return _finish(ax, "checkpoint durations", "duration (ms)")


def source_vs_sink(run: Any, ax=None):
    """Records in the log and rows written by the sink, over time."""
    ax = _axes(ax, 3)
    m = metrics(run)
    source, sink = m["source.count"][0], m["sink.count"][0]
    windowed = getattr(run, "windows", None) is not None
    ax.plot(_seconds(source.time), source.value, color="#264653", label="source (records in the log)")
    if not windowed:
        ax.plot(_seconds(sink.time), sink.value, color="#e76f51", label="sink (rows written)")
        return _finish(ax, "source versus sink", "records")
    # a pane sums many records: panes on their own axis, on the right
    right = ax.twinx()
    right.plot(_seconds(sink.time), sink.value, color="#e76f51", label="sink (panes written to the window results)")
    right.set_ylabel("panes", fontsize=8)
    right.tick_params(labelsize=7)
    right.set_ylim(bottom=0)
    ax.plot([], [], color="#e76f51", label="sink (panes written to the window results, right axis)")
    return _finish(ax, "source versus sink", "records")


def lag(run: Any, ax=None):
    """The consumer lag of each partition, and records.lag-max."""
    ax = _axes(ax, 3)
    m = metrics(run)
    if "records.lag-max" in m:  # underneath, wide and pale: a partition at the maximum still shows on it
        top = m["records.lag-max"][0]
        ax.plot(_seconds(top.time), top.value, color="#bbbbbb", lw=4, zorder=1, label="records.lag-max")
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, series in enumerate(m.get("records.lag", [])):  # a colour and a dash each: equal series stay visible
        ax.plot(_seconds(series.time), series.value, lw=1.2, color=colors[k % len(colors)],
                ls=_DASHES[k % len(_DASHES)], zorder=2 + k, label=series.label)
    return _finish(ax, "consumer lag", "records behind", ncol=3)


#: file name -> plot function, and whether it applies to a run
PLOTS = {
    "timeline": (timeline, lambda run: True),
    "watermarks": (watermarks, lambda run: getattr(run, "windows", None) is not None),
    "late_data": (late_data, lambda run: getattr(run, "windows", None) is not None
                  and getattr(run.scenario.window, "kind", "session") != "session"),
    "checkpoints": (checkpoint_durations, lambda run: getattr(run.scenario, "checkpoint", None) is not None),
    "source_vs_sink": (source_vs_sink, lambda run: getattr(run.scenario, "saga", None) is None),
    "lag": (lag, lambda run: getattr(run.scenario, "saga", None) is None),
}


def write_plots(run: Any, out_dir: str | Path, dpi: int = 100) -> list[Path]:
    """Render every plot that applies to `run` into `out_dir` as NAME.png; the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (draw, applies) in PLOTS.items():
        if not applies(run):
            continue
        fig = Figure(figsize=(10, 4 if name in ("timeline", "watermarks", "late_data") else 3))
        draw(run, fig.add_subplot())
        fig.tight_layout()
        path = out / f"{name}.png"
        with atomic_file(path) as f:  # whole, or not there
            fig.savefig(f, dpi=dpi, format="png")
        written.append(path)
    return written
