"""Checkpoint mechanics: min pause, timeout and tolerable failures, write time, incremental snapshots."""

from __future__ import annotations

from dataclasses import replace

import pytest

import weir
from weir.sim.kernel.errors import ScenarioError
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Checkpointing
from weir.sim.kernel.units import parse_rate

from .helpers import small


def kinds(run, *names):
    return [r for r in run.trace.rows() if r["kind"] in names]


def test_write_time_is_fixed_latency_plus_bytes_over_bandwidth():
    cp = Checkpointing(store_write_time="1ms", store_bandwidth="1MB/s", state_entry_bytes=100)
    assert cp.write_time(0) == 1_000
    assert cp.write_time(10_000) == 1_000 + 1_000_000  # 1 MB at 1 MB/s
    assert cp.write_time(1) == 1_000 + 100  # 100 bytes: 100us
    assert Checkpointing(store_write_time=5).write_time(10**9) == 5  # no bandwidth given: infinitely fast


@pytest.mark.parametrize("text, rate", [("500KB/s", 500_000), ("1.5GB/s", 1_500_000_000), (7, 7), ("3 B/s", 3)])
def test_rates(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("bad", ["fast", "0MB/s", 0, -1, "1.5B/s", True])
def test_bad_rates_are_refused_with_the_key(bad):
    with pytest.raises(ScenarioError, match=r"checkpoint.store_bandwidth: got .*; accepts a whole number of bytes per second"):
        Checkpointing(store_bandwidth=bad)


def test_min_pause_spaces_checkpoints():
    def triggers(min_pause):
        scenario = replace(small("exactly_once"), checkpoint=Checkpointing(interval="10ms", min_pause=min_pause))
        return [r["time"] for r in kinds(execute(scenario, 1), "CKPT_TRIGGER")]

    eager, paused = triggers(0), triggers("45ms")
    assert min(b - a for a, b in zip(paused, paused[1:])) >= 45_000
    assert len(eager) > 2 * len(paused)


def slow_store(**checkpoint):
    # 50 keys x 10KB = 500KB per full snapshot at 1MB/s: 0.5s, against a 100ms timeout.
    opts = dict(interval="50ms", timeout="100ms", state_entry_bytes=10_000, store_bandwidth="1MB/s")
    opts.update(checkpoint)
    return replace(small("exactly_once"), checkpoint=Checkpointing(**opts))


def test_a_timed_out_checkpoint_fails_the_job_over_when_none_is_tolerated():
    run = execute(replace(slow_store(), run=replace(small("exactly_once").run, max_time="1s")), 1)
    aborts = kinds(run, "CKPT_ABORT")
    assert aborts and aborts[0]["duration_us"] == 100_000 and aborts[0]["consecutive_failures"] == 1
    fails = kinds(run, "JOB_FAIL")
    assert fails[0]["time"] == aborts[0]["time"] and fails[0]["node"] == "coordinator"
    assert run.restarts >= 2 and run.checkpoints_completed == 0 and run.status == "time_limit"


def test_tolerated_failures_do_not_fail_the_job():
    run = execute(replace(slow_store(tolerable_failures=1000), run=replace(small("exactly_once").run, max_time="1s")), 1)
    assert kinds(run, "CKPT_ABORT") and run.restarts == 0


def test_a_checkpoint_timeout_costs_no_event_unless_it_expires():
    """A checkpoint that completes leaves no timer behind (CheckpointCoordinator arms its timeout
    with Node.unless, which keeps only the node's earliest deadline in simpy's queue): 10 s of
    100ms checkpoints give the same trace whether each times out after 1 s or after an hour, and
    cost about the same events. The deadline armed while its checkpoint was in flight still goes
    off, at most one a timeout: some ten in 10 s. With a timer per checkpoint, each of the
    ninety-odd that ended more than a second before the run did went off, for nothing."""
    base = weir.load_scenario("exactly_once_crash").with_settings({
        "workload.records": 400, "workload.produce_batch": 40, "workload.produce_interval": "1s",  # 10 s
        "run.max_time": "30s"}).with_faults(())
    short, long = (execute(base.with_settings({"checkpoint.timeout": t})) for t in ("1s", "1h"))
    assert short.status == long.status == "drained" and short.checkpoints_completed > 90
    assert short.trace_sha256 == long.trace_sha256
    assert 0 <= short.events - long.events <= 12, (short.events, long.events)


def test_incremental_snapshots_write_only_changed_keys():
    base = small("exactly_once")
    many_keys = replace(base, workload=replace(base.workload, keys=5_000))  # an interval touches only some
    full = execute(replace(many_keys, checkpoint=Checkpointing(interval="50ms", state_entry_bytes=100)), 1)
    inc = execute(replace(many_keys, checkpoint=Checkpointing(interval="50ms", state_entry_bytes=100,
                                                              incremental=True)), 1)
    full_bytes = [r["bytes_written"] for r in kinds(full, "CKPT_COMPLETE")]
    inc_bytes = [r["bytes_written"] for r in kinds(inc, "CKPT_COMPLETE")]
    assert set(full_bytes) == {5_000 * 100}  # every key, every time
    assert len(inc_bytes) > 1 and all(0 < b < 5_000 * 100 / 2 and b % 100 == 0 for b in inc_bytes), inc_bytes
    assert full.sink["value"].tolist() == inc.sink["value"].tolist()  # the same results either way


@pytest.mark.parametrize("name", ["checkpoint_timeout", "checkpoint_incremental"])
def test_checkpoint_scenarios_as_expected(name):
    for seed in range(3):
        r = weir.run(name, seed)
        assert r.matches, f"{name} seed {seed}: {[(v.invariant, v.held, v.summary) for v in r.verdicts]}"


def test_incremental_window_snapshots_write_only_the_windows_changed_since_the_last():
    """A window operator counts the windows it changed since its last snapshot only for incremental
    checkpoints (Job.new_operator); a full snapshot writes every open window whatever changed."""
    windowed = weir.load_scenario("late_data_side_output").with_faults(())
    full = execute(windowed.with_settings({"checkpoint.interval": "20ms", "checkpoint.state_entry_bytes": 100}), 1)
    inc = execute(windowed.with_settings({"checkpoint.interval": "20ms", "checkpoint.state_entry_bytes": 100,
                                          "checkpoint.incremental": True}), 1)
    full_bytes = [r["bytes_written"] for r in kinds(full, "CKPT_COMPLETE")]
    inc_bytes = [r["bytes_written"] for r in kinds(inc, "CKPT_COMPLETE")]
    assert len(full_bytes) == len(inc_bytes) > 3, (full_bytes, inc_bytes)
    assert 0 < sum(inc_bytes) < sum(full_bytes), (inc_bytes, full_bytes)  # counted, and fewer than all
    assert all(b % 100 == 0 for b in inc_bytes)
    assert {k: v.tolist() for k, v in full.windows.items()} == {k: v.tolist() for k, v in inc.windows.items()}
