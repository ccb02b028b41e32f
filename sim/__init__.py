"""weir's deterministic kernel and pipeline components."""

from .batch import RecordBatch
from .clock import NodeClock
from .errors import ScenarioError, SimulationError, WeirError
from .kernel import Node, Status, World
from .rng import RngStreams, stable_hash
from .run import Run, execute
from .scenario import (
    Checkpointing, Expect, Fault, NodeSpec, Pipeline, RunLimits, Scenario, Workload,
    builtin_scenarios, load_scenario, parse_scenario,
)
from .trace import FrozenTrace, Kind, Trace
from .units import format_duration, parse_duration

__all__ = [
    "RecordBatch", "NodeClock", "ScenarioError", "SimulationError", "WeirError", "Node", "Status", "World",
    "RngStreams", "stable_hash", "Run", "execute", "Checkpointing", "Expect", "Fault", "NodeSpec", "Pipeline",
    "RunLimits", "Scenario", "Workload", "builtin_scenarios", "load_scenario", "parse_scenario",
    "FrozenTrace", "Kind", "Trace", "format_duration", "parse_duration",
]
