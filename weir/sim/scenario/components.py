"""How a scenario names the components a user writes (the bases are in weir.sim.stream.functions).

A scenario file names a component by import path, `"package.module:Class"`, with its parameters:

    [operator]
    class = "my_components:Doubler"
    params = { factor = 3 }

Naming a class in a scenario file runs that code when the scenario is loaded and run: treat a
scenario file like a Python script. The module is imported from the scenario file's folder, the
current folder, or anywhere on PYTHONPATH. In Python, pass the class itself:
`ComponentSpec(Doubler, {"factor": 3})`.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from weir.sim.kernel.errors import ScenarioError
from weir.sim.kernel.given import Given, given
from weir.sim.stream.guard import construct
from weir.sim.stream.functions import (
    ConsumerPolicy, DeadLetter, DeadLetterReplay, Operator, OutboxRelay, Rejected, Retryable, Sink, Source, TwoPhaseCommitSink, WatermarkStrategy,
)

__all__ = ["Operator", "Sink", "TwoPhaseCommitSink", "Retryable", "Rejected", "DeadLetter", "DeadLetterReplay",
           "ConsumerPolicy", "OutboxRelay", "WatermarkStrategy", "Source", "ComponentSpec", "load_class", "load_function", "user_files",
           "user_classes",
           "SEARCH_PATHS"]

#: Extra folders to import components from while a scenario file is being loaded (its own folder).
SEARCH_PATHS: list[Path] = []


_BASES = {"operator": Operator, "sink": Sink, "watermarks": WatermarkStrategy, "source": Source,
          "replay": DeadLetterReplay, "consumer": ConsumerPolicy, "relay": OutboxRelay}


def _import(path: str, key: str, accepts: str, search: tuple[Path, ...]) -> Any:
    """The object 'module:name' names, imported from `search`, the current folder or sys.path."""
    if not isinstance(path, str) or path.count(":") != 1:
        raise ScenarioError(key, path, accepts)
    module_name, _, name = path.partition(":")
    added = [str(p) for p in (*search, Path.cwd()) if str(p) not in sys.path]
    sys.path[:0] = added
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # any import failure is the user's input, reported in one line
        raise ScenarioError(key, path, f"{accepts} ({e.__class__.__name__}: {e})") from None
    finally:
        for p in added:
            sys.path.remove(p)
    return getattr(module, name, None)


def load_class(path: str, base: type, key: str, search: tuple[Path, ...] = ()) -> type:
    """Import 'module:Class' and check it subclasses `base`; a ScenarioError naming `key` otherwise."""
    accepts = f"an importable 'module:Class' that subclasses weir.{base.__name__}"
    cls = _import(path, key, accepts, search)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ScenarioError(key, path, accepts)
    return cls


def load_function(path: str, key: str, accepts: str, search: tuple[Path, ...] = ()) -> Any:
    """Import 'module:function' and check it is a function; a ScenarioError naming `key` otherwise."""
    fn = _import(path, key, accepts, search)
    if not callable(fn) or isinstance(fn, type):
        raise ScenarioError(key, path, accepts)
    return fn


@dataclass(frozen=True)
class ComponentSpec:
    """A user component: a class (or its import path) and the keyword parameters to build it with."""

    cls: Given[type | str, type] = given(None)  # a class, or 'module:Class' (loaded on construction)
    params: dict[str, Any] = field(default_factory=dict)
    kind: str = "operator"

    def __post_init__(self) -> None:
        base = _BASES[self.kind]
        if isinstance(self.cls, str):
            object.__setattr__(self, "cls", load_class(self.cls, base, f"{self.kind}.class", tuple(SEARCH_PATHS)))
        elif not (isinstance(self.cls, type) and issubclass(self.cls, base)):
            raise ScenarioError(f"{self.kind}.class", self.cls, f"a subclass of weir.{base.__name__}")
        if not isinstance(self.params, dict):
            raise ScenarioError(f"{self.kind}.params", self.params, "a table of parameters")
        object.__setattr__(self, "params", dict(self.params))
        self.check_params(self.cls, self.params, self.kind, self._leading())

    def _leading(self) -> tuple[int, ...]:
        return (0,) if self.kind == "watermarks" else ()  # strategies also get the bound, positionally

    @staticmethod
    def check_params(cls: type, params: dict[str, Any], kind: str, leading: tuple[int, ...] = ()) -> None:
        """Check, without building anything, that `cls(*leading, **params)` would accept the parameters."""
        try:
            inspect.signature(cls).bind(*leading, **params)
        except TypeError as e:
            raise ScenarioError(f"{kind}.params", params, f"the parameters {cls.__name__} takes ({e})") from None
        except ValueError:  # no signature to read (a builtin): let the call itself tell
            pass

    def build(self, *args: Any) -> Any:
        """An instance, its hooks guarded (weir.sim.stream.guard): an exception from the
        constructor, or from any hook later, is a weir.UserHookError naming it."""
        return construct(self.cls, *args, **self.params)


def user_classes(scenario: Any) -> list[type]:
    """The classes of the user's components in `scenario`, in a fixed order (none: weir's own only)."""
    if getattr(scenario, "saga", None) is not None:
        return []
    classes = [spec.cls for spec in scenario.operators + scenario.operators_after] + [scenario.operator.cls if scenario.operator is not None else None,
               getattr(scenario.pipeline.sink_spec, "cls", None), getattr(scenario.workload.source_spec, "cls", None),
               getattr(scenario.retry.replay_spec, "cls", None), getattr(scenario.pipeline.consumer_spec, "cls", None),
               getattr(scenario.outbox.relay_spec, "cls", None) if scenario.outbox is not None else None]
    if scenario.watermarks is not None and isinstance(scenario.watermarks.generator(), type):
        classes.append(scenario.watermarks.generator())
    return [cls for cls in classes if cls is not None]


#: weir's own package directory, with a separator after it (so that a sibling such as weir_ext/ is not weir)
_WEIR_DIR = str(Path(__file__).resolve().parents[2]) + os.sep


def user_files(scenario: Any) -> frozenset[str]:
    """The source files of the user's components in `scenario` (weir's own are not the user's)."""
    files = set()
    for cls in user_classes(scenario):
        for klass in cls.__mro__:  # the user's own bases too
            file = getattr(sys.modules.get(klass.__module__), "__file__", None)
            if file and not str(Path(file).resolve()).startswith(_WEIR_DIR):
                files.add(file)
    return frozenset(files)
