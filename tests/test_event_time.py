"""Checkers that see event-time bugs (issue 13, item 6): windows judged by when events happened,
negative timestamps, and a source's merge of its partitions' watermarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import weir
from weir.analysis.trace_checks import watermarks_sane
from weir.analysis.windowed import batch_windows, event_time_complete, window_complete
from weir.sim.scenario.model import NodeSpec, Pipeline, Scenario, WatermarkSettings, WindowSettings, Workload
from weir.sim.scenario.run import execute

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_lateness_hides_a_skewed_clock_and_event_time_complete_sees_it():
    """producer-1's clock is 300ms behind; 400ms of allowed lateness takes its records in, into
    the windows their (wrong) timestamps name: window_complete holds, event_time_complete does not."""
    for seed in (1, 2, 3):
        r = weir.run("producer_clock_skew_lateness", seed)
        assert r.matches, f"seed {seed}: {[(v.invariant, v.held, v.summary) for v in r.verdicts]}"
        assert r.verdict("window_complete").held and not r.verdict("event_time_complete").held
        assert r.verdict("event_time_complete").evidence["wrong"] > 0


def test_event_time_complete_holds_when_every_clock_is_right():
    run = execute(weir.load_scenario("late_data_side_output"))
    v = event_time_complete(run)
    assert v.held and "by when the events happened" in v.summary, v.summary


def test_the_true_event_time_is_the_stamp_of_a_correct_clock():
    run = execute(weir.load_scenario("producer_clock_skew"))
    ids = run.source["record_id"]
    skew = run.true_event_time[ids] - run.source["event_time"]
    assert set(np.unique(skew).tolist()) == {0, 300_000}  # producer-1 stamps 300ms in the past


def _ingestion(clock_offset: str, out_of_order: str = "0ms") -> Scenario:
    return Scenario(
        name="ingestion", workload=Workload(records=4000, partitions=2, keys=20, produce_batch=100,
                                            out_of_order=out_of_order),
        pipeline=Pipeline(process_time="10us"), window=WindowSettings(size="20ms"),
        watermarks=WatermarkSettings(strategy="ingestion_time"),
        nodes=(NodeSpec("source", clock_offset=clock_offset),))


def test_a_negative_timestamp_is_a_timestamp():
    """The source's clock is 5s behind: every ingestion stamp is negative. The batch oracle judges
    those records (a stamp before 0 is not "never read"), and the windows match."""
    run = execute(_ingestion("-5s"))
    assert (run.ingested_at[run.source["record_id"]] < 0).all()
    expected = batch_windows(run)
    assert sum(n for _v, n in expected.values()) == 4000
    assert all(start < 0 for _k, start, _e in expected)
    v = window_complete(run)
    assert v.held and v.evidence["closed_windows"] == len(expected), v.summary


def test_ingestion_time_is_not_event_time():
    """Stamping at the source makes windows of arrival, not of occurrence: events that happened
    up to 15ms before they were produced land in later windows."""
    run = execute(_ingestion("0s", out_of_order="15ms"))
    assert window_complete(run).held
    assert not event_time_complete(run).held


@pytest.mark.parametrize("strategy,sane", [("components:CautiousWatermarks", True),
                                           ("components:FastestPartitionWatermarks", False)])
def test_watermarks_sane_checks_the_sources_merge(strategy, sane, tmp_path):
    """Flink merges a source's partitions by the minimum over active ones
    (flink-core/.../api/common/eventtime/WatermarkOutputMultiplexer.java); a merge by the maximum
    runs ahead of the slowest partition, and watermarks_sane says which and when."""
    text = (EXAMPLES / "watermark_merge.toml").read_text().replace("components:CautiousWatermarks", strategy)
    path = EXAMPLES / f"_merge_{tmp_path.name}.toml"  # beside components.py, which it imports
    path.write_text(text)
    try:
        run = execute(weir.load_scenario(str(path)))
    finally:
        path.unlink()
    v = watermarks_sane(run)
    assert v.held is sane, v.summary
    assert v.evidence["source_emissions"] > 10
    if not sane:
        assert v.evidence["above_slowest_partition"] > 0 and "passed the slowest active partition" in v.summary


def test_watermarks_sane_leaves_an_idle_partition_out():
    run = execute(weir.load_scenario("idle_partition_idleness"))
    v = watermarks_sane(run)
    assert v.held and v.evidence["source_emissions"] > 50, v.summary
