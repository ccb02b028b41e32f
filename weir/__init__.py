"""weir: deterministic simulation and chaos testing for data pipelines.

The public API: `run` a scenario with a seed and get a `RunResult`; `load_scenario` from a file or
by built-in name; build a `Scenario` in Python from its parts; `explore` a scenario for a fault
schedule that breaks its claims. In Jupyter, `show` displays a plot, a run or a diagram inline.
"""

from weir._version import __version__
from weir.analysis.checkers import INVARIANTS, Verdict, check
from weir.sim.kernel.batch import RecordBatch
from weir.sim.scenario.components import (
    ComponentSpec, ConsumerPolicy, DeadLetter, DeadLetterReplay, Operator, OutboxRelay, Rejected, Retryable, Sink, Source, TwoPhaseCommitSink,
    WatermarkStrategy,
)
from weir.sim.kernel.errors import ScenarioError, SimulationError, UserError, WeirError
from weir.sim.kernel.units import micros, millis, minutes, seconds
from weir.sim.scenario.run import Run, execute
from weir.sim.scenario.model import Checkpointing, Expect, Fault, LinkSpec, NodeSpec, OutboxSettings, PaymentSettings, Pipeline, Reconcile, RetryPolicy, RunLimits, SagaSettings, Scenario, WatermarkSettings, WindowSettings, Workload
from weir.sim.scenario.loader import builtin_scenarios, load_scenario
from weir.sim.scenario.loader import faults_toml, load_faults

from .api import SPECTRUM, Expectation, RunResult, explore, result_of, run, spectrum
from .sweep import Sweep, sweep
from .notebook import Answer, Picture, exercise, show
from .schemas import schema


__all__ = [
    "__version__",
    "INVARIANTS", "Verdict", "check", "ScenarioError", "SimulationError", "UserError", "WeirError", "Run", "execute",
    "Checkpointing", "Expect", "Fault", "LinkSpec", "NodeSpec", "Pipeline", "RunLimits", "Scenario", "Workload",
    "builtin_scenarios", "load_scenario", "SPECTRUM", "Expectation", "RunResult", "result_of", "run", "spectrum",
    "explore", "sweep", "Sweep", "load_faults", "faults_toml", "OutboxSettings", "PaymentSettings", "Reconcile", "RetryPolicy",
    "SagaSettings", "WatermarkSettings", "WindowSettings",
    "RecordBatch", "ComponentSpec", "Operator", "Sink", "TwoPhaseCommitSink", "Retryable", "Rejected", "Source",
    "DeadLetter", "DeadLetterReplay", "ConsumerPolicy", "OutboxRelay",
    "WatermarkStrategy", "micros", "millis", "seconds", "minutes", "show", "Picture", "Answer", "exercise", "schema",
]
