"""Exploration: search fault schedules and seeds for a violated claim, then shrink it.

`explore(scenario, budget_s, seed)` runs the scenario again and again with random crash
schedules from a nemesis (`random_schedule`), its own schedule first, each run with its own seed,
until a run breaks one of the scenario's claims (an invariant in `expect.hold`, or `drained`) or
the time budget is spent. A counterexample is then shrunk, keeping the seed, one step at a time
and keeping each step only if the claim still breaks:

1. fewer faults: drop each fault in turn;
2. earlier faults: move each fault's `at` as early as it can go (a binary search);
3. shorter faults: cut each fault's `down_for` as short as it can go (a binary search);
4. fewer records: halve `workload.records` while the claim still breaks.

The result is a small `Counterexample`: the scenario, the seed, the fault schedule, the broken
invariant and its evidence. Every run is the pure function `execute(scenario, seed, faults)`, so a
counterexample replays exactly; the wall-clock budget only decides how far the search gets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from analysis.checkers import Verdict, check
from sim.rng import RngStreams
from sim.run import execute
from sim.scenario import Fault, Scenario

__all__ = ["Counterexample", "ExploreReport", "explore", "random_schedule", "broken_claim", "shrink"]

MIN_RECORDS = 100  # shrinking the workload stops here


@dataclass(frozen=True)
class Counterexample:
    """A run that breaks a claim: replay it with `execute(scenario, seed, faults)`."""

    scenario: Scenario  # with the shrunk workload, if it was shrunk
    seed: int
    faults: tuple[Fault, ...]
    verdict: Verdict  # the broken claim, from the shrunk run
    found_faults: tuple[Fault, ...]  # the schedule as the search found it, before shrinking


@dataclass
class ExploreReport:
    """What a search did: runs, time, and the counterexample (None if nothing broke)."""

    runs: int = 0
    shrink_runs: int = 0
    seconds: float = 0.0
    counterexample: Counterexample | None = None
    claims: tuple[str, ...] = field(default=())

    @property
    def runs_per_second(self) -> float:
        return (self.runs + self.shrink_runs) / self.seconds if self.seconds else 0.0


def claims(scenario: Scenario) -> tuple[str, ...]:
    """What a run must show: the invariants the scenario says hold, and that it drains."""
    return tuple(dict.fromkeys((*scenario.expect.hold, "drained")))


def broken_claim(scenario: Scenario, seed: int, faults: tuple[Fault, ...]) -> Verdict | None:
    """Run once; the first claim the run breaks, or None."""
    run = execute(scenario, seed, faults)
    for v in check(run, claims(scenario)):
        if not v.held:
            return v
    return None


def random_schedule(rng: np.random.Generator, nodes: tuple[str, ...], horizon: int, max_faults: int = 3) -> tuple[Fault, ...]:
    """A nemesis: 1 to max_faults crash-restarts of random nodes at random times before `horizon`,
    each down for 1ms to a quarter of the horizon, in time order."""
    k = int(rng.integers(1, max_faults + 1))
    longest = max(1_000, horizon // 4)
    faults = [Fault(kind="crash", node=str(nodes[int(rng.integers(len(nodes)))]), at=int(rng.integers(0, max(horizon, 1))),
                    down_for=int(rng.integers(1_000, longest + 1))) for _ in range(k)]
    return tuple(sorted(faults, key=lambda f: (f.at, f.node)))


def _fault_nodes(scenario: Scenario) -> tuple[str, ...]:
    return scenario.node_names


def shrink(scenario: Scenario, seed: int, faults: tuple[Fault, ...], invariant: str,
           budget_runs: int = 400) -> tuple[Scenario, tuple[Fault, ...], int]:
    """Shrink a counterexample that breaks `invariant`; (scenario, faults, runs spent)."""
    runs = 0

    def breaks(sc: Scenario, fs: tuple[Fault, ...]) -> bool:
        nonlocal runs
        if runs >= budget_runs:
            return False
        runs += 1
        run = execute(sc, seed, fs)
        return not check(run, (invariant,))[0].held

    # 1. fewer faults
    i = 0
    while i < len(faults):
        fewer = faults[:i] + faults[i + 1:]
        if fewer != faults and breaks(scenario, fewer):
            faults = fewer
        else:
            i += 1
    # 2. earlier, 3. shorter: a binary search per fault and field
    for name, low in (("at", 0), ("down_for", 1)):
        for i in range(len(faults)):
            good, bad = getattr(faults[i], name), low - 1  # `good` breaks the claim; `bad` is not known to
            if good == low:
                continue
            candidate = replace(faults[i], **{name: low})
            if breaks(scenario, faults[:i] + (candidate,) + faults[i + 1:]):
                faults = faults[:i] + (candidate,) + faults[i + 1:]
                continue
            bad = low
            while good - bad > max(1, good // 100):  # to within 1%
                mid = (good + bad) // 2
                candidate = replace(faults[i], **{name: mid})
                if breaks(scenario, faults[:i] + (candidate,) + faults[i + 1:]):
                    good = mid
                else:
                    bad = mid
            faults = faults[:i] + (replace(faults[i], **{name: good}),) + faults[i + 1:]
    # 4. fewer records
    while scenario.workload.records // 2 >= MIN_RECORDS:
        smaller = replace(scenario, workload=replace(scenario.workload, records=scenario.workload.records // 2))
        if breaks(smaller, faults):
            scenario = smaller
        else:
            break
    return scenario, tuple(sorted(faults, key=lambda f: (f.at, f.node))), runs


def explore(scenario: Scenario, budget_s: float = 60.0, seed: int = 0, max_faults: int = 3,
            progress: Callable[[ExploreReport], None] | None = None, clock: Callable[[], float] = time.monotonic,
            shrink_runs: int = 400) -> ExploreReport:
    """Search for a run that breaks a claim of `scenario` within `budget_s` seconds; shrink it."""
    report = ExploreReport(claims=claims(scenario))
    start = clock()
    rng = RngStreams(seed).stream("explore")
    horizon = execute(scenario, scenario.seed, ()).end_time  # how long the run takes without faults
    report.runs += 1
    nodes = _fault_nodes(scenario)
    candidates = [(scenario.seed, scenario.faults)]
    found = None
    last_tick = start
    while clock() - start < budget_s:
        if candidates:
            run_seed, faults = candidates.pop()
        else:
            run_seed, faults = int(rng.integers(0, 2**31)), random_schedule(rng, nodes, horizon, max_faults)
        broken = broken_claim(scenario, run_seed, faults)
        report.runs += 1
        if progress is not None and clock() - last_tick >= 1.0:
            last_tick = clock()
            report.seconds = last_tick - start
            progress(report)
        if broken is not None:
            found = (run_seed, faults, broken)
            break
    if found is not None:
        run_seed, faults, broken = found
        small, shrunk, spent = shrink(scenario, run_seed, faults, broken.invariant, shrink_runs)
        report.shrink_runs = spent
        verdict = check(execute(small, run_seed, shrunk), (broken.invariant,))[0]
        report.counterexample = Counterexample(small, run_seed, shrunk, verdict, faults)
    report.seconds = clock() - start
    return report
