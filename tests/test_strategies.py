"""The public hypothesis strategies, and scenarios as property tests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from weir.faults.strategies import fault, property_test, schedules, workloads
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import FAULT_KINDS, Scenario


@settings(max_examples=60, deadline=None)
@given(fault(FAULT_KINDS, ("producer", "broker", "source", "processor", "sink", "coordinator")))
def test_every_kind_draws_a_valid_fault(f):
    assert f.kind in FAULT_KINDS and Scenario(faults=(f,)).faults == (f,)


@settings(max_examples=30, deadline=None)
@given(schedules(("crash", "partition", "pause"), max_size=4))
def test_schedules_are_in_time_order(faults):
    assert [f.at for f in faults] == sorted(f.at for f in faults)


@settings(max_examples=5, deadline=None)
@given(workloads(max_records=500))
def test_any_workload_runs_to_completion(workload):
    run = execute(Scenario(workload=workload))
    assert run.status == "drained", f"{workload}, seed {run.seed}"


test_exactly_once_under_crashes_and_partitions = property_test(
    "exactly_once_crash", kinds=("crash", "partition", "pause"), max_examples=6)


def test_a_property_test_fails_for_a_broken_design():
    from dataclasses import replace

    from weir.sim.scenario.loader import load_scenario
    small = load_scenario("commit_before_ack")
    small = replace(small, workload=replace(small.workload, records=400))
    broken = property_test(small, kinds=("crash",), max_examples=30, derandomize=True)  # the same search every time
    with pytest.raises(AssertionError, match="no_loss"):
        broken()
