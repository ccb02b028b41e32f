"""The Python API: what the command line does, as plain calls.

`run()` is a pure function of (scenario, seed, fault schedule) that returns a small, picklable,
JSON-able `RunResult`; `spectrum()` runs the three delivery-mode scenarios side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from weir.analysis.checkers import Verdict, check, produced_ids
from weir.analysis.verdict import VerdictJSON, verdict_table_html
from weir.analysis.upsert import UpsertJSON, upsert_summary
from weir.sim.kernel.errors import ScenarioError
from weir.sim.kernel.schema import SCHEMA_VERSION
from weir.sim.scenario.run import Run, execute
from weir.sim.scenario.model import Fault, Scenario
from weir.sim.scenario.loader import load_scenario

if TYPE_CHECKING:
    from weir.faults.explore import ExploreReport

__all__ = ["RunResult", "RunJSON", "DemoJSON", "ListJSON", "ReportJSON", "catalog", "report_dict", "Expectation", "run", "result_of", "spectrum", "SPECTRUM", "explore", "claims_of"]

SPECTRUM = ("at_most_once_crash", "at_least_once_crash", "exactly_once_crash")


@dataclass(frozen=True)
class Expectation:
    """What the scenario said of one invariant, and whether the run bore it out.

    `hold` is a claim about every seed: a run on any seed that violates it is not as expected.
    `violate` is a demonstration, promised on the scenario's own seed (`seed` in its file): there
    the flaw must show; on another seed, it may or may not, and `weir sweep` reports how often."""

    invariant: str
    expected: Literal["hold", "violate"] | None  # None: not stated (reported, not judged)
    held: bool
    own_seed: bool = True  # the run is on the scenario's own seed

    @property
    def met(self) -> bool:
        if self.expected == "hold":
            return self.held
        if self.expected == "violate":
            return not self.held or not self.own_seed
        return True

    @property
    def not_shown(self) -> bool:
        """A demonstration that did not show on this seed (not the scenario's own: not a failure)."""
        return self.expected == "violate" and self.held and not self.own_seed


class CountsJSON(TypedDict):
    """What the run produced and what reached the sink (lost and duplicated: record pipelines only;
    panes and late_records: windowed ones)."""

    produced: int
    sink_rows: int
    sink_writes: int
    lost: int | None
    duplicated: int | None
    extra_rows: int | None
    panes: int | None
    late_records: int | None


class JudgedVerdictJSON(VerdictJSON):
    """A verdict with what the scenario expected of it ("hold", "violate" or null: not stated)."""

    expected: Literal["hold", "violate"] | None
    as_expected: bool


class TraceJSON(TypedDict):
    """The run's trace: its rows (what the nodes did, a row each: not the run's `events`, the
    simulation's steps), its size and hash (the same on every machine for the same run)."""

    rows: int
    bytes: int
    sha256: str


class RunJSON(TypedDict):
    """One run, checked: `weir run --json`."""

    schema_version: Literal[2]
    scenario: str
    seed: int
    mode: str | None  # null for sagas, which run no pipeline
    sink: str
    records: int
    partitions: int
    batch_size: int
    faults: list[str]
    status: str
    end_time_us: int
    events: int  # the simulation's events (steps: a message arriving, a timer, a process resuming); run.max_events bounds them
    restarts: int
    checkpoints: int
    counts: CountsJSON
    verdicts: list[JudgedVerdictJSON]
    as_expected: bool
    own_seed: bool  # the scenario's own seed, where its `violate` claims are promised to show
    parallelism: int
    subtasks: list[dict[str, int]]
    sources: list[dict[str, int]]
    reconciliation: list[dict[str, Any]]
    dlq: dict[str, int] | None
    upsert: UpsertJSON | None
    payments: dict[str, int] | None
    sagas: dict[str, int] | None
    user_errors: list[str]
    unprocessed: int
    trace: TraceJSON


class DemoJSON(TypedDict):
    """The delivery-semantics spectrum: `weir demo --json`."""

    schema_version: Literal[2]
    seed: int
    as_expected: bool
    runs: list[RunJSON]


class ScenarioInfoJSON(TypedDict):
    """A built-in scenario: its name, mode (null: sagas, which run no pipeline), default seed and
    size, what it shows and claims."""

    name: str
    mode: str | None
    seed: int
    records: int
    description: str
    hold: list[str]
    violate: list[str]


class ListJSON(TypedDict):
    """The built-in scenarios: `weir list --json`."""

    schema_version: Literal[2]
    scenarios: list[ScenarioInfoJSON]


class ReportJSON(TypedDict):
    """A report written: the files, and the run it reports: `weir report --json`."""

    schema_version: Literal[2]
    folder: str
    markdown: str
    html: str
    run: RunJSON


@dataclass(frozen=True)
class RunResult:
    """The small result of one run: verdicts, counts, the trace hash. Picklable and JSON-able."""

    scenario: str
    description: str
    seed: int
    mode: str | None  # the delivery mode; None for sagas, which run no pipeline (Scenario.mode)
    sink: str
    records: int
    partitions: int
    batch_size: int
    faults: tuple[str, ...]
    status: str
    end_time_us: int
    events: int
    restarts: int
    checkpoints: int
    produced: int  # distinct records committed in the log (a retried or aborted write is not another record)
    sink_rows: int
    sink_writes: int
    lost: int | None  # record pipelines only (None for windowed ones)
    duplicated: int | None
    extra_rows: int | None
    verdicts: tuple[Verdict, ...]
    expectations: tuple[Expectation, ...]
    trace_rows: int
    trace_bytes: int
    trace_sha256: str
    panes: int | None = None  # windowed pipelines only: pane rows written
    late_records: int | None = None  # records too late for their windows (side output + dropped)
    parallelism: int = 1
    subtasks: tuple[dict[str, int], ...] = ()  # per processor subtask: records, busy_us, max_queued_records
    sources: tuple[dict[str, int], ...] = ()  # per source subtask: partitions, backpressured_us
    reconciliation: tuple[dict[str, Any], ...] = ()  # the reconciliation job's rows (with [reconcile])
    sagas: dict[str, int] | None = None  # [saga]: sagas, committed, compensated, partial, unfinished
    payments: dict[str, int] | None = None  # the payments sink: payments, applied, charges, charged twice or more
    dlq: dict[str, int] | None = None  # record pipelines: dead-lettered, still waiting (depth), max depth, replayed, skipped
    upsert: UpsertJSON | None = None  # the upsert sink: its replays and merges (UpsertJSON)
    user_errors: tuple[str, ...] = ()  # what your components did wrong, one line each (the no_user_errors verdict has more)
    unprocessed: int = 0  # a run that did not drain: records in the log it had still to process when it stopped

    @property
    def matches(self) -> bool:
        """Whether every stated expectation was borne out (a `violate` claim: on the scenario's own seed)."""
        return all(e.met for e in self.expectations)

    @property
    def own_seed(self) -> bool:
        """Whether the run was on the scenario's own seed, where its `violate` claims must show."""
        return all(e.own_seed for e in self.expectations)

    def verdict(self, invariant: str) -> Verdict:
        for v in self.verdicts:
            if v.invariant == invariant:
                return v
        raise KeyError(invariant)

    def _repr_html_(self) -> str:
        """In Jupyter: the verdict table."""
        return verdict_table_html(self)

    def to_dict(self) -> RunJSON:
        """Plain JSON-able data (the same facts `weir run --json` prints; `weir schema run`)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "scenario": self.scenario, "seed": self.seed, "mode": self.mode, "sink": self.sink,
            "records": self.records, "partitions": self.partitions, "batch_size": self.batch_size,
            "faults": list(self.faults), "status": self.status, "end_time_us": self.end_time_us,
            "events": self.events, "restarts": self.restarts, "checkpoints": self.checkpoints,
            "counts": {"produced": self.produced, "sink_rows": self.sink_rows, "sink_writes": self.sink_writes,
                       "lost": self.lost, "duplicated": self.duplicated, "extra_rows": self.extra_rows,
                       "panes": self.panes, "late_records": self.late_records},
            "verdicts": [_judged(v, e) for v, e in zip(self.verdicts, self.expectations)],
            "as_expected": self.matches,
            "own_seed": self.own_seed,
            "parallelism": self.parallelism,
            "subtasks": [dict(t) for t in self.subtasks],
            "sources": [dict(t) for t in self.sources],
            "reconciliation": [dict(r) for r in self.reconciliation],
            "dlq": None if self.dlq is None else dict(self.dlq),
            "upsert": None if self.upsert is None else {**self.upsert, "dedup_key": list(self.upsert["dedup_key"]),
                                                        "example": None if self.upsert["example"] is None
                                                        else list(self.upsert["example"])},
            "payments": None if self.payments is None else dict(self.payments),
            "sagas": None if self.sagas is None else dict(self.sagas),
            "user_errors": list(self.user_errors),
            "unprocessed": self.unprocessed,
            "trace": {"rows": self.trace_rows, "bytes": self.trace_bytes, "sha256": self.trace_sha256},
        }


def _judged(v: Verdict, e: Expectation) -> JudgedVerdictJSON:
    return {**v.to_dict(), "expected": e.expected, "as_expected": e.met}


def demo_dict(seed: int, results: tuple[RunResult, ...]) -> DemoJSON:
    """`weir demo --json`: the spectrum's runs (spectrum(seed)) as one object."""
    return {"schema_version": SCHEMA_VERSION, "seed": seed, "as_expected": all(r.matches for r in results),
            "runs": [r.to_dict() for r in results]}


def result_record(result: RunResult) -> dict[str, Any]:
    """Every field of a result as plain JSON-able data (a journal's line); result_from_record reads it back."""
    from dataclasses import asdict
    return asdict(result)


def result_from_record(record: dict[str, Any]) -> RunResult:
    """The RunResult result_record wrote (tuples come back as tuples, verdicts as Verdicts)."""
    data = dict(record)
    data["verdicts"] = tuple(Verdict(**v) for v in data["verdicts"])
    data["expectations"] = tuple(Expectation(**e) for e in data["expectations"])
    for name in ("faults", "subtasks", "sources", "reconciliation", "user_errors"):
        data[name] = tuple(data[name])
    return RunResult(**data)


def result_of(finished: Run) -> RunResult:
    """Check a finished run against its scenario's expectations and summarise it."""
    if not isinstance(finished, Run):
        raise TypeError(f"result_of takes a finished run (weir.execute gives one); got {type(finished).__name__}")
    s = finished.scenario
    verdicts = check(finished)
    expectations = []
    for v in verdicts:
        expected = s.expect.expected(v.invariant)
        if expected is None and v.invariant in ("drained", "no_user_errors"):
            expected = "hold"  # a run that a guard or user code stopped never matches unless the scenario says so
        expectations.append(Expectation(v.invariant, expected, v.held, finished.seed == s.seed))
    by_name = {v.invariant: v for v in verdicts}

    def count(invariant: str, field: str) -> int | None:
        return by_name[invariant].evidence[field] if invariant in by_name else None

    windows, late = finished.windows, finished.late
    return RunResult(
        scenario=s.name, description=s.description, seed=finished.seed, mode=s.mode, sink=s.pipeline.sink_name,
        records=s.workload.records, partitions=s.workload.partitions, batch_size=s.pipeline.batch_size,
        faults=tuple(f.describe() for f in s.faults), status=finished.status, end_time_us=finished.end_time,
        events=finished.events, restarts=finished.restarts, checkpoints=finished.checkpoints_completed,
        produced=len(produced_ids(finished.source)), sink_rows=len(finished.sink["record_id"]),
        sink_writes=finished.sink_writes,
        lost=count("no_loss", "lost"), duplicated=count("no_duplicates", "duplicated"),
        extra_rows=count("no_duplicates", "extra_rows"),
        verdicts=verdicts, expectations=tuple(expectations), trace_rows=len(finished.trace),
        trace_bytes=finished.trace.nbytes, trace_sha256=finished.trace_sha256,
        panes=len(windows["key"]) if windows is not None else None,
        unprocessed=finished.unprocessed,
        late_records=len(late["record_id"]) + finished.late_dropped if windows is not None and late is not None else None,
        parallelism=s.pipeline.parallelism, subtasks=finished.subtasks, sources=finished.sources,
        reconciliation=tuple(by_name["reconciled"].evidence["rows"]) if "reconciled" in by_name else (),
        sagas=None if finished.saga is None or "saga_atomic" not in by_name else {
            k: by_name["saga_atomic"].evidence[k] for k in ("sagas", "committed", "compensated", "partial", "unfinished")},
        payments=None if finished.charges is None or "no_double_charge" not in by_name else {
            "payments": by_name["payments_complete"].evidence["payments"], "applied": len(finished.sink["record_id"]),
            "charges": by_name["no_double_charge"].evidence["charges"],
            "charged_twice_or_more": by_name["no_double_charge"].evidence["charged_twice_or_more"]},
        dlq=None if finished.dlq is None else {
            "dead_lettered": len(finished.dlq["record_id"]), "depth": int((finished.dlq["processed"] == 0).sum()),
            "max_depth": finished.dlq_max_depth, "replayed": int(finished.dlq["processed"].sum()),
            "skipped": finished.skipped},
        user_errors=tuple(e.line() for e in finished.user_errors),
        upsert=upsert_summary(finished),
    )


def run(scenario: Scenario | str, seed: int | None = None, faults: tuple[Fault, ...] | None = None,
        settle: bool = False) -> RunResult:
    """Run a scenario (object, built-in name or TOML path) and check it. Same inputs, same result.
    `settle` stops a run that can no longer drain as soon as its verdict cannot change (status
    "settled"), as explore's runs do."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return result_of(execute(scenario, seed, faults, settle))


def catalog() -> ListJSON:
    """The built-in scenarios, each with its mode, seed, size, description and claims (`weir list`)."""
    from weir.sim.scenario.loader import builtin_scenarios
    infos: list[ScenarioInfoJSON] = []
    for name in builtin_scenarios():
        sc = load_scenario(name)
        infos.append({"name": name, "mode": sc.mode, "seed": sc.seed, "records": sc.workload.records,
                      "description": sc.description, "hold": list(sc.expect.hold), "violate": list(sc.expect.violate)})
    return {"schema_version": SCHEMA_VERSION, "scenarios": infos}


def report_dict(result: RunResult, markdown: str, html: str) -> ReportJSON:
    """`weir report --json`: where the report's files are, and the run they report."""
    from pathlib import Path
    return {"schema_version": SCHEMA_VERSION, "folder": str(Path(markdown).parent), "markdown": markdown,
            "html": html, "run": result.to_dict()}


def claims_of(scenario: Scenario) -> tuple[str, ...]:
    """What `explore` tries to break: the scenario's `expect.hold` invariants, and drained."""
    from weir.faults.explore import claims
    return claims(scenario)


def explore(scenario: Scenario | str, budget_s: float = 60.0, seed: int = 0,
            progress: Callable[[ExploreReport], None] | None = None, rates: dict[str, float] | None = None,
            swarm: bool = False, max_runs: int | None = None) -> ExploreReport:
    """Search crash schedules and seeds for a run that breaks a claim of the scenario, and shrink
    it (weir.faults.explore), for `budget_s` seconds or `max_runs` runs, whichever ends first
    (runs: the same search on every machine). Returns an ExploreReport; its `counterexample`
    replays with `run(counterexample.scenario, counterexample.seed, counterexample.faults)`."""
    from weir.faults.explore import explore as search
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or not budget_s > 0:  # (NaN too)
        raise ScenarioError("budget_s", budget_s, "a number of seconds > 0")
    if max_runs is not None and (isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1):
        raise ScenarioError("max_runs", max_runs, "a whole number >= 1, or None (no bound but the budget)")
    return search(scenario, budget_s, seed, progress=progress, rates=rates, swarm_mode=swarm, max_runs=max_runs)


def spectrum(seed: int = 1) -> tuple[RunResult, ...]:
    """The same workload and crash under at-most-once, at-least-once and exactly-once."""
    return tuple(run(name, seed) for name in SPECTRUM)
