"""matches_reference: values judged against the same workload run without faults."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

import weir
from weir.analysis import oracles
from weir.analysis.lineage import first_bad_record
from weir.sim.scenario.components import ComponentSpec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from components import KeyCounter  # noqa: E402  (the examples' user operator)


class DoubleCountingRestore(KeyCounter):
    """A user operator with a state bug: a restore counts every key's records twice from then on."""

    def restore(self, snapshot):
        self.counts = {key: 2 * n for key, n in snapshot.items()}


def _with(operator, records: int = 8000) -> weir.Scenario:
    base = weir.load_scenario("exactly_once_crash")
    return replace(base, operator=ComponentSpec(operator, {"scale": 1}),
                   workload=replace(base.workload, records=records),
                   faults=(weir.Fault(kind="crash", node="processor", at="150ms", down_for="20ms"),))  # after checkpoint 1


def _verdict(run, name):
    return next(v for v in weir.check(run, [name]))


def test_a_restore_that_inflates_state_fails_exactly_once_and_matches_reference():
    run = weir.execute(_with(DoubleCountingRestore), 1)
    once = _verdict(run, "exactly_once")
    assert not once.held and once.evidence["lost"] == once.evidence["duplicated"] == 0, \
        "the ids are all there, once each, with wrong values (seed 1)"
    verdict = _verdict(run, "matches_reference")
    assert not verdict.held, f"seed 1: {verdict.summary}"
    first = verdict.evidence["first_wrong"][0]
    assert first["got"] > first["expected"], f"seed 1: {first}"  # counted twice: too high
    assert f"record {first['record_id']}, key {first['key']}: got {first['got']}, expected {first['expected']}" \
        in verdict.summary
    assert first_bad_record([verdict]) == first["record_id"]  # lineage, reports and diagrams follow it


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_same_operator_with_a_correct_restore_matches(seed):
    run = weir.execute(_with(KeyCounter), seed)
    verdict = _verdict(run, "matches_reference")
    assert verdict.held, f"seed {seed}: {verdict.summary}"
    assert verdict.evidence["wrong_rows"] == 0 and verdict.evidence["rows"] >= 8000


@pytest.mark.parametrize("name", ["exactly_once_crash", "kafka_to_delta", "late_data_side_output"])
def test_built_in_exactly_once_designs_match_their_reference(name):
    run = weir.execute(weir.load_scenario(name))
    verdict = _verdict(run, "matches_reference")
    assert verdict.held, f"{name} seed {run.seed}: {verdict.summary}"


def test_losing_state_in_a_crash_shows_as_wrong_values():
    run = weir.execute(weir.load_scenario("at_least_once_crash"))
    verdict = _verdict(run, "matches_reference")
    assert not verdict.held and verdict.evidence["wrong_records"] > 0, f"seed {run.seed}: {verdict.summary}"


def test_windowed_results_are_compared_per_key_and_window(monkeypatch):
    run = weir.execute(weir.load_scenario("late_data_side_output"))
    reference = oracles.reference_run(run)
    panes = dict(run.windows)
    panes["value"] = panes["value"].copy()
    panes["value"][0] += 7  # one window's result off by 7
    doctored = replace(run, windows=panes)
    verdict = _verdict(doctored, "matches_reference")
    assert not verdict.held and verdict.evidence["wrong"] == 1, verdict.summary
    key, start, end, expected, got = verdict.evidence["first_wrong"][0]
    assert (key, start) == (int(panes["key"][0]), int(panes["window_start"][0])) and got == expected + 7
    assert reference is oracles.reference_run(run)  # kept: not run again


def test_it_is_opt_in_and_a_scenario_can_state_it():
    plain = weir.load_scenario("exactly_once_crash")
    assert "matches_reference" not in [v.invariant for v in weir.check(weir.execute(plain))]
    stated = weir.load_scenario("consumer_rebalance_upsert")
    assert "matches_reference" in stated.expect.violate
    result = weir.run(stated)
    assert result.matches and not result.verdict("matches_reference").held
    assert result.verdict("no_duplicates").held and not result.verdict("exactly_once").held  # right ids, wrong values


def test_a_scenario_without_values_cannot_state_it():
    payments = weir.load_scenario("payments_idempotent")  # its sink holds charges, not values per record
    with pytest.raises(weir.ScenarioError, match="expect.hold: got 'matches_reference'"):
        replace(payments, expect=weir.Expect(hold=("matches_reference",)))


class SometimesBroken(KeyCounter):
    """A user operator that raises while BROKEN is set: code whose fault-free run can fail where the
    run under test did not (one that reads the wall clock, say, or past run.user_timeout)."""

    BROKEN = False

    def on_batch(self, batch, now):
        if SometimesBroken.BROKEN:
            raise RuntimeError("broken now")
        return super().on_batch(batch, now)


def test_a_reference_run_that_failed_in_user_code_judges_no_value(monkeypatch):
    """exactly_once and matches_reference take their values from the fault-free run; one that
    stopped on an error in the user's code is no reference. Both say so instead of judging the
    values against what it wrote before it failed (exactly_once raised KeyError where that run's
    sink had no value column)."""
    from weir.analysis import reference
    monkeypatch.setattr(reference, "_references", type(reference._references)())
    run = weir.execute(_with(SometimesBroken, records=3000), 3)
    monkeypatch.setattr(SometimesBroken, "BROKEN", True)
    once, matches = (_verdict(run, name) for name in ("exactly_once", "matches_reference"))
    assert once.held and once.evidence["values_judged_by"] is None, once.summary
    assert "with the value" not in once.summary
    assert matches.held and matches.evidence == {"judged": False}
    assert matches.summary.startswith("not judged: the fault-free run stopped on an error in your code "
                                      "(SometimesBroken.on_batch at "), matches.summary
    assert "RuntimeError: broken now" in matches.summary


def test_the_reference_is_run_once_per_scenario_and_seed(monkeypatch):
    from weir.analysis import reference
    calls = []
    real = reference.execute
    monkeypatch.setattr(reference, "execute", lambda *a: calls.append(a[1]) or real(*a))
    monkeypatch.setattr(reference, "_references", type(reference._references)())
    scenario = _with(KeyCounter, records=3000)
    for fault_at in ("130ms", "140ms", "150ms"):
        faulted = replace(scenario, faults=(weir.Fault(kind="crash", node="processor", at=fault_at, down_for="10ms"),))
        _verdict(weir.execute(faulted, 5), "matches_reference")
    assert calls == [5]
