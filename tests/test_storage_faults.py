"""Checkpoint store faults: refused writes, slow writes, torn writes caught by their checksum."""

from __future__ import annotations

from dataclasses import replace

import pytest

from weir.analysis.checkers import check
from weir.sim.stream.checkpoint import Checkpoint
from weir.sim.kernel.errors import ScenarioError
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Fault
from weir.sim.scenario.loader import load_scenario


def exactly_once(faults, sink: str = "upsert"):
    s = load_scenario("exactly_once_crash")
    s = replace(s, pipeline=replace(s.pipeline, sink=sink), faults=tuple(faults))
    run = execute(s)
    return run, {v.invariant: v.held for v in check(run)}


def test_a_torn_checkpoint_fails_its_checksum():
    cp = Checkpoint(3, (10, 20), None, 5, 100)
    assert cp.intact and not cp.torn().intact and not cp.torn().torn().intact


def test_a_refused_write_fails_the_checkpoint():
    run, v = exactly_once([Fault(kind="store_fail", node="coordinator", at="150ms", down_for="120ms")])
    assert run.checkpoint_stats["write_failures"] >= 1 and not v["checkpoints_succeed"]
    assert v["exactly_once"] and v["drained"]  # the job failed over and recovered from an older one


def test_a_slow_store_makes_checkpoints_longer():
    fast, _ = exactly_once([])
    slow, v = exactly_once([Fault(kind="store_slow", node="coordinator", at=0, down_for="10s", slow_by="30ms")])
    assert slow.checkpoint_stats["max_duration_us"] >= fast.checkpoint_stats["max_duration_us"] + 30_000
    assert v["exactly_once"]


def test_a_restore_skips_a_torn_checkpoint_and_stays_exactly_once_with_an_upsert():
    torn = Fault(kind="store_torn", node="coordinator", at="300ms", down_for="30ms")  # checkpoint 3, at ~321ms
    run, v = exactly_once([torn, Fault(node="processor", at="350ms", down_for="100ms")])
    assert run.checkpoint_stats["torn_skipped"] >= 1
    assert any(r["kind"] == "CKPT_TORN" for r in run.trace.rows())
    assert v["exactly_once"] and v["drained"]


def test_store_faults_belong_to_the_coordinator():
    with pytest.raises(ScenarioError) as e:
        Fault(kind="store_torn", node="sink")
    assert e.value.key == "faults.node"


def test_torn_write_scenarios():
    import weir
    unchecked, verified = weir.run("checkpoint_torn_write"), weir.run("checkpoint_torn_verified")
    assert unchecked.matches and verified.matches
    assert unchecked.duplicated > 0 and verified.duplicated == 0
