"""weir's errors: one root, a few subclasses that also inherit the builtin they resemble."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from collections.abc import Iterable
from typing import Any

__all__ = ["WeirError", "ScenarioError", "SimulationError", "UserHookError", "UserCodeTimedOut", "UserError",
           "timed_out_message"]


class WeirError(Exception):
    """Root of every error weir raises on purpose."""


class ScenarioError(WeirError, ValueError):
    """A scenario (file or Python object) has a value weir does not accept.

    The message is always one line: where (file), which key, what it got, what it accepts.
    """

    def __init__(self, key: str, got: object, accepts: str, file: str | None = None, hint: str | None = None):
        self.key = key
        self.got = got
        self.accepts = accepts
        self.file = file
        self.hint = hint  # a close match to suggest ("did you mean ...?"), if there is one
        super().__init__(self._line())

    def _line(self) -> str:
        where = f"{self.file}: " if self.file else ""
        got = self.got if isinstance(self.got, _Raw) else repr(self.got)
        hint = f" (did you mean {self.hint!r}?)" if self.hint else ""
        return f"{where}{self.key}: got {_short(str(got), 50)}{hint}; accepts {_short(self.accepts, 170)}"

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        """Pickled as its parts (a worker process's error reaches the sweep that started it), the
        value it got as the text the line shows (the value itself may not pickle)."""
        got = self.got if isinstance(self.got, _Raw) else _Raw(repr(self.got))
        return (ScenarioError, (self.key, got, self.accepts, self.file, self.hint))

    def in_file(self, file: str) -> "ScenarioError":
        """The same error, naming the file it came from."""
        return ScenarioError(self.key, self.got, self.accepts, file, self.hint)


def no_such_path(key: str, path: object, accepts: str, found: str = "no such file") -> ScenarioError:
    """A path the user gave for `key` that is not there: the path whole, where the line names the
    file (a `got` is cut to 50 characters, and a long path's end is what tells which it is)."""
    return ScenarioError(key, _Raw(found), accepts, str(path))


def near(word: object, choices: Iterable[str]) -> str | None:
    """The choice closest to a misspelled `word` (difflib's ratio at least 0.6), or None."""
    import difflib
    if not isinstance(word, str):
        return None
    found = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return found[0] if found else None


_LEAST_CUT = 16  # characters: _short cuts more than this, or nothing


def _short(text: str, most: int) -> str:
    """`text` cut to about `most` characters, on a word, saying so: an error stays one readable line
    (a value a fuzzer made, a list of every invariant's name)."""
    text = text.replace("\n", " ").replace("\r", " ")
    if len(text) <= most + _LEAST_CUT:  # a cut of a few characters would hide them, not shorten the line
        return text
    cut = text[:most].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut} ... ({len(text) - len(cut)} more characters)"


class _Raw(str):
    """A `got` value to print as is (already descriptive), not repr'd."""


def raw(text: str) -> _Raw:
    return _Raw(text)


class SimulationError(WeirError, RuntimeError):
    """The model reached a state it must never reach (a bug in weir or in a user's component)."""


class UserHookError(Exception):
    """A user component's hook raised, returned what it must not, or did not return in time
    (weir.sim.stream.guard): who, which hook, what went wrong, on what, and the user's side of the
    traceback. weir turns it into a UserError in the run's result; it never reaches the user as a
    traceback. Built from plain strings, so simpy can copy it (it re-raises type(e)(*e.args))."""

    def __init__(self, component: str, hook: str, error: str, context: str = "", traceback: str = "",
                 timed_out: bool = False):
        super().__init__(component, hook, error, context, traceback, timed_out)
        self.component, self.hook, self.error, self.context = component, hook, error, context
        self.traceback, self.timed_out = traceback, timed_out

    def __str__(self) -> str:
        return f"{self.component}.{self.hook}: {self.error}"

    def finding(self, at: int, node: str = "", phase: str = "run", bound_us: int | None = None) -> "UserError":
        """The run's finding: this error at simulated time `at` on `node`; a time-out says the
        bound (`bound_us`, run.user_timeout) it ran past."""
        error = timed_out_message(bound_us) if self.timed_out and bound_us is not None else self.error
        return UserError(self.component, self.hook, error, at, node, self.context, self.traceback, self.timed_out,
                         phase)


class UserCodeTimedOut(BaseException):
    """Raised inside a user hook that ran past run.user_timeout of wall-clock time (weir.sim.kernel.
    watchdog). A BaseException, so a user's `except Exception` cannot swallow it."""


def timed_out_message(bound_us: int) -> str:
    return f"did not return within {bound_us / 1e6:g}s of wall-clock time (run.user_timeout)"


@dataclass(frozen=True)
class UserError:
    """One finding about user code in a run: `component`.`hook` raised `error` (or returned a value
    it must not, or ran past the wall-clock bound) at simulated time `at` (us) on `node`, while
    handling `context` (a batch, a record, a checkpoint); `traceback` is the user's side of it.
    `phase` is "setup" (building a component, drawing the workload), "run" or "results" (reading
    the sink's contents): outside "run" there are no results to judge. JSON-able."""

    component: str
    hook: str
    error: str
    at: int = 0
    node: str = ""
    context: str = ""
    traceback: str = ""
    timed_out: bool = False
    phase: str = "run"

    def line(self) -> str:
        """One line: `Component.hook at 12.345ms on processor (a batch ...): TypeError: message`."""
        where = {"run": f" at {self.at / 1000:g}ms", "setup": " while the run was set up",
                 "results": " while the run's results were read"}.get(self.phase, f" ({self.phase})")
        node = f" on {self.node}" if self.node else ""
        context = f" ({self.context})" if self.context else ""
        return _short(f"{self.component}.{self.hook}{where}{node}{context}: {self.error}", 300)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
