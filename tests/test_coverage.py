"""Crash-point coverage: the step x node matrix."""

from __future__ import annotations

from weir.faults.coverage import crash_points, step_times
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Checkpointing, Expect
from weir.cli import main

from .helpers import small


def claimed(mode: str, **pipeline):
    from dataclasses import replace
    s = small(mode, records=2000, **pipeline)
    return replace(s, expect=Expect(hold=("no_loss",)))


def test_the_steps_of_an_exactly_once_run_are_found_in_time_order():
    run = execute(small("exactly_once", records=2000, sink="transactional", checkpoint=Checkpointing(interval="20ms")))
    labels = [label for label, _t in step_times(run)]
    assert {"barrier at processor", "pre-commit at sink", "snapshot durable", "transaction committed",
            "offsets committed", "sink write", "sink ack"} <= set(labels)
    times = [t for _label, t in step_times(run)]
    assert times == sorted(times)


def test_exactly_once_holds_at_every_crash_point_and_at_most_once_does_not():
    ok = crash_points(claimed("exactly_once", sink="upsert"))
    assert ok.held and ok.runs == 1 + 2 * len(ok.steps) * len(ok.nodes)
    bad = crash_points(claimed("at_most_once"))
    assert not bad.held
    assert any("no_loss" in broken for broken in bad.broken.values())


def test_the_command_prints_the_matrix(capsys):
    assert main(["crashpoints", "commit_before_ack"]) == 1
    out = capsys.readouterr().out
    assert "poll" in out and "no_loss" in out and "cells broke a claim" in out


def test_other_faults_at_each_point():
    for kind in ("pause", "partition", "delay", "duplicate", "reorder"):
        coverage = crash_points(claimed("exactly_once", sink="upsert"), kind=kind)
        assert coverage.kind == kind and coverage.held, (kind, {k: v for k, v in coverage.broken.items() if v})
