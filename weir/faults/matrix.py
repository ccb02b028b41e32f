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
from weir.sim.scenario.pool import run_all
from weir.sim.kernel.rng import RngStreams
from weir.sim.kernel.schema import SCHEMA_VERSION
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Fault, Scenario
from weir.sim.scenario.loader import load_scenario

from weir.faults.explore import random_schedule

__all__ = ["PATTERNS", "MATRIX_KINDS", "Cell", "Matrix", "MatrixJSON", "correctness_matrix"]

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
    if kind.startswith("store_"):
        return scenario.checkpoint is not None
    if kind.startswith("sink_"):
        return scenario.saga is None
    return True


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


class MatrixJSON(TypedDict):
    """The pattern x fault matrix: `weir matrix --json`."""

    schema_version: Literal[1]
    patterns: list[str]
    kinds: list[str]
    runs: int
    seed: int
    claims: dict[str, list[str]]
    costs: dict[str, CostJSON]
    cells: dict[str, dict[str, CellJSON]]  # pattern -> fault family -> cell


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
                          for p in self.patterns}}


def _one(scenario: Scenario, seed: int, faults: tuple[Fault, ...], claims: tuple[str, ...]) -> tuple[str, ...]:
    """Run once; the claims that broke."""
    return tuple(v.invariant for v in check(execute(scenario, seed, faults), claims) if not v.held)


def _cost(scenario: Scenario) -> CostJSON:
    """The fault-free run's cost: when it drained, and the median time from a record's event time to
    when a reader of the sink can see it (its write; with two-phase commit, the commit after it)."""
    from weir.sim.kernel.trace import Kind
    run = execute(scenario, scenario.seed, ())
    latency = None
    sink = run.sink
    if "written_at" in sink and "record_id" in sink and len(sink["record_id"]) and scenario.window is None:
        order = np.argsort(run.source["record_id"], kind="stable")
        ids, event = run.source["record_id"][order], run.source["event_time"][order]
        at = np.minimum(np.searchsorted(ids, sink["record_id"]), len(ids) - 1)
        known = ids[at] == sink["record_id"]
        visible = sink["written_at"][known]
        if scenario.pipeline.sink == "transactional":  # no clock faults here: the sink's clock is true time
            cols = run.trace.columns
            commits = np.sort(cols["time"][cols["kind"] == Kind.TXN_COMMIT])
            if len(commits):
                visible = commits[np.minimum(np.searchsorted(commits, visible), len(commits) - 1)]
        if len(visible):
            latency = int(np.median(visible - event[at][known]))
    return {"drained_at_us": int(run.end_time), "p50_latency_us": latency}


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
