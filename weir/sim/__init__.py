"""The simulator, in layers that import one way (tests/test_layers.py): kernel <- kafka <- stream <-
patterns <- scenario. Its most used names are re-exported here; `weir` re-exports the public API."""

from weir.sim.kernel.batch import RecordBatch
from weir.sim.kernel.clock import NodeClock
from weir.sim.kernel.errors import ScenarioError, SimulationError, WeirError
from weir.sim.kernel.world import Node, Status, World
from weir.sim.kernel.rng import RngStreams, stable_hash
from weir.sim.scenario.run import Run, execute
from weir.sim.scenario.model import Checkpointing, Expect, Fault, NodeSpec, Pipeline, RunLimits, Scenario, Workload
from weir.sim.scenario.loader import builtin_scenarios, load_scenario, parse_scenario
from weir.sim.kernel.trace import FrozenTrace, Kind, Trace
from weir.sim.kernel.units import format_duration, parse_duration

__all__ = [
    "RecordBatch", "NodeClock", "ScenarioError", "SimulationError", "WeirError", "Node", "Status", "World",
    "RngStreams", "stable_hash", "Run", "execute", "Checkpointing", "Expect", "Fault", "NodeSpec", "Pipeline",
    "RunLimits", "Scenario", "Workload", "builtin_scenarios", "load_scenario", "parse_scenario",
    "FrozenTrace", "Kind", "Trace", "format_duration", "parse_duration",
]
