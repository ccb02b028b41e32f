"""The seed's trick question 1 measured (weir.faults.intervals): a short checkpoint interval buys
little replay for a lot of writing, and cannot buy less replay than a snapshot takes to write; a long
one is cheap until a crash, and delays every two-phase-commit row by about half of it."""

from __future__ import annotations

import json

import pytest

import weir
from weir.faults.intervals import checkpoint_intervals, crash_times, plot

SCENARIO = weir.load_scenario("checkpoint_interval")  # 10ms stands for 1 s; 1,500 records/s; 55ms snapshots


@pytest.fixture(scope="module")
def rows():
    return checkpoint_intervals(SCENARIO, ["10ms", "100ms", "600ms"], crashes=2)


def test_a_short_interval_keeps_the_store_busy_and_gets_checkpoints_only_as_fast_as_they_are_written(rows):
    short, medium, long = rows
    assert [r["interval_us"] for r in rows] == [10_000, 100_000, 600_000]
    # asked for every 10ms, a 55ms snapshot completes every 60ms: the store writes nearly all the time
    assert short["store_busy"] > 0.85 and 55_000 <= short["mean_gap_us"] <= 65_000, short
    assert short["completed"] == short["triggered"]  # no timeout: it is overhead, not failure
    assert short["store_busy"] > medium["store_busy"] > long["store_busy"] and long["store_busy"] < 0.12
    assert abs(long["mean_gap_us"] - 600_000) < 1_000


def test_replay_follows_the_checkpoints_you_get_and_latency_half_the_interval(rows):
    short, medium, long = rows
    rate = 1_500 / 1e6  # records per us
    # a crash replays the records since the last completed checkpoint: half a cycle on average, and
    # while a snapshot is still being written, the cycle before it too
    assert long["replayed_per_crash"] == pytest.approx(rate * 600_000 / 2, rel=0.1), long
    assert short["replayed_per_crash"] > rate * 60_000  # more than a cycle: the crashes fall mid-write
    assert short["replayed_per_crash"] > 0.6 * medium["replayed_per_crash"]  # 10x the overhead bought little
    # two-phase commit: a row is visible when the checkpoint after it commits, about half an interval on
    assert long["p50_latency_us"] == pytest.approx(600_000 / 2, rel=0.15), long
    assert short["p50_latency_us"] < medium["p50_latency_us"] < long["p50_latency_us"]
    assert json.loads(json.dumps(rows)) == rows


def test_the_crashes_spread_over_one_checkpoint_cycle_and_need_one():
    calm = weir.execute(SCENARIO.with_settings({"checkpoint.interval": "3s"}), 1, ())
    assert crash_times(calm, 2) == (3_000_000 + 750_000, 3_000_000 + 2_250_000)  # triggers at 3 s and 6 s
    short = weir.execute(SCENARIO.with_settings({"checkpoint.interval": "5s", "workload.records": 3_000}), 1, ())
    with pytest.raises(ValueError, match="needs two: a workload longer than two intervals"):
        crash_times(short, 2)
    with pytest.raises(ValueError, match="need a \\[checkpoint\\] table"):
        checkpoint_intervals(weir.load_scenario("at_least_once_crash"), ["1s"])


def test_the_picture_draws_each_measure_against_the_interval_in_the_time_it_stands_for(rows):
    top, middle, bottom = plot(rows, scale=100)
    assert bottom.get_xlabel() == "checkpoint interval (s, simulated time x 100)"
    assert list(bottom.lines[0].get_xdata()) == [1.0, 10.0, 60.0]
    assert [line.get_label() for line in middle.lines] == ["records processed again after a restore (mean per crash)"]
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert legend == ["checkpoint store busy writing snapshots (% of the run)",
                      "time between completed checkpoints (s)", "the interval asked for"]
    assert list(top.lines[0].get_ydata()) == [r["store_busy"] * 100 for r in rows]
