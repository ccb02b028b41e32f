"""Scenarios: frozen dataclasses validated on construction, and the TOML loader.

Every value is checked in `__post_init__`, so a scenario built in Python is held to the same rules
as one read from a file, and a bad value raises `ScenarioError` naming the key, what it got and
what it accepts. Durations may be given as whole microseconds or as strings with units ("15ms").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from weir.sim.scenario.checks import (
    _check_component, _resolve, _sink_base, _source_base, _spec, _validate, _watermark_base,
)
from weir.sim.kernel.errors import ScenarioError, raw
from weir.sim.scenario.invariants import APPLIES, applicable
from weir.sim.scenario.nodes import NODE_FORMS, NODES, is_node_name, node_names

__all__ = [
    "MODES", "SINKS", "NODES", "FAULT_KINDS", "LINK_KINDS", "LinkSpec", "node_names", "is_node_name",
    "Workload", "Pipeline", "Checkpointing", "Reconcile", "RetryPolicy", "PaymentSettings", "OutboxSettings", "SagaSettings", "WindowSettings", "WatermarkSettings", "NodeSpec", "Fault", "Expect", "RunLimits", "Scenario",
]

MODES = ("at_most_once", "at_least_once", "exactly_once")
#: When the consumer commits offsets (Kafka's commit policies); each mode has its default.
OFFSET_COMMITS = ("before_processing", "after_ack", "auto", "on_checkpoint")
DEFAULT_COMMIT = {"at_most_once": "before_processing", "at_least_once": "after_ack", "exactly_once": "on_checkpoint"}
SINKS = ("append", "upsert", "transactional", "payments")
#: crash: a node stops and restarts. The sink faults (node = "sink") last `down_for` from `at`:
#: sink_fail, every write fails; sink_slow, every write takes `slow_by` longer; sink_ack_lost,
#: every write is applied but its acknowledgement is lost, so the sink sees a timeout.
#: partition: from `at` for `down_for`, messages between `node` and `peers` (default: every other
#: node) are lost, both ways or one way (`direction`). clock_step: at `at`, the node's clock jumps
#: by `by` (forward, or backward if negative: an NTP correction).
#: Checkpoint store faults (node = "coordinator", whose writes they are), for down_for from at:
#: store_fail, snapshots written then are refused (the checkpoint fails); store_slow, each takes
#: slow_by longer; store_torn, each is stored torn (its checksum does not match; a restore skips it).
#: pause: for down_for, the node is frozen (a stop-the-world GC pause): its timers go off and its
#: work ends only after it resumes, what it sends leaves then, what is sent to it is taken in then.
#: slow: for down_for, the node's work (processing, writing) takes `factor` times as long.
#: delay: for down_for, messages from and to the node (or between it and `peers`) take slow_by
#: longer (links stay FIFO). loss: for down_for, each such message is lost with chance `rate`.
#: duplicate: for down_for, each such request or reply is delivered twice with chance `rate`
#: (connections between tasks drop the copy, as TCP does). reorder: for down_for, each such message
#: takes up to slow_by longer, drawn, and requests and replies may overtake one another.
#: late_burst: records produced in the window happened slow_by earlier than usual (late data).
#: stop: crash-stop, the node crashes at `at` and never comes back.
JITTER_SHAPES = ("uniform", "exponential", "pareto")
FAULT_KINDS = ("crash", "stop", "sink_fail", "sink_slow", "sink_ack_lost", "partition", "clock_step",
               "store_fail", "store_slow", "store_torn", "pause", "slow", "delay", "loss", "late_burst",
               "duplicate", "reorder")
LINK_KINDS = ("partition", "delay", "loss", "duplicate", "reorder")  # faults of links: a node, its peers, a direction


@dataclass(frozen=True)
class Workload:
    """What the producer writes: `records` records with random keys, spread over partitions."""

    records: int = field(default=20_000, metadata=_spec("count", min=1))
    partitions: int = field(default=4, metadata=_spec("count", min=1))
    keys: int = field(default=100, metadata=_spec("count", min=1))
    produce_batch: int = field(default=200, metadata=_spec("count", min=1))
    produce_interval: int | str = field(default="5ms", metadata=_spec("duration"))
    out_of_order: int | str = field(default=0, metadata=_spec("duration"))
    late_fraction: float = field(default=0.0, metadata=_spec("fraction"))
    late_by: int | str = field(default=0, metadata=_spec("duration"))
    idle_partitions: tuple[int, ...] = field(default=(), metadata=_spec("partitions"))
    idle_from: int | str = field(default=0, metadata=_spec("duration"))
    idle_until: int | str | None = field(default=None, metadata=_spec("duration", optional=True))
    source: str | None = field(default=None, metadata=_spec("component", base=_source_base, optional=True))
    source_params: dict = field(default_factory=dict, metadata=_spec("params"))
    marker_every: int = field(default=0, metadata=_spec("count"))
    poison_every: int = field(default=0, metadata=_spec("count"))
    resend_fraction: float = field(default=0.0, metadata=_spec("fraction"))
    resend_after: int | str = field(default="200ms", metadata=_spec("duration"))
    hot_keys: int = field(default=1, metadata=_spec("count", min=1))
    hot_fraction: float = field(default=0.0, metadata=_spec("fraction"))
    idempotent: bool = field(default=True, metadata=_spec("flag"))
    transactional: bool = field(default=False, metadata=_spec("flag"))
    txn_batches: int = field(default=5, metadata=_spec("count", min=1))
    producers: int = field(default=1, metadata=_spec("count", min=1))

    @property
    def source_spec(self):
        """The user's Source (a ComponentSpec), or None for the built-in uniform keys."""
        return _resolve(self.source, "source", _source_base, self.source_params)

    def __post_init__(self) -> None:
        _validate(self, "workload")
        for p in self.idle_partitions:
            if p >= self.partitions:
                raise ScenarioError("workload.idle_partitions", p, f"partition numbers below workload.partitions ({self.partitions})")
        if len(set(self.idle_partitions)) >= self.partitions:
            raise ScenarioError("workload.idle_partitions", list(self.idle_partitions), "at least one partition left with data")
        if self.source is not None and ":" not in self.source:
            raise ScenarioError("workload.source", self.source, "an importable 'module:Class' that subclasses weir.Source")
        _check_component(self.source, "source", _source_base, self.source_params)
        if self.transactional and self.producers > 1:
            raise ScenarioError("workload.producers", self.producers, "1 when workload.transactional = true "
                                "(one transactional producer for now)")
        if self.hot_keys > self.keys:
            raise ScenarioError("workload.hot_keys", self.hot_keys, f"at most workload.keys ({self.keys})")
        if self.idle_partitions:
            import numpy as np
            from weir.sim.kafka.partitioner import partition_for
            busy = set(partition_for(np.arange(self.keys), self.partitions).tolist()) - set(self.idle_partitions)
            if not busy:
                raise ScenarioError("workload.idle_partitions", list(self.idle_partitions),
                                    f"partitions that leave at least one of the {self.keys} keys a partition with data")


@dataclass(frozen=True)
class Pipeline:
    """The job: delivery mode, sink kind, batch size and the costs of each step."""

    mode: str = field(default="at_least_once", metadata=_spec("choice", choices=MODES))
    offset_commit: str | None = field(default=None, metadata=_spec("choice", choices=OFFSET_COMMITS, optional=True))
    isolation: str = field(default="read_uncommitted", metadata=_spec("choice", choices=("read_uncommitted", "read_committed")))
    sink: str | None = field(default=None, metadata=_spec("component", choices=SINKS, base=_sink_base, optional=True))
    sink_params: dict = field(default_factory=dict, metadata=_spec("params"))
    dedup_key: tuple[str, ...] = field(default=("record_id",), metadata=_spec("names", choices=lambda: _dedup_columns()))
    batch_size: int = field(default=100, metadata=_spec("count", min=1))
    max_in_flight: int = field(default=4, metadata=_spec("count", min=1))
    parallelism: int = field(default=1, metadata=_spec("count", min=1))
    source_parallelism: int = field(default=1, metadata=_spec("count", min=1))
    queue_capacity: int = field(default=4, metadata=_spec("count", min=1))
    salts: int = field(default=1, metadata=_spec("count", min=1))
    source_failover: str = field(default="job", metadata=_spec("choice", choices=("job", "rebalance")))
    session_timeout: int | str = field(default="30ms", metadata=_spec("duration", min=1))
    heartbeat_interval: int | str = field(default="10ms", metadata=_spec("duration", min=1))
    poll_interval: int | str = field(default="1ms", metadata=_spec("duration", min=1))
    process_time: int | str = field(default="50us", metadata=_spec("duration"))
    write_time: int | str = field(default="1ms", metadata=_spec("duration"))
    commit_interval: int | str = field(default="100ms", metadata=_spec("duration", min=1))
    network_latency: int | str = field(default="500us", metadata=_spec("duration"))
    network_jitter: int | str = field(default="200us", metadata=_spec("duration"))
    network_jitter_shape: str = field(default="uniform", metadata=_spec("choice", choices=JITTER_SHAPES))
    request_timeout: int | str = field(default="20ms", metadata=_spec("duration", min=1))
    restart_delay: int | str = field(default="100ms", metadata=_spec("duration"))

    @property
    def sink_spec(self):
        """The user's Sink (a ComponentSpec), or None for a built-in one."""
        return _resolve(self.sink, "sink", _sink_base, self.sink_params)

    def __post_init__(self) -> None:
        _validate(self, "pipeline")
        _check_component(self.sink, "sink", _sink_base, self.sink_params)
        if self.sink is None:
            object.__setattr__(self, "sink", "upsert" if self.mode == "exactly_once" else "append")
        if self.offset_commit is None:
            object.__setattr__(self, "offset_commit", DEFAULT_COMMIT[self.mode])
        if self.mode == "exactly_once" and self.offset_commit != "on_checkpoint":
            raise ScenarioError("pipeline.offset_commit", self.offset_commit,
                                "'on_checkpoint' when pipeline.mode = 'exactly_once' (offsets live in checkpoints)")
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


@dataclass(frozen=True)
class Checkpointing:
    """Periodic barrier checkpoints of operator state and source offsets, together."""

    interval: int | str = field(default="100ms", metadata=_spec("duration", min=1))
    store_write_time: int | str = field(default="2ms", metadata=_spec("duration"))
    retain: int = field(default=3, metadata=_spec("count", min=1))
    min_pause: int | str = field(default=0, metadata=_spec("duration"))
    timeout: int | str = field(default="10s", metadata=_spec("duration", min=1))
    tolerable_failures: int = field(default=0, metadata=_spec("count"))
    store_bandwidth: int | str | None = field(default=None, metadata=_spec("rate", optional=True))
    state_entry_bytes: int = field(default=8, metadata=_spec("count", min=1))
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
    size: int | str = field(default="100ms", metadata=_spec("duration", min=1))
    slide: int | str | None = field(default=None, metadata=_spec("duration", min=1, optional=True))
    gap: int | str | None = field(default=None, metadata=_spec("duration", min=1, optional=True))
    aggregate: str = field(default="sum", metadata=_spec("choice", choices=AGGREGATE_NAMES))
    accumulation: str = field(default="discarding", metadata=_spec("choice", choices=("discarding", "accumulating")))
    allowed_lateness: int | str = field(default=0, metadata=_spec("duration"))
    lateness_rule: str = field(default="flink", metadata=_spec("choice", choices=("flink", "beam")))
    side_output: bool = field(default=False, metadata=_spec("flag"))
    early_every_n: int | None = field(default=None, metadata=_spec("count", min=1, optional=True))
    early_after: int | str | None = field(default=None, metadata=_spec("duration", min=1, optional=True))
    late_every_n: int = field(default=1, metadata=_spec("count", min=1))

    def __post_init__(self) -> None:
        _validate(self, "window")
        if self.kind == "sliding" and self.slide is None:
            raise ScenarioError("window.slide", raw("nothing"), "a duration when window.kind = 'sliding'")
        if self.kind == "session" and self.gap is None:
            raise ScenarioError("window.gap", raw("nothing"), "a duration when window.kind = 'session'")

    def spec(self):
        """The WindowSpec this describes."""
        from weir.sim.stream.windows import Session, Sliding, Trigger, Tumbling, WindowSpec
        windows = {"tumbling": lambda: Tumbling(self.size), "sliding": lambda: Sliding(self.size, self.slide),
                   "session": lambda: Session(self.gap)}[self.kind]()
        return WindowSpec(windows, aggregate=self.aggregate, accumulation=self.accumulation,
                          trigger=Trigger(self.early_every_n, self.early_after, self.late_every_n),
                          allowed_lateness=self.allowed_lateness, lateness_rule=self.lateness_rule,
                          side_output_late=self.side_output)


@dataclass(frozen=True)
class WatermarkSettings:
    """How the source derives watermarks from the records it reads."""

    strategy: str = field(default="bounded_out_of_orderness",
                          metadata=_spec("component", choices=WATERMARK_STRATEGIES, base=_watermark_base))
    params: dict = field(default_factory=dict, metadata=_spec("params"))
    bound: int | str = field(default="10ms", metadata=_spec("duration"))
    interval: int | str = field(default="10ms", metadata=_spec("duration", min=1))
    idle_timeout: int | str | None = field(default=None, metadata=_spec("duration", min=1, optional=True))

    def generator(self):
        """The strategy: a built-in's name, or the user's WatermarkStrategy class."""
        spec = _resolve(self.strategy, "watermarks", _watermark_base, self.params)
        return self.strategy if spec is None else spec.cls

    def __post_init__(self) -> None:
        _validate(self, "watermarks")
        _check_component(self.strategy, "watermarks", _watermark_base, self.params)


@dataclass(frozen=True)
class NodeSpec:
    """A node's clock (a fixed offset and a drift in parts per million) and how long it takes to boot."""

    name: str = field(metadata=_spec("node"))
    clock_offset: int | str = field(default=0, metadata=_spec("signed_duration"))
    clock_drift_ppm: int = field(default=0, metadata=_spec("int"))
    boot_time: int | str = field(default=0, metadata=_spec("duration"))

    def __post_init__(self) -> None:
        if not is_node_name(self.name):
            raise ScenarioError("nodes", self.name, "a table named for one of " + NODE_FORMS)
        _validate(self, f"nodes.{self.name}")
        if not -1_000_000 < self.clock_drift_ppm < 1_000_000:
            raise ScenarioError(f"nodes.{self.name}.clock_drift_ppm", self.clock_drift_ppm,
                                "a whole number of parts per million between -999999 and 999999")


@dataclass(frozen=True)
class LinkSpec:
    """The latency distribution of the links between two nodes (both ways, or only from the first
    to the second): a base latency plus jitter of a shape, instead of the pipeline's network_*."""

    between: tuple[str, ...] = field(default=(), metadata=_spec("nodes"))
    latency: int | str | None = field(default=None, metadata=_spec("duration", optional=True))
    jitter: int | str | None = field(default=None, metadata=_spec("duration", optional=True))
    jitter_shape: str | None = field(default=None, metadata=_spec("choice", choices=JITTER_SHAPES, optional=True))
    direction: str = field(default="both", metadata=_spec("choice", choices=("both", "outbound")))

    def __post_init__(self) -> None:
        _validate(self, "links")
        if len(self.between) != 2 or self.between[0] == self.between[1]:
            raise ScenarioError("links.between", list(self.between), "two different node names, [\"a\", \"b\"]")

    def params(self, pipeline: "Pipeline") -> tuple[int, int, str]:
        """(latency, jitter, shape) of these links: what the table sets, the pipeline's otherwise."""
        return (pipeline.network_latency if self.latency is None else self.latency,
                pipeline.network_jitter if self.jitter is None else self.jitter,
                pipeline.network_jitter_shape if self.jitter_shape is None else self.jitter_shape)

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The (sender, receiver) pairs these links are."""
        a, b = self.between
        return ((a, b), (b, a)) if self.direction == "both" else ((a, b),)


@dataclass(frozen=True)
class Fault:
    """A scripted fault: `crash` a node at `at` and restart it `down_for` later, or a sink fault
    (sink_fail, sink_slow, sink_ack_lost) on the sink's writes from `at` for `down_for`."""

    kind: str = field(default="crash", metadata=_spec("choice", choices=FAULT_KINDS))
    node: str = field(default="processor", metadata=_spec("node"))
    at: int | str = field(default=0, metadata=_spec("duration"))
    down_for: int | str = field(default="100ms", metadata=_spec("duration", min=1))
    slow_by: int | str = field(default="10ms", metadata=_spec("duration"))
    peers: tuple[str, ...] = field(default=(), metadata=_spec("nodes"))
    group: tuple[str, ...] = field(default=(), metadata=_spec("nodes"))
    direction: str = field(default="both", metadata=_spec("choice", choices=("both", "outbound", "inbound")))
    by: int | str = field(default=0, metadata=_spec("signed_duration"))
    factor: float = field(default=2.0, metadata=_spec("ratio"))
    rate: float = field(default=0.1, metadata=_spec("fraction"))

    def __post_init__(self) -> None:
        _validate(self, "faults")
        if self.kind.startswith("sink_") and self.node != "sink":
            raise ScenarioError("faults.node", self.node, f"'sink' for kind = '{self.kind}' (a fault of the sink's writes)")
        if self.kind.startswith("store_") and self.node != "coordinator":
            raise ScenarioError("faults.node", self.node, f"'coordinator' for kind = '{self.kind}' "
                                "(a fault of the checkpoint store's writes)")
        if self.kind == "late_burst" and not self.node.startswith("producer"):
            raise ScenarioError("faults.node", self.node, "a producer node for kind = 'late_burst' (its records are late)")
        if self.node in self.peers:
            raise ScenarioError("faults.peers", self.node, "nodes other than the fault's own node")
        for name in self.group:
            if name == self.node or name in self.peers:
                raise ScenarioError("faults.group", name, "nodes on the fault node's side: neither it nor a peer")

    @property
    def heals_at(self) -> int:
        """When the fault is over (a clock step is over at once)."""
        return self.at if self.kind in ("clock_step", "stop") else self.at + self.down_for

    def describe(self) -> str:
        from weir.sim.kernel.units import format_duration
        if self.kind == "stop":
            return f"t={format_duration(self.at)} stop {self.node} for good"
        if self.kind == "clock_step":
            sign = "-" if self.by < 0 else "+"
            return f"t={format_duration(self.at)} {self.node}'s clock steps {sign}{format_duration(abs(self.by))}"
        arrow = {"both": "<->", "outbound": "->", "inbound": "<-"}[self.direction]
        what = {"crash": f"crash {self.node}", "sink_fail": "sink writes fail",
                "sink_slow": f"sink writes {format_duration(self.slow_by)} slower",
                "sink_ack_lost": "sink write acknowledgements lost",
                "partition": f"partition {', '.join((self.node, *self.group))} {arrow} {', '.join(self.peers) or 'all others'}",
                "store_fail": "checkpoint store refuses writes",
                "store_slow": f"checkpoint store writes {format_duration(self.slow_by)} slower",
                "store_torn": "checkpoint store tears writes", "pause": f"pause {self.node}",
                "slow": f"{self.node} works {self.factor:g}x slower",
                "delay": f"messages of {self.node} {arrow} {', '.join(self.peers) or 'all others'} "
                         f"{format_duration(self.slow_by)} slower",
                "loss": f"{self.rate:.0%} of messages of {self.node} {arrow} {', '.join(self.peers) or 'all others'} lost",
                "duplicate": f"{self.rate:.0%} of requests of {self.node} {arrow} {', '.join(self.peers) or 'all others'} "
                             "delivered twice",
                "reorder": f"messages of {self.node} {arrow} {', '.join(self.peers) or 'all others'} reordered "
                           f"by up to {format_duration(self.slow_by)}",
                "late_burst": f"records produced {format_duration(self.slow_by)} late"}[self.kind]
        return f"t={format_duration(self.at)} {what} for {format_duration(self.down_for)}"


def _dedup_columns() -> tuple[str, ...]:
    from weir.sim.patterns.sinks import DEDUP_COLUMNS
    return DEDUP_COLUMNS


def _invariant_names() -> tuple[str, ...]:
    return tuple(APPLIES)


@dataclass(frozen=True)
class Expect:
    """Which invariants the scenario claims hold, and which it claims are violated."""

    hold: tuple[str, ...] = field(default=(), metadata=_spec("names", choices=_invariant_names))
    violate: tuple[str, ...] = field(default=(), metadata=_spec("names", choices=_invariant_names))
    max_skew: float = field(default=1.5, metadata=_spec("ratio"))

    def __post_init__(self) -> None:
        _validate(self, "expect")
        both = sorted(set(self.hold) & set(self.violate))
        if both:
            raise ScenarioError("expect.violate", both[0], "a name that is not also in expect.hold")

    def expected(self, name: str) -> str | None:
        if name in self.hold:
            return "hold"
        if name in self.violate:
            return "violate"
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """How the sink retries a failed write, and where records go when retries run out (weir/sim/patterns/dlq.py)."""

    max_retries: int = field(default=3, metadata=_spec("count"))
    forever: bool = field(default=False, metadata=_spec("flag"))
    backoff: int | str = field(default="1ms", metadata=_spec("duration", min=1))
    multiplier: float = field(default=2.0, metadata=_spec("ratio"))
    max_backoff: int | str = field(default="100ms", metadata=_spec("duration", min=1))
    jitter: float = field(default=0.2, metadata=_spec("fraction"))
    failure_rate: float = field(default=0.0, metadata=_spec("fraction"))
    exhausted: str = field(default="dlq", metadata=_spec("choice", choices=("dlq", "skip")))
    replay_after: int | str | None = field(default=None, metadata=_spec("duration", optional=True))
    replay_interval: int | str = field(default="50ms", metadata=_spec("duration", min=1))
    replay_batch: int = field(default=100, metadata=_spec("count", min=1))

    def __post_init__(self) -> None:
        _validate(self, "retry")
        if self.replay_after is not None and self.exhausted != "dlq":
            raise ScenarioError("retry.replay_after", self.replay_after, "nothing when retry.exhausted = 'skip' "
                                "(there is no dead-letter queue to replay)")


@dataclass(frozen=True)
class PaymentSettings:
    """The payments sink (weir/sim/patterns/payments.py): dedup with a processed-key store with TTL, a lock, a MERGE."""

    dedup: bool = field(default=True, metadata=_spec("flag"))
    ttl: int | str = field(default="24h", metadata=_spec("duration", min=1))
    lock_ttl: int | str = field(default="1s", metadata=_spec("duration", min=1))

    def __post_init__(self) -> None:
        _validate(self, "payments")


@dataclass(frozen=True)
class OutboxSettings:
    """An application that stores orders and publishes their events, instead of the producer (weir/sim/patterns/outbox.py)."""

    mode: str = field(default="outbox", metadata=_spec("choice", choices=("outbox", "dual_write")))
    order: str = field(default="db_first", metadata=_spec("choice", choices=("db_first", "log_first")))
    db_write_time: int | str = field(default="100us", metadata=_spec("duration", min=1))
    linger: int | str = field(default="1ms", metadata=_spec("duration"))
    relay_interval: int | str = field(default="5ms", metadata=_spec("duration", min=1))
    relay_batch: int = field(default=100, metadata=_spec("count", min=1))

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

    period: int | str = field(default="100ms", metadata=_spec("duration", min=1))
    threshold: float = field(default=0.001, metadata=_spec("fraction"))

    def __post_init__(self) -> None:
        _validate(self, "reconcile")


@dataclass(frozen=True)
class RunLimits:
    """Guards that end a run that does not finish: simulated time and number of events."""

    max_time: int | str = field(default="120s", metadata=_spec("duration", min=1))
    max_events: int = field(default=5_000_000, metadata=_spec("count", min=1))
    drain_within: int | str | None = field(default=None, metadata=_spec("duration", min=1, optional=True))

    def __post_init__(self) -> None:
        _validate(self, "run")


@dataclass(frozen=True)
class Scenario:
    """A whole scenario: workload, pipeline, checkpoints, node clocks, faults, expectations."""

    name: str = field(default="scenario", metadata=_spec("text"))
    description: str = field(default="", metadata=_spec("text"))
    seed: int = field(default=1, metadata=_spec("count"))
    workload: Workload = field(default_factory=Workload)
    pipeline: Pipeline = field(default_factory=Pipeline)
    checkpoint: Checkpointing | None = None
    window: WindowSettings | None = None
    watermarks: WatermarkSettings | None = None
    operator: Any = None  # a components.ComponentSpec for a user Operator (instead of running totals)
    nodes: tuple[NodeSpec, ...] = ()
    faults: tuple[Fault, ...] = ()
    links: tuple[LinkSpec, ...] = ()
    expect: Expect = field(default_factory=Expect)
    run: RunLimits = field(default_factory=RunLimits)
    reconcile: Reconcile | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    payments: PaymentSettings = field(default_factory=PaymentSettings)
    outbox: OutboxSettings | None = None
    saga: SagaSettings | None = None

    def __post_init__(self) -> None:
        _validate(self, "scenario")
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "faults", tuple(self.faults))
        object.__setattr__(self, "links", tuple(self.links))
        mode = self.pipeline.mode
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
        if self.pipeline.sink == "transactional" and self.checkpoint is None:
            raise ScenarioError("pipeline.sink", "transactional", "another sink, or a [checkpoint] table (it commits on checkpoints)")
        if self.pipeline.offset_commit == "on_checkpoint" and self.checkpoint is None:
            raise ScenarioError("pipeline.offset_commit", "on_checkpoint", "another policy, or a [checkpoint] table to commit on")
        if mode == "at_most_once" and self.checkpoint is not None:
            raise ScenarioError("checkpoint", raw("a [checkpoint] table"),
                                "no [checkpoint] table when pipeline.mode = 'at_most_once' (it restarts from offsets committed at poll)")
        if self.saga is not None and (self.window is not None or self.outbox is not None or self.checkpoint is not None):
            raise ScenarioError("saga", raw("a [saga] table"), "no [window], [outbox] or [checkpoint] with it "
                                "(the sagas take the pipeline's place)")
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
        fits = applicable(self)
        for part in ("hold", "violate"):
            for name in getattr(self.expect, part):
                if name not in fits:
                    kind = "a windowed scenario" if self.window else "a scenario without [window]"
                    raise ScenarioError(f"expect.{part}", name, f"an invariant that applies to {kind}: " + ", ".join(fits))
        seen = set()
        names = self.node_names
        for spec in self.nodes:
            if spec.name in seen:
                raise ScenarioError(f"nodes.{spec.name}", spec.name, "each node at most once")
            if spec.name not in names:
                raise ScenarioError(f"nodes.{spec.name}", spec.name, "a node of this scenario: " + ", ".join(names))
            seen.add(spec.name)
        for i, link in enumerate(self.links):
            for node in link.between:
                if node not in names:
                    raise ScenarioError(f"links[{i}].between", node, "a node of this scenario: " + ", ".join(names))
            latency, jitter, _shape = link.params(self.pipeline)
            if self.pipeline.request_timeout <= 2 * (latency + jitter):
                raise ScenarioError(f"links[{i}].latency", latency, f"a latency and jitter whose round trip, "
                                    f"2 * (latency + jitter), is less than pipeline.request_timeout "
                                    f"({self.pipeline.request_timeout}us): every request over it would time out")
        for i, fault in enumerate(self.faults):
            for node in (fault.node, *fault.peers, *fault.group):
                if node not in names:
                    key = "node" if node == fault.node else ("peers" if node in fault.peers else "group")
                    raise ScenarioError(f"faults[{i}].{key}", node, "a node of this scenario: " + ", ".join(names))
            if fault.at >= self.run.max_time:
                raise ScenarioError(f"faults[{i}].at", fault.at, f"a time before run.max_time ({self.run.max_time}us)")

    @property
    def node_names(self) -> tuple[str, ...]:
        """This scenario's nodes, in trace order (see `node_names`)."""
        return node_names(self.workload.producers, self.pipeline.source_parallelism, self.saga is not None)

    def node_spec(self, name: str) -> NodeSpec:
        """The scenario's settings for node `name` (defaults if it has no [nodes.NAME] table)."""
        for spec in self.nodes:
            if spec.name == name:
                return spec
        return NodeSpec(name)

    def with_faults(self, faults: tuple[Fault, ...]) -> "Scenario":
        """The same scenario with another fault schedule."""
        return replace(self, faults=tuple(faults))

