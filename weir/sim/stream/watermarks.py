"""Watermark generators and the per-partition merge with idleness (Flink's semantics).

A watermark W means: no more events with timestamp <= W are expected.

- `BoundedOutOfOrderness(bound)`: W = max_ts - bound - 1, starting from MIN_TIME
  (Flink `BoundedOutOfOrdernessWatermarks`).
- `Punctuated()`: a marker record with timestamp t carries W = t.
- `IngestionTime()`: event time is the reading node's clock when it reads the record; W = that - 1.
- `PartitionWatermarks`: one generator per partition, merged as the minimum over partitions that are
  not idle (or by the strategy's own `merge`, a user hook). A partition turns idle no earlier than `idle_timeout` after its last event, checked at
  each periodic emission (Flink `WatermarksWithIdleness`); any event makes it active again. The
  merged watermark never moves backwards, and when every partition is idle it holds where it is
  rather than jumping to +infinity (FLINK-8001).
"""

from __future__ import annotations

from weir.sim.stream.functions import WatermarkStrategy
from weir.sim.stream.guard import construct
from weir.sim.stream.windows import MIN_TIME

__all__ = ["BoundedOutOfOrderness", "Punctuated", "IngestionTime", "PartitionWatermarks", "STRATEGIES"]


class BoundedOutOfOrderness(WatermarkStrategy):
    """Events may arrive up to `bound` us out of order."""

    def __init__(self, bound: int):
        super().__init__(bound)
        self.max_ts = MIN_TIME + bound + 1

    def on_event(self, ts: int, marker: bool = False) -> None:
        if ts > self.max_ts:
            self.max_ts = ts

    def current(self) -> int:
        return self.max_ts - self.bound - 1


class Punctuated(WatermarkStrategy):
    """Watermarks come only from marker records in the stream."""

    def __init__(self, bound: int = 0):
        self.watermark = MIN_TIME

    def on_event(self, ts: int, marker: bool = False) -> None:
        if marker and ts > self.watermark:
            self.watermark = ts

    def current(self) -> int:
        return self.watermark


class IngestionTime(WatermarkStrategy):
    """Event time is assigned on reading, from the reader's clock (monotone, so W = last - 1)."""

    def __init__(self, bound: int = 0):
        self.max_ts = MIN_TIME + 1

    def on_event(self, ts: int, marker: bool = False) -> None:
        if ts > self.max_ts:
            self.max_ts = ts

    def current(self) -> int:
        return self.max_ts - 1


STRATEGIES = {"bounded_out_of_orderness": BoundedOutOfOrderness, "punctuated": Punctuated,
              "ingestion_time": IngestionTime}


class PartitionWatermarks:
    """Per-partition generators, merged into the source's watermark."""

    def __init__(self, partitions: int, strategy="bounded_out_of_orderness", bound: int = 0,
                 idle_timeout: int | None = None, start_time: int = 0, params: dict | None = None):
        """`strategy` is a name in STRATEGIES or a WatermarkStrategy subclass, built as cls(bound, **params)."""
        cls = STRATEGIES[strategy] if isinstance(strategy, str) else strategy
        self.generators = [construct(cls, bound, **(params or {})) for _ in range(partitions)]
        self.merge = cls.merge  # Flink's minimum over active partitions, or the strategy's own
        self.idle_timeout = idle_timeout
        self.last_activity = [start_time] * partitions
        self.idle = [False] * partitions
        self.emitted = MIN_TIME

    def on_event(self, p: int, ts: int, now: int, marker: bool = False) -> None:
        """An event of partition `p` with timestamp `ts`, read at processing time `now`."""
        self.generators[p].on_event(ts, marker)
        self.last_activity[p] = now
        self.idle[p] = False

    def on_periodic_emit(self, now: int) -> int | None:
        """Check idleness and merge; return the new watermark if it moved forward, else None."""
        if self.idle_timeout is not None:
            for p, last in enumerate(self.last_activity):
                if not self.idle[p] and now - last >= self.idle_timeout:
                    self.idle[p] = True
        merged = self.merge([g.current() for g in self.generators], list(self.idle))
        if merged is None:
            return None  # all idle: hold, never jump to +infinity
        if merged > self.emitted:
            self.emitted = merged
            return merged
        return None
