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
                    {p: _cost(9_201_813, 248_402) for p in PATTERNS},
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


def test_the_heatmap_colours_each_cell_by_the_share_that_held(tmp_path, capsys):
    import matplotlib.pyplot as plt

    from weir.faults.matrix import MATRIX_KINDS, PATTERNS, Cell, Matrix, heatmap
    cells = {(p, k): Cell(10, 10) for p in PATTERNS for k in MATRIX_KINDS}
    cells[("commit before ack", "crash")] = Cell(10, 3, {"no_loss": 7})
    cells[("saga with compensation", "store_fail")] = Cell(0, 0)
    matrix = Matrix(tuple(PATTERNS), MATRIX_KINDS, cells, {p: _cost(1, None) for p in PATTERNS},
                    {p: (*claims, "drained") for p, (_, claims) in PATTERNS.items()}, 10, 0)
    fig, ax = plt.subplots()
    try:
        heatmap(matrix, ax)
        shares = ax.images[0].get_array()
        row, col = list(PATTERNS).index("commit before ack"), MATRIX_KINDS.index("crash")
        assert shares[row, col] == 0.3 and shares[0, 0] == 1.0
        assert shares.mask[list(PATTERNS).index("saga with compensation"), MATRIX_KINDS.index("store_fail")]
        texts = {t.get_text() for t in ax.texts}
        assert "3/10\nno_loss" in texts and "n/a" in texts
        assert [t.get_text() for t in ax.get_xticklabels()] == list(MATRIX_KINDS)
        assert ax.get_yticklabels()[row].get_text() == "commit before ack (no_loss)"
    finally:
        plt.close(fig)
    path = tmp_path / "matrix.png"
    assert main(["matrix", "--runs", "1", "--patterns", "at-least-once", "--kinds", "crash", "--workers", "1",
                 "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {path}" in capsys.readouterr().err
    assert main(["matrix", "--plot", str(tmp_path / "no" / "such" / "m.png")]) == 2


def _cost(drained: int, latency: int | None, records: int = 20_000, lines: int = 30) -> dict:
    return {"drained_at_us": drained, "p50_latency_us": latency, "records": records, "state": "committed offsets only",
            "lines": lines}


def test_the_seeds_comparison_and_decision_matrices_come_from_the_runs():
    """Section 8 of the seed, measured: a pattern that broke a promise is recommended for nothing
    that promise covers; throughput is records per second, not who drained first."""
    from weir.faults.matrix import MATRIX_KINDS, PATTERNS, Cell, Matrix, comparison, decisions
    cells = {(p, k): Cell(10, 10) for p in PATTERNS for k in MATRIX_KINDS}
    cells[("dual write", "crash")] = Cell(10, 7, {"outbox_consistent": 3})
    costs = {p: _cost(1_000_000, 250_000 + i, lines=20 + i) for i, p in enumerate(PATTERNS)}
    costs["saga with compensation"] = _cost(54_000, None, records=400, lines=27)  # drains first, but 400 sagas
    costs["exactly-once, two-phase commit"] = _cost(1_000_000, 300_000)
    matrix = Matrix(tuple(PATTERNS), MATRIX_KINDS, cells, costs,
                    {p: (*claims, "drained") for p, (_, claims) in PATTERNS.items()}, 10, 0)
    rows = {r["pattern"]: r for r in comparison(matrix)}
    assert rows["dual write"]["recovery"] == "broke in 3/10 crash schedules: outbox_consistent"
    assert rows["exactly-once, upsert"]["recovery"].startswith("automatic: held in 10/10")
    assert rows["exactly-once, two-phase commit"]["seed_column"] == "Exactly-Once Processing"
    chosen = {d["requirement"]: d["recommended"] for d in decisions(matrix)}
    assert "dual write" not in chosen["must never lose data"] and "transactional outbox + CDC" in chosen["must never lose data"]
    assert chosen["must never lose data"].index("exactly-once, upsert") < chosen["must never lose data"].index(
        "exactly-once, two-phase commit")  # lower latency first
    assert "at-most-once" not in chosen["must never lose data"] and "at-most-once" in chosen["must never duplicate"]
    assert chosen["span multiple services"] == ["saga with compensation"]
    assert "saga with compensation" not in chosen["high throughput priority"]  # 400 sagas in 54ms < 20000 in 1s
    assert chosen["minimal infrastructure"][0] == "at-most-once" and chosen["need full audit history"] == []


def test_a_real_matrix_measures_state_and_lines():
    from weir.faults.matrix import comparison, correctness_matrix
    m = correctness_matrix(["exactly-once, upsert", "payments, dedup store + MERGE"], ["crash"], runs=1)
    rows = {r["pattern"]: r for r in comparison(m)}
    assert rows["exactly-once, upsert"]["state"].startswith("checkpoints of up to ")
    assert rows["payments, dedup store + MERGE"]["state"].endswith("dedup keys (payment ids)")
    assert 15 < rows["exactly-once, upsert"]["lines"] < 60
