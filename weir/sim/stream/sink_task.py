"""The sink subtask: writes what its processor subtask sends, with retries and the dead-letter queue."""

from __future__ import annotations

__all__ = ["backoff_delay"]


def backoff_delay(attempt: int, backoff: int, multiplier: float, max_backoff: int, jitter: float, u: float) -> int:
    """The wait before retry `attempt` (1, 2, ...): backoff * multiplier^(attempt-1), at most
    max_backoff, times (1 + jitter * u) for a uniform draw u in [0, 1); whole microseconds."""
    base = min(backoff * multiplier ** (attempt - 1), max_backoff)
    return int(base * (1 + jitter * u))
