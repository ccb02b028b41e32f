"""Scenarios: frozen dataclasses validated on construction (the TOML loader is weir.sim.scenario.loader).

Every value is checked in `__post_init__`, so a scenario built in Python is held to the same rules
as one read from a file, and a bad value raises `ScenarioError` naming the key, what it got and
what it accepts. Durations may be given as whole microseconds or as strings with units ("15ms").

The tables live in three modules: the pipeline's (weir.sim.scenario.pipeline), the nodes, links and
faults (weir.sim.scenario.environment), and here the rest ([expect], [retry], the patterns' settings,
[run]) and the Scenario that holds them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeGuard

import numpy as np

from weir.sim.scenario.checks import (
    Duration, MaybeDuration, Names, _relay_base, _replay_base, _resolve, _spec, _validate,
)
from weir.sim.kernel.given import Given, given
from weir.sim.kernel.errors import ScenarioError, near, raw
from weir.sim.scenario.invariants import APPLIES, statable
from weir.sim.scenario.environment import (  # re-exported: the model is where a scenario's parts meet
    FAULT_KINDS, JITTER_SHAPES, LINK_KINDS, Fault, LinkSpec, NodeSpec,
)
if TYPE_CHECKING:
    from weir.sim.scenario.components import ComponentSpec
from weir.sim.scenario.nodes import NODE_FORMS, NODES, is_node_name, node_names, source_subtask
from weir.sim.scenario.pipeline import (  # re-exported likewise
    AGGREGATE_NAMES, DEFAULT_COMMIT, MODES, OFFSET_COMMITS, SINKS, WATERMARK_STRATEGIES, WINDOW_KINDS, Checkpointing,
    Pipeline, WatermarkSettings, WindowSettings, Workload,
)

__all__ = [
    "MODES", "OFFSET_COMMITS", "DEFAULT_COMMIT", "SINKS", "NODES", "NODE_FORMS", "FAULT_KINDS", "LINK_KINDS", "JITTER_SHAPES",
    "WINDOW_KINDS", "AGGREGATE_NAMES", "WATERMARK_STRATEGIES", "LinkSpec", "node_names", "is_node_name",
    "Workload", "Pipeline", "Checkpointing", "Reconcile", "RetryPolicy", "PaymentSettings", "OutboxSettings", "SagaSettings", "WindowSettings", "WatermarkSettings", "NodeSpec", "Fault", "Expect", "RunLimits", "Scenario", "TABLES",
]

def _invariant_names() -> tuple[str, ...]:
    return tuple(APPLIES)


@dataclass(frozen=True)
class Expect:
    """Which invariants the scenario claims hold, and which it claims are violated."""

    hold: Names = field(default=given(()), metadata=_spec("names", choices=_invariant_names))
    violate: Names = field(default=given(()), metadata=_spec("names", choices=_invariant_names))
    max_skew: float = field(default=1.5, metadata=_spec("ratio"))
    #: the user's own invariant, claimed to hold: 'module:function' (or the function), called with the
    #: finished run, returning a weir.Verdict or a bool (weir.analysis.oracles.user_oracle)
    oracle: Any = None

    def __post_init__(self) -> None:
        _validate(self, "expect")
        both = sorted(set(self.hold) & set(self.violate))
        if both:
            raise ScenarioError("expect.violate", both[0], "a name that is not also in expect.hold")
        if self.oracle is not None:
            accepts = "an importable 'module:function' that takes a finished run and returns a weir.Verdict or a bool"
            fn = self.oracle
            if isinstance(fn, str):
                from weir.sim.scenario.components import SEARCH_PATHS, load_function
                fn = load_function(fn, "expect.oracle", accepts, tuple(SEARCH_PATHS))
            elif not callable(fn) or isinstance(fn, type):
                raise ScenarioError("expect.oracle", fn, accepts)
            if getattr(fn, "__name__", None) in APPLIES:
                raise ScenarioError("expect.oracle", fn.__name__, "a function not named like a built-in invariant")
            object.__setattr__(self, "oracle", fn)

    @property
    def oracle_name(self) -> str | None:
        """The name the oracle's verdict goes by: its function's name."""
        return None if self.oracle is None else getattr(self.oracle, "__name__", "oracle")

    def expected(self, name: str) -> Literal["hold", "violate"] | None:
        if name in self.hold or (name == self.oracle_name and name is not None):
            return "hold"
        if name in self.violate:
            return "violate"
        return None


#: In `Scenario.operators` (and as `{ window = true }` in [[operators]]): where the [window]
#: aggregation runs in the chain. Operators before it take records; after it, the window's panes
#: (`Scenario.operators_after`).
WINDOW_STEP = "window"


@dataclass(frozen=True)
class RetryPolicy:
    """How the sink retries a failed write, and where records go when retries run out (weir/sim/patterns/dlq.py)."""

    max_retries: int = field(default=3, metadata=_spec("count"))
    forever: bool = field(default=False, metadata=_spec("flag"))
    backoff: Duration = field(default=given("1ms"), metadata=_spec("duration", min=1))
    multiplier: float = field(default=2.0, metadata=_spec("ratio"))
    max_backoff: Duration = field(default=given("100ms"), metadata=_spec("duration", min=1))
    jitter: float = field(default=0.2, metadata=_spec("fraction"))
    failure_rate: float = field(default=0.0, metadata=_spec("fraction"))
    exhausted: str = field(default="dlq", metadata=_spec("choice", choices=("dlq", "skip")))
    replay_after: MaybeDuration = field(default=given(None), metadata=_spec("duration", optional=True))
    replay_interval: Duration = field(default=given("50ms"), metadata=_spec("duration", min=1))
    replay_batch: int = field(default=100, metadata=_spec("count", min=1))
    replay_job: str | type | None = field(default=None, metadata=_spec("component", base=_replay_base, optional=True, component="replay"))
    replay_params: dict[str, Any] = field(default_factory=dict, metadata=_spec("params"))

    @property
    def replay_spec(self) -> ComponentSpec | None:
        """The user's DeadLetterReplay (a ComponentSpec), or None for weir's FixAndReplay."""
        return _resolve(self.replay_job, "replay", _replay_base, self.replay_params)

    def __post_init__(self) -> None:
        _validate(self, "retry")
        if self.replay_after is not None and self.exhausted != "dlq":
            raise ScenarioError("retry.replay_after", self.replay_after, "nothing when retry.exhausted = 'skip' "
                                "(there is no dead-letter queue to replay)")


@dataclass(frozen=True)
class PaymentSettings:
    """The payments sink (weir/sim/patterns/payments.py): dedup with a processed-key store with TTL, a lock, a MERGE."""

    dedup: bool = field(default=True, metadata=_spec("flag"))
    ttl: Duration = field(default=given("24h"), metadata=_spec("duration", min=1))
    lock_ttl: Duration = field(default=given("1s"), metadata=_spec("duration", min=1))

    def __post_init__(self) -> None:
        _validate(self, "payments")


@dataclass(frozen=True)
class OutboxSettings:
    """An application that stores orders and publishes their events, instead of the producer (weir/sim/patterns/outbox.py)."""

    mode: str = field(default="outbox", metadata=_spec("choice", choices=("outbox", "dual_write")))
    order: str = field(default="db_first", metadata=_spec("choice", choices=("db_first", "log_first")))
    db_write_time: Duration = field(default=given("100us"), metadata=_spec("duration", min=1))
    linger: Duration = field(default=given("1ms"), metadata=_spec("duration"))
    relay_interval: Duration = field(default=given("5ms"), metadata=_spec("duration", min=1))
    relay_batch: int = field(default=100, metadata=_spec("count", min=1))
    relay: str | type | None = field(default=None, metadata=_spec("component", base=_relay_base, optional=True, component="relay"))
    relay_params: dict[str, Any] = field(default_factory=dict, metadata=_spec("params"))

    @property
    def relay_spec(self) -> ComponentSpec | None:
        """The user's OutboxRelay (a ComponentSpec), or None for weir's CdcRelay."""
        return _resolve(self.relay, "relay", _relay_base, self.relay_params)

    def __post_init__(self) -> None:
        _validate(self, "outbox")


@dataclass(frozen=True)
class SagaSettings:
    """Sagas with compensation instead of the pipeline (weir/sim/patterns/saga.py): one per workload record."""

    failure_rate: float = field(default=0.3, metadata=_spec("fraction"))
    idempotent_steps: bool = field(default=True, metadata=_spec("flag"))
    idempotent_compensations: bool = field(default=True, metadata=_spec("flag"))

    def __post_init__(self) -> None:
        _validate(self, "saga")


@dataclass(frozen=True)
class Reconcile:
    """The reconciliation job (the seed's daily query, on SQLite) over the source log and the sink."""

    period: Duration = field(default=given("100ms"), metadata=_spec("duration", min=1))
    threshold: float = field(default=0.001, metadata=_spec("fraction"))

    def __post_init__(self) -> None:
        _validate(self, "reconcile")


@dataclass(frozen=True)
class RunLimits:
    """Guards that end a run that does not finish: simulated time and number of events; and what
    an exception from user code does (stop the run, or fail the job over as Flink does), and how
    long (wall clock) a user hook may run before the run is stopped."""

    max_time: Duration = field(default=given("120s"), metadata=_spec("duration", min=1))
    max_events: int = field(default=5_000_000, metadata=_spec("count", min=1))
    drain_within: MaybeDuration = field(default=given(None), metadata=_spec("duration", min=1, optional=True))
    on_user_error: str = field(default="stop", metadata=_spec("choice", choices=("stop", "fail_over")))
    user_timeout: Duration = field(default=given("10s"), metadata=_spec("duration"))

    def __post_init__(self) -> None:
        _validate(self, "run")


def a_type(value: object) -> str:
    """What `value` is, for an error line: "a str", "an int"."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"


def tuple_of(key: str, items: Any, kind: type) -> tuple[Any, ...]:
    """`items` as a tuple of `kind` (a list or a generator too: read once, so what is checked is
    what is kept), or a one-line ScenarioError naming `key` and the first thing that is not one
    (a string, one `kind` alone, None...). Scenario's lists, execute's and faults_toml's faults."""
    kept: tuple[Any, ...] = ()
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        bad = [items]
    else:
        kept = tuple(items)
        bad = [item for item in kept if not isinstance(item, kind)]
    if bad:
        raise ScenarioError(key, raw(a_type(bad[0])), f"a tuple of weir.{kind.__name__}")
    return kept


#: The largest seed (as the scenario's `seed` key and `--seed` take): the trace records it as a
#: 64-bit number
MAX_SEED = 2**62
SEED_ACCEPTS = f"a whole number from 0 to {MAX_SEED:_}"


#: The [pipeline] keys sagas use: their requests' timeout and the network's.
SAGA_PIPELINE_KEYS = frozenset({"request_timeout", "network_latency", "network_jitter", "network_jitter_shape"})


def _warn_unused_by_sagas(pipeline: Pipeline) -> None:
    """One warning naming the [pipeline] keys set beside [saga] that sagas do not use (they take
    the pipeline's place): a user who set `parallelism` there is told it does nothing."""
    default = Pipeline()
    unused = [f"pipeline.{f.name}" for f in fields(Pipeline)
              if f.name not in SAGA_PIPELINE_KEYS and getattr(pipeline, f.name) != getattr(default, f.name)]
    if unused:
        import warnings
        warnings.warn(f"{', '.join(unused)}: {'does' if len(unused) == 1 else 'do'} nothing beside [saga] (the sagas "
                      f"take the pipeline's place; of [pipeline] they use {', '.join(sorted(SAGA_PIPELINE_KEYS))})",
                      UserWarning, stacklevel=2)  # (one place: shown once, however often the scenario is rebuilt)


def is_seed(value: object) -> TypeGuard[int | np.integer]:
    """Whether `value` is a seed a run takes: a whole number from 0 to MAX_SEED (a numpy integer
    too; not a bool)."""
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and bool(0 <= value <= MAX_SEED)


#: Scenario's parts and what each must be (True: or None), for _check_parts.
_PARTS: tuple[tuple[str, type, bool], ...] = (
    ("workload", Workload, False), ("pipeline", Pipeline, False), ("checkpoint", Checkpointing, True),
    ("window", WindowSettings, True), ("watermarks", WatermarkSettings, True), ("expect", Expect, False),
    ("run", RunLimits, False), ("reconcile", Reconcile, True), ("retry", RetryPolicy, False),
    ("payments", PaymentSettings, False), ("outbox", OutboxSettings, True), ("saga", SagaSettings, True))
_LISTS: tuple[tuple[str, type], ...] = (("nodes", NodeSpec), ("faults", Fault), ("links", LinkSpec))


@dataclass(frozen=True)
class Scenario:
    """A whole scenario: workload, pipeline, checkpoints, node clocks, faults, expectations."""

    name: str = field(default="scenario", metadata=_spec("text", printable=True))
    description: str = field(default="", metadata=_spec("text"))
    seed: int = field(default=1, metadata=_spec("count"))
    workload: Workload = field(default_factory=Workload)
    pipeline: Pipeline = field(default_factory=Pipeline)
    checkpoint: Checkpointing | None = None
    window: WindowSettings | None = None
    watermarks: WatermarkSettings | None = None
    operator: ComponentSpec | None = None  # a user Operator (instead of running totals)
    #: [[operators]]: user Operators, chained in this order (WINDOW_STEP: where the [window] runs)
    operators: Given[Sequence[ComponentSpec | str], tuple[ComponentSpec | str, ...]] = given(())
    operators_after: Given[Sequence[ComponentSpec], tuple[ComponentSpec, ...]] = given(())  # after the window
    nodes: Given[Sequence[NodeSpec], tuple[NodeSpec, ...]] = given(())
    faults: Given[Sequence[Fault], tuple[Fault, ...]] = given(())
    links: Given[Sequence[LinkSpec], tuple[LinkSpec, ...]] = given(())
    expect: Expect = field(default_factory=Expect)
    run: RunLimits = field(default_factory=RunLimits)
    reconcile: Reconcile | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    payments: PaymentSettings = field(default_factory=PaymentSettings)
    outbox: OutboxSettings | None = None
    saga: SagaSettings | None = None

    def _check_parts(self) -> None:
        """Each part of the right class (a dict where a Workload goes, say, or a fault's kind where
        a Fault goes, failed later with an AttributeError): a one-line error naming the part."""
        for key, kind, optional in _PARTS:
            value = getattr(self, key)
            if not isinstance(value, kind) and not (optional and value is None):
                raise ScenarioError(key, raw(a_type(value)),
                                    f"a weir.{kind.__name__}" + (", or None" if optional else ""))
        for key, kind in _LISTS:
            object.__setattr__(self, key, tuple_of(key, getattr(self, key), kind))

    def __post_init__(self) -> None:
        _validate(self, "scenario")
        self._check_parts()  # (nodes, faults and links are tuples after it)
        mode = self.pipeline.mode
        object.__setattr__(self, "operators", tuple(self.operators))
        if self.operators:
            from weir.sim.scenario.components import ComponentSpec
            marks = [i for i, spec in enumerate(self.operators) if spec == WINDOW_STEP]
            for i, spec in enumerate(self.operators):
                if spec != WINDOW_STEP and (not isinstance(spec, ComponentSpec) or spec.kind != "operator"):
                    raise ScenarioError(f"operators[{i}]", spec, "a ComponentSpec of a weir.Operator subclass, "
                                        "or 'window' (where the [window] aggregation runs)")
            if self.operator is not None:
                raise ScenarioError("operators", raw("[[operators]] tables"), "either [operator] or [[operators]], not both")
            if marks and self.window is None:
                raise ScenarioError(f"operators[{marks[0]}]", raw("a window step"), "a [window] table to say what it aggregates")
            if len(marks) > 1:
                raise ScenarioError(f"operators[{marks[1]}]", raw("a second window step"), "one window step at most")
            if marks:  # split at the window step: before it, record operators; after it, pane operators
                at = marks[0]
                object.__setattr__(self, "operators_after", self.operators_after + self.operators[at + 1:])
                object.__setattr__(self, "operators", self.operators[:at])
            if not self.operators and not self.operators_after:
                raise ScenarioError("operators", raw("only a window step"), "at least one operator with it")
        object.__setattr__(self, "operators_after", tuple(self.operators_after))
        if self.operators_after:
            from weir.sim.scenario.components import ComponentSpec
            if self.window is None:
                raise ScenarioError("operators", raw("operators after a window step"), "a [window] table")
            for spec in self.operators_after:
                if not isinstance(spec, ComponentSpec) or spec.kind != "operator":
                    raise ScenarioError("operators", spec, "a ComponentSpec of a weir.Operator subclass")
        if self.operator is not None:
            from weir.sim.scenario.components import ComponentSpec
            if not isinstance(self.operator, ComponentSpec) or self.operator.kind != "operator":
                raise ScenarioError("operator", self.operator, "a ComponentSpec of a weir.Operator subclass")
            if self.window is not None:
                raise ScenarioError("operator", raw("an [operator] table"), "either [operator] or [window], not both")
        if mode == "exactly_once":
            if self.checkpoint is None:
                raise ScenarioError("checkpoint", raw("no [checkpoint] table"),
                                    "a [checkpoint] table when pipeline.mode = 'exactly_once' (offsets live in checkpoints)")
            if self.pipeline.sink == "append":
                raise ScenarioError("pipeline.sink", self.pipeline.sink,
                                    "'upsert' or your own sink when pipeline.mode = 'exactly_once' (replays must not duplicate)")
        if self.pipeline.transaction_timeout is not None and not self.pipeline.two_phase:
            raise ScenarioError("pipeline.transaction_timeout", self.pipeline.transaction_timeout,
                                "no timeout unless the sink is a two-phase-commit one (transactional, or your own)")
        if self.pipeline.two_phase and self.checkpoint is None:
            raise ScenarioError("pipeline.sink", self.pipeline.sink_name,
                                "another sink, or a [checkpoint] table (it commits on checkpoints)")
        if self.pipeline.offset_commit == "on_checkpoint" and self.checkpoint is None:
            raise ScenarioError("pipeline.offset_commit", "on_checkpoint", "another policy, or a [checkpoint] table to commit on")
        if mode == "at_most_once" and self.checkpoint is not None:
            raise ScenarioError("checkpoint", raw("a [checkpoint] table"),
                                "no [checkpoint] table when pipeline.mode = 'at_most_once' (it restarts from offsets committed at poll)")
        if self.saga is not None and (self.window is not None or self.outbox is not None or self.checkpoint is not None):
            raise ScenarioError("saga", raw("a [saga] table"), "no [window], [outbox] or [checkpoint] with it "
                                "(the sagas take the pipeline's place)")
        if self.saga is not None and self.pipeline.sink == "payments":
            raise ScenarioError("pipeline.sink", "payments", "no payments sink with a [saga] table (the sagas take the "
                                "pipeline's place, and their payment service does the charging)")
        if self.saga is not None:
            _warn_unused_by_sagas(self.pipeline)
        if self.outbox is not None and (self.workload.transactional or self.workload.producers > 1
                                        or self.workload.resend_fraction):
            raise ScenarioError("outbox", raw("an [outbox] table"), "one plain producer: workload.transactional = false, "
                                "producers = 1, resend_fraction = 0 (the application takes the producer's place)")
        if self.pipeline.sink == "payments" and self.window is not None:
            raise ScenarioError("pipeline.sink", "payments", "another sink with a [window] (payments are records)")
        if self.workload.poison_every and self.window is not None:
            raise ScenarioError("workload.poison_every", self.workload.poison_every, "0 with a [window] "
                                "(poison records fail the sink's record writes; a windowed job writes panes)")
        if self.reconcile is not None and self.window is not None:
            raise ScenarioError("reconcile", raw("a [reconcile] table"), "no [reconcile] with a [window] "
                                "(it compares records, and a windowed job writes panes)")
        if self.window is not None and self.watermarks is None:
            object.__setattr__(self, "watermarks", WatermarkSettings())
        if self.watermarks is not None and self.watermarks.strategy == "punctuated" and not self.workload.marker_every:
            raise ScenarioError("workload.marker_every", 0, "a whole number >= 1 when watermarks.strategy = 'punctuated' "
                                "(its watermarks come only from marker records)")
        if self.pipeline.source_failover == "rebalance" and self.checkpoint is not None:
            raise ScenarioError("pipeline.source_failover", "rebalance", "'job' when there is a [checkpoint] table "
                                "(a checkpoint ties every source's offsets to the state: the whole job restarts)")
        if self.pipeline.source_parallelism > self.workload.partitions:
            raise ScenarioError("pipeline.source_parallelism", self.pipeline.source_parallelism,
                                f"at most workload.partitions ({self.workload.partitions}): a source subtask reads whole partitions")
        if self.pipeline.salts > 1 and (self.window is None or self.window.kind == "session"):
            raise ScenarioError("pipeline.salts", self.pipeline.salts, "1 unless there is a tumbling or sliding [window] "
                                "(salted partial results are merged per window; sessions and running totals do not merge)")
        fits = statable(self)
        for part in ("hold", "violate"):
            for name in getattr(self.expect, part):
                if name not in fits:
                    kind = "a windowed scenario" if self.window else "a scenario without [window]"
                    raise ScenarioError(f"expect.{part}", name, f"an invariant that applies to {kind}: " + ", ".join(fits),
                                        hint=near(name, fits))
        seen = set()
        names = self.node_names
        for node_spec in self.nodes:
            if node_spec.name in seen:
                raise ScenarioError(f"nodes.{node_spec.name}", node_spec.name, "each node at most once")
            if node_spec.name not in names:
                raise ScenarioError(f"nodes.{node_spec.name}", node_spec.name, "a node of this scenario: " + ", ".join(names))
            seen.add(node_spec.name)
        for i, link in enumerate(self.links):
            for node in link.between:
                if node not in names:
                    raise ScenarioError(f"links[{i}].between", node, "a node of this scenario: " + ", ".join(names))
            latency, jitter, _shape = link.params(self.pipeline)
            if self.pipeline.request_timeout <= 2 * (latency + jitter):
                raise ScenarioError(f"links[{i}].latency", latency, f"a latency and jitter whose round trip, "
                                    f"2 * (latency + jitter), is less than pipeline.request_timeout "
                                    f"({self.pipeline.request_timeout}us): every request over it would time out")
            wait = self.pipeline.fetch_max_wait
            if wait and "broker" in link.between and any(source_subtask(n) is not None for n in link.between) \
                    and wait + 2 * (latency + jitter) >= self.pipeline.request_timeout:
                raise ScenarioError(f"links[{i}].latency", latency, f"a latency and jitter whose round trip, 2 * (latency "
                                    f"+ jitter), leaves room for pipeline.fetch_max_wait ({wait}us) within "
                                    f"pipeline.request_timeout ({self.pipeline.request_timeout}us): a fetch the broker "
                                    "holds would time out on this link (or shorten fetch_max_wait)")
        for i, fault in enumerate(self.faults):
            for node in (fault.node, *fault.peers, *fault.group):
                if node not in names:
                    key = "node" if node == fault.node else ("peers" if node in fault.peers else "group")
                    raise ScenarioError(f"faults[{i}].{key}", node, "a node of this scenario: " + ", ".join(names))
            if fault.at >= self.run.max_time:
                raise ScenarioError(f"faults[{i}].at", fault.at, f"a time before run.max_time ({self.run.max_time}us)")
            if fault.kind == "partition_slow" and fault.partition >= self.workload.partitions:
                raise ScenarioError(f"faults[{i}].partition", fault.partition,
                                    f"a partition number below workload.partitions ({self.workload.partitions})")

    @property
    def mode(self) -> str | None:
        """The delivery mode where it means something: the pipeline's (`pipeline.mode`), or None for
        sagas, which run no pipeline. (A windowed job's mode says how it commits offsets and whether
        it checkpoints its windows; an outbox scenario's, how its pipeline delivers the events.)"""
        return None if self.saga is not None else self.pipeline.mode

    @property
    def node_names(self) -> tuple[str, ...]:
        """This scenario's nodes, in trace order (see `node_names`)."""
        return node_names(self.workload.producers, self.pipeline.source_parallelism, self.saga is not None)

    def longest_timer(self) -> int:
        """The longest duration any of the job's tables sets (intervals, timeouts, delays, backoffs;
        not the workload's or the run's limits), and at least 1s: a run whose durable state stands
        still for twice this, every fault healed, has settled (World.settle)."""
        longest = 1_000_000
        for name in ("pipeline", "checkpoint", "window", "watermarks", "retry", "payments", "outbox", "saga",
                     "reconcile"):
            table = getattr(self, name)
            if table is None or (name == "payments" and self.pipeline.sink != "payments"):
                continue
            for f in fields(table):
                value = getattr(table, f.name)
                if f.metadata.get("kind") == "duration" and isinstance(value, int):
                    longest = max(longest, value)
        w = self.workload  # the broker's transaction timeout and the producer's resends are timers too
        longest = max(longest, w.transaction_timeout or 0, w.resend_after if w.resend_fraction else 0,
                      *(n.boot_time for n in self.nodes))
        return longest

    def node_spec(self, name: str) -> NodeSpec:
        """The scenario's settings for node `name` (defaults if it has no [nodes.NAME] table)."""
        for spec in self.nodes:
            if spec.name == name:
                return spec
        return NodeSpec(name)

    def with_faults(self, faults: tuple[Fault, ...]) -> "Scenario":
        """The same scenario with another fault schedule."""
        return replace(self, faults=tuple(faults))

    def with_settings(self, settings: Mapping[str, Any]) -> "Scenario":
        """The same scenario with some settings changed, named by their keys in the scenario file:

            scenario.with_settings({"checkpoint.interval": "1s", "workload.records": 2_000})

        A key is 'table.key' (or name, description, seed); a table the scenario lacks ([checkpoint],
        say) starts from its defaults. A bad key or value raises ScenarioError, as the file would."""
        if not isinstance(settings, Mapping):
            raise ScenarioError("settings", settings, "a dict of 'table.key': value, such as {'checkpoint.interval': '1s'}")
        top: dict[str, Any] = {}
        tables: dict[str, dict[str, Any]] = {}
        for key, value in settings.items():
            table, dot, name = str(key).partition(".")
            if not dot:
                if key not in ("name", "description", "seed"):
                    owners = [f"{t}.{key}" for t, cls in TABLES.items() if key in (f.name for f in fields(cls))]
                    raise ScenarioError(key, raw("a key outside any table"),
                                        "'table.key' (such as 'checkpoint.interval'), or name, description, seed",
                                        hint=owners[0] if owners else None)
                top[key] = value
            elif table not in TABLES:
                raise ScenarioError(key, raw("an unknown table"), "a key of one of the tables " + ", ".join(TABLES),
                                    hint=near(table, TABLES))
            else:
                tables.setdefault(table, {})[name] = value
        for table, values in tables.items():
            cls, current = TABLES[table], getattr(self, table)
            allowed = [f.name for f in fields(cls)]
            for name in values:
                if name not in allowed:
                    raise ScenarioError(f"{table}.{name}", raw("an unknown key"), "one of " + ", ".join(allowed),
                                        hint=near(name, allowed))
            top[table] = cls(**values) if current is None else replace(current, **values)
        return replace(self, **top)


#: the scenario's tables of settings, by their name in a scenario file
TABLES: dict[str, type] = {
    "workload": Workload, "pipeline": Pipeline, "checkpoint": Checkpointing, "window": WindowSettings,
    "watermarks": WatermarkSettings, "expect": Expect, "run": RunLimits, "reconcile": Reconcile, "retry": RetryPolicy,
    "payments": PaymentSettings, "outbox": OutboxSettings, "saga": SagaSettings,
}

