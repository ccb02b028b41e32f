"""The teaching notebooks run, top to bottom, and their asserts hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))


def test_there_are_notebooks_and_the_readme_lists_each():
    assert NOTEBOOKS
    listed = (ROOT / "notebooks" / "README.md").read_text()
    assert all(f"`{nb.name}`" in listed for nb in NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_runs(notebook):
    text = notebook.read_text()
    assert "format_name: percent" in text and text.count("# %%") >= 3  # a jupytext percent script
    done = subprocess.run([sys.executable, str(notebook)], cwd=ROOT, capture_output=True, text=True,
                          env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
