"""weir in Jupyter: what a notebook displays inline, with no setup.

Jupyter asks the value of a cell's last line for its rich forms (`_repr_png_`, `_repr_html_`,
`_repr_markdown_`), so nothing here imports IPython or touches matplotlib's backend:

- `weir.show(ax)` (or a Figure): the plot as a PNG (`Picture`). weir's plots draw on Figures of
  their own, not pyplot's, so they are not shown by `plt.show()` or the inline backend: this is
  how they are shown;
- a `RunResult` (`weir.run`) is its verdict table as HTML; `weir.show(run)` checks a finished run
  (`weir.execute`) and shows its table too;
- a sequence diagram (`weir.analysis.diagram.sequence_diagram`) is a `Mermaid` text, shown as a
  Markdown Mermaid block, which JupyterLab (4.1 and later) renders offline;
- an exercise's check returns an `Answer`: "passed" or "not yet", with what the run showed;
  `@weir.exercise` on the check turns a setting weir refuses into a "not yet" with the refusal.

Mid-cell, `IPython.display.display(weir.show(x))` shows one, as for anything else.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable, Sequence
from typing import Any

from weir.analysis.diagram import Mermaid

__all__ = ["show", "Picture", "Mermaid", "Answer", "exercise"]


class Picture:
    """A rendered figure: PNG bytes that Jupyter displays (`_repr_png_`) and `save` writes."""

    def __init__(self, png: bytes):
        self.png = png

    def _repr_png_(self) -> bytes:
        return self.png

    def save(self, path: str | os.PathLike[str]) -> None:
        from weir.sim.kernel.files import atomic_file
        with atomic_file(path) as f:
            f.write(self.png)

    def __repr__(self) -> str:
        return f"<weir.Picture: {len(self.png)} bytes of PNG>"


class Answer:
    """What an exercise's check found: whether the learner's setting passed, and what the run showed
    (or a hint). True when it passed; shown as one line, **passed** or **not yet**, so a notebook runs
    top to bottom while the exercise is still open."""

    def __init__(self, passed: bool, message: str):
        self.passed, self.message = bool(passed), message

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"{'passed' if self.passed else 'not yet'}: {self.message}"

    def _repr_markdown_(self) -> str:
        return f"**{'passed' if self.passed else 'not yet'}**: {self.message}"

    @classmethod
    def held(cls, scenario: Any, claims: Sequence[str], seeds: Sequence[int] = (1, 2, 3),
             label: str = "") -> "Answer":
        """Run `scenario` on each seed: passed when every claim held on every one, with the first
        claim's verdict; else not yet, with the first seed and claim that broke and why."""
        from weir.api import run
        if not seeds or not claims:
            raise ValueError("Answer.held needs at least one seed and one claim")
        summary = ""
        for seed in seeds:
            result = run(scenario, seed)
            for claim in claims:
                verdict = result.verdict(claim)
                if not verdict.held:
                    return cls(False, f"{label}{', ' if label else ''}seed {seed}: {verdict.summary}")
            summary = result.verdict(claims[0]).summary
        on = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds[:-1]))} and {seeds[-1]}"
        return cls(True, f"{label}{': ' if label else ''}{summary} (on {on})")


def exercise(check: Callable[..., Answer]) -> Callable[..., Answer]:
    """An exercise's check, for a learner's settings: a setting weir refuses (weir.ScenarioError)
    is an answer too, "not yet" with the refusal's one line, not a traceback mid-lesson."""
    from weir.sim.kernel.errors import ScenarioError

    @functools.wraps(check)
    def checked(*args: Any, **kwargs: Any) -> Answer:
        try:
            return check(*args, **kwargs)
        except ScenarioError as refused:
            return Answer(False, f"weir refused it: {refused}")
    return checked


def _png(figure: Any, dpi: int) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def show(obj: Any, dpi: int = 100) -> Any:
    """What Jupyter displays for `obj`: a matplotlib Axes or Figure as a `Picture`; a finished run
    (`weir.execute`) as its checked `RunResult` (a verdict table); a diagram's text as `Mermaid`;
    anything that already displays itself (a RunResult, a Picture) as it is."""
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from weir.api import RunResult, result_of
    from weir.sim.scenario.run import Run

    if isinstance(obj, Axes):
        obj = obj.figure
    if isinstance(obj, Figure):
        return Picture(_png(obj, dpi))
    if isinstance(obj, Run):
        return result_of(obj)
    if isinstance(obj, str) and not isinstance(obj, Mermaid) and obj.lstrip().startswith(("sequenceDiagram", "graph", "flowchart")):
        return Mermaid(obj)
    if isinstance(obj, (RunResult, Picture, Mermaid)):
        return obj
    raise TypeError(f"weir.show takes a matplotlib Axes or Figure, a finished run, a RunResult or a Mermaid "
                    f"diagram's text; got {type(obj).__name__}")
