"""Files weir writes: names made safe, and writes that are whole or absent.

A name a user gave (a scenario's) is made one safe path component before it becomes part of a
file name; every file weir writes goes to a temporary name beside its place and is renamed into
place when complete, and a report folder appears complete or not at all."""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from weir.sim.kernel.errors import ScenarioError, raw

__all__ = ["safe_file_name", "atomic_write", "atomic_file", "atomic_dir", "read_text"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=+-]+")


def safe_file_name(name: str, fallback: str = "scenario") -> str:
    """`name` as one path component: no separators, no NUL or other control characters, no `..`,
    no leading dot; at most 100 characters. A scenario named "a/b" writes "a_b", "../../x" writes
    "x"; an empty result falls back to `fallback`."""
    cleaned = _UNSAFE.sub("_", name)
    cleaned = re.sub(r"\.{2,}", ".", cleaned).strip("._")[:100]
    return cleaned or fallback


def read_text(path, key: str, accepts: str, shown: str | None = None) -> str:
    """A text file a user gave, or the one-line error of a bad input: `key` got an unreadable file
    (a folder, a file weir may not read, a binary one), where `accepts` is what it takes."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(key, raw(f"an unreadable file ({e.__class__.__name__})"), accepts,
                            str(path) if shown is None else shown) from None


def atomic_write(path, data: str | bytes, encoding: str = "utf-8") -> Path:
    """Write `data` to `path` whole or not at all: into a temporary file beside it, then renamed
    into place (an interrupt leaves the old file, or none, never half a file)."""
    path = Path(path)
    with atomic_file(path) as f:
        f.write(data.encode(encoding) if isinstance(data, str) else data)
    return path


@contextmanager
def atomic_file(path):
    """A binary file object for `path` that appears there, whole, only when the block ends without
    an exception (then it replaces what was there)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        try:
            f = open(tmp, "wb")
        except OSError as e:  # say the path the user gave, not the temporary one beside it
            raise OSError(e.errno, e.strerror, str(path)) from None
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_dir(path):
    """A folder to fill that appears at `path` complete, when the block ends without an exception:
    it is filled under a temporary name beside `path` and renamed into place (a folder already
    there is replaced). Yields the temporary folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir(parents=True)
    except OSError as e:  # say the path the user gave, not the temporary one beside it
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
