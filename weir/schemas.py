"""JSON Schemas for what weir reads and prints: `weir schema NAME`, `weir.schema(NAME)`.

Two kinds, both generated, never written by hand:
- the files a user writes (`scenario`, `faults`): from the scenario dataclasses' field metadata,
  the same that validates a file as it loads (weir.sim.scenario.loader.scenario_schema), so an
  editor that reads the schema completes and checks the keys weir accepts;
- the JSON the commands print with `--json` (`run`, `sweep`, ...): from the TypedDicts that type
  each `to_dict()` (weir.sim.kernel.schema.json_schema_of), which mypy holds the code to.

Every printed object has `schema_version` (weir.sim.kernel.schema.SCHEMA_VERSION).
"""

from __future__ import annotations

from typing import Any

from weir.analysis.diff import DiffJSON
from weir.faults.coverage import CoverageJSON
from weir.faults.explore import ExploreJSON
from weir.faults.matrix import MatrixJSON
from weir.sim.kernel.errors import ScenarioError, near
from weir.sim.kernel.schema import DRAFT, SCHEMA_VERSION, json_schema_of
from weir.sim.scenario.loader import faults_schema, scenario_schema

from .api import DemoJSON, ListJSON, ReportJSON, RunJSON
from .sweep import SweepJSON

__all__ = ["SCHEMA_VERSION", "SCHEMAS", "schema"]

#: What each command prints with --json.
OUTPUTS: dict[str, Any] = {"run": RunJSON, "sweep": SweepJSON, "matrix": MatrixJSON, "demo": DemoJSON,
                           "explore": ExploreJSON, "crashpoints": CoverageJSON, "diff": DiffJSON, "list": ListJSON,
                           "report": ReportJSON}
#: Every schema by name, with a line saying what it describes.
SCHEMAS: dict[str, str] = {
    "scenario": "a scenario file (TOML): every key weir accepts, with its default",
    "faults": "a faults file (TOML, for --faults): [[faults]] tables, as `weir explore` writes them",
    **{name: f"what `weir {name} --json` prints" for name in OUTPUTS},
}


def schema(name: str, closed: bool = False) -> dict[str, Any]:
    """The JSON Schema `name` (one of SCHEMAS). The output schemas allow keys they do not name, so
    that a reader of this version reads later output; `closed=True` allows none (the tests hold
    every command's output to that, so the schemas name every key)."""
    if not isinstance(name, str):
        raise ScenarioError("schema", name, "one of " + ", ".join(SCHEMAS))
    if name == "scenario":
        return scenario_schema()
    if name == "faults":
        return faults_schema()
    if name not in OUTPUTS:
        raise ScenarioError("schema", name, "one of " + ", ".join(SCHEMAS), hint=near(name, tuple(SCHEMAS)))
    return {"$schema": DRAFT, "title": f"weir {name} --json (schema_version {SCHEMA_VERSION})",
            **json_schema_of(OUTPUTS[name], closed)}
