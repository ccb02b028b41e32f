"""The seed's trick question 1, measured: should the checkpoint interval be 1 second or 1 minute?

For each interval, the same scenario runs with no fault, for what checkpoints cost while
all is well (the share of the time the checkpoint store spends writing snapshots, how often one
actually completes, and the end-to-end latency a reader of a two-phase-commit sink sees, since its
rows become visible only when the checkpoint after them commits); then `crashes` more times, each
with one processor crash at another point of a checkpoint cycle, for what a failure costs (the
records processed a second time after the restore, averaged over the crashes). A short interval buys little replay with a lot of writing, and cannot
buy less replay than a snapshot takes to write; a long one is cheap until something fails, and
delays every row by about half of it.

`plot` draws the three measures against the interval. Rows are plain dicts (IntervalJSON), so the
result is picklable and JSON-able like every other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypedDict

import numpy as np

from weir.analysis.metrics import visible_latency
from weir.sim.kernel.trace import Kind
from weir.sim.scenario.model import Fault, Scenario
from weir.sim.scenario.pool import run_all
from weir.sim.scenario.run import Run, execute

__all__ = ["IntervalJSON", "checkpoint_intervals", "crash_times", "plot"]


class IntervalJSON(TypedDict):
    interval_us: int
    triggered: int  # checkpoints triggered in the run with no fault
    completed: int  # ... and completed
    mean_gap_us: int | None  # the mean time between two completed checkpoints: the interval you really get
    store_busy: float  # the share of the run's time the store spent writing snapshots (0..1)
    p50_latency_us: int | None  # median event time to visible in the sink (None: not a record sink)
    replayed_per_crash: float  # records processed again after a restore, per crash
    crashes: int
    drained_at_us: int  # when the run with no fault finished


def crash_times(calm: Run, crashes: int) -> tuple[int, ...]:
    """`crashes` moments spread evenly over one checkpoint cycle of a run with no fault: from the
    last trigger before the middle of the run to the next one (at 1/6, 1/2 and 5/6 of it, for 3).
    A crash at a random moment replays, on average, what these replay: the records since the last
    checkpoint that completed, wherever in its cycle the crash falls."""
    cols = calm.trace.columns
    triggers = cols["time"][cols["kind"] == Kind.CKPT_TRIGGER]
    k = max(0, int(np.searchsorted(triggers, calm.end_time // 2)) - 1)
    if k + 1 >= len(triggers):
        raise ValueError(f"{calm.scenario.name}: the run triggers {len(triggers)} checkpoint(s); a cycle "
                         "to crash in needs two: a workload longer than two intervals")
    start, cycle = int(triggers[k]), int(triggers[k + 1] - triggers[k])
    return tuple(start + cycle * (2 * i + 1) // (2 * crashes) for i in range(crashes))


def _measure(scenario: Scenario, seed: int, crashes: int, down_for: int | str) -> IntervalJSON:
    calm = execute(scenario, seed, ())
    replayed = []
    for at in crash_times(calm, crashes):
        crashed = execute(scenario, seed, (Fault(kind="crash", node="processor", at=at, down_for=down_for),))
        replayed.append(sum(s["records"] for s in crashed.subtasks) - len(crashed.source["record_id"]))
    return _row(scenario, calm, replayed)


def _row(scenario: Scenario, calm: Run, replayed: list[int]) -> IntervalJSON:
    cols = calm.trace.columns
    done = np.flatnonzero(cols["kind"] == Kind.CKPT_COMPLETE)
    failed = np.flatnonzero(cols["kind"] == Kind.CKPT_ABORT)
    writing = int(cols["b"][done].sum() + cols["b"][failed].sum())  # each one's duration, trigger to end
    ends = cols["time"][done]
    latencies = visible_latency(calm)
    stats = calm.checkpoint_stats or {}
    assert scenario.checkpoint is not None
    return {
        "interval_us": int(scenario.checkpoint.interval),
        "triggered": int(stats.get("triggered", 0)), "completed": int(stats.get("completed", len(done))),
        "mean_gap_us": int(np.diff(ends).mean()) if len(ends) > 1 else None,
        "store_busy": round(min(1.0, writing / max(calm.end_time, 1)), 4),
        "p50_latency_us": int(np.median(latencies)) if latencies is not None and len(latencies) else None,
        "replayed_per_crash": round(float(np.mean(replayed)), 1) if replayed else 0.0,
        "crashes": len(replayed), "drained_at_us": int(calm.end_time),
    }


def checkpoint_intervals(scenario: Scenario, intervals: Iterable[int | str], *, crashes: int = 3,
                         down_for: int | str = "100ms", seed: int | None = None,
                         workers: int = 1) -> list[IntervalJSON]:
    """One row per checkpoint interval (durations as in a scenario file: '10ms', '3s' or microseconds):
    what checkpointing costs with no fault, and what a processor crash (down for `down_for`) costs
    in replayed records: the mean over `crashes` runs, each crashing once at one of `crash_times`.
    The scenario's own faults are not used."""
    if scenario.checkpoint is None:
        raise ValueError(f"{scenario.name}: checkpoint intervals need a [checkpoint] table")
    seed = scenario.seed if seed is None else seed
    variants = [scenario.with_settings({"checkpoint.interval": interval}) for interval in intervals]
    return run_all(_measure, [(v, seed, crashes, down_for) for v in variants], workers)


def _tick(value: float, unit: str) -> str:
    """An interval's tick label: seconds past a minute as minutes ('90 s' is '1.5 min')."""
    return f"{value / 60:g} min" if unit == "s" and value >= 60 else f"{value:g} {unit}"


def plot(rows: Sequence[IntervalJSON], scale: float = 1.0, unit: str = "s", ax: Any = None) -> Any:
    """Checkpoint overhead, replay after a crash and two-phase-commit latency against the interval, in
    three panels sharing the interval axis (log scale). `scale` and `unit` label simulated time as
    the time it stands for (scale=100: a simulated 10ms is labelled 1 s). Draws on a Figure of its
    own (or `ax`, an array of three Axes); returns the Axes."""
    from matplotlib.figure import Figure
    if ax is None:
        ax = Figure(figsize=(10, 7.5), layout="constrained").subplots(3, 1, sharex=True)
    x = np.array([r["interval_us"] for r in rows], dtype=float) / 1e6 * scale
    busy = np.array([r["store_busy"] for r in rows]) * 100
    gap = np.array([np.nan if r["mean_gap_us"] is None else r["mean_gap_us"] for r in rows], dtype=float) / 1e6 * scale
    replay = np.array([r["replayed_per_crash"] for r in rows])
    latency = np.array([np.nan if r["p50_latency_us"] is None else r["p50_latency_us"] for r in rows],
                       dtype=float) / 1e6 * scale
    top, middle, bottom = ax
    top.plot(x, busy, "o-", color="#d1495b", label="checkpoint store busy writing snapshots (% of the run)")
    twin = top.twinx()
    twin.plot(x, gap, "s--", color="#264653", label=f"time between completed checkpoints ({unit})")
    twin.plot(x, x, ":", color="#999999", label="the interval asked for")
    twin.set_ylabel(f"between checkpoints ({unit})")
    twin.set_yscale("log")
    top.set_ylabel("store busy (%)")
    top.set_ylim(0, 105)
    handles = top.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    top.legend(handles[0] + more[0], handles[1] + more[1], fontsize=7, loc="center right")
    top.set_title("checkpoint overhead, with no fault")
    middle.plot(x, replay, "o-", color="#edae49", label="records processed again after a restore (mean per crash)")
    middle.set_ylabel("records replayed")
    middle.set_title(f"replay after a crash ({rows[0]['crashes'] if rows else 0} crashes)")
    middle.legend(fontsize=7)
    bottom.plot(x, latency, "o-", color="#4c9f70", label="median event time to visible (two-phase commit)")
    bottom.set_ylabel(f"latency ({unit})")
    bottom.set_yscale("log")
    bottom.set_title("end-to-end latency, with no fault")
    bottom.legend(fontsize=7)
    middle.set_ylim(bottom=0)
    bottom.set_xscale("log")
    bottom.set_xticks(x, [_tick(v, unit) for v in x])
    bottom.minorticks_off()
    bottom.set_xlabel(f"checkpoint interval ({unit}{'' if scale == 1 else f', simulated time x {scale:g}'})")
    return ax
