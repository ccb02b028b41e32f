"""Many runs at once: a list of calls, run in this process or on a pool of worker processes.

A run is a pure function with a small picklable result, so which process runs which call changes
nothing; `run_all` returns the results in the order of the calls, whatever order they finish in.
Workers are forked where the platform can fork (they inherit the imports and `sys.path` of a
scenario's own components); elsewhere they start the platform's default way.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

__all__ = ["run_all"]


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def run_all(fn: Callable[..., Any], calls: Sequence[tuple], workers: int = 1,
            progress: Callable[[int, int], None] | None = None) -> list[Any]:
    """`[fn(*args) for args in calls]`, on `workers` processes (1: here); `progress(done, total)`
    after each call."""
    results: dict[int, Any] = {}
    total = len(calls)
    if workers <= 1 or total <= 1:
        for i, args in enumerate(calls):
            results[i] = fn(*args)
            if progress:
                progress(len(results), total)
    else:
        with ProcessPoolExecutor(max_workers=min(workers, total), mp_context=_context()) as pool:
            futures = {pool.submit(fn, *args): i for i, args in enumerate(calls)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if progress:
                    progress(len(results), total)
    return [results[i] for i in range(total)]
