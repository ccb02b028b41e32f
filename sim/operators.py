"""The keyed processor's logic: running totals per key, vectorised over a batch."""

from __future__ import annotations

import numpy as np

__all__ = ["KeyedTotals", "running_totals"]


def running_totals(keys: np.ndarray, values: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Each record's key total after it, given the totals before the batch; updates `totals` in place.

    Equivalent to the loop `totals[k] += v; out.append(totals[k])` over the batch, in order.
    """
    n = len(keys)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    v = values[order]
    csum = np.cumsum(v)
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(k[1:], k[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    before_segment = csum[starts] - v[starts]
    lengths = np.diff(np.append(starts, n))
    out_sorted = csum - np.repeat(before_segment, lengths) + totals[k]
    out = np.empty(n, dtype=np.int64)
    out[order] = out_sorted
    ends = np.append(starts[1:], n) - 1
    totals[k[starts]] = out_sorted[ends]
    return out


class KeyedTotals:
    """Operator state: the running total of values per key (keys are 0 .. keys-1)."""

    def __init__(self, keys: int, totals: np.ndarray | None = None):
        self.totals = np.zeros(keys, dtype=np.int64) if totals is None else totals.copy()

    def apply(self, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
        return running_totals(keys, values, self.totals)

    def snapshot(self) -> np.ndarray:
        return self.totals.copy()
