"""The scenario: its format (frozen dataclasses, validated on construction), the TOML loader, the
components a scenario names, which invariants apply, and the run itself (execute)."""

from weir.sim.scenario.loader import builtin_scenarios, faults_toml, load_faults, load_scenario, parse_scenario
from weir.sim.scenario.model import Fault, Scenario
from weir.sim.scenario.run import Run, execute

__all__ = ["builtin_scenarios", "faults_toml", "load_faults", "load_scenario", "parse_scenario", "Fault", "Scenario",
           "Run", "execute"]
