"""Base classes for the components a user can write, and how a scenario names them.

A scenario file names a component by import path, `"package.module:Class"`, with its parameters:

    [operator]
    class = "my_components:Doubler"
    params = { factor = 3 }

Naming a class in a scenario file runs that code when the scenario is loaded and run: treat a
scenario file like a Python script. The module is imported from the scenario file's folder, the
current folder, or anywhere on PYTHONPATH. In Python, pass the class itself:
`ComponentSpec(Doubler, {"factor": 3})`.

Each kind:
- `Operator`: what the processor computes from each batch (one output value per record); its
  state is what checkpoints snapshot and restores give back.
- `Sink`: the table the records' output lands in; `contents()` is what the checkers read.
- `WatermarkStrategy`: derives a partition's watermark from the event times it reads.
- `Source`: the upstream data the producer writes (every record's key, value and event-time delay).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from weir.sim.kernel.batch import RecordBatch
from weir.sim.kernel.errors import ScenarioError

__all__ = ["Operator", "Sink", "WatermarkStrategy", "Source", "ComponentSpec", "load_class", "SEARCH_PATHS"]

#: Extra folders to import components from while a scenario file is being loaded (its own folder).
SEARCH_PATHS: list[Path] = []


class Operator(ABC):
    """The processor's computation: a batch in, one output value per record out.

    Keep all state on the instance. `snapshot()` must return a copy that later changes do not
    touch; after a failover weir builds a fresh instance with the same parameters and calls
    `restore(snapshot)` with the last completed checkpoint's copy (or nothing, without one).
    """

    windowed = False

    @abstractmethod
    def on_batch(self, batch: RecordBatch, now: int) -> np.ndarray:
        """Process a batch at processing time `now` (the processor node's clock); return an int64 per record."""

    def on_watermark(self, watermark: int, now: int) -> None:
        """A watermark reached the operator (only with [watermarks]); nothing to do by default."""
        return None

    def snapshot(self) -> Any:
        """A copy of the state, for a checkpoint. Stateless operators need not override this."""
        return None

    def restore(self, snapshot: Any) -> None:
        """Take back a snapshot made by `snapshot()`."""

    def state_size(self) -> int:
        """How many state entries there are (a snapshot's size is this times state_entry_bytes)."""
        return 0

    def changed_entries(self) -> int:
        """Entries changed since the last snapshot (what an incremental snapshot writes)."""
        return self.state_size()


class Sink(ABC):
    """A durable table that a record pipeline writes to. It survives every crash."""

    kind = "custom"

    @abstractmethod
    def write(self, batch: RecordBatch, value: np.ndarray, written_at: int) -> int:
        """Write the batch's rows (its records with the operator's values); return how many already existed."""

    @abstractmethod
    def contents(self) -> dict[str, np.ndarray]:
        """The table's rows as int64 columns; at least "record_id" (the checkers count those)."""

    def close(self) -> None:
        """Release what the table holds (called once the run's results are read)."""


class WatermarkStrategy(ABC):
    """A partition's watermark generator: sees every event time read, says where the watermark is."""

    def __init__(self, bound: int = 0):
        self.bound = bound

    @abstractmethod
    def on_event(self, ts: int, marker: bool = False) -> None:
        """An event with timestamp `ts` was read from the partition."""

    @abstractmethod
    def current(self) -> int:
        """The partition's watermark now: no more events with a timestamp <= it are expected."""


class Source(ABC):
    """The upstream data: every record's key, value and event-time delay, drawn up front."""

    @abstractmethod
    def generate(self, rng: np.random.Generator, records: int, keys: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (keys in 0..keys-1, values, delays in us >= 0), each an int64 array of length `records`.

        Draw every random number from `rng` (the run's `workload` stream): that keeps runs replayable.
        """


_BASES = {"operator": Operator, "sink": Sink, "watermarks": WatermarkStrategy, "source": Source}


def load_class(path: str, base: type, key: str, search: tuple[Path, ...] = ()) -> type:
    """Import 'module:Class' and check it subclasses `base`; a ScenarioError naming `key` otherwise."""
    accepts = f"an importable 'module:Class' that subclasses weir.{base.__name__}"
    if not isinstance(path, str) or path.count(":") != 1:
        raise ScenarioError(key, path, accepts)
    module_name, _, class_name = path.partition(":")
    added = [str(p) for p in (*search, Path.cwd()) if str(p) not in sys.path]
    sys.path[:0] = added
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # any import failure is the user's input, reported in one line
        raise ScenarioError(key, path, f"{accepts} ({e.__class__.__name__}: {e})") from None
    finally:
        for p in added:
            sys.path.remove(p)
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ScenarioError(key, path, accepts)
    return cls


@dataclass(frozen=True)
class ComponentSpec:
    """A user component: a class (or its import path) and the keyword parameters to build it with."""

    cls: type | str
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

    def _leading(self) -> tuple:
        return (0,) if self.kind == "watermarks" else ()  # strategies also get the bound, positionally

    @staticmethod
    def check_params(cls: type, params: dict, kind: str, leading: tuple = ()) -> None:
        """Check, without building anything, that `cls(*leading, **params)` would accept the parameters."""
        try:
            inspect.signature(cls).bind(*leading, **params)
        except TypeError as e:
            raise ScenarioError(f"{kind}.params", params, f"the parameters {cls.__name__} takes ({e})") from None
        except ValueError:  # no signature to read (a builtin): let the call itself tell
            pass

    def build(self, *args: Any) -> Any:
        try:
            return self.cls(*args, **self.params)
        except TypeError as e:
            raise ScenarioError(f"{self.kind}.params", self.params, f"parameters {self.cls.__name__} takes ({e})") from None
