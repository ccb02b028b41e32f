"""Reading scenarios: TOML files (or a parsed document) into a validated Scenario, and the built-ins."""

from __future__ import annotations

import os
import tomllib
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weir.sim.kernel.errors import ScenarioError, near, no_such_path, raw
from weir.sim.kernel.files import read_text
from weir.sim.scenario.model import (
    LINK_KINDS, NODE_FORMS, LinkSpec, Fault, NodeSpec, Scenario, TABLES, WINDOW_STEP, is_node_name, tuple_of,
)

if TYPE_CHECKING:
    from weir.sim.scenario.components import ComponentSpec

__all__ = ["parse_scenario", "builtin_scenarios", "load_scenario", "load_faults", "faults_toml", "scenario_schema",
           "faults_schema"]

_SECTIONS = TABLES
_TOP = ("name", "description", "seed", "workload", "pipeline", "checkpoint", "window", "watermarks", "operator", "operators",
        "nodes", "faults", "links", "expect", "run", "reconcile", "retry", "payments", "outbox", "saga")


def _keys_of(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _table(value: Any, key: str, cls: type, extra: dict[str, Any] | None = None) -> Any:
    if not isinstance(value, dict):
        raise ScenarioError(key, value, f"a table [{key}]")
    allowed = [k for k in _keys_of(cls) if not (extra and k in extra)]
    for k in value:
        if k not in allowed:
            raise ScenarioError(f"{key}.{k}", raw("an unknown key"), "one of " + ", ".join(allowed), hint=near(k, allowed))
    return cls(**value, **(extra or {}))


def _chain_step(table: Any, key: str) -> ComponentSpec | str:
    """One [[operators]] table: an operator, or { window = true } for where the [window] runs."""
    if isinstance(table, dict) and "window" in table:
        if table != {"window": True}:
            raise ScenarioError(key, table, "{ window = true } alone, or class = 'module:Class' and params")
        return WINDOW_STEP
    return _operator_spec(table, key)


def _operator_spec(table: Any, key: str) -> ComponentSpec:
    """A ComponentSpec from an operator table: class = 'module:Class' and params."""
    if not isinstance(table, dict):
        raise ScenarioError(key, table, "a table with class = 'module:Class' and params")
    for k in table:
        if k not in ("class", "params"):
            raise ScenarioError(f"{key}.{k}", raw("an unknown key"), "one of class, params", hint=near(k, ("class", "params")))
    if "class" not in table:
        raise ScenarioError(f"{key}.class", raw("nothing"), "an importable 'module:Class' that subclasses weir.Operator")
    from weir.sim.scenario.components import SEARCH_PATHS, ComponentSpec, Operator, load_class
    cls = load_class(table["class"], Operator, f"{key}.class", tuple(SEARCH_PATHS))
    return ComponentSpec(cls, table.get("params", {}), "operator")


def parse_scenario(doc: dict[str, Any], default_name: str = "scenario") -> Scenario:
    """Build a Scenario from a parsed TOML document (a dict); raise ScenarioError on bad input."""
    for k in doc:
        if k not in _TOP:
            raise ScenarioError(k, raw("an unknown key"), "one of " + ", ".join(_TOP), hint=near(k, _TOP))
    kwargs: dict[str, Any] = {"name": doc.get("name", default_name)}
    for k in ("description", "seed"):
        if k in doc:
            kwargs[k] = doc[k]
    for key, cls in _SECTIONS.items():
        if key in doc:
            kwargs[key] = _table(doc[key], key, cls)
    if "operator" in doc:
        kwargs["operator"] = _operator_spec(doc["operator"], "operator")
    if "operators" in doc:
        tables = doc["operators"]
        if not isinstance(tables, list) or not tables:
            raise ScenarioError("operators", tables, "[[operators]] tables, each with class = 'module:Class' and params")
        kwargs["operators"] = tuple(_chain_step(t, f"operators[{i}]") for i, t in enumerate(tables))
    if "nodes" in doc:
        nodes = doc["nodes"]
        if not isinstance(nodes, dict):
            raise ScenarioError("nodes", nodes, "tables [nodes.NAME] with NAME one of " + NODE_FORMS)
        specs = []
        for name, table in nodes.items():
            if not is_node_name(name):
                raise ScenarioError(f"nodes.{name}", raw("an unknown node"), "one of " + NODE_FORMS)
            specs.append(_table(table, f"nodes.{name}", NodeSpec, {"name": name}))
        kwargs["nodes"] = tuple(specs)
    if "faults" in doc:
        kwargs["faults"] = _parse_faults(doc["faults"])
    if "links" in doc:
        kwargs["links"] = _parse_tables(doc["links"], "links", LinkSpec)
    return Scenario(**kwargs)


def _parse_faults(faults: Any) -> tuple[Fault, ...]:
    return _parse_tables(faults, "faults", Fault)


def _parse_tables(tables: Any, key: str, cls: type) -> tuple[Any, ...]:
    """An array of tables [[key]], each one a `cls`; errors name the table by index (key[2].at)."""
    if not isinstance(tables, list):
        raise ScenarioError(key, tables, f"an array of tables [[{key}]]")
    out = []
    for i, table in enumerate(tables):
        try:
            out.append(_table(table, key, cls))
        except ScenarioError as e:
            raise ScenarioError(e.key.replace(key, f"{key}[{i}]", 1), e.got, e.accepts, hint=e.hint) from None
    return tuple(out)


def _read_toml(path: Path, shown: str) -> dict[str, Any]:
    text = read_text(path, "(file)", "a UTF-8 TOML file", shown)
    depth = _nesting(text)
    if depth > MAX_NESTING:
        raise ScenarioError("(file)", raw(f"arrays or inline tables nested {depth} deep"),
                            f"a TOML document nested at most {MAX_NESTING} deep", shown)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError("(file)", raw(f"text that is not TOML ({e})"), "a TOML document", shown) from None
    except RecursionError:  # (nesting the count above missed, in a string's escapes, say)
        raise ScenarioError("(file)", raw("values nested too deep to read"), "a TOML document nested at most "
                            f"{MAX_NESTING} deep", shown) from None


#: How deep arrays and inline tables may nest in a scenario or faults file (a scenario needs 3).
MAX_NESTING = 32


def _nesting(text: str) -> int:
    """The deepest nesting of [ and { outside strings and comments (a bound, checked before the
    TOML parser, which recurses once per level, can run out of stack)."""
    depth = deepest = 0
    quote = None
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
        i += 1
    return deepest


def load_faults(path: str | Path) -> tuple[Fault, ...]:
    """A fault schedule from a TOML file of `[[faults]]` tables (what `weir explore` writes)."""
    path = Path(path)
    if not path.exists():
        raise no_such_path("--faults", path, "a path to a TOML file of [[faults]] tables")
    doc = _read_toml(path, str(path))
    try:
        for k in doc:
            if k != "faults":
                raise ScenarioError(k, raw("an unknown key"), "only [[faults]] tables", hint=near(k, ("faults",)))
        return _parse_faults(doc.get("faults", []))
    except ScenarioError as e:
        raise e.in_file(str(path)) from None


def faults_toml(faults: tuple[Fault, ...], header: str = "") -> str:
    """The schedule as `[[faults]]` tables, durations in whole microseconds (read back by load_faults)."""
    faults = tuple_of("faults", faults, Fault)
    lines = [f"# {line}" for line in header.splitlines()] + ([""] if header else [])
    for f in faults:
        lines += ["[[faults]]", f'kind = "{f.kind}"', f'node = "{f.node}"', f"at = {f.at}", f"down_for = {f.down_for}"]
        if f.kind in ("sink_slow", "store_slow", "delay", "reorder", "late_burst", "sink_overload", "partition_slow"):
            lines.append(f"slow_by = {f.slow_by}")
        if f.kind == "partition_slow":
            lines.append(f"partition = {f.partition}")
        if f.kind in ("loss", "duplicate"):
            lines.append(f"rate = {f.rate}")
        if f.kind in LINK_KINDS:
            lines += [f"group = [{', '.join(repr(p).replace(chr(39), chr(34)) for p in f.group)}]",
                      f"peers = [{', '.join(repr(p).replace(chr(39), chr(34)) for p in f.peers)}]",
                      f'direction = "{f.direction}"']
        if f.kind == "clock_step":
            lines.append(f"by = {f.by}")
        if f.kind == "slow":
            lines.append(f"factor = {f.factor}")
        lines.append("")
    return "\n".join(lines)


def _table_schema(cls: type, title: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A TOML table of `cls`'s fields, as JSON Schema: each key as its field accepts, no others."""
    from weir.sim.scenario.checks import IMPORT_PATH_SCHEMA, field_schema
    properties = {}
    for f in fields(cls):
        if f.name in skip:
            continue
        if f.name == "oracle":  # the one field a file gives as a function, not a component class
            properties[f.name] = {**IMPORT_PATH_SCHEMA, "description": "an importable 'module:function'"}
        else:
            properties[f.name] = field_schema(f)
    return {"type": "object", "title": title, "properties": properties, "additionalProperties": False}


def _operator_schema() -> dict[str, Any]:
    from weir.sim.scenario.checks import IMPORT_PATH_SCHEMA
    return {"type": "object", "required": ["class"], "additionalProperties": False,
            "properties": {"class": {**IMPORT_PATH_SCHEMA, "description": "'module:Class' of a weir.Operator"},
                           "params": {"type": "object", "description": "keyword parameters"}}}


def faults_schema() -> dict[str, Any]:
    """A faults file (`--faults`, what `weir explore` writes) as JSON Schema: [[faults]] tables only."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "weir faults file",
            "type": "object", "additionalProperties": False,
            "properties": {"faults": {"type": "array", "items": _table_schema(Fault, "[[faults]]")}}}


def scenario_schema() -> dict[str, Any]:
    """A scenario file as JSON Schema, generated from the same field definitions the loader checks
    against (so an editor that reads it, Taplo's `#:schema` say, completes and checks keys)."""
    from weir.sim.scenario.checks import NODE_SCHEMA, field_schema
    top = {f.name: f for f in fields(Scenario)}
    properties: dict[str, Any] = {k: field_schema(top[k]) for k in ("name", "description", "seed")}
    properties["name"]["description"] = "default: the file's name"
    for key, cls in _SECTIONS.items():
        properties[key] = _table_schema(cls, f"[{key}]")
    properties["operator"] = _operator_schema()
    properties["operators"] = {"type": "array", "minItems": 1, "items": {"anyOf": [
        _operator_schema(), {"type": "object", "properties": {"window": {"const": True}}, "required": ["window"],
                             "additionalProperties": False}]}}
    properties["nodes"] = {"type": "object", "propertyNames": NODE_SCHEMA,
                           "additionalProperties": _table_schema(NodeSpec, "[nodes.NAME]", skip=("name",))}
    properties["faults"] = faults_schema()["properties"]["faults"]
    properties["links"] = {"type": "array", "items": _table_schema(LinkSpec, "[[links]]")}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "weir scenario file",
            "type": "object", "properties": {k: properties[k] for k in _TOP}, "additionalProperties": False}


def builtin_scenarios() -> dict[str, Path]:
    """The scenarios that ship with weir, by name, sorted."""
    root = resources.files("weir.scenarios")
    found = {}
    for entry in root.iterdir():
        if entry.name.endswith(".toml"):
            found[entry.name[:-5]] = Path(str(entry))
    return dict(sorted(found.items()))


def load_scenario(ref: str | Path) -> Scenario:
    """Load a scenario by built-in name or by path to a TOML file; raise ScenarioError on bad input."""
    ref = str(ref)
    builtin = builtin_scenarios()
    if ref in builtin and not Path(ref).exists():
        path = builtin[ref]
    else:
        path = Path(ref)
        if not path.exists():
            if "/" in ref or os.sep in ref:  # a path: named whole, with no built-in names beside it
                raise no_such_path("scenario", ref, f"a path to a .toml file, or a built-in name ({len(builtin)} in "
                                   "`weir list`)")
            import difflib
            near = difflib.get_close_matches(ref, list(builtin), n=3, cutoff=0.4) or list(builtin)[:3]
            raise ScenarioError("scenario", ref, f"a built-in name ({len(builtin)} in `weir list`; near it: "
                                + ", ".join(near) + ") or a path to a .toml file")
    shown = ref if ref not in builtin or Path(ref).exists() else f"{ref} ({path.name})"
    doc = _read_toml(path, shown)
    from weir.sim.scenario.components import SEARCH_PATHS
    SEARCH_PATHS.append(path.resolve().parent)  # components named in the file import from its folder
    try:
        return parse_scenario(doc, default_name=path.stem)
    except ScenarioError as e:
        raise e.in_file(shown) from None
    finally:
        SEARCH_PATHS.pop()
