"""The idleness trap (issue 13, item 7): a slow partition, an idle timeout shorter than its gaps, and
the partition_slow fault that makes it."""

from __future__ import annotations

import numpy as np
import pytest

import weir
from weir import Fault
from weir.faults.explore import random_schedule
from weir.sim.kernel.errors import ScenarioError
from weir.sim.kernel.rng import RngStreams
from weir.sim.kernel.trace import Kind
from weir.sim.scenario.loader import faults_toml, load_faults
from weir.sim.scenario.model import Scenario, Workload
from weir.sim.scenario.run import execute


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_trap_and_its_remedy(seed):
    trap, patient = weir.run("idle_timeout_trap", seed), weir.run("idle_timeout_patient", seed)
    assert trap.matches and patient.matches, f"seed {seed}"
    assert trap.late_records > 500, f"seed {seed}: {trap.late_records} late"
    assert patient.late_records == 0


def test_a_slow_partition_is_readable_only_in_bursts():
    run = execute(weir.load_scenario("idle_timeout_trap"))
    cols = run.trace.columns
    t = cols["time"]
    reads = np.flatnonzero((cols["kind"] == Kind.POLL) & (cols["a"] == 2) & (cols["c"] > 0) & (t >= 200_000) & (t < 700_000))
    ends = cols["b"][reads] + cols["c"][reads]
    src = run.source
    mine = src["partition"] == 2
    # every offset read by time T was already in the log at the last burst (200ms + k * 100ms) before T
    produced_by = {}
    for tick in range(200_000, 700_000, 100_000):
        produced_by[tick] = int((src["offset"][mine][run.true_event_time[src["record_id"][mine]] <= tick]).max(initial=-1))
    for when, end in zip(t[reads].tolist(), ends.tolist()):
        tick = 200_000 + (when - 200_000) // 100_000 * 100_000
        assert end - 1 <= produced_by[tick] + 1, (when, end, tick)
    gaps = np.diff(t[reads])
    assert (gaps > 30_000).sum() >= 3  # silences between the bursts, longer than the 30ms idle timeout


def test_partition_slow_settings_are_checked():
    with pytest.raises(ScenarioError, match="faults.node: got 'source'"):
        Fault(kind="partition_slow", node="source")
    with pytest.raises(ScenarioError, match="faults.slow_by: got 0"):
        Fault(kind="partition_slow", node="broker", slow_by=0)
    with pytest.raises(ScenarioError, match=r"faults\[0\].partition: got 4"):
        Scenario(workload=Workload(partitions=4), faults=(Fault(kind="partition_slow", node="broker", partition=4),))


def test_partition_slow_round_trips_through_a_faults_file(tmp_path):
    fault = Fault(kind="partition_slow", node="broker", at=1000, down_for=5000, slow_by=2500, partition=3)
    path = tmp_path / "f.toml"
    path.write_text(faults_toml((fault,)))
    assert load_faults(path) == (fault,)
    assert fault.describe() == "t=0.001s partition 3 readable only every 0.002500s for 0.005s"


def test_the_nemesis_draws_slow_partitions():
    rng = RngStreams(7).stream("explore")
    drawn = [f for _ in range(20) for f in random_schedule(rng, ("producer", "broker", "source"), 1_000_000,
                                                             rates={"partition_slow": 1.0}, partitions=4)]
    assert drawn and all(f.kind == "partition_slow" and f.node == "broker" and 0 <= f.partition < 4 for f in drawn)
    assert len({f.partition for f in drawn}) == 4
    assert all(5_000 <= f.slow_by <= 100_000 for f in drawn)


def test_explore_refutes_a_short_idle_timeout_with_slow_partitions():
    """The patient design, with its scripted fault removed and a 30ms idle timeout, has no claim a
    plain run breaks; the nemesis with slow partitions finds the trap."""
    from dataclasses import replace
    patient = weir.load_scenario("idle_timeout_patient")
    short = replace(patient, faults=(), watermarks=replace(patient.watermarks, idle_timeout=30_000))
    assert weir.run(short).matches
    report = weir.explore(short, budget_s=1e9, max_runs=30, rates={"partition_slow": 1.0})
    assert report.counterexample is not None
    assert report.counterexample.verdict.invariant in ("window_complete", "no_late_records")
    assert {f.kind for f in report.counterexample.faults} == {"partition_slow"}
