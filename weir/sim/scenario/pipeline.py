"""The pipeline's tables of a scenario: [workload], [pipeline], [checkpoint], [window], [watermarks].

Each is a frozen dataclass validated on construction (weir.sim.scenario.checks), as the whole
scenario is (weir.sim.scenario.model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from weir.sim.scenario.checks import (
    Duration, MaybeDuration, MaybeRate, Names, Partitions, _consumer_base, _resolve, component_name, _sink_base,
    _source_base, _spec, _validate, _watermark_base,
)
from weir.sim.kernel.errors import ScenarioError, raw
from weir.sim.kernel.given import Given, given
from weir.sim.scenario.environment import JITTER_SHAPES

if TYPE_CHECKING:
    from weir.sim.scenario.components import ComponentSpec
    from weir.sim.stream.windowing import WindowSpec

#: The most records a workload may have (and the most keys): checked before anything is allocated.
MAX_RECORDS = 10_000_000
#: checkpoint.state_entry_bytes at most (1 GiB): a snapshot's size, entries times this, stays a
#: 64-bit number of bytes (the trace's) for any run that ends
MAX_ENTRY_BYTES = 2**30

__all__ = ["MAX_RECORDS", "MODES", "OFFSET_COMMITS", "DEFAULT_COMMIT", "SINKS", "Workload", "Pipeline", "Checkpointing",
           "WINDOW_KINDS", "AGGREGATE_NAMES", "WATERMARK_STRATEGIES", "WindowSettings", "WatermarkSettings"]

MODES = ("at_most_once", "at_least_once", "exactly_once")
#: When the consumer commits offsets (Kafka's commit policies); each mode has its default.
OFFSET_COMMITS = ("before_processing", "after_ack", "auto", "on_checkpoint")
DEFAULT_COMMIT = {"at_most_once": "before_processing", "at_least_once": "after_ack", "exactly_once": "on_checkpoint"}
SINKS = ("append", "upsert", "transactional", "payments")
@dataclass(frozen=True)
class Workload:
    """What the producer writes: `records` records with random keys, spread over partitions."""

    records: int = field(default=20_000, metadata=_spec("count", min=1, max=MAX_RECORDS))
    partitions: int = field(default=4, metadata=_spec("count", min=1, max=10_000))
    keys: int = field(default=100, metadata=_spec("count", min=1, max=MAX_RECORDS))
    produce_batch: int = field(default=200, metadata=_spec("count", min=1, max=MAX_RECORDS))
    produce_interval: Duration = field(default=given("5ms"), metadata=_spec("duration"))
    out_of_order: Duration = field(default=given(0), metadata=_spec("duration"))
    late_fraction: float = field(default=0.0, metadata=_spec("fraction"))
    late_by: Duration = field(default=given(0), metadata=_spec("duration"))
    idle_partitions: Partitions = field(default=given(()), metadata=_spec("partitions"))
    idle_from: Duration = field(default=given(0), metadata=_spec("duration"))
    idle_until: MaybeDuration = field(default=given(None), metadata=_spec("duration", optional=True))
    source: str | type | None = field(default=None, metadata=_spec("component", base=_source_base, optional=True, component="source"))
    source_params: dict[str, Any] = field(default_factory=dict, metadata=_spec("params"))
    marker_every: int = field(default=0, metadata=_spec("count"))
    poison_every: int = field(default=0, metadata=_spec("count"))
    resend_fraction: float = field(default=0.0, metadata=_spec("fraction"))
    resend_after: Duration = field(default=given("200ms"), metadata=_spec("duration"))
    hot_keys: int = field(default=1, metadata=_spec("count", min=1))
    hot_fraction: float = field(default=0.0, metadata=_spec("fraction"))
    idempotent: bool = field(default=True, metadata=_spec("flag"))
    transactional: bool = field(default=False, metadata=_spec("flag"))
    txn_batches: int = field(default=5, metadata=_spec("count", min=1))
    producers: int = field(default=1, metadata=_spec("count", min=1, max=64))
    transaction_timeout: MaybeDuration = field(default=given(None), metadata=_spec("duration", min=1, optional=True))
    fencing: bool = field(default=True, metadata=_spec("flag"))

    @property
    def source_spec(self) -> ComponentSpec | None:
        """The user's Source (a ComponentSpec), or None for the built-in uniform keys."""
        return _resolve(self.source, "source", _source_base, self.source_params)

    def __post_init__(self) -> None:
        _validate(self, "workload")
        for p in self.idle_partitions:
            if p >= self.partitions:
                raise ScenarioError("workload.idle_partitions", p, f"partition numbers below workload.partitions ({self.partitions})")
        if len(set(self.idle_partitions)) >= self.partitions:
            raise ScenarioError("workload.idle_partitions", list(self.idle_partitions), "at least one partition left with data")
        if self.source is not None and not isinstance(self.source, type) and ":" not in self.source:
            raise ScenarioError("workload.source", self.source, "an importable 'module:Class' that subclasses weir.Source")
        if self.transaction_timeout is not None and not self.transactional:
            raise ScenarioError("workload.transaction_timeout", self.transaction_timeout,
                                "no timeout unless workload.transactional = true")
        if self.hot_keys > self.keys:
            raise ScenarioError("workload.hot_keys", self.hot_keys, f"at most workload.keys ({self.keys})")
        if self.idle_partitions:
            import numpy as np
            from weir.sim.kafka.partitioner import partition_for
            idle, busy = set(self.idle_partitions), False
            for first in range(0, self.keys, 1 << 16):  # in chunks: a busy key is almost always among the first
                found = set(partition_for(np.arange(first, min(first + (1 << 16), self.keys)), self.partitions).tolist())
                if found - idle:
                    busy = True
                    break
            if not busy:
                raise ScenarioError("workload.idle_partitions", list(self.idle_partitions),
                                    f"partitions that leave at least one of the {self.keys} keys a partition with data")


_DEFAULT_POLL = 1_000  # pipeline.poll_interval's default, 1ms: any other value asks for weir's polling


@dataclass(frozen=True)
class Pipeline:
    """The job: delivery mode, sink kind, batch size and the costs of each step."""

    mode: str = field(default="at_least_once", metadata=_spec("choice", choices=MODES))
    offset_commit: str | None = field(default=None, metadata=_spec("choice", choices=OFFSET_COMMITS, optional=True))
    isolation: str = field(default="read_uncommitted", metadata=_spec("choice", choices=("read_uncommitted", "read_committed")))
    sink: Given[str | type | None, str | type] = field(default=given(None), metadata=_spec("component", choices=SINKS, base=_sink_base, optional=True, component="sink"))
    sink_params: dict[str, Any] = field(default_factory=dict, metadata=_spec("params"))
    dedup_key: Names = field(default=given(("record_id",)), metadata=_spec("names", choices=lambda: _dedup_columns()))
    batch_size: int = field(default=100, metadata=_spec("count", min=1, max=MAX_RECORDS))
    max_in_flight: int = field(default=4, metadata=_spec("count", min=1, max=100_000))
    parallelism: int = field(default=1, metadata=_spec("count", min=1, max=256))
    source_parallelism: int = field(default=1, metadata=_spec("count", min=1, max=256))
    queue_capacity: int = field(default=4, metadata=_spec("count", min=1, max=100_000))
    salts: int = field(default=1, metadata=_spec("count", min=1, max=256))
    source_failover: str = field(default="job", metadata=_spec("choice", choices=("job", "rebalance")))
    session_timeout: Duration = field(default=given("30ms"), metadata=_spec("duration", min=1))
    heartbeat_interval: Duration = field(default=given("10ms"), metadata=_spec("duration", min=1))
    poll_interval: Duration = field(default=given("1ms"), metadata=_spec("duration", min=1))  # _DEFAULT_POLL
    # Kafka's fetch.max.wait.ms: the broker holds a fetch that finds nothing until records arrive or
    # this passes (a long poll); 0: it answers at once, and the source waits poll_interval and asks
    # again. Not given: half of request_timeout, or less where a round trip leaves less (`fetch_wait`)
    fetch_max_wait: MaybeDuration = field(default=given(None), metadata=_spec("duration", optional=True))
    process_time: Duration = field(default=given("50us"), metadata=_spec("duration"))
    write_time: Duration = field(default=given("1ms"), metadata=_spec("duration"))
    commit_interval: Duration = field(default=given("100ms"), metadata=_spec("duration", min=1))
    network_latency: Duration = field(default=given("500us"), metadata=_spec("duration"))
    network_jitter: Duration = field(default=given("200us"), metadata=_spec("duration"))
    network_jitter_shape: str = field(default="uniform", metadata=_spec("choice", choices=JITTER_SHAPES))
    request_timeout: Duration = field(default=given("20ms"), metadata=_spec("duration", min=1))
    restart_delay: Duration = field(default=given("100ms"), metadata=_spec("duration"))
    consumer: str | type | None = field(default=None, metadata=_spec("component", base=_consumer_base, optional=True, component="consumer"))
    consumer_params: dict[str, Any] = field(default_factory=dict, metadata=_spec("params"))
    transaction_timeout: MaybeDuration = field(default=given(None), metadata=_spec("duration", min=1, optional=True))
    ignore_commit_failures_after_timeout: bool = field(default=False, metadata=_spec("flag"))
    bounded: bool = field(default=True, metadata=_spec("flag"))

    @property
    def sink_spec(self) -> ComponentSpec | None:
        """The user's Sink (a ComponentSpec), or None for a built-in one."""
        return _resolve(self.sink, "sink", _sink_base, self.sink_params)

    @property
    def consumer_spec(self) -> ComponentSpec | None:
        """The user's ConsumerPolicy (a ComponentSpec), or None for weir's (pipeline.offset_commit)."""
        return _resolve(self.consumer, "consumer", _consumer_base, self.consumer_params)

    @property
    def fetch_wait(self) -> int:
        """How long the broker may hold a fetch that finds nothing, in us: `fetch_max_wait` as given;
        if not given, half of `request_timeout` (10ms at the defaults), or less where a round trip
        leaves less, so that a held fetch is answered before its request times out. 0: no long polls."""
        if self.fetch_max_wait is not None:
            return self.fetch_max_wait
        round_trip = 2 * (self.network_latency + self.network_jitter)
        return max(0, min(self.request_timeout // 2, self.request_timeout - round_trip - 1))

    @property
    def sink_name(self) -> str:
        """The sink as shown in results: its built-in name, or 'module:Class'."""
        return component_name(self.sink)

    @property
    def two_phase(self) -> bool:
        """Whether the sink commits through transactions on checkpoints (the built-in transactional
        sink, or a user's weir.TwoPhaseCommitSink)."""
        spec = self.sink_spec
        if spec is None:
            return self.sink == "transactional"
        from weir.sim.stream.functions import TwoPhaseCommitSink
        return issubclass(spec.cls, TwoPhaseCommitSink)

    def __post_init__(self) -> None:
        _validate(self, "pipeline")
        if self.sink is None:
            object.__setattr__(self, "sink", "upsert" if self.mode == "exactly_once" else "append")
        if self.offset_commit is None:
            object.__setattr__(self, "offset_commit", DEFAULT_COMMIT[self.mode])
        if self.mode == "exactly_once" and self.offset_commit != "on_checkpoint":
            raise ScenarioError("pipeline.offset_commit", self.offset_commit,
                                "'on_checkpoint' when pipeline.mode = 'exactly_once' (offsets live in checkpoints)")
        if self.ignore_commit_failures_after_timeout and self.transaction_timeout is None:
            raise ScenarioError("pipeline.ignore_commit_failures_after_timeout", True,
                                "false unless pipeline.transaction_timeout is set")
        if not self.dedup_key:
            raise ScenarioError("pipeline.dedup_key", [], "a list of one or more of " + ", ".join(_dedup_columns()))
        if self.dedup_key != ("record_id",) and self.sink != "upsert":
            raise ScenarioError("pipeline.dedup_key", list(self.dedup_key), "['record_id'] unless pipeline.sink = 'upsert'")
        if self.heartbeat_interval >= self.session_timeout:
            raise ScenarioError("pipeline.heartbeat_interval", self.heartbeat_interval,
                                f"less than pipeline.session_timeout ({self.session_timeout}us)")
        round_trip = 2 * (self.network_latency + self.network_jitter)
        if self.request_timeout <= round_trip:
            raise ScenarioError("pipeline.request_timeout", self.request_timeout,
                                f"more than one round trip, 2 * (network_latency + network_jitter) = {round_trip}us")
        if self.poll_interval != _DEFAULT_POLL and self.fetch_wait:
            raise ScenarioError("pipeline.poll_interval", self.poll_interval,
                                "a poll interval only with pipeline.fetch_max_wait = 0 (weir's polling): with long "
                                "polls, the default, the broker holds a fetch instead of the source polling again")
        if self.fetch_max_wait and self.fetch_max_wait + round_trip >= self.request_timeout:
            raise ScenarioError("pipeline.fetch_max_wait", self.fetch_max_wait,
                                f"less than pipeline.request_timeout ({self.request_timeout}us) minus a round trip "
                                f"({round_trip}us): a held fetch must be answered before its request times out "
                                "(Kafka: fetch.max.wait.ms 500ms, request.timeout.ms 30s)")


@dataclass(frozen=True)
class Checkpointing:
    """Periodic barrier checkpoints of operator state and source offsets, together."""

    interval: Duration = field(default=given("100ms"), metadata=_spec("duration", min=1))
    store_write_time: Duration = field(default=given("2ms"), metadata=_spec("duration"))
    retain: int = field(default=3, metadata=_spec("count", min=1))
    min_pause: Duration = field(default=given(0), metadata=_spec("duration"))
    timeout: Duration = field(default=given("10s"), metadata=_spec("duration", min=1))
    tolerable_failures: int = field(default=0, metadata=_spec("count"))
    store_bandwidth: MaybeRate = field(default=given(None), metadata=_spec("rate", optional=True))
    state_entry_bytes: int = field(default=8, metadata=_spec("count", min=1, max=MAX_ENTRY_BYTES))
    incremental: bool = field(default=False, metadata=_spec("flag"))
    mode: str = field(default="exactly_once", metadata=_spec("choice", choices=("exactly_once", "at_least_once")))
    unaligned: bool = field(default=False, metadata=_spec("flag"))
    verify_writes: bool = field(default=True, metadata=_spec("flag"))

    def __post_init__(self) -> None:
        _validate(self, "checkpoint")
        if self.unaligned and self.mode != "exactly_once":
            raise ScenarioError("checkpoint.unaligned", True, "false when checkpoint.mode = 'at_least_once' "
                                "(unaligned barriers are an exactly-once mode)")

    def write_time(self, entries: int) -> int:
        """How long persisting a snapshot of `entries` state entries takes, in us."""
        extra = 0
        if self.store_bandwidth:
            extra = -(-entries * self.state_entry_bytes * 1_000_000 // self.store_bandwidth)  # ceiling
        return self.store_write_time + extra


WINDOW_KINDS = ("tumbling", "sliding", "session")
AGGREGATE_NAMES = ("count", "sum", "min", "max")
#: punctuated needs marker records (workload.marker_every); ingestion_time has the source stamp
#: every record it reads with its node's clock.
WATERMARK_STRATEGIES = ("bounded_out_of_orderness", "punctuated", "ingestion_time")


@dataclass(frozen=True)
class WindowSettings:
    """A keyed event-time window aggregation in the processor (its presence turns it on)."""

    kind: str = field(default="tumbling", metadata=_spec("choice", choices=WINDOW_KINDS))
    size: Duration = field(default=given("100ms"), metadata=_spec("duration", min=1))
    slide: MaybeDuration = field(default=given(None), metadata=_spec("duration", min=1, optional=True))
    gap: MaybeDuration = field(default=given(None), metadata=_spec("duration", min=1, optional=True))
    aggregate: str = field(default="sum", metadata=_spec("choice", choices=AGGREGATE_NAMES))
    accumulation: str = field(default="discarding", metadata=_spec("choice", choices=("discarding", "accumulating")))
    allowed_lateness: Duration = field(default=given(0), metadata=_spec("duration"))
    semantics: str = field(default="flink", metadata=_spec("choice", choices=("flink", "beam")))
    lateness_rule: str | None = field(default=None, metadata=_spec("choice", choices=("flink", "beam"), optional=True))
    side_output: bool = field(default=False, metadata=_spec("flag"))
    early_every_n: int | None = field(default=None, metadata=_spec("count", min=1, optional=True))
    early_after: MaybeDuration = field(default=given(None), metadata=_spec("duration", min=1, optional=True))
    late_every_n: int = field(default=1, metadata=_spec("count", min=1))
    late: str = field(default="fire", metadata=_spec("choice", choices=("fire", "never")))

    def __post_init__(self) -> None:
        _validate(self, "window")
        if self.lateness_rule is not None:  # the old key: one deprecation line, then it is semantics
            from weir.sim.stream.windowing import deprecated_lateness_rule
            object.__setattr__(self, "semantics", deprecated_lateness_rule("window.lateness_rule", self.lateness_rule,
                                                                           self.semantics))
            object.__setattr__(self, "lateness_rule", None)
        if self.late == "never" and self.semantics != "beam":
            raise ScenarioError("window.late", "never", "'fire' unless window.semantics = 'beam' (Flink's "
                                "EventTimeTrigger fires on every late element)")
        if self.kind == "sliding" and self.slide is None:
            raise ScenarioError("window.slide", raw("nothing"), "a duration when window.kind = 'sliding'")
        if self.kind == "session" and self.gap is None:
            raise ScenarioError("window.gap", raw("nothing"), "a duration when window.kind = 'session'")
        if self.kind == "sliding" and self.slide is not None and -(-self.size // self.slide) > MANY_WINDOWS:
            import warnings
            warnings.warn(f"window.slide: {self.slide}us puts each record in {-(-self.size // self.slide):,} windows "
                          f"(window.size / window.slide), each its own state and pane: the run costs about that "
                          f"many times a tumbling window's", UserWarning, stacklevel=3)

    def spec(self) -> WindowSpec:
        """The WindowSpec this describes."""
        from weir.sim.stream.windows import Session, Sliding, Trigger, Tumbling, WindowSpec
        windows: Tumbling | Sliding | Session
        if self.kind == "tumbling":
            windows = Tumbling(self.size)
        elif self.kind == "sliding":
            windows = Sliding(self.size, self.slide)
        else:  # (a session's gap is checked to be set)
            windows = Session(self.gap if self.gap is not None else 0)
        return WindowSpec(windows, aggregate=self.aggregate, accumulation=self.accumulation,
                          trigger=Trigger(self.early_every_n, self.early_after, self.late_every_n, self.late),
                          allowed_lateness=self.allowed_lateness, semantics=self.semantics,
                          side_output_late=self.side_output)


#: A sliding window that puts each record in more windows than this (window.size / window.slide)
#: loads with a warning: every one is state and a pane, so the run costs about that many times a
#: tumbling window's (a slide of "1us" where "1ms" was meant makes 200 records take minutes).
MANY_WINDOWS = 1_000


@dataclass(frozen=True)
class WatermarkSettings:
    """How the source derives watermarks from the records it reads."""

    strategy: str | type = field(default="bounded_out_of_orderness",
                          metadata=_spec("component", choices=WATERMARK_STRATEGIES, base=_watermark_base,
                                        component="watermarks"))
    params: dict[str, Any] = field(default_factory=dict, metadata=_spec("params"))
    bound: Duration = field(default=given("10ms"), metadata=_spec("duration"))
    interval: Duration = field(default=given("10ms"), metadata=_spec("duration", min=1))
    idle_timeout: MaybeDuration = field(default=given(None), metadata=_spec("duration", min=1, optional=True))

    def generator(self) -> str | Callable[..., Any]:
        """The strategy: a built-in's name, or the user's WatermarkStrategy class."""
        from weir.sim.stream.guard import guarded
        spec = _resolve(self.strategy, "watermarks", _watermark_base, self.params)
        return self.strategy if spec is None else guarded(spec.cls)

    def __post_init__(self) -> None:
        _validate(self, "watermarks")


def _dedup_columns() -> tuple[str, ...]:
    from weir.sim.patterns.sinks import DEDUP_COLUMNS
    return DEDUP_COLUMNS
