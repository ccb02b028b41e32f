"""A key-value cache with expiry, Redis-like: SETEX, SET NX (a lock), EXISTS, GET, DEL.

Time is what the caller says it is (`now`, in us), so the store is deterministic and can be
driven from a test. An expired key is gone: EXISTS says no and SET NX succeeds, which is how a
TTL shorter than the redelivery delay reopens the duplicate window. The store is a separate
service: a crash of the node that uses it does not empty it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KVStore"]


class KVStore:
    """Keys with optional expiry times; expired keys are removed when touched (as Redis does lazily)."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[Any, int | None]] = {}
        self.expired = 0  # keys found expired (a metric)

    def _live(self, key: str, now: int) -> bool:
        entry = self._data.get(key)
        if entry is None:
            return False
        expires = entry[1]
        if expires is not None and now >= expires:
            del self._data[key]
            self.expired += 1
            return False
        return True

    def setex(self, key: str, ttl: int, value: Any, now: int) -> None:
        """SETEX key ttl value: set, expiring `ttl` us from now."""
        if ttl <= 0:
            raise ValueError(f"SETEX needs a positive ttl, got {ttl}")
        self._data[key] = (value, now + ttl)

    def set_nx(self, key: str, value: Any, ttl: int | None, now: int) -> bool:
        """SET key value NX [PX ttl]: set only if absent (or expired); True if it was set."""
        if self._live(key, now):
            return False
        self._data[key] = (value, None if ttl is None else now + ttl)
        return True

    def exists(self, key: str, now: int) -> bool:
        return self._live(key, now)

    def get(self, key: str, now: int) -> Any:
        return self._data[key][0] if self._live(key, now) else None

    def delete(self, key: str) -> bool:
        return self._data.pop(key, None) is not None

    def __len__(self) -> int:
        return len(self._data)
