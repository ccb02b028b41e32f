"""Sagas with compensation: atomic outcomes, reverse-order compensation, idempotent retries."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings, strategies as st

import weir
from weir.analysis.checkers import check, no_double_compensation, saga_atomic
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Fault, SagaSettings
from weir.sim.scenario.loader import load_scenario


def test_steps_run_in_order_and_compensations_in_reverse():
    run = execute(replace(load_scenario("saga_compensation"), faults=()))
    saga = run.saga
    for s in range(len(saga["outcome"])):
        rows = saga["saga"] == s
        actions = list(zip(saga["service"][rows].tolist(), saga["action"][rows].tolist()))
        fails = int(saga["fails_at"][s])
        if fails < 0:
            assert actions == [(0, 1), (1, 1), (2, 1), (3, 1)] and saga["outcome"][s] == 1
        else:  # the steps before the failing one, then their compensations, last first
            before = [(k, 1) for k in range(fails)]
            assert actions == before + [(k, -1) for k in reversed(range(fails))], (s, actions)
            assert saga["outcome"][s] == 0
    assert 0.2 < float(np.mean(saga["fails_at"] >= 0)) < 0.4


def test_saga_scenarios():
    ok, broken = weir.run("saga_compensation"), weir.run("saga_non_idempotent_compensation")
    assert ok.matches and broken.matches
    assert ok.sagas["partial"] == 0 and ok.sagas["committed"] + ok.sagas["compensated"] == 400
    assert broken.sagas["partial"] > 0


def test_non_idempotent_steps_apply_twice_when_resent():
    s = load_scenario("saga_compensation")
    s = replace(s, saga=SagaSettings(idempotent_steps=False))
    verdicts = {v.invariant: v.held for v in check(execute(s))}
    assert not verdicts["saga_atomic"]


@settings(max_examples=8, deadline=None)
@given(st.sampled_from(["orchestrator", "order", "payment", "inventory", "shipping"]), st.integers(0, 100_000),
       st.integers(1, 40_000))
def test_idempotent_sagas_are_atomic_for_any_crash(node, at, down_for):
    s = load_scenario("saga_compensation").with_faults((Fault(node=node, at=at, down_for=down_for),))
    run = execute(s)
    a, d = saga_atomic(run), no_double_compensation(run)
    assert run.status == "drained" and a.held and d.held, f"{node} down at {at}us for {down_for}us, seed {s.seed}: {a.summary}"
