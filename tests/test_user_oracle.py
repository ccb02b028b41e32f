"""expect.oracle: the user's own invariant, checked, shown and explored like a built-in one."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import weir
from weir.cli import main
from weir.sim.scenario.components import ComponentSpec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
from components import KeyCounter, counts_match_the_log  # noqa: E402  (the examples' user code)

EXAMPLE = ROOT / "examples" / "user_components.toml"


class DoubleCountingRestore(KeyCounter):
    """A restore that doubles every key's count: every id arrives once, with wrong values."""

    def restore(self, snapshot):
        self.counts = {key: 2 * n for key, n in snapshot.items()}


def _scenario(operator=KeyCounter, oracle=counts_match_the_log, records: int = 5000) -> weir.Scenario:
    base = weir.load_scenario(EXAMPLE)
    return replace(base, operator=ComponentSpec(operator, {"scale": 10}), workload=replace(base.workload, records=records),
                   expect=replace(base.expect, oracle=oracle))


def test_a_scenario_file_names_its_oracle_and_the_verdict_is_shown_like_any_other(capsys):
    scenario = weir.load_scenario(EXAMPLE)
    assert scenario.expect.oracle is counts_match_the_log and scenario.expect.oracle_name == "counts_match_the_log"
    result = weir.run(scenario)
    verdict = result.verdict("counts_match_the_log")
    assert verdict.held and result.matches, verdict.summary
    assert [e.expected for e in result.expectations if e.invariant == "counts_match_the_log"] == ["hold"]
    assert main(["run", str(EXAMPLE), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {"invariant": "counts_match_the_log", "held": True} in [
        {k: v[k] for k in ("invariant", "held")} for v in shown["verdicts"]]


def test_a_flawed_operator_breaks_the_oracle_and_explore_finds_it():
    flawed = _scenario(DoubleCountingRestore)
    verdict = weir.run(flawed, 1).verdict("counts_match_the_log")  # the example's crash, after checkpoint 2
    assert not verdict.held and "keys' final counts are off" in verdict.summary, verdict.summary
    report = weir.explore(flawed, budget_s=20, seed=0)
    assert report.counterexample is not None, f"explore found nothing in {report.runs} runs (search seed 0)"
    found = report.counterexample
    # exactly_once judges values too now, and may be the claim it breaks first; the oracle breaks with it
    assert found.verdict.invariant in ("counts_match_the_log", "exactly_once"), found.verdict
    again = weir.run(found.scenario, found.seed, found.faults)
    assert not again.verdict("counts_match_the_log").held and not again.verdict("exactly_once").held


def test_the_correct_operator_survives_the_same_search():
    report = weir.explore(_scenario(KeyCounter), budget_s=4, seed=0)
    assert report.counterexample is None, report.counterexample
    assert "counts_match_the_log" in report.claims and report.runs > 10


def test_an_oracle_that_raises_is_a_violated_verdict_not_a_crash():
    def divides_by_zero(run):
        return 1 / 0

    result = weir.run(_scenario(oracle=divides_by_zero, records=500))
    verdict = result.verdict("divides_by_zero")
    assert not verdict.held and verdict.summary == "the oracle raised ZeroDivisionError: division by zero"
    assert not result.matches  # it was claimed to hold


@pytest.mark.parametrize("returned, held, says", [
    (True, True, "the oracle says it holds"),
    (False, False, "the oracle says it is violated"),
    (42, False, "the oracle returned int, not a weir.Verdict or a bool"),
])
def test_what_an_oracle_may_return(returned, held, says):
    def mine(run):
        return returned

    verdict = weir.run(_scenario(oracle=mine, records=500)).verdict("mine")
    assert (verdict.held, verdict.summary) == (held, says)


def test_its_verdict_goes_by_the_functions_name():
    def named_here(run):
        return weir.Verdict("something_else", True, "fine")

    verdicts = weir.check(weir.execute(_scenario(oracle=named_here, records=500)))
    assert verdicts[-1].invariant == "named_here" and verdicts[-1].summary == "fine"


@pytest.mark.parametrize("value, message", [
    ("components:nothing_here", "expect.oracle: got 'components:nothing_here'; accepts an importable 'module:function'"),
    ("nowhere:fn", "accepts an importable 'module:function' that takes a finished run and returns a weir.Verdict "
                   "or a bool (ModuleNotFoundError: No module named 'nowhere')"),
    ("components:KeyCounter", "expect.oracle: got 'components:KeyCounter'"),
    ("no colon", "expect.oracle: got 'no colon'"),
])
def test_a_bad_oracle_is_one_line_at_load_time(tmp_path, capsys, value, message):
    text = EXAMPLE.read_text().replace('oracle = "components:counts_match_the_log"', f"oracle = {value!r}".replace("'", '"'))
    path = tmp_path / "bad.toml"
    path.write_text(text)
    sys.path.insert(0, str(ROOT / "examples"))  # the file's own folder no longer holds components.py
    try:
        assert main(["run", str(path)]) == 2
    finally:
        sys.path.remove(str(ROOT / "examples"))
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_an_oracle_may_not_take_a_built_in_invariants_name():
    def exactly_once(run):
        return True

    with pytest.raises(weir.ScenarioError, match="expect.oracle: got 'exactly_once'; accepts a function not named"):
        _scenario(oracle=exactly_once)
