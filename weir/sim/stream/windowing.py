"""The vocabulary of windowing: windows and their assigners, triggers, panes, aggregates, the spec.

`weir.sim.stream.windows.WindowOperator` runs these; `weir.sim.stream.windows` re-exports every name here.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

import numpy as np

from weir.sim.kernel.errors import ScenarioError
from weir.sim.kernel.given import Given, given

__all__ = [
    "MIN_TIME", "MAX_TIME", "Window", "Tumbling", "Sliding", "Session", "Trigger", "Timing", "Pane",
    "Aggregate", "COUNT", "SUM", "MIN", "MAX", "COLLECT", "AGGREGATES", "reduce", "WindowSpec", "LateElement",
    "SEMANTICS", "LATE_FIRINGS",
]

MIN_TIME = -(2**63)  # Flink's Long.MIN_VALUE: the watermark before any element
MAX_TIME = 2**63 - 1  # the watermark at the end of input ("infinity")


class Window(NamedTuple):
    """The half-open interval [start, end) of event time.

    A named tuple, not a dataclass: windows key the operator's state and its timers, and a tuple
    hashes and compares in C (a frozen dataclass's `__hash__` is Python: it was a tenth of a
    windowed run). Ordered by (start, end), as before."""

    start: int
    end: int

    @property
    def max_ts(self) -> int:
        return self.end - 1

    def intersects(self, other: "Window") -> bool:
        """Overlapping or touching (Flink's `TimeWindow.intersects`, used to merge sessions)."""
        return self.start <= other.end and self.end >= other.start

    def overlaps(self, other: "Window") -> bool:
        """Sharing a moment: touching is not enough (Beam's `IntervalWindow.intersects`, which is
        `!isDisjoint`, and `isDisjoint` is `!end.isAfter(other.start) || !other.end.isAfter(start)`)."""
        return self.start < other.end and other.start < self.end

    def cover(self, other: "Window") -> "Window":
        return Window(min(self.start, other.start), max(self.end, other.end))


def _positive(key: str, value: int, what: str = "a whole number of microseconds > 0") -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ScenarioError(key, value, what)


@dataclass(frozen=True)
class Tumbling:
    """Fixed windows of `size`, aligned to `offset`: [k*size + offset, (k+1)*size + offset)."""

    size: int
    offset: int = 0

    def __post_init__(self) -> None:
        _positive("windows.size", self.size)

    def assign(self, ts: int) -> list[Window]:
        start = ts - (ts - self.offset) % self.size
        return [Window(start, start + self.size)]


@dataclass(frozen=True)
class Sliding:
    """Windows of `size` starting every `slide` (Beam calls it the `period`: `Sliding(size,
    period=...)` is the same); an element is in size/slide of them."""

    size: int
    slide: int | None = None
    offset: int = 0
    period: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _positive("windows.size", self.size)
        if self.period is not None:
            _positive("windows.period", self.period)
            if self.slide is not None and self.slide != self.period:
                raise ScenarioError("windows.period", self.period, f"the same as windows.slide ({self.slide}), "
                                    "or only one of the two: they are two names for how often a window starts")
            object.__setattr__(self, "slide", self.period)
        if self.slide is None:
            raise ScenarioError("windows.slide", None, "a whole number of microseconds > 0 (or period=...)")
        _positive("windows.slide", self.slide)

    def assign(self, ts: int) -> list[Window]:
        last = ts - (ts - self.offset) % self.slide
        out = []
        start = last
        while start > ts - self.size:
            out.append(Window(start, start + self.size))
            start -= self.slide
        return out  # latest window first, as Flink's SlidingEventTimeWindows


@dataclass(frozen=True)
class Session:
    """Per-key sessions: an element opens [ts, ts + gap), and windows that touch merge."""

    gap: int

    def __post_init__(self) -> None:
        _positive("windows.gap", self.gap)

    def assign(self, ts: int) -> list[Window]:
        return [Window(ts, ts + self.gap)]


#: What a trigger does with elements after its window's end: "fire" a LATE pane every late_every_n
#: of them (Flink's EventTimeTrigger; Beam's withLateFirings(AfterPane.elementCountAtLeast(n))), or
#: "never" (Beam's AfterWatermark.pastEndOfWindow() alone: it fires once and is finished).
LATE_FIRINGS = ("fire", "never")


@dataclass(frozen=True)
class Trigger:
    """When panes fire besides ON_TIME: early (by count or processing-time delay) and late (by
    count, or never)."""

    early_every_n: int | None = None
    early_after: int | None = None
    late_every_n: int = 1
    late: str = "fire"

    def __post_init__(self) -> None:
        count = "a whole number of elements > 0"
        if self.early_every_n is not None:
            _positive("trigger.early_every_n", self.early_every_n, count)
        if self.early_after is not None:
            _positive("trigger.early_after", self.early_after)
        _positive("trigger.late_every_n", self.late_every_n, count)
        if self.late not in LATE_FIRINGS:
            raise ScenarioError("trigger.late", self.late, "one of " + ", ".join(LATE_FIRINGS))


class Timing(str, Enum):
    EARLY = "EARLY"
    ON_TIME = "ON_TIME"
    LATE = "LATE"


@dataclass(frozen=True)
class Pane:
    """One firing of one key's window: its value and where it stands (Beam's PaneInfo)."""

    key: Hashable
    window: Window
    timing: Timing
    index: int
    is_last: bool
    value: Any
    count: int
    watermark: int  # the operator's input watermark when the pane fired
    processing_time: int

    @property
    def start(self) -> int:
        return self.window.start

    @property
    def end(self) -> int:
        """Its window's end (exclusive): what a sink keys a window's result by, with the key."""
        return self.window.end


@dataclass(frozen=True)
class LateElement:
    """An element that every one of its windows had already expired for."""

    key: Hashable
    timestamp: int
    value: Any
    watermark: int
    ref: Any = None  # what the caller passed along with the element (a record id, say)


@dataclass(frozen=True)
class Aggregate:
    """How a window combines values: `add(acc, value)` from `empty`, and `merge` of two accumulators."""

    name: str
    empty: Any
    add: Callable[[Any, Any], Any]
    merge: Callable[[Any, Any], Any]


def _min(a, b):
    return b if a is None else a if b is None else min(a, b)


def _max(a, b):
    return b if a is None else a if b is None else max(a, b)


COUNT = Aggregate("count", 0, lambda acc, v: acc + 1, lambda a, b: a + b)
SUM = Aggregate("sum", 0, lambda acc, v: acc + v, lambda a, b: a + b)
MIN = Aggregate("min", None, _min, _min)
MAX = Aggregate("max", None, _max, _max)
#: The values of each pane, in the order they arrived (a tuple): for tests that assert what a pane
#: holds, not only its sum. Not for scenario files (the results table keeps whole numbers).
COLLECT = Aggregate("collect", (), lambda acc, v: acc + (v,), lambda a, b: a + b)
AGGREGATES = {"count": COUNT, "sum": SUM, "min": MIN, "max": MAX, "collect": COLLECT}


def _reduceat(ufunc):
    def reduce_groups(values, bounds):
        return ufunc.reduceat(values, bounds)
    return reduce_groups


def _make_reducers():
    return {"count": None, "sum": _reduceat(np.add), "min": _reduceat(np.minimum), "max": _reduceat(np.maximum)}


_REDUCERS = _make_reducers()


def reduce(fn: Callable[[Any, Any], Any], name: str = "reduce") -> Aggregate:
    """A user reduce function `fn(a, b) -> c` (associative) as an aggregate."""
    def combine(a, b):
        return b if a is None else a if b is None else fn(a, b)
    return Aggregate(name, None, combine, combine)


#: Whose windowing rules a WindowSpec follows where Flink and Beam differ (see WindowSpec).
SEMANTICS = ("flink", "beam")


def deprecated_lateness_rule(key: str, rule: str, semantics: str) -> str:
    """The old `lateness_rule` key: accepted with one deprecation line, as `semantics`."""
    import warnings
    if rule not in SEMANTICS:
        raise ScenarioError(key, rule, "one of " + ", ".join(SEMANTICS) + " (better: use semantics)")
    warnings.warn(f"{key} is deprecated: use semantics = '{rule}', which switches every rule where Flink and "
                  "Beam differ, not only the drop boundary", FutureWarning, stacklevel=4)
    return rule if semantics == "flink" else semantics


@dataclass(frozen=True)
class WindowSpec:
    """Everything that defines a windowed aggregation.

    `semantics` says whose rules apply where Flink and Beam (its Java runner core) differ:

    | rule | "flink" | "beam" |
    | --- | --- | --- |
    | ON_TIME fires when the watermark W reaches | `max_ts` (EventTimeTrigger) | `end`, i.e. W > max_ts (AfterWatermark) |
    | a window expires (state dropped, later elements late) | `max_ts + L <= W` (isWindowLate) | `max_ts + L < W` (canDropDueToExpiredWindow) |
    | count triggers (early every n, late every n) are asked | after each element | once per bundle (ReduceFnRunner.processElements) |
    | sessions merge when they | overlap or touch (TimeWindow.intersects) | overlap (IntervalWindow.isDisjoint) |
    | a late element is dropped by | the merged window (WindowOperator.processElement) | its own window, before merging (LateDataFilter) |
    | `late = "never"` | refused (EventTimeTrigger fires every late element) | fires once, then closed: later elements are dropped, a session overlapping it is one of its own |
    | a window opened after its end fires | every late_every_n late elements | at its first bundle, then every late_every_n (AfterWatermarkEarlyAndLate.shouldFire) |
    | a merged session's pane index | goes on from the windows merged (Flink has no panes) | starts at 0 (ReduceFnRunner's onMerge) |
    | an ON_TIME pane is `is_last` when | the window expires with it | there is no allowed lateness, or `late = "never"` (ReduceFnRunner.onTimers) |
    """

    windows: Tumbling | Sliding | Session
    aggregate: Given[Aggregate | str, Aggregate] = given(SUM)  # an Aggregate, or a name in AGGREGATES
    trigger: Trigger = field(default_factory=Trigger)
    accumulation: str = "discarding"
    allowed_lateness: int = 0
    semantics: str = "flink"
    side_output_late: bool = True
    lateness_rule: str | None = field(default=None, compare=False, repr=False)  # deprecated: semantics

    def __post_init__(self) -> None:
        if self.accumulation not in ("discarding", "accumulating"):
            raise ScenarioError("window.accumulation", self.accumulation, "one of discarding, accumulating")
        if self.lateness_rule is not None:
            object.__setattr__(self, "semantics", deprecated_lateness_rule("window.lateness_rule", self.lateness_rule,
                                                                           self.semantics))
            object.__setattr__(self, "lateness_rule", None)
        if self.semantics not in SEMANTICS:
            raise ScenarioError("window.semantics", self.semantics, "one of " + ", ".join(SEMANTICS))
        if not isinstance(self.allowed_lateness, int) or self.allowed_lateness < 0:
            raise ScenarioError("window.allowed_lateness", self.allowed_lateness, "a whole number of microseconds >= 0")
        if isinstance(self.aggregate, str):
            if self.aggregate not in AGGREGATES:
                raise ScenarioError("window.aggregate", self.aggregate, "one of " + ", ".join(AGGREGATES))
            object.__setattr__(self, "aggregate", AGGREGATES[self.aggregate])
        if self.trigger.late == "never" and self.semantics != "beam":
            raise ScenarioError("trigger.late", "never", "'fire' unless semantics = 'beam' (Flink's EventTimeTrigger "
                                "fires on every late element; one that never did would keep them in state and purge "
                                "them unfired, silently)")

    @property
    def beam(self) -> bool:
        return self.semantics == "beam"

    def fire_time(self, window: Window) -> int:
        """The watermark at which `window`'s ON_TIME pane fires, and after which an element for it
        is late: its max_ts (Flink), or its end (Beam: the watermark must pass max_ts)."""
        return window.max_ts + (1 if self.semantics == "beam" else 0)

    def cleanup_time(self, window: Window) -> int:
        """The watermark at which `window` expires: its state is dropped, later elements are late."""
        return window.max_ts + self.allowed_lateness + (1 if self.semantics == "beam" else 0)

    def merges(self, a: Window, b: Window) -> bool:
        """Whether two session windows merge: touching is enough for Flink, not for Beam."""
        return a.overlaps(b) if self.semantics == "beam" else a.intersects(b)

    def merging(self, windows: Iterable[Window], window: Window) -> list[Window]:
        """Those of `windows` that `window` merges with (merges), in their order. The comparisons
        are inline, in one pass: this runs for every element of a session-windowed job, against
        each of its key's open windows, and two calls per window were a third of such a run."""
        start, end = window
        if self.semantics == "beam":  # overlaps
            return [w for w in windows if w[0] < end and start < w[1]]
        return [w for w in windows if w[0] <= end and w[1] >= start]  # intersects (w with window, as merges has it)
