"""Giving memory back to the system once a run's big buffers are gone.

glibc's allocator keeps what a process frees for its own reuse: SQLite's pages after a sink is
closed, the log's columns once they are read out. A run ends by building its results from them,
so without this a million-record run's peak holds both the old buffers and the new arrays.
`trim()` asks glibc to return free memory to the system (malloc_trim); elsewhere it does nothing.
It changes no value and no order: only how much resident memory the process keeps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["BIG_RUN", "trim"]


def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


_TRIM = _malloc_trim()

#: A run of at least this many records is big: it gives its buffers back to the system as it lets
#: go of them (trim), and its checkers their working memory after each one (weir.analysis.checkers).
#: A smaller run has too little to give back to be worth malloc_trim's walk of the heap (some 40 us
#: a call, seven calls a run). It need not collect garbage when it ends: a run makes no reference
#: cycles that grow with it (tests/test_memory.py).
BIG_RUN = 100_000


def trim() -> None:
    """Return the allocator's free memory to the system, where the allocator can (glibc)."""
    if _TRIM is not None:
        _TRIM(0)
