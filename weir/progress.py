"""Progress of long work on stderr, fit for where it is shown.

In a terminal: a live bar (rich.progress) with the count, the rate and the time left, cleared
when the work ends, so the table that follows starts on a clean line. Anywhere else (a CI log, a
file, a pipe): a few plain lines, one at the first update (the work under way: a bad input found
before it leaves the one line of its error alone), one each time another tenth is done (at most
one every few seconds) and one at the end: no carriage returns, nothing overwritten.

It reads the wall clock, to pace its lines and to show the time left; it only ever writes to
stderr, and nothing weir computes depends on it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as _Bar, TaskProgressColumn, TextColumn, \
    TimeRemainingColumn

__all__ = ["Progress", "working"]

#: In a log: at most one line in this many seconds, however fast the tenths go by.
PLAIN_EVERY = 5.0


class Progress:
    """`with Progress("sweep", 20, "seeds") as p: ... p.update(done)`: a bar in a terminal, plain lines
    elsewhere. `note` adds a few words after the count ("3 runs/s"). `enabled=False` shows nothing
    (a --json run keeps stderr for errors)."""

    def __init__(self, label: str, total: float, unit: str, stream: TextIO | None = None, enabled: bool = True):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.done: float = 0
        self._console = Console(file=self.stream, stderr=True, highlight=False)
        self._bar: _Bar | None = None
        self._task = None
        self._tenth = -1
        self._last = 0.0

    @property
    def live(self) -> bool:
        """Whether this is a live bar (a terminal) rather than plain lines."""
        return self._console.is_terminal and not self._console.is_dumb_terminal

    def __enter__(self) -> "Progress":
        if not self.enabled:
            return self
        if self.live:
            self._bar = _Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TaskProgressColumn(), TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
                             console=self._console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, note="")
        return self

    def update(self, done: float, total: float | None = None, note: str = "", label: str | None = None,
               unit: str | None = None) -> None:
        """`done` of the total so far (and a new total, if it changed). A new label or unit is the
        work's next stage (explore's shrinking after its search): in a log, it gets a line at once."""
        if total is not None:
            self.total = total
        self.done = done
        stage = (label or self.label, unit or self.unit)
        if stage != (self.label, self.unit):
            self.label, self.unit = stage
            self._tenth = -1
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=self.total, note=note, description=self.label)
            return
        tenth = int(10 * done / self.total) if self.total else 10
        now = time.monotonic()  # determinism: ok (paces progress lines on stderr only)
        if self._tenth < 0 or (tenth > self._tenth and (now - self._last >= PLAIN_EVERY or tenth >= 10)):
            self._line(note)

    def _line(self, note: str) -> None:
        self._tenth = int(10 * self.done / self.total) if self.total else 10
        self._last = time.monotonic()  # determinism: ok (paces progress lines on stderr only)
        count = f"{self.done:,.0f} of {self.total:,.0f} {self.unit}"
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        self.stream.write(f"{self.label}: {count}{share}{'; ' + note if note else ''}\n")
        self.stream.flush()

    def __exit__(self, *exc) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.stop()
        elif self._tenth < 10 and exc[0] is None and (self._tenth >= 0 or self.total):
            self._line("")


@contextmanager
def working(message: str, stream: TextIO | None = None, enabled: bool = True) -> Iterator[Callable[[], None]]:
    """A step with no count (writing a report): a spinner with `message` in a terminal, the message
    as one line elsewhere, once the step calls the function it yields (`with working(m) as
    begun: ...; begun()`), so that a bad input found first (a folder that cannot be made) is the
    only line; at the end of a step that never called it."""
    stream = stream if stream is not None else sys.stderr
    console = Console(file=stream, stderr=True, highlight=False)
    said = False

    def begun() -> None:
        nonlocal said
        if not said:
            said = True
            stream.write(message + "\n")
            stream.flush()

    if not enabled:
        yield lambda: None
    elif console.is_terminal and not console.is_dumb_terminal:
        with console.status(message):
            yield lambda: None
    else:
        yield begun
        begun()
