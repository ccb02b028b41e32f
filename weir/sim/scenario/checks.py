"""Field checks for the scenario dataclasses: each field's metadata says what it accepts.

`_validate(obj, section)` checks and normalises every field of a dataclass (durations to whole
microseconds, lists to tuples, component paths to classes checked against their base) and raises
a one-line ScenarioError naming the key, what it got and what it accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, overload

from weir.sim.kernel.errors import ScenarioError, near
from weir.sim.kernel.given import Given
from weir.sim.scenario.nodes import EXTRA_NODE_KINDS, NODE_FORMS, NODES, SAGA_NODES, is_node_name
if TYPE_CHECKING:
    from weir.sim.scenario.components import ComponentSpec
from weir.sim.kernel.units import DURATION_FORMS, DURATION_PATTERN, RATE_FORMS, RATE_PATTERN, SIGNED_DURATION_FORMS, \
    parse_duration, parse_rate


def _spec(kind: str, **opts: Any) -> dict[str, Any]:
    return {"kind": kind, **opts}


#: A duration: given as whole microseconds or a string with a unit ("15ms"), read as microseconds.
Duration = Given[int | str, int]
#: The same, or unset (None).
MaybeDuration = Given[int | str | None, int | None]
#: A rate: bytes per second, or a string ("50MB/s"); read as bytes per second; or unset.
MaybeRate = Given[int | str | None, int | None]
#: Names (invariants, nodes, columns): given as any sequence of strings, read as a tuple.
Names = Given[Sequence[str], tuple[str, ...]]
#: Partition numbers: any sequence of whole numbers, read as a sorted tuple without repeats.
Partitions = Given[Sequence[int], tuple[int, ...]]


def _sink_base():
    from weir.sim.scenario.components import Sink
    return Sink


def _relay_base():
    from weir.sim.scenario.components import OutboxRelay
    return OutboxRelay


def _consumer_base():
    from weir.sim.scenario.components import ConsumerPolicy
    return ConsumerPolicy


def _replay_base():
    from weir.sim.scenario.components import DeadLetterReplay
    return DeadLetterReplay


def _watermark_base():
    from weir.sim.scenario.components import WatermarkStrategy
    return WatermarkStrategy


def _source_base():
    from weir.sim.scenario.components import Source
    return Source


#: kind -> (the key that names the class, the key that holds its parameters)
_COMPONENT_KEYS = {"source": ("workload.source", "workload.source_params"),
                   "sink": ("pipeline.sink", "pipeline.sink_params"),
                   "watermarks": ("watermarks.strategy", "watermarks.params"),
                   "replay": ("retry.replay_job", "retry.replay_params"),
                   "consumer": ("pipeline.consumer", "pipeline.consumer_params"),
                   "relay": ("outbox.relay", "outbox.relay_params")}


def _resolve(path: str | type | None, kind: str, base: Callable[[], type],
             params: dict[str, Any]) -> ComponentSpec | None:
    """The ComponentSpec for a 'module:Class' value or a class (None for a built-in name)."""
    from weir.sim.scenario.components import SEARCH_PATHS, ComponentSpec, load_class
    class_key, params_key = _COMPONENT_KEYS[kind]
    if isinstance(path, type):
        cls = path
    elif path is None or ":" not in path:
        return None
    else:
        cls = load_class(path, base(), class_key, tuple(SEARCH_PATHS))
    try:
        return ComponentSpec(cls, params, kind)
    except ScenarioError as e:
        raise ScenarioError(params_key, e.got, e.accepts, hint=e.hint) from None


@overload
def component_name(value: str | type) -> str: ...
@overload
def component_name(value: None) -> None: ...
def component_name(value: str | type | None) -> str | None:
    """How a component value is shown: a name or 'module:Class' as given, a class as 'module:Class'."""
    if isinstance(value, type):
        return f"{value.__module__}:{value.__qualname__}"
    return value


#: The largest whole number a count takes unless its field says less (so it fits int64 with room).
MAX_COUNT = 2**62
#: The longest duration, in us (about 31 years): sums of a few still fit int64.
MAX_DURATION = 10**15
#: The largest ratio (a slow-down factor).
MAX_RATIO = 1e6


def _validate(obj: Any, section: str) -> None:
    """Check and normalise every field of a dataclass from its metadata; raise ScenarioError."""
    for f in fields(obj):
        meta = f.metadata
        if "kind" not in meta:
            continue
        key = f"{section}.{f.name}"
        value = getattr(obj, f.name)
        kind = meta["kind"]
        if value is None and meta.get("optional"):
            continue
        if kind == "count":
            low, high = meta.get("min", 0), meta.get("max", MAX_COUNT)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ScenarioError(key, value, f"a whole number from {low} to {high:_}")
        elif kind == "duration":
            try:
                us = parse_duration(value)
            except ValueError:
                raise ScenarioError(key, value, DURATION_FORMS) from None
            low = meta.get("min", 0)
            if us < low:
                raise ScenarioError(key, value, f"a duration of at least {low}us")
            if us > MAX_DURATION:
                raise ScenarioError(key, value, f"a duration of at most {MAX_DURATION:_}us (about 31 years)")
            object.__setattr__(obj, f.name, us)
        elif kind == "signed_duration":
            magnitude, negative = value, False
            if isinstance(value, str) and value.strip().startswith("-"):
                magnitude, negative = value.strip()[1:], True
            elif isinstance(value, int) and not isinstance(value, bool) and value < 0:
                magnitude, negative = -value, True
            try:
                us = parse_duration(magnitude)
            except ValueError:
                raise ScenarioError(key, value, SIGNED_DURATION_FORMS) from None
            if us > MAX_DURATION:
                raise ScenarioError(key, value, f"a duration of at most {MAX_DURATION:_}us either way")
            object.__setattr__(obj, f.name, -us if negative else us)
        elif kind == "component":  # a built-in name, 'module:Class' of the right base class, or the class
            if value in meta.get("choices", ()):
                continue
            if not (isinstance(value, type) and issubclass(value, meta["base"]())) and (
                    not isinstance(value, str) or ":" not in value):
                names = ", ".join(meta.get("choices", ()))
                raise ScenarioError(key, value, (f"one of {names}, or " if names else "") +
                                    f"an importable 'module:Class' (or, in Python, a class) that subclasses "
                                    f"weir.{meta['base']().__name__}")
            # load it and check its parameters now, so a bad class or bad parameters fail at load time
            params_field = _COMPONENT_KEYS[meta["component"]][1].split(".", 1)[1]
            _resolve(value, meta["component"], meta["base"], getattr(obj, params_field))
        elif kind == "params":
            if not isinstance(value, dict):
                raise ScenarioError(key, value, "a table of parameters")
        elif kind == "rate":
            try:
                object.__setattr__(obj, f.name, parse_rate(value))
            except ValueError:
                raise ScenarioError(key, value, RATE_FORMS) from None
        elif kind == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ScenarioError(key, value, "a whole number")
        elif kind == "choice":
            if value not in meta["choices"]:
                raise ScenarioError(key, value, "one of " + ", ".join(meta["choices"]), hint=near(value, meta["choices"]))
        elif kind == "names":
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise ScenarioError(key, value, "a list of names, each one of " + ", ".join(meta["choices"]()))
            for name in value:
                if name not in meta["choices"]():
                    raise ScenarioError(key, name, "one of " + ", ".join(meta["choices"]()), hint=near(name, meta["choices"]()))
            object.__setattr__(obj, f.name, tuple(value))
        elif kind == "text":
            if not isinstance(value, str):
                raise ScenarioError(key, value, "a string")
            if meta.get("printable") and not value.isprintable():
                raise ScenarioError(key, value, "a string of printable characters (no control characters)")
        elif kind == "fraction":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ScenarioError(key, value, "a number from 0 to 1")
            object.__setattr__(obj, f.name, float(value))
        elif kind == "node":
            if not is_node_name(value):
                raise ScenarioError(key, value, "one of " + NODE_FORMS)
        elif kind == "nodes":
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise ScenarioError(key, value, "a list of node names, each one of " + NODE_FORMS)
            for name in value:
                if not is_node_name(name):
                    raise ScenarioError(key, name, "one of " + NODE_FORMS)
            object.__setattr__(obj, f.name, tuple(value))
        elif kind == "ratio":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= MAX_RATIO:
                raise ScenarioError(key, value, f"a number from 1 to {MAX_RATIO:g}")
            object.__setattr__(obj, f.name, float(value))
        elif kind == "flag":
            if not isinstance(value, bool):
                raise ScenarioError(key, value, "true or false")
        elif kind == "partitions":
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not all(
                    isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in value):
                raise ScenarioError(key, value, "a list of partition numbers (whole numbers >= 0)")
            object.__setattr__(obj, f.name, tuple(sorted(set(value))))


#: A node's name, as JSON Schema: one of the fixed names, or producer-N / source-N (N >= 1).
NODE_SCHEMA: dict[str, Any] = {"anyOf": [{"enum": list(NODES + SAGA_NODES)},
                                         {"type": "string", "pattern": f"^({'|'.join(EXTRA_NODE_KINDS)})-[1-9][0-9]*$"}],
                               "description": "a node: " + NODE_FORMS}
#: 'module:Class' (or 'module:function'), as JSON Schema.
IMPORT_PATH_SCHEMA: dict[str, Any] = {"type": "string", "pattern": "^[^:]+:[^:]+$"}


def _jsonable_default(f: Any) -> tuple[bool, Any]:
    """(whether the field has a default worth stating in a schema, that default as JSON)."""
    from dataclasses import MISSING
    if f.default_factory is not MISSING:
        value = f.default_factory()
    elif f.default is not MISSING:
        value = f.default
    else:
        return False, None
    if value is None:
        return False, None
    if isinstance(value, tuple):
        value = list(value)
    return isinstance(value, (bool, int, float, str, list, dict)), value


def field_schema(f: Any) -> dict[str, Any]:
    """The JSON Schema of one scenario field (a dataclass Field), from the same metadata `_validate`
    checks it by: what a TOML file may give for it (a `weir schema scenario` property)."""
    meta = f.metadata
    kind = meta.get("kind")
    duration = {"type": "string", "pattern": DURATION_PATTERN}
    if kind == "count":
        low, high = meta.get("min", 0), meta.get("max", MAX_COUNT)
        out: dict[str, Any] = {"type": "integer", "minimum": low, "maximum": high}
    elif kind == "duration":
        out = {"anyOf": [{"type": "integer", "minimum": meta.get("min", 0), "maximum": MAX_DURATION}, duration],
               "description": DURATION_FORMS + (f", at least {meta['min']}us" if meta.get("min") else "")}
    elif kind == "signed_duration":
        out = {"anyOf": [{"type": "integer", "minimum": -MAX_DURATION, "maximum": MAX_DURATION},
                         {"type": "string", "pattern": DURATION_PATTERN.replace("^\\s*", "^\\s*-?", 1)}],
               "description": SIGNED_DURATION_FORMS}
    elif kind == "component":
        out = {"anyOf": ([{"enum": list(meta["choices"])}] if meta.get("choices") else []) + [IMPORT_PATH_SCHEMA],
               "description": "a built-in name or an importable 'module:Class' that subclasses "
                              f"weir.{meta['base']().__name__}"}
    elif kind == "params":
        out = {"type": "object", "description": "keyword parameters"}
    elif kind == "rate":
        out = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": RATE_PATTERN}],
               "description": RATE_FORMS}
    elif kind == "int":
        out = {"type": "integer"}
    elif kind == "choice":
        out = {"enum": list(meta["choices"])}
    elif kind == "names":
        out = {"type": "array", "items": {"enum": list(meta["choices"]())}}
    elif kind == "text":
        out = {"type": "string"}
    elif kind == "fraction":
        out = {"type": "number", "minimum": 0, "maximum": 1}
    elif kind == "node":
        out = dict(NODE_SCHEMA)
    elif kind == "nodes":
        out = {"type": "array", "items": NODE_SCHEMA}
    elif kind == "ratio":
        out = {"type": "number", "minimum": 1, "maximum": MAX_RATIO}
    elif kind == "flag":
        out = {"type": "boolean"}
    elif kind == "partitions":
        out = {"type": "array", "items": {"type": "integer", "minimum": 0}}
    else:
        raise TypeError(f"no JSON Schema for field {f.name} (kind {kind!r})")
    if meta.get("optional"):
        out.setdefault("description", "")
        out["description"] = (out["description"] + "; " if out["description"] else "") + "optional (unset by default)"
    stated, default = _jsonable_default(f)
    if stated:
        out["default"] = default
    return out
