"""The teaching notebooks are notebooks: each a jupytext pair (`.py` to review, `.ipynb` to open)
kept in step, executed top to bottom by a real Jupyter kernel (nbclient, ipykernel), with every
cell succeeding, its asserts holding, and its plots, tables and diagrams shown inline. Each one
that teaches a concept ends with exercises: a check cell that runs weir on the learner's setting
and says "not yet" for the one it starts with, and a hidden solution cell that asserts a setting
that passes."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
MEASURING = {"10_comparing_patterns"}  # measures the seed's matrices rather than teaching a concept: no exercises


def test_there_are_notebooks_and_the_readme_lists_each():
    assert NOTEBOOKS
    listed = (ROOT / "notebooks" / "README.md").read_text()
    assert all(f"`{nb.name}`" in listed and f"`{nb.with_suffix('.ipynb').name}`" in listed for nb in NOTEBOOKS)


@pytest.mark.parametrize("script", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_script_and_the_notebook_are_one_pair_in_step(script):
    paired = script.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} is missing: jupytext --sync {script.relative_to(ROOT)}"
    text, book = jupytext.read(script), jupytext.read(paired)
    assert text.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert [(c.cell_type, c.source) for c in text.cells] == [(c.cell_type, c.source) for c in book.cells], (
        f"{script.name} and {paired.name} differ: jupytext --sync {script.relative_to(ROOT)}")
    assert not any(c.get("outputs") for c in book.cells)  # committed without outputs: the test makes them


def _outputs(book) -> list[dict]:
    return [out for cell in book.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def _tagged(book, tag: str) -> list:
    return [cell for cell in book.cells if tag in cell.get("metadata", {}).get("tags", [])]


def _shown_text(cell) -> str:
    """What a cell's last value showed as text (an Answer: 'passed: ...' or 'not yet: ...')."""
    results = [o for o in cell.get("outputs", []) if o.output_type == "execute_result"]
    return results[-1].data.get("text/plain", "") if results else ""


@pytest.mark.parametrize("script", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_concept_notebook_ends_with_exercises_whose_solutions_are_hidden(script):
    book = jupytext.read(script)
    checks, solutions = _tagged(book, "check"), _tagged(book, "solution")
    if script.stem in MEASURING:
        assert not checks and not solutions
        return
    headings = [c.source for c in book.cells if c.cell_type == "markdown"]
    assert any(h.startswith("## Exercises") for h in headings), f"{script.name}: no '## Exercises' section"
    assert checks and len(checks) == len(solutions), f"{script.name}: each exercise needs a check and a solution cell"
    for check, solution in zip(checks, solutions):
        assert book.cells.index(check) < book.cells.index(solution)
        assert solution.metadata.get("jupyter", {}).get("source_hidden") is True, solution.source
        assert "assert " in solution.source, f"{script.name}: a solution cell must assert that it passes"


@pytest.mark.parametrize("script", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_runs_in_a_kernel_and_shows_its_pictures(script, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's paths without its migration warning
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # what Jupyter sets
    monkeypatch.chdir(tmp_path)
    book = nbformat.read(script.with_suffix(".ipynb"), as_version=4)
    client = NotebookClient(book, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(ROOT)}})
    client.execute()  # a cell that raises fails the test (nbclient's CellExecutionError names it)
    outputs = _outputs(book)
    assert not [o for o in outputs if o.output_type == "error"]
    shown = [o for o in outputs if o.output_type in ("display_data", "execute_result")]
    assert any("image/png" in o.data for o in shown), f"{script.name}: no picture shown"
    for check in _tagged(book, "check"):  # an exercise starts open ...
        assert _shown_text(check).startswith("not yet: "), f"{script.name}: {check.source} showed {_shown_text(check)!r}"
    for solution in _tagged(book, "solution"):  # ... and its solution passes (its assert held, too)
        assert _shown_text(solution).startswith("passed: "), f"{script.name}: {_shown_text(solution)!r}"
    if script.stem.startswith("01_"):
        markdown = [o.data["text/markdown"] for o in shown if "text/markdown" in o.data]
        assert any(m.startswith("```mermaid\nsequenceDiagram") for m in markdown), "the sequence diagram is not shown"
        assert any("<table>" in o.data.get("text/html", "") and "exactly_once" in o.data["text/html"] for o in shown)
