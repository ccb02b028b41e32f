"""The deterministic kernel: world, nodes, network, clocks, RNG streams, the trace, units, errors,
record batches, and how each kind of fault acts on a world (inject/). Time is integer microseconds."""

from weir.sim.kernel.batch import RecordBatch
from weir.sim.kernel.clock import NodeClock
from weir.sim.kernel.errors import ScenarioError, SimulationError, WeirError
from weir.sim.kernel.rng import RngStreams, stable_hash
from weir.sim.kernel.trace import FrozenTrace, Kind, Msg, Trace
from weir.sim.kernel.units import format_duration, parse_duration
from weir.sim.kernel.world import Network, Node, Status, World

__all__ = ["RecordBatch", "NodeClock", "ScenarioError", "SimulationError", "WeirError", "RngStreams", "stable_hash",
           "FrozenTrace", "Kind", "Msg", "Trace", "format_duration", "parse_duration", "Network", "Node", "Status",
           "World"]
