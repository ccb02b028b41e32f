"""Many runs at once: a list of calls, run in this process or on a pool of worker processes.

A run is a pure function with a small picklable result, so which process runs which call changes
nothing; `run_all` returns the results in the order of the calls, whatever order they finish in.
Workers are forked where the platform can fork (they inherit the imports and `sys.path` of a
scenario's own components); elsewhere they start the platform's default way.

An interrupt (Ctrl-C) stops at once: queued calls are cancelled, the workers (which ignore SIGINT
themselves, so that only this process decides) are terminated, and `Interrupted` carries the
results already in. `done` gives results from an earlier, interrupted attempt (a journal), so that
only the missing calls run; `on_result` is told each result as it comes in (to journal it).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

__all__ = ["run_all", "Interrupted"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during `run_all`: `results` holds the calls that finished (index -> result)."""

    def __init__(self, results: dict[int, Any], total: int):
        super().__init__(f"interrupted after {len(results)} of {total} runs")
        self.results, self.total = results, total


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_all(fn: Callable[..., Any], calls: Sequence[tuple], workers: int = 1,
            progress: Callable[[int, int], None] | None = None, done: dict[int, Any] | None = None,
            on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    """`[fn(*args) for args in calls]`, on `workers` processes (1: here), skipping the calls whose
    results `done` already has; `on_result(i, result)` and `progress(done, total)` after each call.
    Raises Interrupted (a KeyboardInterrupt) with what finished if interrupted."""
    results: dict[int, Any] = dict(done or {})
    total = len(calls)
    todo = [i for i in range(total) if i not in results]

    def finished(i: int, result: Any) -> None:
        results[i] = result
        if on_result:
            on_result(i, result)
        if progress:
            progress(len(results), total)

    try:
        if workers <= 1 or len(todo) <= 1:
            for i in todo:
                finished(i, fn(*calls[i]))
        else:
            pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=_context(),
                                       initializer=_ignore_interrupts)
            try:
                futures = {pool.submit(fn, *calls[i]): i for i in todo}
                for future in as_completed(futures):
                    finished(futures[future], future.result())
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                # stop the runs under way too (a private attribute, but the only handle on the workers)
                for process in list((getattr(pool, "_processes", None) or {}).values()):
                    process.terminate()
                raise
            pool.shutdown()
    except KeyboardInterrupt:
        raise Interrupted(results, total) from None
    return [results[i] for i in range(total)]
