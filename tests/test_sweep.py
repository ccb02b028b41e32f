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
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert pickle.loads(pickle.dumps(pooled)).results == pooled.results


def test_the_tally_counts_each_invariant_and_names_the_seeds_that_disagree():
    result = sweep("at_least_once_crash", range(4), workers=2)
    tally = result.tally()
    assert tally["no_loss"] == {"expected": "hold", "held": 4, "violated": 0, "unexpected": []}
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
