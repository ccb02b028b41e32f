"""Seed sweeps on a process pool: the same results as one process, in seed order."""

from __future__ import annotations

import json
import pickle

import pytest

import weir
from weir.cli import main
from weir.sweep import sweep


def test_a_pool_gives_what_one_process_gives_in_seed_order():
    seen = []
    pooled = sweep("at_least_once_crash", [5, 2, 9, 2], workers=2, progress=lambda done, total: seen.append((done, total)))
    serial = sweep("at_least_once_crash", [5, 2, 9], workers=1)
    assert pooled.seeds == (5, 2, 9) and pooled.workers == 2 and serial.workers == 1
    assert [r.trace_sha256 for r in pooled.results] == [r.trace_sha256 for r in serial.results]
    assert [r.trace_sha256 for r in pooled.results] == [weir.run("at_least_once_crash", s).trace_sha256 for s in (5, 2, 9)]
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]  # the start, then each run
    assert pickle.loads(pickle.dumps(pooled)).results == pooled.results


def test_the_tally_counts_each_invariant_and_names_the_seeds_that_disagree():
    result = sweep("at_least_once_crash", range(4), workers=2)
    tally = result.tally()
    assert tally["no_loss"] == {"expected": "hold", "held": 4, "violated": 0, "violated_share": 0.0, "unexpected": []}
    assert tally["no_duplicates"]["violated"] == 4 and result.matches and result.failing_seeds() == ()
    claimed = weir.load_scenario("at_least_once_crash")
    from dataclasses import replace
    wrong = replace(claimed, expect=replace(claimed.expect, hold=("no_duplicates", "drained"), violate=()))
    bad = sweep(wrong, range(3), workers=1)
    assert not bad.matches and bad.failing_seeds() == (0, 1, 2)
    assert bad.tally()["no_duplicates"]["unexpected"] == [0, 1, 2]
    assert json.loads(json.dumps(bad.to_dict()))["failing_seeds"] == [0, 1, 2]


def test_the_sweep_command(capsys):
    assert main(["sweep", "exactly_once_crash", "--seeds", "3", "--first", "10", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "seeds 10..12 on 2 worker(s)" in out and "3 of 3 seeds as expected" in out
    assert main(["sweep", "exactly_once_crash", "--seeds", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seeds"] == [0, 1]
    with pytest.raises(SystemExit) as e:
        main(["sweep", "exactly_once_crash", "--seeds", "0"])
    assert e.value.code == 2 and "--seeds: got 0" in capsys.readouterr().err


def test_a_violate_claim_is_a_demonstration_on_the_scenarios_own_seed():
    """`hold`: every seed. `violate`: the scenario's own seed must show the flaw; on other seeds it
    is reported as a share, not a failure (README, Seed sweeps)."""
    scenario = weir.load_scenario("reordered_offset_commits")  # its rewinds show on seed 1, its own, and few others
    result = sweep(scenario, range(6), workers=2)
    row = result.tally()["commits_monotonic"]
    assert row["expected"] == "violate" and 0 < row["violated"] < 6 and row["unexpected"] == [], row
    assert result.matches and row["violated_share"] == round(row["violated"] / 6, 4)
    quiet = next(r for r in result.results if r.verdict("commits_monotonic").held)
    assert quiet.matches and not quiet.own_seed
    assert any(e.not_shown for e in quiet.expectations)
    from dataclasses import replace
    moved = replace(scenario, seed=quiet.seed)  # the same scenario, claiming its demonstration on a quiet seed
    wrong = sweep(moved, [quiet.seed], workers=1)
    assert not wrong.matches and wrong.tally()["commits_monotonic"]["unexpected"] == [quiet.seed]
    assert weir.run(moved).own_seed and not weir.run(moved).matches


def test_run_on_another_seed_says_the_demonstration_did_not_show(capsys):
    from weir.cli import main
    quiet = next(s for s in range(2, 20) if weir.run("reordered_offset_commits", s).verdict("commits_monotonic").held)
    assert main(["run", "reordered_offset_commits", "--seed", str(quiet)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("commits_monotonic "))
    assert "not shown on this seed" in row and "outcome: as expected" in out
    assert f"seed {quiet} is another, where it may not show" in out
