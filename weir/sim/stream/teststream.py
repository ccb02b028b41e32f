"""A test stream in the spirit of Beam's TestStream: exact control of elements, watermark and time.

    stream = (TestStream()
              .add_elements(("k", 1_000, 5), ("k", 2_000, 7))
              .advance_watermark_to(9_999)
              .add_elements(("k", 3_000, 1))          # late, within allowed lateness?
              .advance_processing_time(5_000)
              .advance_watermark_to_infinity())
    result = stream.run(WindowSpec(Tumbling(10_000), aggregate=SUM, allowed_lateness=5_000))
    result.panes     # every pane, in the order it fired, with timing, index and is_last
    result.late      # the late side output

Deterministic by construction, usable from a user's tests and notebooks. A watermark that does
not move forward is refused at once, with a one-line error.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from weir.sim.kernel.errors import ScenarioError
from weir.sim.stream.windows import MAX_TIME, MIN_TIME, LateElement, Pane, WindowOperator, WindowSpec

__all__ = ["TestStream", "TestStreamResult"]


@dataclass(frozen=True)
class TestStreamResult:
    panes: tuple[Pane, ...]
    late: tuple[LateElement, ...]
    dropped: int
    watermark: int
    processing_time: int

    def values(self) -> list[tuple]:
        """(key, window start, timing, value) per pane: the compact form for assertions."""
        return [(p.key, p.window.start, p.timing.value, p.value) for p in self.panes]

    def rows(self) -> list[tuple]:
        """(key, window start, window end, timing, value) per pane: with the end, as a sink keys it."""
        return [(p.key, p.start, p.end, p.timing.value, p.value) for p in self.panes]


class TestStream:
    """A script of elements, watermark advances and processing-time advances."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self._steps: list[tuple[str, Any]] = []
        self._watermark = MIN_TIME
        self._processing_time = 0

    def add_elements(self, *elements: tuple[Hashable, int, Any]) -> "TestStream":
        """Elements as (key, timestamp, value), arriving together: one bundle (with Beam
        semantics, count triggers are asked once after all of them)."""
        for i, element in enumerate(elements):
            if not (isinstance(element, tuple) and len(element) == 3 and isinstance(element[1], int)):
                raise ScenarioError(f"add_elements[{i}]", element, "a tuple (key, timestamp in us, value)")
        self._steps.append(("elements", elements))
        return self

    def advance_watermark_to(self, watermark: int) -> "TestStream":
        if not isinstance(watermark, int) or watermark <= self._watermark:
            shown = "MIN_TIME" if self._watermark == MIN_TIME else str(self._watermark)
            raise ScenarioError("advance_watermark_to", watermark,
                                f"a watermark after the current one ({shown}): watermarks only move forward")
        self._watermark = watermark
        self._steps.append(("watermark", watermark))
        return self

    def advance_watermark_to_infinity(self) -> "TestStream":
        return self.advance_watermark_to(MAX_TIME)

    def advance_processing_time(self, delta: int) -> "TestStream":
        if not isinstance(delta, int) or delta <= 0:
            raise ScenarioError("advance_processing_time", delta, "a duration in us > 0")
        self._processing_time += delta
        self._steps.append(("processing_time", self._processing_time))
        return self

    def run(self, spec: WindowSpec | WindowOperator) -> TestStreamResult:
        """Feed the script to a fresh operator for `spec` (or to the operator given)."""
        op = spec if isinstance(spec, WindowOperator) else WindowOperator(spec)
        for kind, arg in self._steps:
            if kind == "elements":  # one add_elements is one bundle (Beam's TestStream.ElementEvent)
                op.process_bundle(arg)
            elif kind == "watermark":
                op.advance_watermark(arg)
            else:
                op.advance_processing_time(arg)
        return TestStreamResult(tuple(op.panes), tuple(op.late), op.dropped, op.watermark, op.processing_time)
