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
import os
import pickle
import signal
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from weir.sim.scenario.components import user_classes

__all__ = ["run_all", "Interrupted", "user_modules", "ship"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during `run_all`: `results` holds the calls that finished (index -> result)."""

    def __init__(self, results: dict[int, Any], total: int):
        super().__init__(f"interrupted after {len(results)} of {total} runs")
        self.results, self.total = results, total
        self.partial: Any = None  # what the caller makes of the finished part (a Sweep, say)


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(fn: Callable[..., Any], payload: bytes) -> Any:
    """`fn(*args)` with the arguments unpickled inside the task: a worker that cannot import the
    user's module then fails the task, with the error, where a Dask worker that cannot unpickle a
    task's own arguments leaves it hanging."""
    return fn(*pickle.loads(payload))


def run_all(fn: Callable[..., Any], calls: Sequence[tuple], workers: int = 1,
            progress: Callable[[int, int], None] | None = None, done: dict[int, Any] | None = None,
            on_result: Callable[[int, Any], None] | None = None, executor: Any = None) -> list[Any]:
    """`[fn(*args) for args in calls]`, on `workers` processes (1: here) or on `executor` (anything
    with a concurrent.futures `submit`, such as a Dask client's executor: weir.cluster), skipping
    the calls whose results `done` already has; `on_result(i, result)` and `progress(done, total)`
    after each call, and `progress` once before the first (done: how many `done` holds). Raises Interrupted (a KeyboardInterrupt) with what finished if interrupted;
    the calls still queued on an executor are cancelled (the executor is the caller's, left open)."""
    results: dict[int, Any] = dict(done or {})
    total = len(calls)
    todo = [i for i in range(total) if i not in results]

    def finished(i: int, result: Any) -> None:
        results[i] = result
        if on_result:
            on_result(i, result)
        if progress:
            progress(len(results), total)

    if progress:  # the work is under way (and what a resumed journal already holds)
        progress(len(results), total)
    try:
        if executor is not None:
            futures = {executor.submit(_call, fn, pickle.dumps(calls[i])): i for i in todo}
            try:
                for future in as_completed(futures):
                    finished(futures[future], future.result())
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        elif workers <= 1 or len(todo) <= 1:
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


def _installed(path: Path) -> bool:
    """Whether a file is weir's own, the standard library's or an installed package's."""
    roots = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.add(str(Path(__file__).resolve().parents[2]))  # weir's package folder
    text = str(path.resolve())
    return any(text.startswith(str(Path(r).resolve()) + os.sep) for r in roots) or "site-packages" in path.parts


def user_modules(scenarios: Iterable[Any]) -> dict[str, Path]:
    """The user's top-level modules the scenarios need (their components, with their bases, and the
    oracle): name -> the module's file, or its package's folder. Installed packages are not the
    user's to ship: a cluster's workers have the same environment."""
    found: dict[str, Path] = {}
    for scenario in scenarios:
        objects: list[Any] = [k for cls in user_classes(scenario) for k in cls.__mro__]
        oracle = getattr(getattr(scenario, "expect", None), "oracle", None)
        if oracle is not None:
            objects.append(oracle)
        for obj in objects:
            top = (getattr(obj, "__module__", None) or "").split(".")[0]
            file = getattr(sys.modules.get(top), "__file__", None)
            if not top or top in found or file is None or _installed(Path(file)):
                continue
            path = Path(file).resolve()
            found[top] = path.parent if path.name == "__init__.py" else path
    return dict(sorted(found.items()))


def ship(target: Any, scenarios: Iterable[Any]) -> list[str]:
    """Upload the user's modules the scenarios need through `target.upload_file` (a Dask client,
    or an executor weir.cluster made), so workers that cannot import them can: a module as its
    file, a package as a zip. Nothing for a target without `upload_file` (a process pool, whose
    workers share this machine). The names shipped."""
    upload = getattr(target, "upload_file", None)
    modules = user_modules(scenarios) if upload is not None else {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in modules.items():
            if path.is_dir():  # a package: as a zip, which the workers put on their path
                archive = Path(tmp) / f"{name}.zip"
                with zipfile.ZipFile(archive, "w") as z:
                    for file in sorted(path.rglob("*.py")):
                        z.write(file, Path(name) / file.relative_to(path))
                upload(str(archive), load=False)
            else:
                upload(str(path), load=False)  # imported when a run needs it: never here again (a reload)
    return list(modules)
