"""The public hypothesis strategies, and scenarios as property tests."""

from __future__ import annotations

import pytest

import weir
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
    with pytest.raises(AssertionError, match="no_loss") as failed:
        broken()
    message = str(failed.value)
    assert "\nthe schedule:\n  t=" in message and " crash " in message  # the timeline of the shrunk schedule
    replay = message.split("replay: ")[1].splitlines()[0]
    path = replay.split("weir.load_faults(")[1].rstrip(")").strip("'")
    faults = weir.load_faults(path)  # written for the final example, and it replays the failure
    seed = int(message.split(" seed ")[1].split(":")[0])
    assert not weir.run(small, seed=seed, faults=faults).verdict("no_loss").held


def test_a_property_test_runs_nothing_at_collection_and_names_the_file_s_replay(monkeypatch):
    import weir.sim.scenario.run as run_module
    calls = []
    monkeypatch.setattr(run_module, "execute", lambda *a, **k: calls.append(a) or None)
    test = property_test("commit_before_ack", max_examples=2)
    assert calls == [] and test.__name__ == "test_commit_before_ack_claims_hold_under_crash"


def test_a_fault_shows_only_what_its_kind_uses_in_readable_units():
    crash = weir.Fault(kind="crash", node="source", at=2301, down_for=1)
    assert repr(crash) == "Fault(kind='crash', node='source', at='2.301ms', down_for='1us')"
    link = weir.Fault(kind="loss", node="sink", at=5_000_000, down_for=350_000, rate=0.25, peers=("broker",))
    assert repr(link) == "Fault(kind='loss', node='sink', at='5s', down_for='350ms', peers=('broker',), rate=0.25)"
    step = weir.Fault(kind="clock_step", node="producer", at=0, by=-5000)
    assert repr(step) == "Fault(kind='clock_step', node='producer', at='0us', by='-5ms')"
    for made in (crash, link, step):
        assert eval(repr(made), {"Fault": weir.Fault}) == made  # valid Python for the same fault
