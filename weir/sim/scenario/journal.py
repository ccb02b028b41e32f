"""Journals of long commands (`weir sweep`, `weir matrix`): one JSON line per finished run, written
and flushed as it lands, so that an interrupted command can be resumed (`--resume FILE`) and run
only what is missing, to the same final result as an uninterrupted one.

The first line says what the journal is of (the command and what identifies its work: scenario,
seeds, faults, matrix settings); a resume refuses a journal of other work. Each further line is
{"key": ..., "result": ...}. A last line cut short (the process was killed mid-write) is ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from weir.sim.kernel.errors import ScenarioError, no_such_path, raw
from weir.sim.kernel.files import read_text

__all__ = ["Journal"]


class Journal:
    """A journal file: what it already holds (`done`, key -> result) and `add` for each new result."""

    def __init__(self, path: str | Path, command: str, identity: dict[str, Any], resume: bool,
                 encode: Callable[[Any], Any] = lambda r: r, decode: Callable[[Any], Any] = lambda r: r):
        self.path = Path(path)
        self.encode = encode
        header = {"journal": command, **json.loads(json.dumps(identity))}
        self.done: dict[Any, Any] = {}
        option = "--resume" if resume else "--journal"
        if resume:
            if not self.path.is_file():
                raise no_such_path(option, self.path, f"a journal that `weir {command} --journal` wrote",
                                   "a folder" if self.path.is_dir() else "no such file")
            lines = read_text(self.path, option, f"a journal that `weir {command} --journal` wrote").splitlines()
            for n, line in enumerate(lines):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    if n == len(lines) - 1 and n > 0:
                        break  # cut short by a kill: that run is simply run again
                    raise ScenarioError(option, raw(f"line {n + 1} that is not JSON"), f"a journal that `weir {command} "
                                        "--journal` wrote", str(self.path)) from None
                if n == 0:
                    if entry != header:
                        raise ScenarioError(option, raw("a journal of other work"), f"a journal of this very "
                                            f"`weir {command}` (same scenario, seeds and settings)", str(self.path))
                    continue
                try:
                    self.done[_key(entry["key"])] = decode(entry["result"])
                except (KeyError, TypeError, ValueError) as e:
                    raise ScenarioError(option, raw(f"line {n + 1} that is not a run's result ({type(e).__name__})"),
                                        f"a journal that `weir {command} --journal` wrote", str(self.path)) from None
            with open(self.path, "rb+") as f:  # drop a cut-short last line before appending
                text = f.read()
                keep = text[:text.rfind(b"\n") + 1] if not text.endswith(b"\n") else text
                f.seek(0)
                f.truncate()
                f.write(keep)
            self.file = open(self.path, "a", encoding="utf-8")
        else:
            self.file = open(self.path, "w", encoding="utf-8")
            self._write(header)

    def add(self, key: Any, result: Any) -> None:
        self._write({"key": key, "result": self.encode(result)})

    def _write(self, entry: dict) -> None:
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _key(key):
    return tuple(key) if isinstance(key, list) else key
