"""The one guard in weir that reads the wall clock: a user hook that does not return in time.

A user's `on_batch` with a loop that never ends would hang a run, a sweep, a CI job. While a run
with user components runs, a watchdog thread looks at the running thread's Python stack every
`interval` (at most a quarter of the bound) and, when the same call of a guarded user hook
(weir.sim.stream.guard: its frames run one code object) has been on the stack for `bound` seconds
of wall-clock time, raises `UserCodeTimedOut` inside it (CPython's PyThreadState_SetAsyncExc). The
hook's guard turns that into a finding, and the run ends with status `user_code_timed_out`.

It never changes a run it does not stop: the watchdog only reads the stack, and the simulation
never reads the watchdog. Only a run it stops depends on the wall clock (how far it got), and the
result says so. An asynchronous exception lands at the next Python instruction: a hook blocked
inside C code (a `time.sleep`, a socket read) is stopped only once that call returns.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from types import CodeType, FrameType

from weir.sim.kernel.errors import UserCodeTimedOut

__all__ = ["Watchdog"]


class Watchdog:
    """Stops a call of a function with code `code` that runs longer than `bound` seconds in the
    thread that enters the watchdog (`with Watchdog(...)`)."""

    def __init__(self, bound: float, code: CodeType):
        self.bound = bound
        self.code = code
        self.interval = min(0.25, bound / 4)
        self.fired: str | None = None  # the hook it stopped, "Component.hook"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._target = 0

    def __enter__(self) -> "Watchdog":
        if self.bound > 0:
            self._target = threading.get_ident()
            self._thread = threading.Thread(target=self._watch, name="weir-watchdog", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            if self.fired is not None:
                _absorb()

    def _running(self) -> FrameType | None:
        """The innermost guarded hook call on the target thread's stack, or None."""
        frame = sys._current_frames().get(self._target)
        while frame is not None and frame.f_code is not self.code:
            frame = frame.f_back
        return frame

    def _watch(self) -> None:
        seen, since = None, 0.0
        while not self._stop.wait(self.interval):
            frame = self._running()
            if frame is None or frame is not seen:
                seen, since = frame, time.monotonic()  # determinism: ok (the watchdog only)
                continue
            if time.monotonic() - since >= self.bound and self._running() is seen:  # determinism: ok (the watchdog only)
                names = frame.f_locals
                self.fired = f"{names.get('component', '?')}.{names.get('hook', '?')}"
                _async_raise(self._target, UserCodeTimedOut)
                seen, since = None, time.monotonic()  # determinism: ok; if it swallows it, another bound
        del seen


def _async_raise(thread_id: int, exc: type[BaseException]) -> None:
    """Raise `exc` in thread `thread_id` at its next Python instruction.

    Never call it with NULL to cancel one: CPython (3.11) then leaves the interpreter's "pending
    work" flag set for good, and every instruction after that takes the slow path (a tracer such
    as hypothesis's explain phase then seems to hang). An exception raised is always delivered:
    `_absorb` takes one that was on its way when the hook returned by itself."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))


def _absorb() -> None:
    """Let a UserCodeTimedOut still on its way to this thread land here, where it is harmless
    (an asynchronous exception lands at a loop's back edge, so a short loop takes it)."""
    try:
        for _ in range(100_000):
            pass
    except UserCodeTimedOut:
        pass
