"""The pattern x fault matrix: measured from runs, deterministic, and it tells broken designs apart."""

from __future__ import annotations

import json

import pytest

from weir.faults.matrix import correctness_matrix
from weir.cli import main


def test_a_broken_design_breaks_and_a_sound_one_holds():
    m = correctness_matrix(["commit before ack", "exactly-once, upsert"], ["crash"], runs=3, seed=0)
    broken, sound = m.cells[("commit before ack", "crash")], m.cells[("exactly-once, upsert", "crash")]
    assert sound.runs == 3 and sound.held == 3 and sound.text() == "3/3"
    assert broken.runs == 3 and broken.held < 3 and broken.broken["no_loss"] >= 1
    assert broken.text().endswith("no_loss") and broken.first_failure is not None
    assert m.claims["commit before ack"] == ("no_loss", "drained")
    assert m.costs["exactly-once, upsert"]["p50_latency_us"] > 0


def test_the_matrix_is_a_pure_function_of_its_arguments_on_any_number_of_workers():
    one = correctness_matrix(["dual write", "saga with compensation"], ["crash", "store_fail"], runs=2, seed=4)
    two = correctness_matrix(["dual write", "saga with compensation"], ["crash", "store_fail"], runs=2, seed=4,
                             workers=2)
    assert one.to_dict() == two.to_dict()
    assert one.cells[("saga with compensation", "store_fail")].text() == "n/a"  # no checkpoint store there


def test_two_phase_commit_is_visible_later_than_an_upsert():
    m = correctness_matrix(["exactly-once, upsert", "exactly-once, two-phase commit"], ["crash"], runs=1)
    assert m.costs["exactly-once, two-phase commit"]["p50_latency_us"] > m.costs["exactly-once, upsert"]["p50_latency_us"]


def test_the_matrix_command(capsys):
    assert main(["matrix", "--runs", "1", "--patterns", "at-least-once", "--kinds", "crash", "--json",
                 "--workers", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cells"]["at-least-once"]["crash"]["runs"] == 1
    assert main(["matrix", "--kinds", "nope"]) == 2
    assert "--kinds: got 'nope'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown pattern"):
        correctness_matrix(["nope"])


def test_the_matrix_table_fits_120_columns_and_names_what_broke():
    """Every pattern and every fault family, in a 120-column terminal: nothing cut, the key below."""
    import io

    from weir.console import console, print_matrix
    from weir.faults.matrix import MATRIX_KINDS, PATTERNS, Cell, Matrix
    cells = {(p, k): Cell(10, 10) for p in PATTERNS for k in MATRIX_KINDS}
    cells[("commit before ack", "crash")] = Cell(10, 3, {"no_loss": 7})
    cells[("saga with compensation", "store_fail")] = Cell(0, 0)
    matrix = Matrix(tuple(PATTERNS), MATRIX_KINDS, cells,
                    {p: {"drained_at_us": 9_201_813, "p50_latency_us": 248_402} for p in PATTERNS},
                    {p: (*claims, "drained") for p, (_, claims) in PATTERNS.items()}, 10, 0)
    buffer = io.StringIO()
    out = console(buffer)
    out.width = 120
    print_matrix(matrix, out)
    text = buffer.getvalue()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120, max(lines, key=len)
    assert "…" not in text
    row = next(line for line in lines if line.startswith("commit before ack"))
    assert row.split()[3:5] == ["3/10", "10/10"] and "9202ms" in row and "248ms" in row
    assert "broken: commit before ack under crash: no_loss 7 runs" in text
    assert "part = partition" in text and "n/a" in next(line for line in lines if line.startswith("saga"))
