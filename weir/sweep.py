"""Seed sweeps: one scenario over many seeds, on a process pool.

A run is the pure function `run(scenario, seed, faults) -> RunResult`, and the result is small and
picklable, so a sweep hands seeds to worker processes and gathers their results; which worker ran
which seed changes nothing, and the sweep's results are in seed order whatever order they finished
in (weir/sim/scenario/pool.py). `workers=1` runs in this process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict

from weir.sim.kernel.errors import ScenarioError
from weir.sim.kernel.schema import SCHEMA_VERSION
from weir.sim.scenario.journal import Journal
from weir.sim.scenario.pool import Interrupted, run_all, ship
from weir.sim.scenario.model import SEED_ACCEPTS, Fault, Scenario, is_seed, tuple_of
from weir.sim.scenario.loader import load_scenario

from .api import RunResult, result_from_record, result_record, run

__all__ = ["Sweep", "SweepJSON", "sweep"]


class TallyJSON(TypedDict):
    """One invariant over the seeds: what the scenario expects, in how many seeds it held and was
    violated, and the seeds where the run disagreed with the expectation."""

    expected: Literal["hold", "violate"] | None
    held: int
    violated: int
    violated_share: float  # of the seeds swept (for a `violate` claim: how often the flaw shows)
    unexpected: list[int]


class SweepJSON(TypedDict):
    """One scenario over many seeds: `weir sweep --json`."""

    schema_version: Literal[2]
    scenario: str
    seeds: list[int]
    workers: int
    seconds: float
    as_expected: bool
    failing_seeds: list[int]
    tally: dict[str, TallyJSON]
    trace_sha256: dict[str, str]  # seed (as text) -> the run's trace hash


@dataclass(frozen=True)
class Sweep:
    """The results of one scenario over many seeds, in seed order."""

    scenario: str
    results: tuple[RunResult, ...]
    workers: int
    seconds: float  # wall-clock time the sweep took (the one figure here that is not deterministic)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(r.seed for r in self.results)

    @property
    def matches(self) -> bool:
        """Whether every seed's run bore out every stated expectation."""
        return all(r.matches for r in self.results)

    def failing_seeds(self) -> tuple[int, ...]:
        """The seeds whose run was not as the scenario expects."""
        return tuple(r.seed for r in self.results if not r.matches)

    def tally(self) -> dict[str, TallyJSON]:
        """Per invariant: what the scenario expects, in how many seeds it held and was violated, and
        the seeds where the run disagreed with the expectation: a `hold` claim violated on any seed,
        a `violate` claim that did not show on the scenario's own seed (on the others it is a
        demonstration that may or may not show: its share of seeds is reported, not judged)."""
        out: dict[str, TallyJSON] = {}
        for r in self.results:
            for e in r.expectations:
                row = out.setdefault(e.invariant, {"expected": e.expected, "held": 0, "violated": 0,
                                                   "violated_share": 0.0, "unexpected": []})
                if e.held:
                    row["held"] += 1
                else:
                    row["violated"] += 1
                if not e.met:
                    row["unexpected"].append(r.seed)
        for row in out.values():
            row["violated_share"] = round(row["violated"] / (row["held"] + row["violated"]), 4)
        return out

    def to_dict(self) -> SweepJSON:
        """`weir sweep --json` (`weir schema sweep`)."""
        return {"schema_version": SCHEMA_VERSION, "scenario": self.scenario, "seeds": list(self.seeds), "workers": self.workers,
                "seconds": round(self.seconds, 3), "as_expected": self.matches,
                "failing_seeds": list(self.failing_seeds()), "tally": self.tally(),
                "trace_sha256": {str(r.seed): r.trace_sha256 for r in self.results}}


#: The most worker processes a sweep (or matrix) takes.
MAX_WORKERS = 256


def _check_options(workers: object, faults: object, progress: object, journal: object, resume: object) -> None:
    """A one-line ScenarioError for a sweep option it cannot take, before anything runs (a wrong
    one failed in a worker process, or broke the pool)."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or not 1 <= workers <= MAX_WORKERS):
        raise ScenarioError("workers", workers, f"a whole number from 1 to {MAX_WORKERS}, or None (one per CPU)")
    if progress is not None and not callable(progress):
        raise ScenarioError("progress", progress, "a function of (done, total), or None")
    if journal is not None and not isinstance(journal, (str, os.PathLike)):
        raise ScenarioError("journal", journal, "a path (a str or a pathlib.Path), or None")
    if resume and journal is None:
        raise ScenarioError("resume", resume, "False without a journal (a sweep resumes from its journal's runs)")


def sweep(scenario: Scenario | str, seeds: Iterable[int], workers: int | None = None,
          faults: tuple[Fault, ...] | None = None, progress: Callable[[int, int], None] | None = None,
          journal: str | Path | None = None, resume: bool = False, executor: Any = None) -> Sweep:
    """Run `scenario` once per seed (with `faults`, default its own) on `workers` processes (default:
    one per CPU, at most one per seed), or on `executor` (a Dask cluster's: weir.cluster.dask_executor;
    the same results, hash for hash); `progress(done, total)` as the runs start
    (done: what a resumed journal holds) and after each run.

    `journal`: a file that gets one JSON line per finished run as it lands (weir.sim.scenario.journal); with
    `resume`, the runs it already holds are not run again. Interrupted (Ctrl-C), it raises
    weir.sim.scenario.pool.Interrupted, whose `partial` is the Sweep of the seeds that finished."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    accepts = f"seeds, each {SEED_ACCEPTS}, as a list or a range (range(20): 20 seeds)"
    if not isinstance(seeds, Iterable) or isinstance(seeds, (str, bytes)):
        raise ScenarioError("seeds", seeds, accepts)
    given: list[Any] = list(seeds)
    bad = [s for s in given if not is_seed(s)]
    if bad:
        raise ScenarioError("seeds", bad[0], accepts)
    seeds = list(dict.fromkeys(int(s) for s in given))
    _check_options(workers, faults, progress, journal, resume)
    if faults is not None:
        faults = tuple_of("faults", faults, Fault)
    workers = getattr(executor, "workers", None) or max(1, min(workers or os.cpu_count() or 1, len(seeds) or 1))
    started = time.perf_counter()  # reported, never used to decide anything
    book, done = None, {}
    if journal is not None:
        identity = {"scenario": scenario.name, "definition": _digest(scenario), "seeds": seeds,
                    "faults": None if faults is None else [asdict(f) for f in faults]}
        book = Journal(journal, "sweep", identity, resume, result_record, result_from_record)
        index = {seed: i for i, seed in enumerate(seeds)}
        done = {index[seed]: r for seed, r in book.done.items() if seed in index}
    ship(executor, [scenario])  # the user's own modules, to a cluster's workers
    try:
        results = run_all(run, [(scenario, seed, faults) for seed in seeds], workers, progress, done,
                          None if book is None else (lambda i, r: book.add(seeds[i], r)), executor)
    except Interrupted as e:
        e.partial = Sweep(scenario.name, tuple(e.results[i] for i in sorted(e.results)), workers,
                          time.perf_counter() - started)
        raise
    finally:
        if book is not None:
            book.close()
    return Sweep(scenario.name, tuple(results), workers, time.perf_counter() - started)


def _digest(scenario: Scenario) -> str:
    """What identifies a scenario's definition in a journal (its name alone does not: it may be edited)."""
    import hashlib
    return hashlib.sha256(repr(scenario).encode()).hexdigest()[:16]
