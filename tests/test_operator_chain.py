"""[[operators]]: user operators chained in the processor, each with its own state in checkpoints
(issue 12, item 8, for record operators; a window inside a chain is refused for now)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import weir
from weir.sim.scenario.loader import parse_scenario
from weir.sim.scenario.run import execute

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
from components import ForgetfulPaneTotal  # noqa: E402 - (examples/ on the path first)

EXAMPLE = ROOT / "examples" / "operator_chain.toml"


def test_each_operator_gets_the_previous_one_s_output_and_the_last_one_s_is_written():
    run = execute(weir.load_scenario(EXAMPLE), 1)
    sums: dict[int, int] = {}
    expected = {}
    order = sorted(range(len(run.source["record_id"])), key=lambda i: (int(run.source["partition"][i]), int(run.source["offset"][i])))
    for i in order:
        key = int(run.source["key"][i])
        sums[key] = sums.get(key, 0) + int(run.source["value"][i]) + 3  # Fee(fee=3), then RunningSum
        expected[int(run.source["record_id"][i])] = sums[key]
    got = dict(zip(run.sink["record_id"].tolist(), run.sink["value"].tolist()))
    assert got == expected


def test_a_checkpoint_holds_every_operator_s_state_in_order():
    run = execute(weir.load_scenario(EXAMPLE), 1)
    snapshot, _in_flight = run.checkpoints[-1].state[0]
    assert isinstance(snapshot, tuple) and len(snapshot) == 2
    assert snapshot[0] is None and isinstance(snapshot[1], dict) and len(snapshot[1]) == 50  # Fee is stateless


def test_explore_refutes_a_chain_whose_second_operator_leaks_its_state_into_checkpoints():
    s = weir.load_scenario(EXAMPLE).with_faults(())
    flawed = replace(s, operators=(s.operators[0], weir.ComponentSpec("components:ForgetfulSum")))
    found = weir.explore(flawed, budget_s=600, seed=0, max_runs=40).counterexample
    assert found is not None and found.verdict.invariant == "exactly_once", found
    assert "with a value other than the fault-free run gives" in found.verdict.summary
    assert weir.explore(s, budget_s=600, seed=0, max_runs=40).counterexample is None


class Boom(weir.Operator):
    def on_batch(self, batch, now):
        raise ArithmeticError("boom")


def test_a_chain_member_that_raises_is_named():
    s = weir.load_scenario(EXAMPLE)
    result = weir.run(replace(s, operators=(s.operators[0], weir.ComponentSpec(Boom))), 1)
    assert result.status == "user_code_raised" and result.user_errors[0].startswith("Boom.on_batch at ")
    assert result.user_errors[0].endswith(": ArithmeticError: boom")


@pytest.mark.parametrize("doc, message", [
    ({"operator": {"class": "components:Fee"}, "operators": [{"class": "components:Fee"}]},
     "operators: got [[operators]] tables; accepts either [operator] or [[operators]], not both"),
    ({"operators": [{"window": True}, {"window": True}], "window": {"size": "50ms"}},
     "operators[1]: got a second window step; accepts one window step at most"),
    ({"operators": [{"class": "components:Fee"}, {"window": True}]},
     "operators[1]: got a window step; accepts a [window] table to say what it aggregates"),
    ({"operators": [{"window": "yes"}], "window": {"size": "50ms"}},
     "operators[0]: got {'window': 'yes'}; accepts { window = true } alone"),
    ({"operators": [{"klass": "components:Fee"}]}, "operators[0].klass: got an unknown key (did you mean 'class'?); accepts one of class, params"),
    ({"operators": []}, "operators: got []; accepts [[operators]] tables"),
])
def test_bad_chains_are_one_line_errors(doc, message):
    with pytest.raises(weir.ScenarioError) as e:
        parse_scenario(doc)
    assert str(e.value).startswith(message), str(e.value)


WINDOWED = ROOT / "examples" / "operator_chain_window.toml"


def test_operators_before_a_window_decide_what_it_aggregates_and_window_complete_knows_it():
    from weir.analysis.windowed import chained_values
    run = execute(weir.load_scenario(WINDOWED), 1)
    result = weir.result_of(run)
    assert result.matches and result.verdict("window_complete").held, result.verdict("window_complete").summary
    values = chained_values(run)  # RunningSum over the log, per key in offset order
    first = int(np.flatnonzero(run.source["key"] == run.source["key"][0])[1])  # the key's second record
    assert values[first] == run.source["value"][0] + run.source["value"][first]
    snapshot, _in_flight = run.checkpoints[-1].state[0]
    assert isinstance(snapshot, tuple) and len(snapshot) == 2  # RunningSum's, then the window's


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_leaky_operator_before_a_window_makes_the_windows_wrong_after_a_restore(seed):
    s = weir.load_scenario(WINDOWED)
    flawed = replace(s, operators=(weir.ComponentSpec("components:ForgetfulSum"),))
    verdict = weir.run(flawed, seed).verdict("window_complete")
    assert not verdict.held and "differ from the batch result" in verdict.summary, f"seed {seed}: {verdict.summary}"
    assert weir.run(s, seed).verdict("window_complete").held, f"seed {seed}"


def test_operators_after_a_window_take_its_panes_and_window_complete_judges_them_by_the_fault_free_run():
    s = weir.load_scenario(ROOT / "examples" / "operator_chain_panes.toml")
    assert [spec.cls.__name__ for spec in s.operators] == ["Fee"]
    assert [spec.cls.__name__ for spec in s.operators_after] == ["PaneTotal"]
    run = execute(s, 1)
    result = weir.result_of(run)
    assert result.matches, result.verdict("window_complete").summary
    panes = run.windows
    key0 = [v for k, v in zip(panes["key"].tolist(), panes["value"].tolist()) if k == 0]
    assert key0 == sorted(key0) and len(set(key0)) == len(key0)  # a running total of the key's windows: it grows
    snapshot, _in_flight = run.checkpoints[-1].state[0]
    assert len(snapshot) == 3  # Fee's (None), the window's, PaneTotal's


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_leaky_pane_operator_is_caught_after_a_restore(seed):
    s = weir.load_scenario(ROOT / "examples" / "operator_chain_panes.toml")
    flawed = replace(s, operators_after=(weir.ComponentSpec("components:ForgetfulPaneTotal"),))
    verdict = weir.run(flawed, seed).verdict("window_complete")
    assert not verdict.held and "differ" in verdict.summary, f"seed {seed}: {verdict.summary}"
    assert weir.run(s, seed).verdict("window_complete").held, f"seed {seed}"


class SometimesBrokenPanes(ForgetfulPaneTotal):
    """The leaky pane operator, raising while BROKEN is set: code whose fault-free run can fail where
    the run under test did not (a wall-clock read, run.user_timeout under load)."""

    BROKEN = False

    def on_batch(self, batch, now):
        if SometimesBrokenPanes.BROKEN:
            raise RuntimeError("broken now")
        return super().on_batch(batch, now)


def test_a_reference_run_that_failed_judges_which_windows_fired_but_not_their_values(monkeypatch):
    """With operators after the window, window_complete takes the values from the fault-free run;
    one that stopped on an error in the user's code is no reference (it wrote the windows before
    the error). The verdict still judges which windows fired, and says the values were not judged,
    as exactly_once and matches_reference do."""
    from weir.analysis import reference
    monkeypatch.setattr(reference, "_references", type(reference._references)())
    s = weir.load_scenario(ROOT / "examples" / "operator_chain_panes.toml")
    run = execute(replace(s, operators_after=(weir.ComponentSpec(SometimesBrokenPanes),)), 1)
    wrong = next(iter(weir.check(run, ["window_complete"])))
    assert not wrong.held and "differ from the batch result" in wrong.summary, f"seed 1: {wrong.summary}"
    monkeypatch.setattr(reference, "_references", type(reference._references)())
    monkeypatch.setattr(SometimesBrokenPanes, "BROKEN", True)
    verdict = next(iter(weir.check(run, ["window_complete"])))
    assert verdict.held and verdict.evidence["values_judged"] is False, f"seed 1: {verdict.summary}"
    assert verdict.summary.startswith(f"all {verdict.evidence['closed_windows']} windows fired"), verdict.summary
    assert "values not judged: the fault-free run stopped on an error in your code (SometimesBrokenPanes.on_batch" \
        in verdict.summary and "RuntimeError: broken now" in verdict.summary, verdict.summary
