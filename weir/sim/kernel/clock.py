"""Per-node clocks: what a node believes the time is, given the true simulated time."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NodeClock"]


@dataclass(frozen=True)
class NodeClock:
    """A clock with a fixed offset and a constant drift.

    `read(t)` is the node's local time at true time `t` (both integer microseconds):
    `t + offset + floor(t * drift_ppm / 1e6)`. A clock that runs 50 ppm fast gains 50 us per second.
    Components that stamp event time or processing time read their own node's clock, so a skewed
    producer stamps skewed event times.
    """

    offset: int = 0
    drift_ppm: int = 0

    def true_span(self, local_span: int) -> int:
        """How much true time passes while this clock measures `local_span` (a timer of the node):
        a fast clock's timers go off early. Offsets and steps do not change a span (timers run on
        the monotonic clock); drift does, as it is the oscillator's own rate."""
        if self.drift_ppm:
            return -(-local_span * 1_000_000 // (1_000_000 + self.drift_ppm))
        return local_span

    def read(self, true_time: int) -> int:
        if self.drift_ppm:
            return true_time + self.offset + (true_time * self.drift_ppm) // 1_000_000
        return true_time + self.offset
