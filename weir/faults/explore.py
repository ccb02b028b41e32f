"""Exploration: search fault schedules and seeds for a violated claim, then shrink it.

`explore(scenario, budget_s, seed)` runs the scenario again and again with random fault
schedules from a nemesis (`random_schedule`: crashes by default; partitions, clock steps and sink
faults at the rates asked for, optionally in swarm mode), its own schedule first, each run with its own seed,
until a run breaks one of the scenario's claims (an invariant in `expect.hold`, or `drained`) or
the time budget is spent. A counterexample is then shrunk, keeping the seed, one step at a time
and keeping each step only if the claim still breaks:

1. fewer faults: drop each fault in turn;
2. earlier faults: move each fault's `at` as early as it can go (a binary search);
3. shorter faults: cut each fault's `down_for` as short as it can go (a binary search);
4. fewer records: halve `workload.records` while the claim still breaks. This step also runs
   after step 1, so that the many runs of steps 2 and 3 are small (a run costs about what its
   records do); step 1 runs on the whole workload, since the fewest faults matter most.

The result is a small `Counterexample`: the scenario, the seed, the fault schedule, the broken
invariant and its evidence. Every run is the pure function `execute(scenario, seed, faults)`, so a
counterexample replays exactly; the wall-clock budget only decides how far the search gets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal, TypedDict

import numpy as np

from weir.analysis.checkers import Verdict, applicable, check
from weir.analysis.verdict import VerdictJSON
from weir.sim.kernel.schema import SCHEMA_VERSION
from weir.sim.scenario.environment import FaultJSON
from weir.sim.kernel.rng import RngStreams
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import LINK_KINDS, Fault, Scenario

__all__ = ["Counterexample", "ExploreReport", "ExploreJSON", "explore", "random_schedule", "swarm", "broken_claim", "shrink",
           "NEMESIS_KINDS", "applicable_kinds"]

MIN_RECORDS = 100  # shrinking the workload stops here
SHRINK_RUNS = 400  # shrinking stops after this many runs, whatever the search's budget


class SavedJSON(TypedDict):
    """Where `weir explore` saved the schedule, and the command that replays it."""

    faults_file: str
    replay: str


class CounterexampleJSON(TypedDict):
    """The shrunk run that breaks a claim."""

    scenario: str
    seed: int
    records: int  # workload.records after shrinking
    faults: list[FaultJSON]  # the shrunk schedule
    found_faults: list[FaultJSON]  # the schedule as the search found it
    verdict: VerdictJSON  # the broken claim, from the shrunk run
    saved: SavedJSON | None  # (None from Python: nothing is saved until the command line does)


class ExploreJSON(TypedDict):
    """What a search did and found: `weir explore --json`."""

    schema_version: Literal[2]
    claims: list[str]
    runs: int
    shrink_runs: int
    seconds: float
    runs_per_second: float
    counterexample: CounterexampleJSON | None


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
    shrinking: str | None = None  # the claim the search broke, once it shrinks the run that broke it

    @property
    def runs_per_second(self) -> float:
        return (self.runs + self.shrink_runs) / self.seconds if self.seconds else 0.0

    def to_dict(self, saved: SavedJSON | None = None) -> ExploreJSON:
        """`weir explore --json` (`weir schema explore`); `saved`: where the schedule was written."""
        ce = self.counterexample
        return {"schema_version": SCHEMA_VERSION, "claims": list(self.claims), "runs": self.runs,
                "shrink_runs": self.shrink_runs, "seconds": round(self.seconds, 3),
                "runs_per_second": round(self.runs_per_second, 3),
                "counterexample": None if ce is None else {
                    "scenario": ce.scenario.name, "seed": ce.seed, "records": ce.scenario.workload.records,
                    "faults": [f.to_dict() for f in ce.faults], "found_faults": [f.to_dict() for f in ce.found_faults],
                    "verdict": ce.verdict.to_dict(), "saved": saved}}


def claims(scenario: Scenario) -> tuple[str, ...]:
    """What a run must show: the invariants the scenario says hold, its own oracle, that it drains,
    and, with components of the user's, that they neither raise nor return what they must not."""
    own = scenario.expect.oracle_name
    users = ("no_user_errors",) if "no_user_errors" in applicable(scenario) and \
        "no_user_errors" not in scenario.expect.violate else ()
    return tuple(dict.fromkeys((*scenario.expect.hold, *((own,) if own else ()), "drained", *users)))


def broken_claim(scenario: Scenario, seed: int, faults: tuple[Fault, ...]) -> Verdict | None:
    """Run once; the first claim the run breaks, or None. The run stops early once it has settled
    (execute's `settle`); a settled run that breaks a claim is run again in full before it counts,
    so what explore reports is what the replay command shows."""
    run = execute(scenario, seed, faults, settle=True)
    broken = next((v for v in check(run, claims(scenario)) if not v.held), None)
    if broken is not None and run.status == "settled":
        run = execute(scenario, seed, faults)
        broken = next((v for v in check(run, claims(scenario)) if not v.held), None)
    return broken


#: The fault families the nemesis draws from, and how it draws each (beyond node, at, down_for).
NEMESIS_KINDS = ("crash", "partition", "delay", "loss", "duplicate", "reorder", "clock_step", "pause", "slow",
                 "sink_fail", "sink_ack_lost", "sink_slow", "sink_commit_fail", "sink_overload", "store_fail", "store_slow", "store_torn",
                 "partition_slow")


def applicable_kinds(scenario: Scenario) -> tuple[str, ...]:
    """The fault families that can touch `scenario` (of NEMESIS_KINDS): the checkpoint store's only
    with checkpoints, the sink's only where there is a sink (not sagas), a failing commit only with
    a two-phase-commit sink (the built-in transactional one or a user's weir.TwoPhaseCommitSink),
    a slow partition only where there is a log. What `--swarm` draws from unless `--kinds` narrows it."""

    def applies(kind: str) -> bool:
        if kind.startswith("store_"):
            return scenario.checkpoint is not None
        if kind == "sink_commit_fail":
            return scenario.saga is None and scenario.pipeline.two_phase
        if kind.startswith("sink_") or kind == "partition_slow":  # a sink, a log: not sagas
            return scenario.saga is None
        return True
    return tuple(k for k in NEMESIS_KINDS if applies(k))


def _one_fault(rng: np.random.Generator, kind: str, nodes: tuple[str, ...], horizon: int, partitions: int = 1) -> Fault:
    at = int(rng.integers(0, max(horizon, 1)))
    down_for = int(rng.integers(1_000, max(1_000, horizon // 4) + 1))
    if kind == "partition_slow":  # one partition readable in bursts 5ms to 100ms apart
        return Fault(kind=kind, node="broker", at=at, down_for=down_for, partition=int(rng.integers(partitions)),
                     slow_by=int(rng.integers(5_000, 100_001)))
    node = str(nodes[int(rng.integers(len(nodes)))])
    if kind.startswith(("sink_", "store_")):
        return Fault(kind=kind, node="sink" if kind.startswith("sink_") else "coordinator", at=at, down_for=down_for,
                     slow_by=int(rng.integers(1_000, 20_001)))
    if kind in LINK_KINDS:
        others = [n for n in nodes if n != node]
        peers = tuple(sorted(str(p) for p in rng.choice(others, size=int(rng.integers(1, len(others) + 1)),
                                                       replace=False))) if others else ()
        direction = ("both", "outbound", "inbound")[int(rng.integers(3))]
        return Fault(kind=kind, node=node, at=at, down_for=down_for, peers=peers, direction=direction,
                     slow_by=int(rng.integers(1_000, 50_001)), rate=float(rng.uniform(0.01, 0.5)))
    if kind == "clock_step":
        return Fault(kind=kind, node=node, at=at, by=int(rng.integers(-2_000_000, 2_000_001)))
    if kind == "slow":
        return Fault(kind=kind, node=node, at=at, down_for=down_for, factor=float(rng.integers(2, 11)))
    if kind == "pause":
        return Fault(kind=kind, node=node, at=at, down_for=down_for)
    return Fault(kind="crash", node=node, at=at, down_for=down_for)


def random_schedule(rng: np.random.Generator, nodes: tuple[str, ...], horizon: int, max_faults: int = 3,
                    rates: dict[str, float] | None = None, restart_delay: int | None = None,
                    partitions: int = 1) -> tuple[Fault, ...]:
    """A nemesis: 1 to max_faults faults at random times before `horizon`, of the kinds in `rates`
    (drawn in proportion to their rates; default: crash-restarts only), in time order. Outages
    last 1ms to a quarter of the horizon; clock steps move a clock by up to 2s either way.

    Given the job's `restart_delay`, a crash after the first is, one time in four, moved to land
    within 5ms of the job coming back from the first (its crash plus outage plus restart delay):
    a crash during the restore's recovery, which a crash at a uniform time almost never hits."""
    rates = rates or {"crash": 1.0}
    kinds = sorted(rates)
    weights = np.array([rates[k] for k in kinds], dtype=float)
    k = int(rng.integers(1, max_faults + 1))
    picks = rng.choice(len(kinds), size=k, p=weights / weights.sum())
    faults = sorted((_one_fault(rng, kinds[int(i)], nodes, horizon, partitions) for i in picks),
                    key=lambda f: (f.at, f.node, f.kind))
    crashes = [i for i, f in enumerate(faults) if f.kind == "crash"]
    if restart_delay is not None and len(crashes) > 1:
        first = faults[crashes[0]]
        back = first.at + first.down_for + restart_delay
        for i in crashes[1:]:
            if rng.random() < 0.25:
                faults[i] = replace(faults[i], at=back + int(rng.integers(0, 5_001)))
    return tuple(sorted(faults, key=lambda f: (f.at, f.node, f.kind)))


def swarm(rng: np.random.Generator, rates: dict[str, float]) -> dict[str, float]:
    """Swarm testing (as TigerBeetle's simulator does it): switch each fault family on or off at
    random for one run, at least one on, so that rare families are not always drowned out."""
    kinds = sorted(rates)
    on = rng.random(len(kinds)) < 0.5
    if not on.any():
        on[int(rng.integers(len(kinds)))] = True
    return {k: rates[k] for k, keep in zip(kinds, on) if keep}


def shrink(scenario: Scenario, seed: int, faults: tuple[Fault, ...], invariant: str,
           budget_runs: int = SHRINK_RUNS, on_run: Callable[[int], None] | None = None,
           ) -> tuple[Scenario, tuple[Fault, ...], int]:
    """Shrink a counterexample that breaks `invariant`; (scenario, faults, runs spent). `on_run` is
    told the runs spent after each one."""
    runs = 0

    def breaks(sc: Scenario, fs: tuple[Fault, ...]) -> bool:
        nonlocal runs
        if runs >= budget_runs:
            return False
        runs += 1
        run = execute(sc, seed, fs, settle=True)
        if on_run is not None:
            on_run(runs)
        return not check(run, (invariant,))[0].held

    def fewer_records(sc: Scenario) -> Scenario:
        while sc.workload.records // 2 >= MIN_RECORDS:
            smaller = replace(sc, workload=replace(sc.workload, records=sc.workload.records // 2))
            if not breaks(smaller, faults):
                break
            sc = smaller
        return sc

    def fewer_faults(sc: Scenario, fs: tuple[Fault, ...]) -> tuple[Fault, ...]:
        i = 0
        while i < len(fs):
            fewer = fs[:i] + fs[i + 1:]
            if fewer != fs and breaks(sc, fewer):
                fs = fewer
            else:
                i += 1
        return fs

    # 1. fewer faults, on the whole workload (the fewest faults matter most, and these are few runs)
    faults = fewer_faults(scenario, faults)
    # then fewer records, so that the many runs of the binary searches below are small
    scenario = fewer_records(scenario)
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
    # 4. fewer records again: with earlier and shorter faults, fewer may still do
    scenario = fewer_records(scenario)
    return scenario, tuple(sorted(faults, key=lambda f: (f.at, f.node))), runs


def explore(scenario: Scenario, budget_s: float = 60.0, seed: int = 0, max_faults: int = 3,
            progress: Callable[[ExploreReport], None] | None = None, clock: Callable[[], float] = time.monotonic,
            shrink_runs: int = SHRINK_RUNS, rates: dict[str, float] | None = None, swarm_mode: bool = False,
            max_runs: int | None = None) -> ExploreReport:
    """Search for a run that breaks a claim of `scenario` within `budget_s` seconds (and, if given,
    `max_runs` runs: a budget that is the same on every machine); shrink it.

    `rates` are the fault families the nemesis draws from, with their relative rates (default:
    crashes only; in swarm mode, every family that applies, `applicable_kinds`); `swarm_mode`
    switches families on and off at random for each run."""
    if rates is None:
        rates = {k: 1.0 for k in applicable_kinds(scenario)} if swarm_mode else {"crash": 1.0}
    rates = dict(rates)
    unknown = sorted(set(rates) - set(NEMESIS_KINDS))
    if unknown or not rates or any(not r > 0 for r in rates.values()):
        raise ValueError(f"fault rates: got {rates}; accepts positive rates for " + ", ".join(NEMESIS_KINDS))
    report = ExploreReport(claims=claims(scenario))
    start = clock()
    rng = RngStreams(seed).stream("explore")
    horizon = execute(scenario, scenario.seed, ()).end_time  # how long the run takes without faults
    report.runs += 1
    nodes = scenario.node_names
    candidates = [(scenario.seed, scenario.faults)]
    found = None
    last_tick = start
    while clock() - start < budget_s and (max_runs is None or report.runs <= max_runs):
        if candidates:
            run_seed, faults = candidates.pop()
        else:
            kinds = swarm(rng, rates) if swarm_mode else rates
            run_seed = int(rng.integers(0, 2**31))
            faults = random_schedule(rng, nodes, horizon, max_faults, kinds, scenario.pipeline.restart_delay,
                                     scenario.workload.partitions)
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
        report.shrinking = broken.invariant

        def shrunk(spent: int) -> None:  # progress while shrinking: at once, then once a second
            nonlocal last_tick
            report.shrink_runs = spent
            if progress is not None and (spent == 0 or clock() - last_tick >= 1.0):
                last_tick = clock()
                report.seconds = last_tick - start
                progress(report)

        shrunk(0)
        small, shrunk_faults, spent = shrink(scenario, run_seed, faults, broken.invariant, shrink_runs, shrunk)
        report.shrink_runs = spent
        if progress is not None:
            progress(report)
        verdict = check(execute(small, run_seed, shrunk_faults), (broken.invariant,))[0]  # as the replay prints it
        if verdict.held:  # a shrink step trusted a settled run that would have drained: keep the unshrunk one
            small, shrunk_faults, verdict = scenario, faults, broken
        report.counterexample = Counterexample(small, run_seed, shrunk_faults, verdict, faults)
    report.seconds = clock() - start
    return report
