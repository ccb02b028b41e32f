"""A scenario's world and what goes wrong in it: node clocks ([nodes.NAME]), links ([[links]]) and
faults ([[faults]]), validated on construction.

What a fault does to a world is the kernel's (weir.sim.kernel.inject); here is what a scenario may
say about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

from weir.sim.kernel.given import given
from weir.sim.kernel.errors import ScenarioError
from weir.sim.scenario.checks import Duration, MaybeDuration, Names, _spec, _validate
from weir.sim.scenario.nodes import NODE_FORMS, is_node_name

if TYPE_CHECKING:
    from weir.sim.scenario.pipeline import Pipeline

__all__ = ["JITTER_SHAPES", "FAULT_KINDS", "FAULT_FIELDS", "LINK_KINDS", "NodeSpec", "LinkSpec", "Fault", "FaultJSON"]

#: crash: a node stops and restarts. The sink faults (node = "sink") last `down_for` from `at`:
#: sink_fail, every write fails; sink_slow, every write takes `slow_by` longer; sink_ack_lost,
#: every write is applied but its acknowledgement is lost, so the sink sees a timeout;
#: sink_commit_fail, every commit of a two-phase-commit sink fails (the job fails over);
#: sink_overload, the sink takes one write attempt per slow_by and refuses the rest (retryable).
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
#: partition_slow: one partition (`partition`) is slow on the broker, its leader (a lagging
#: follower holds its high watermark back): consumers see its records only in bursts, one every
#: slow_by, while the other partitions flow on. Idleness detection then sees gaps.
JITTER_SHAPES = ("uniform", "exponential", "pareto")
FAULT_KINDS = ("crash", "stop", "sink_fail", "sink_slow", "sink_ack_lost", "sink_commit_fail", "sink_overload", "partition", "clock_step",
               "store_fail", "store_slow", "store_torn", "pause", "slow", "delay", "loss", "late_burst",
               "duplicate", "reorder", "partition_slow")
LINK_KINDS = ("partition", "delay", "loss", "duplicate", "reorder")  # faults of links: a node, its peers, a direction


@dataclass(frozen=True)
class NodeSpec:
    """A node's clock (a fixed offset and a drift in parts per million) and how long it takes to boot."""

    name: str = field(metadata=_spec("node"))
    clock_offset: Duration = field(default=given(0), metadata=_spec("signed_duration"))
    clock_drift_ppm: int = field(default=0, metadata=_spec("int"))
    boot_time: Duration = field(default=given(0), metadata=_spec("duration"))

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

    between: Names = field(default=given(()), metadata=_spec("nodes"))
    latency: MaybeDuration = field(default=given(None), metadata=_spec("duration", optional=True))
    jitter: MaybeDuration = field(default=given(None), metadata=_spec("duration", optional=True))
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


#: The fields each kind of fault reads, besides `kind` (what Fault's repr shows; the rest are ignored).
_LINK = ("node", "at", "down_for", "peers", "group", "direction")
FAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "crash": ("node", "at", "down_for"), "stop": ("node", "at"), "pause": ("node", "at", "down_for"),
    "clock_step": ("node", "at", "by"), "slow": ("node", "at", "down_for", "factor"),
    "sink_fail": ("node", "at", "down_for"), "sink_ack_lost": ("node", "at", "down_for"),
    "sink_commit_fail": ("node", "at", "down_for"), "sink_slow": ("node", "at", "down_for", "slow_by"),
    "sink_overload": ("node", "at", "down_for", "slow_by"),
    "store_fail": ("node", "at", "down_for"), "store_torn": ("node", "at", "down_for"),
    "store_slow": ("node", "at", "down_for", "slow_by"),
    "partition": _LINK, "delay": _LINK + ("slow_by",), "reorder": _LINK + ("slow_by",),
    "loss": _LINK + ("rate",), "duplicate": _LINK + ("rate",),
    "late_burst": ("node", "at", "down_for", "slow_by"), "partition_slow": ("node", "at", "down_for", "slow_by", "partition"),
}
_DURATIONS = ("at", "down_for", "slow_by", "by")


def _short_duration(us: int) -> str:
    """A duration in the unit that reads best and parses back exactly: '2s', '350ms', '2.301ms', '15us'."""
    sign, us = ("-", -us) if us < 0 else ("", us)
    if us and us % 1_000_000 == 0:
        return f"{sign}{us // 1_000_000}s"
    if us >= 1000:
        return f"{sign}{us // 1000}.{us % 1000:03d}".rstrip("0").rstrip(".") + "ms"
    return f"{sign}{us}us"


class FaultJSON(TypedDict):
    """A fault as JSON: its kind, the fields that kind reads (durations in whole microseconds; the
    keys of a [[faults]] table, so it reads back as one), and `text`, how weir describes it."""

    kind: str
    node: str
    at: int
    down_for: NotRequired[int]
    slow_by: NotRequired[int]
    peers: NotRequired[list[str]]
    group: NotRequired[list[str]]
    direction: NotRequired[str]
    by: NotRequired[int]
    factor: NotRequired[float]
    rate: NotRequired[float]
    partition: NotRequired[int]
    text: str


@dataclass(frozen=True, repr=False)
class Fault:
    """A scripted fault: `crash` a node at `at` and restart it `down_for` later, or a sink fault
    (sink_fail, sink_slow, sink_ack_lost) on the sink's writes from `at` for `down_for`."""

    kind: str = field(default="crash", metadata=_spec("choice", choices=FAULT_KINDS))
    node: str = field(default="processor", metadata=_spec("node"))
    at: Duration = field(default=given(0), metadata=_spec("duration"))
    down_for: Duration = field(default=given("100ms"), metadata=_spec("duration", min=1))
    slow_by: Duration = field(default=given("10ms"), metadata=_spec("duration"))
    peers: Names = field(default=given(()), metadata=_spec("nodes"))
    group: Names = field(default=given(()), metadata=_spec("nodes"))
    direction: str = field(default="both", metadata=_spec("choice", choices=("both", "outbound", "inbound")))
    by: Duration = field(default=given(0), metadata=_spec("signed_duration"))
    factor: float = field(default=2.0, metadata=_spec("ratio"))
    rate: float = field(default=0.1, metadata=_spec("fraction"))
    partition: int = field(default=0, metadata=_spec("count"))

    def __post_init__(self) -> None:
        _validate(self, "faults")
        if self.kind == "partition_slow":
            if self.node != "broker":
                raise ScenarioError("faults.node", self.node, "'broker' for kind = 'partition_slow' (the partition's leader)")
            if self.slow_by < 1:
                raise ScenarioError("faults.slow_by", self.slow_by, "a duration > 0 for kind = 'partition_slow' "
                                    "(how far apart the partition's bursts come)")
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

    def __repr__(self) -> str:
        """Only the fields the kind reads, durations in readable units: valid Python that makes the
        same fault (`Fault(kind='crash', node='source', at='2.301ms', down_for='1us')`)."""
        parts = [f"kind={self.kind!r}"]
        for name in FAULT_FIELDS[self.kind]:
            value = getattr(self, name)
            if name in ("peers", "group") and not value or name == "direction" and value == "both":
                continue  # the usual: all others, both ways
            parts.append(f"{name}={_short_duration(value)!r}" if name in _DURATIONS else f"{name}={value!r}")
        return f"Fault({', '.join(parts)})"

    def to_dict(self) -> FaultJSON:
        """The fault as JSON (FaultJSON)."""
        out: dict[str, Any] = {"kind": self.kind}
        for name in FAULT_FIELDS[self.kind]:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        out["text"] = self.describe()
        return cast(FaultJSON, out)  # the keys are the kind's (FAULT_FIELDS)

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
                "sink_commit_fail": "sink transaction commits fail",
                "sink_overload": f"sink takes one write per {format_duration(self.slow_by)}",
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
                "late_burst": f"records produced {format_duration(self.slow_by)} late",
                "partition_slow": f"partition {self.partition} readable only every {format_duration(self.slow_by)}",
                }[self.kind]
        return f"t={format_duration(self.at)} {what} for {format_duration(self.down_for)}"
