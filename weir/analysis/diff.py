"""Determinism diff: the first event at which two traces differ, with both versions.

Two runs of one scenario and seed must give the same trace, event for event. When they do not, the
first differing event is where the leak shows (a component that iterates a set, uses Python's
salted string hash or reads the wall clock): `first_difference` finds it in one vectorised
comparison of the columns.
Traces are saved as `.npz` files (`save_trace`, `weir run --save-trace FILE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np

from weir.sim.kernel.errors import ScenarioError, raw
from weir.sim.kernel.schema import SCHEMA_VERSION
from weir.sim.kernel.trace import FrozenTrace

__all__ = ["Difference", "DiffJSON", "diff_dict", "first_difference", "save_trace", "load_trace"]

CONTEXT = 3  # trace rows shown before the first difference


class DifferenceJSON(TypedDict):
    """The first trace row that differs: its index, that row in each trace (null: the trace ended
    before it), the rows before it (the same in both) and each trace's length in rows."""

    index: int
    left: dict[str, Any] | None
    right: dict[str, Any] | None
    context: list[dict[str, Any]]
    lengths: list[int]


class DiffJSON(TypedDict):
    """Two traces compared: `weir diff --json`."""

    schema_version: Literal[2]
    compared: str  # what was compared, in words
    identical: bool
    rows: list[int]  # each trace's length: its rows (what the nodes did; not the simulation's events)
    sha256: list[str]  # each trace's hash
    difference: DifferenceJSON | None


@dataclass(frozen=True)
class Difference:
    index: int  # the first row that differs (or where one trace ends)
    left: dict | None  # that row in each trace (None: the trace ended before it)
    right: dict | None
    context: tuple[dict, ...]  # the rows before it, the same in both
    lengths: tuple[int, int]

    def text(self) -> str:
        lines = [f"the traces differ at row {self.index} (of {self.lengths[0]} and {self.lengths[1]} rows):"]
        lines += [f"    same   {row}" for row in self.context]
        lines.append(f"  - left   {self.left if self.left is not None else '(the trace ends)'}")
        lines.append(f"  + right  {self.right if self.right is not None else '(the trace ends)'}")
        return "\n".join(lines)


def diff_dict(compared: str, left: FrozenTrace, right: FrozenTrace) -> DiffJSON:
    """`weir diff --json`: the two traces' lengths and hashes, and their first difference (if any)."""
    d = first_difference(left, right)
    return {"schema_version": SCHEMA_VERSION, "compared": compared, "identical": d is None,
            "rows": [len(left), len(right)], "sha256": [left.sha256(), right.sha256()],
            "difference": None if d is None else {"index": d.index, "left": d.left, "right": d.right,
                                                  "context": list(d.context), "lengths": list(d.lengths)}}


def first_difference(left: FrozenTrace, right: FrozenTrace) -> Difference | None:
    """None if the traces are the same row for row (and name the same nodes); else the first difference."""
    n = min(len(left), len(right))
    differs = np.zeros(n, dtype=bool)
    for name in ("time", "kind", "node", "a", "b", "c", "d"):
        differs |= left.columns[name][:n] != right.columns[name][:n]
    if left.nodes != right.nodes:
        nodes_differ = np.flatnonzero(differs)
        at = int(nodes_differ[0]) if len(nodes_differ) else 0
    else:
        hits = np.flatnonzero(differs)
        if len(hits):
            at = int(hits[0])
        elif len(left) == len(right):
            return None
        else:
            at = n
    context = tuple(left.rows(max(0, at - CONTEXT), at))
    return Difference(at, left.rows(at, at + 1)[0] if at < len(left) else None,
                      right.rows(at, at + 1)[0] if at < len(right) else None, context, (len(left), len(right)))


def save_trace(trace: FrozenTrace, path: str | Path) -> Path:
    """Write the trace's columns and node names to an .npz file."""
    from weir.sim.kernel.files import atomic_file
    path = Path(path)
    with atomic_file(path) as f:  # whole, or not there
        np.savez_compressed(f, nodes=np.array(trace.nodes), **trace.columns)
    return path


def load_trace(path: str | Path) -> FrozenTrace:
    """Read a trace written by `save_trace`; a clear error if the file is not one."""
    import zipfile
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            nodes = tuple(str(n) for n in data["nodes"])
            columns = {k: np.asarray(data[k]) for k in ("time", "kind", "node", "a", "b", "c", "d")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        found = ("no such file" if isinstance(e, FileNotFoundError) else "a folder" if isinstance(e, IsADirectoryError)
                 else f"a file that is not a saved trace ({e.__class__.__name__})")
        raise ScenarioError("(file)", raw(found), "a trace saved by `weir run --save-trace`", str(path)) from None
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1 or any(v.ndim != 1 or v.dtype.kind not in "iu" for v in columns.values()) or (
            len(columns["node"]) and not 0 <= int(columns["node"].min()) <= int(columns["node"].max()) < len(nodes)):
        raise ScenarioError("(file)", raw("a trace whose columns do not agree (a damaged or edited file)"),
                            "a trace saved by `weir run --save-trace`", str(path))
    return FrozenTrace(nodes, columns)
