"""The teaching notebooks are notebooks: each a jupytext pair (`.py` to review, `.ipynb` to open)
kept in step, executed top to bottom by a real Jupyter kernel (nbclient, ipykernel), with every
cell succeeding, its asserts holding, and its plots, tables and diagrams shown inline."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))


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
    if script.stem.startswith("01_"):
        markdown = [o.data["text/markdown"] for o in shown if "text/markdown" in o.data]
        assert any(m.startswith("```mermaid\nsequenceDiagram") for m in markdown), "the sequence diagram is not shown"
        assert any("<table>" in o.data.get("text/html", "") and "exactly_once" in o.data["text/html"] for o in shown)
