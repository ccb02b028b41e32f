"""Results several checkers share, computed once per `check` call.

`window_complete`, `event_time_complete` and `late_accounted` each need the batch job's windows and
the job's own; recomputing them is most of a windowed run's checking. Inside `check` (`shared()`),
a function decorated `@once_per_check` returns what it returned for the same run and arguments
earlier in that call; outside, it simply runs. The memo lives for one `check` call and is keyed by
the run object itself (compared with `is`), so nothing outlives it and nothing depends on an id.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["shared", "once_per_check"]

F = TypeVar("F", bound=Callable[..., Any])

_MEMO: contextvars.ContextVar[list[tuple[Any, tuple, Any]] | None] = contextvars.ContextVar("weir_check_memo",
                                                                                            default=None)


@contextmanager
def shared() -> Iterator[None]:
    """Within this block, @once_per_check results are shared (nested blocks share the outer memo)."""
    if _MEMO.get() is not None:
        yield
        return
    token = _MEMO.set([])
    try:
        yield
    finally:
        _MEMO.reset(token)


def once_per_check(fn: F) -> F:
    """`fn(run, *args)` computed once per run and arguments within a `shared()` block."""
    @functools.wraps(fn)
    def memoised(run: Any, *args: Any) -> Any:
        memo = _MEMO.get()
        if memo is None:
            return fn(run, *args)
        key = (fn.__qualname__, *args)
        for seen, seen_key, value in memo:
            if seen is run and seen_key == key:
                return value
        value = fn(run, *args)
        memo.append((run, key, value))
        return value
    return memoised  # type: ignore[return-value]
