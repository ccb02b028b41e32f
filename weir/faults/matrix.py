"""The pattern x fault correctness matrix: the seed's comparison tables, measured instead of asserted.

Each pattern is a built-in scenario with its scripted faults taken away, and the promise the
pattern makes (at-least-once promises no loss, the outbox that every order has exactly one event,
...). For each fault family, the matrix runs the pattern under `runs` random schedules of that
family alone (the explore nemesis: one to three faults anywhere in the fault-free run's time) and
counts the runs in which the promise, and draining, held. A cell reads `10/10`, or `4/10` with the
claim that broke most often. The fault-free run gives each row's cost: when it drained and, for
record sinks, the median end-to-end latency (event time to sink write).

Every run's seed and schedule come from named streams of the matrix's seed, so the matrix is a
pure function of (patterns, kinds, runs, seed), on one process or many.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from pathlib import Path

import numpy as np

from weir.analysis.checkers import check
from weir.analysis.metrics import visible_latency
from weir.sim.scenario.pool import run_all
from weir.sim.kernel.rng import RngStreams
from weir.sim.kernel.schema import SCHEMA_VERSION
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Fault, Scenario
from weir.sim.scenario.loader import load_scenario

from weir.faults.explore import applicable_kinds, random_schedule

__all__ = ["PATTERNS", "MATRIX_KINDS", "Cell", "Matrix", "MatrixJSON", "heatmap", "comparison", "decisions", "correctness_matrix"]

#: pattern -> (built-in scenario, what the pattern promises)
PATTERNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "at-most-once": ("at_most_once_crash", ("no_duplicates",)),
    "at-least-once": ("at_least_once_crash", ("no_loss",)),
    "commit before ack": ("commit_before_ack", ("no_loss",)),
    "idempotent sink, commit on poll": ("idempotent_sink_early_commit", ("exactly_once",)),
    "exactly-once, upsert": ("exactly_once_crash", ("exactly_once",)),
    "exactly-once, two-phase commit": ("kafka_to_delta", ("exactly_once",)),
    "payments, dedup store + MERGE": ("payments_idempotent", ("no_double_charge", "payments_complete")),
    "transactional outbox + CDC": ("outbox_cdc", ("outbox_consistent",)),
    "dual write": ("dual_write", ("outbox_consistent",)),
    "saga with compensation": ("saga_compensation", ("saga_atomic", "no_double_compensation")),
}

#: the fault families of the columns (each alone in a run)
MATRIX_KINDS = ("crash", "partition", "pause", "duplicate", "reorder", "clock_step", "sink_ack_lost", "store_fail")


def _applies(scenario: Scenario, kind: str) -> bool:
    return kind in applicable_kinds(scenario)


class FirstFailureJSON(TypedDict):
    seed: int
    faults: list[str]  # each as weir describes it


class CellJSON(TypedDict):
    """A pattern under a fault family: runs, how many held, per claim the runs that broke it."""

    runs: int
    held: int
    broken: dict[str, int]
    first_failure: FirstFailureJSON | None


class CostJSON(TypedDict):
    """The pattern's fault-free run: when it drained, the median end-to-end latency (null: not a record sink)."""

    drained_at_us: int
    p50_latency_us: int | None
    records: int  # the workload (records, orders or sagas), for throughput: records over drained_at_us
    state: str  # what the pattern keeps to recover, measured in the fault-free run
    lines: int  # the scenario's length: lines of TOML that are not blank or comments (complexity)


class MatrixJSON(TypedDict):
    """The pattern x fault matrix: `weir matrix --json`."""

    schema_version: Literal[2]
    patterns: list[str]
    kinds: list[str]
    runs: int
    seed: int
    claims: dict[str, list[str]]
    costs: dict[str, CostJSON]
    cells: dict[str, dict[str, CellJSON]]  # pattern -> fault family -> cell
    comparison: list[ComparisonJSON]  # the seed's section 8, measured
    decisions: list[DecisionJSON]


@dataclass(frozen=True)
class Cell:
    runs: int
    held: int
    broken: dict[str, int] = field(default_factory=dict)  # claim -> runs that broke it
    first_failure: tuple[int, tuple[Fault, ...]] | None = None  # (seed, schedule) of the first run that broke

    def text(self) -> str:
        if self.runs == 0:
            return "n/a"
        if self.held == self.runs:
            return f"{self.held}/{self.runs}"
        claim = max(sorted(self.broken), key=lambda c: self.broken[c])
        return f"{self.held}/{self.runs} {claim}"


@dataclass(frozen=True)
class Matrix:
    patterns: tuple[str, ...]
    kinds: tuple[str, ...]
    cells: dict[tuple[str, str], Cell]
    costs: dict[str, CostJSON]  # pattern -> drained_at_us, p50_latency_us (None without a record sink)
    claims: dict[str, tuple[str, ...]]
    runs: int
    seed: int

    def to_dict(self) -> MatrixJSON:
        """`weir matrix --json` (`weir schema matrix`)."""
        return {"schema_version": SCHEMA_VERSION, "patterns": list(self.patterns), "kinds": list(self.kinds), "runs": self.runs, "seed": self.seed,
                "claims": {p: list(c) for p, c in self.claims.items()}, "costs": self.costs,
                "cells": {p: {k: {"runs": c.runs, "held": c.held, "broken": dict(c.broken),
                                  "first_failure": None if c.first_failure is None else {
                                      "seed": c.first_failure[0], "faults": [f.describe() for f in c.first_failure[1]]}}
                              for (pp, k), c in self.cells.items() if pp == p}
                          for p in self.patterns},
                "comparison": comparison(self), "decisions": decisions(self)}


def heatmap(matrix: Matrix, ax: Any = None) -> Any:
    """The matrix as a picture: a cell per pattern and fault family, coloured by the share of runs in
    which the promise held (green all, red none, grey: the family does not apply), with the count
    and the claim that broke most written in it. Draws on `ax`, or on a Figure of its own; the Axes."""
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.figure import Figure
    if ax is None:
        ax = Figure(figsize=(1.1 * len(matrix.kinds) + 3.5, 0.45 * len(matrix.patterns) + 1.6)).add_subplot()
    share = np.full((len(matrix.patterns), len(matrix.kinds)), np.nan)
    for i, pattern in enumerate(matrix.patterns):
        for j, kind in enumerate(matrix.kinds):
            cell = matrix.cells[(pattern, kind)]
            if cell.runs:
                share[i, j] = cell.held / cell.runs
    colours = LinearSegmentedColormap.from_list("held", ["#d1495b", "#edae49", "#4c9f70"]).with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(share), cmap=colours, vmin=0, vmax=1, aspect="auto")
    for i, pattern in enumerate(matrix.patterns):
        for j, kind in enumerate(matrix.kinds):
            cell = matrix.cells[(pattern, kind)]
            text = cell.text().replace(" ", "\n", 1)
            ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color="black" if cell.runs else "#777777")
    ax.set_xticks(range(len(matrix.kinds)), matrix.kinds, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(matrix.patterns)),
                  [f"{p} ({', '.join(c for c in matrix.claims[p] if c != 'drained')})" for p in matrix.patterns],
                  fontsize=8)
    ax.set_title(f"Does the pattern keep its promise? Runs that held, of {matrix.runs} per fault family "
                 f"(matrix seed {matrix.seed})", fontsize=9)
    ax.figure.colorbar(image, ax=ax, fraction=0.03, pad=0.02, label="share of runs that held")
    return ax


def _one(scenario: Scenario, seed: int, faults: tuple[Fault, ...], claims: tuple[str, ...]) -> tuple[str, ...]:
    """Run once; the claims that broke."""
    return tuple(v.invariant for v in check(execute(scenario, seed, faults), claims) if not v.held)


def _cost(scenario: Scenario) -> CostJSON:
    """The fault-free run's cost: when it drained, and the median time from a record's event time to
    when a reader of the sink can see it (its write; with two-phase commit, the commit after it)."""
    run = execute(scenario, scenario.seed, ())
    latencies = visible_latency(run)  # no clock faults here: the sink's clock is true time
    latency = int(np.median(latencies)) if latencies is not None and len(latencies) else None
    return {"drained_at_us": int(run.end_time), "p50_latency_us": latency, "records": scenario.workload.records,
            "state": _state_kept(run),
            "lines": _lines(scenario.name)}


def _state_kept(run: Any) -> str:
    """What a pattern keeps so that it can recover, as measured in its run."""
    kept = []
    stats = run.checkpoint_stats or {}
    if stats.get("completed"):
        kept.append(f"checkpoints of up to {stats.get('max_bytes', 0):,} bytes")
    if run.payment_of is not None:
        kept.append(f"{len(np.unique(run.payment_of)):,} dedup keys (payment ids)")
    if run.orders is not None:
        kept.append(f"an outbox table ({len(run.orders):,} rows)")
    if run.saga is not None:
        kept.append(f"a saga log ({len(run.saga['saga']):,} steps for {len(run.saga['outcome']):,} sagas)")
    if run.scenario.pipeline.sink in ("upsert", "transactional"):
        kept.append("a sink keyed for dedup")
    return "; ".join(kept) or "committed offsets only"


def _lines(name: str) -> int:
    """A built-in scenario's length: its TOML lines that are not blank or comments."""
    from weir.sim.scenario.loader import builtin_scenarios
    text = builtin_scenarios()[name].read_text(encoding="utf-8")
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))


#: The seed's section 8: which of its comparison matrix's columns each pattern stands for.
SEED_COLUMNS = {"exactly-once, two-phase commit": "Exactly-Once Processing",
                "exactly-once, upsert": "Exactly-Once Processing",
                "payments, dedup store + MERGE": "At-Least-Once + Dedup",
                "saga with compensation": "Saga/Compensation"}
#: Claims that say nothing is lost, and claims that say nothing is doubled.
NO_LOSS = ("no_loss", "exactly_once", "payments_complete", "outbox_consistent", "saga_atomic")
NO_DUPLICATES = ("no_duplicates", "exactly_once", "no_double_charge", "outbox_consistent", "no_double_compensation")


class ComparisonJSON(TypedDict):
    pattern: str
    seed_column: str | None  # the seed's comparison-matrix column it stands for
    lines: int
    p50_latency_us: int | None
    state: str
    recovery: str  # how it fared under crashes


class DecisionJSON(TypedDict):
    requirement: str
    recommended: list[str]
    why: str


def _held_everywhere(matrix: Matrix, pattern: str) -> bool:
    return all(c.held == c.runs for (p, _k), c in matrix.cells.items() if p == pattern)


def comparison(matrix: Matrix) -> list[ComparisonJSON]:
    """The seed's comparison matrix, measured: per pattern, its complexity (lines of scenario), its
    median latency, what state it keeps, and how it recovered from crashes (the crash column)."""
    rows: list[ComparisonJSON] = []
    for pattern in matrix.patterns:
        cost = matrix.costs[pattern]
        crash = matrix.cells.get((pattern, "crash"))
        if crash is None or crash.runs == 0:
            recovery = "not measured"
        elif crash.held == crash.runs:
            recovery = f"automatic: held in {crash.held}/{crash.runs} crash schedules"
        else:
            recovery = f"broke in {crash.runs - crash.held}/{crash.runs} crash schedules: " + ", ".join(sorted(crash.broken))
        rows.append({"pattern": pattern, "seed_column": SEED_COLUMNS.get(pattern), "lines": cost["lines"],
                     "p50_latency_us": cost["p50_latency_us"], "state": cost["state"], "recovery": recovery})
    return rows


def decisions(matrix: Matrix) -> list[DecisionJSON]:
    """The seed's decision matrix, from the measurements: for each requirement, the patterns that
    kept that promise in every run of the matrix, best first by the requirement's own measure."""
    def keeping(claims: tuple[str, ...]) -> list[str]:
        return [p for p in matrix.patterns if set(matrix.claims[p]) & set(claims) and _held_everywhere(matrix, p)]

    def latency(p: str) -> float:
        value = matrix.costs[p]["p50_latency_us"]
        return float("inf") if value is None else value

    out: list[DecisionJSON] = []
    safe = sorted(keeping(NO_LOSS), key=latency)
    out.append({"requirement": "must never lose data", "recommended": safe,
                "why": "kept a no-loss promise in every run, lowest median latency first"})
    once = sorted(keeping(NO_DUPLICATES), key=latency)
    out.append({"requirement": "must never duplicate", "recommended": once,
                "why": "kept a no-duplicates promise in every run, lowest median latency first"})
    spans = [p for p in matrix.patterns if "saga_atomic" in matrix.claims[p] and _held_everywhere(matrix, p)]
    out.append({"requirement": "span multiple services", "recommended": spans,
                "why": "all-or-nothing across services (saga_atomic) in every run"})
    fast = sorted(safe, key=lambda p: -matrix.costs[p]["records"] / max(1, matrix.costs[p]["drained_at_us"]))[:3]
    out.append({"requirement": "high throughput priority", "recommended": fast,
                "why": "of those that never lost data, the most records per second of simulated time"})
    kept = [p for p in matrix.patterns if _held_everywhere(matrix, p)]
    small = sorted(kept, key=lambda p: matrix.costs[p]["lines"])[:3]
    out.append({"requirement": "minimal infrastructure", "recommended": small,
                "why": "of those that kept their promise in every run, the fewest lines of scenario"})
    out.append({"requirement": "need full audit history", "recommended": [],
                "why": "event sourcing is not simulated"})
    return out


def correctness_matrix(patterns: Iterable[str] | None = None, kinds: Iterable[str] | None = None, runs: int = 10,
                       seed: int = 0, workers: int = 1,
                       progress: Callable[[int, int], None] | None = None,
                       journal: str | Path | None = None, resume: bool = False, executor: Any = None) -> Matrix:
    """Measure each pattern's promise under `runs` random schedules of each fault family, on
    `workers` processes or on `executor` (a Dask cluster's: weir.cluster.dask_executor).

    `journal` and `resume` as weir.sweep.sweep's: a JSON line per finished run, and a resume that
    runs only what is missing; interrupted, it raises weir.sim.scenario.pool.Interrupted."""
    patterns = tuple(patterns or PATTERNS)
    kinds = tuple(kinds or MATRIX_KINDS)
    unknown = [p for p in patterns if p not in PATTERNS] + [k for k in kinds if k not in MATRIX_KINDS]
    if unknown:
        raise ValueError(f"unknown pattern or fault family {unknown[0]!r}; patterns: {', '.join(PATTERNS)}; "
                         f"fault families: {', '.join(MATRIX_KINDS)}")
    rngs = RngStreams(seed)
    jobs: list[tuple[str, str, int, tuple[Fault, ...]]] = []
    scenarios, claims, costs = {}, {}, {}
    for pattern in patterns:
        name, promise = PATTERNS[pattern]
        base = load_scenario(name).with_faults(())
        scenarios[pattern], claims[pattern] = base, (*promise, "drained")
        costs[pattern] = _cost(base)
        horizon = max(1, costs[pattern]["drained_at_us"])
        for kind in kinds:
            if not _applies(base, kind):
                continue
            rng = rngs.stream(f"matrix.{pattern}.{kind}")
            for _ in range(runs):
                run_seed = int(rng.integers(0, 2**31))
                jobs.append((pattern, kind, run_seed, random_schedule(rng, base.node_names, horizon, 3, {kind: 1.0})))
    book, done = None, {}
    if journal is not None:
        from weir.sim.scenario.journal import Journal
        book = Journal(journal, "matrix", {"patterns": list(patterns), "kinds": list(kinds), "runs": runs, "seed": seed,
                                           "jobs": len(jobs)}, resume, list, tuple)
        done = {k: v for k, v in book.done.items() if isinstance(k, int) and 0 <= k < len(jobs)}
    try:
        results = run_all(_one, [(scenarios[p], s, f, claims[p]) for p, _k, s, f in jobs], workers, progress, done,
                          None if book is None else book.add, executor)
    finally:
        if book is not None:
            book.close()
    cells: dict[tuple[str, str], Cell] = {}
    for pattern in patterns:
        for kind in kinds:
            mine = [i for i, (p, k, _s, _f) in enumerate(jobs) if p == pattern and k == kind]
            broken = Counter(c for i in mine for c in results[i])
            failed = [i for i in mine if results[i]]
            first = (jobs[failed[0]][2], jobs[failed[0]][3]) if failed else None
            cells[(pattern, kind)] = Cell(len(mine), len(mine) - len(failed), dict(sorted(broken.items())), first)
    return Matrix(patterns, kinds, cells, costs, claims, runs, seed)
