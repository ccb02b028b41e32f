"""Named random streams, all derived from one seed.

A stream's generator depends only on the run's seed and the stream's name, never on the order in
which streams are created, on PYTHONHASHSEED, or on the process: adding a component does not shift
the numbers another component draws.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["stable_hash", "RngStreams", "Draws"]


def stable_hash(name: str) -> int:
    """A 64-bit hash of `name` that is the same in every process (unlike the builtin `hash`)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


class RngStreams:
    """The named generators of one run."""

    def __init__(self, seed: int):
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
        self.seed = seed
        self._streams: dict[str, np.random.Generator] = {}

    def stream(self, name: str) -> np.random.Generator:
        """The generator named `name` (created on first use, then the same object)."""
        gen = self._streams.get(name)
        if gen is None:
            h = stable_hash(name)
            seq = np.random.SeedSequence([self.seed, h & 0xFFFFFFFF, h >> 32])
            gen = np.random.Generator(np.random.PCG64(seq))
            self._streams[name] = gen
        return gen


class Draws:
    """Integers in [low, high] drawn from a generator in blocks, handed out one at a time.

    Drawing one number from numpy costs microseconds; a block of 4096 costs about the same, so the
    hot path (a latency per message) reads from a buffer. The sequence is a pure function of the
    generator's state, so it stays deterministic.
    """

    __slots__ = ("_gen", "_low", "_high", "_block", "_buf", "_i", "_shape")

    def __init__(self, gen: np.random.Generator | None, low: int, high: int, block: int = 4096,
                 shape: str = "uniform"):
        """`shape`: uniform over [low, high]; or "exponential" (mean high - low) and "pareto" (a heavy
        tail with shape 2 and mean high - low), both from low and capped at 100 times the mean.
        `gen` may be None only where low == high: then nothing is drawn."""
        if high < low:
            raise ValueError(f"empty range [{low}, {high}]")
        if gen is None and high != low:
            raise ValueError(f"no generator to draw [{low}, {high}] from")
        if shape not in ("uniform", "exponential", "pareto"):
            raise ValueError(f"shape: got {shape!r}; accepts uniform, exponential, pareto")
        self._gen, self._low, self._high, self._block, self._shape = gen, low, high, block, shape
        self._buf: list[int] = []
        self._i = 0

    def _refill(self) -> list[int]:
        gen, low, n = self._gen, self._low, self._block
        if self._shape == "uniform":
            return gen.integers(low, self._high + 1, n).tolist()
        mean = self._high - low
        if self._shape == "exponential":
            extra = gen.exponential(mean, n)
        else:  # numpy's pareto is Lomax: mean 1/(a-1) = 1 for a = 2, so scale by the mean
            extra = gen.pareto(2.0, n) * mean
        return (low + np.minimum(extra, 100 * mean).astype(np.int64)).tolist()

    @property
    def high(self) -> int:
        """The top of the range (for uniform draws; the mean's end for the other shapes)."""
        return self._high

    def next(self) -> int:
        if self._low == self._high:
            return self._low
        if self._i >= len(self._buf):
            self._buf = self._refill()
            self._i = 0
        value = self._buf[self._i]
        self._i += 1
        return value
