"""Crash-point coverage: crash (or pause, partition, delay, duplicate, reorder) each node at each
protocol step, and show what held.

A reference run (the scenario without faults) gives the time of each protocol step the scenario
goes through: a poll, a barrier reaching the processor, the sink's pre-commit, a snapshot made
durable, a completion notification delivered, a transaction committed or recovered on restore,
offsets committed, a sink write and its acknowledgement, a DLQ replay batch written, an outbox
publish and its rows marked sent, a saga step. For each step (its first occurrence after the first third of the
run, when the pipeline is busy) and each node that takes part in the run, the scenario runs again
with that node crashed exactly at the step and 1us after it (events at one instant run in order),
and the scenario's claims are checked. A step that only a run with the scenario's own faults goes
through (a restore's recovery of a transaction) is found in that run and faulted on top of those
faults: a crash during recovery, so that the next attempt recovers from the same checkpoint again.
A fault of messages (delay, duplicate, reorder) starts one
network trip before the step instead, so that it catches the message that made the step. The result is a matrix step x node -> the claims broken
(none: it held), so it is visible what was exercised and where a design gives way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypedDict

from weir.sim.kernel.schema import SCHEMA_VERSION
from weir.sim.scenario.run import Run, execute
from weir.sim.scenario.model import Fault, Scenario

from weir.faults.explore import claims

__all__ = ["STEPS", "POINT_KINDS", "Coverage", "CoverageJSON", "step_times", "crash_points"]

#: The faults a coverage run can inject at each step.
POINT_KINDS = ("crash", "pause", "partition", "delay", "duplicate", "reorder")

#: (label, trace kind, node it happens on (None: any), message for SEND/RECV steps)
STEPS = (
    ("poll", "POLL", None, None),
    ("checkpoint triggered", "CKPT_TRIGGER", "coordinator", None),
    ("barrier at processor", "CKPT_SNAPSHOT", "processor", None),
    ("pre-commit at sink", "CKPT_SNAPSHOT", "sink", None),
    ("snapshot durable", "CKPT_COMPLETE", "coordinator", None),
    ("notification delivered", "NOTIFIED", None, None),  # checkpoint complete, at the sink or an operator
    ("transaction committed", "TXN_COMMIT", "sink", None),
    ("transaction recovered", "TXN_RECOVER", "sink", None),  # a restore's commit or abort of one
    ("replay batch written", "REPLAY", "sink", None),  # the DLQ replay job wrote a batch
    ("outbox rows marked sent", "RELAY_MARK", "producer", None),  # the outbox relay's second step
    ("offsets committed", "COMMIT", "broker", None),
    ("sink write", "WRITE", "sink", None),
    ("sink ack", "ACK", None, None),
    ("record produced", "PRODUCE", "broker", None),
    ("saga step", "SAGA_STEP", None, None),
    ("dead-lettered", "DEAD_LETTER", "sink", None),
)


class StepJSON(TypedDict):
    step: str
    at_us: int  # when the step happened in the reference run


class CellJSON(TypedDict):
    """One step x node: the claims broken when the node was faulted there (empty: all held)."""

    step: str
    node: str
    broken: list[str]


class CoverageJSON(TypedDict):
    """The crash-point matrix: `weir crashpoints --json`."""

    schema_version: Literal[2]
    scenario: str
    kind: str
    claims: list[str]
    steps: list[StepJSON]
    nodes: list[str]
    cells: list[CellJSON]  # step by step, node by node
    runs: int
    held: bool


@dataclass(frozen=True)
class Coverage:
    """The matrix: for each step found, for each node, the claims a crash there broke."""

    scenario: str
    claims: tuple[str, ...]
    steps: tuple[tuple[str, int], ...]  # (label, time in the reference run)
    nodes: tuple[str, ...]
    broken: dict[tuple[str, str], tuple[str, ...]]  # (step, node) -> claims broken, at the step or 1us after
    runs: int
    kind: str = "crash"  # the fault injected at each point
    seed: int = 0  # the runs' seed
    failing: dict[tuple[str, str], tuple[Fault, ...]] = field(default_factory=dict)  # cell -> its first failing schedule

    @property
    def held(self) -> bool:
        return not any(self.broken.values())

    def to_dict(self) -> CoverageJSON:
        """`weir crashpoints --json` (`weir schema crashpoints`)."""
        return {"schema_version": SCHEMA_VERSION, "scenario": self.scenario, "kind": self.kind,
                "claims": list(self.claims), "steps": [{"step": label, "at_us": t} for label, t in self.steps],
                "nodes": list(self.nodes),
                "cells": [{"step": label, "node": node, "broken": list(self.broken[(label, node)])}
                          for label, _ in self.steps for node in self.nodes],
                "runs": self.runs, "held": self.held}


def step_times(run: Run, after: int | None = None) -> list[tuple[str, int]]:
    """The time of each step the run went through: its first occurrence after `after` (by
    default a third of the run)."""
    rows = run.trace.rows()
    start = run.end_time // 3 if after is None else after
    found = []
    for label, kind, node, _message in STEPS:
        for r in rows:
            if r["kind"] == kind and r["time"] >= start and (node is None or r["node"] == node):
                found.append((label, r["time"]))
                break
    return sorted(found, key=lambda s: s[1])


def crash_points(scenario: Scenario, seed: int | None = None, down_for: int = 15_000,
                 kind: str = "crash", progress: Callable[[int, int], None] | None = None) -> Coverage:
    """Fault every node that takes part at every step found (a crash by default; or a `pause`, a
    `partition` of the node from all others, a `delay` of its messages by `down_for`, a `duplicate`
    of every request and reply it sends or gets for `down_for`, a `reorder` of them by up to
    `down_for`); check the scenario's claims each time. `progress(runs done, runs in all)` after each run."""
    from weir.analysis.checkers import check

    seed = scenario.seed if seed is None else seed
    reference = execute(scenario, seed, ())
    steps = [(label, t, ()) for label, t in step_times(reference)]
    if scenario.faults:  # steps only a faulted run goes through (a restore's): fault them on top of its faults
        faulted = execute(scenario, seed)
        seen = {label for label, _t, _f in steps}
        first = min(f.at for f in scenario.faults)
        steps += [(label, t, scenario.faults) for label, t in step_times(faulted, after=first) if label not in seen]
        steps.sort(key=lambda s: s[1])
    active = set(reference.trace.columns["node"].tolist())
    nodes = tuple(name for i, name in enumerate(reference.trace.nodes) if i in active)
    wanted = claims(scenario)
    broken: dict[tuple[str, str], tuple[str, ...]] = {}
    failing: dict[tuple[str, str], tuple[Fault, ...]] = {}
    runs = 1
    extra = {"delay": {"slow_by": down_for}, "reorder": {"slow_by": down_for}, "duplicate": {"rate": 1.0}}.get(kind, {})
    # A fault of messages starts as the message that made the step left: one trip (at most) earlier.
    trips = [scenario.pipeline.network_latency + scenario.pipeline.network_jitter]
    trips += [sum(link.params(scenario.pipeline)[:2]) for link in scenario.links]
    lead = max(trips) + 1 if extra else 0
    total = runs + 2 * len(steps) * len(nodes)
    for label, t, base in steps:
        for node in nodes:
            bad: set[str] = set()
            for offset in (0, 1):
                at = max(0, t - lead) + offset
                schedule = base + (Fault(kind=kind, node=node, at=at, down_for=down_for, **extra),)
                run = execute(scenario, seed, schedule)
                runs += 1
                broke = {v.invariant for v in check(run, wanted) if not v.held}
                if broke and not bad:
                    failing[(label, node)] = schedule
                bad |= broke
                if progress is not None:
                    progress(runs, total)
            broken[(label, node)] = tuple(sorted(bad))
    return Coverage(scenario.name, wanted, tuple((label, t) for label, t, _f in steps), nodes, broken, runs, kind,
                    seed, failing)
