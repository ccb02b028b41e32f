"""weir's errors: one root, a few subclasses that also inherit the builtin they resemble."""

from __future__ import annotations

__all__ = ["WeirError", "ScenarioError", "SimulationError"]


class WeirError(Exception):
    """Root of every error weir raises on purpose."""


class ScenarioError(WeirError, ValueError):
    """A scenario (file or Python object) has a value weir does not accept.

    The message is always one line: where (file), which key, what it got, what it accepts.
    """

    def __init__(self, key: str, got: object, accepts: str, file: str | None = None):
        self.key = key
        self.got = got
        self.accepts = accepts
        self.file = file
        super().__init__(self._line())

    def _line(self) -> str:
        where = f"{self.file}: " if self.file else ""
        got = self.got if isinstance(self.got, _Raw) else repr(self.got)
        return f"{where}{self.key}: got {_short(str(got), 50)}; accepts {_short(self.accepts, 210)}"

    def in_file(self, file: str) -> "ScenarioError":
        """The same error, naming the file it came from."""
        return ScenarioError(self.key, self.got, self.accepts, file)


def _short(text: str, most: int) -> str:
    """`text` cut to about `most` characters, on a word, saying so: an error stays one readable line
    (a value a fuzzer made, a list of every invariant's name)."""
    text = text.replace("\n", " ").replace("\r", " ")
    if len(text) <= most:
        return text
    cut = text[:most].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut} ... ({len(text) - len(cut)} more characters)"


class _Raw(str):
    """A `got` value to print as is (already descriptive), not repr'd."""


def raw(text: str) -> _Raw:
    return _Raw(text)


class SimulationError(WeirError, RuntimeError):
    """The model reached a state it must never reach (a bug in weir or in a user's component)."""


class UserCodeError(WeirError, RuntimeError):
    """A user's component raised where weir cannot go on without it (building it, drawing the
    workload, reading the sink's contents): one line naming it. During the run itself an exception
    from user code is a finding in the result (`user_errors`, status `failed`), not this."""
