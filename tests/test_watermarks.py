"""Watermark generators and the per-partition merge with idleness."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from weir.sim.stream.watermarks import BoundedOutOfOrderness, IngestionTime, PartitionWatermarks, Punctuated
from weir.sim.stream.windows import MIN_TIME


def test_bounded_out_of_orderness_is_max_minus_bound_minus_one():
    g = BoundedOutOfOrderness(10)
    assert g.current() == MIN_TIME
    for ts in (100, 50, 120, 119):
        g.on_event(ts)
    assert g.current() == 120 - 10 - 1


def test_punctuated_moves_only_on_markers():
    g = Punctuated()
    g.on_event(500)
    assert g.current() == MIN_TIME
    g.on_event(300, marker=True)
    g.on_event(200, marker=True)
    assert g.current() == 300


def test_ingestion_time_trails_the_last_reading_by_one():
    g = IngestionTime()
    g.on_event(1_000)
    assert g.current() == 999


def test_merged_watermark_is_the_minimum_over_partitions():
    w = PartitionWatermarks(2, bound=0)
    w.on_event(0, 100, now=0)
    assert w.on_periodic_emit(now=10) is None  # partition 1 has seen nothing: the merge is stuck at MIN
    w.on_event(1, 40, now=20)
    assert w.on_periodic_emit(now=30) == 39
    w.on_event(1, 500, now=40)
    assert w.on_periodic_emit(now=50) == 99


def test_an_empty_partition_stalls_the_watermark_until_idleness_excludes_it():
    w = PartitionWatermarks(2, bound=0, idle_timeout=1_000)
    w.on_event(0, 5_000, now=100)
    assert w.on_periodic_emit(now=999) is None  # partition 1 silent for 999us: not idle yet
    assert w.on_periodic_emit(now=1_000) == 4_999  # now it is: partition 0 alone decides
    assert w.idle == [False, True]


def test_idle_no_earlier_than_the_timeout_after_the_last_event_and_active_again_on_an_event():
    w = PartitionWatermarks(2, bound=0, idle_timeout=1_000)
    w.on_event(0, 10, now=0)
    w.on_event(1, 20, now=500)
    assert w.on_periodic_emit(now=1_200) == 19 and w.idle == [True, False]  # partition 0: 1200us since its event
    w.on_event(0, 30, now=1_300)
    assert w.idle == [False, False]
    assert w.on_periodic_emit(now=1_400) is None  # min(29, 19) = 19: not forward
    assert w.on_periodic_emit(now=1_500) == 29  # partition 1 idle since 1500: 500 + 1000


def test_all_idle_holds_rather_than_jumping_to_infinity():
    w = PartitionWatermarks(2, bound=0, idle_timeout=100)
    w.on_event(0, 10, now=0)
    w.on_event(1, 10, now=0)
    assert w.on_periodic_emit(now=50) == 9
    assert w.on_periodic_emit(now=500) is None
    assert w.emitted == 9 and w.idle == [True, True]


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10_000), st.integers(0, 500)), max_size=80),
       st.integers(0, 1_000), st.none() | st.integers(1, 2_000))
def test_the_merged_watermark_never_moves_backwards(events, bound, idle_timeout):
    w = PartitionWatermarks(3, bound=bound, idle_timeout=idle_timeout)
    now, seen = 0, [MIN_TIME]
    for p, ts, gap in events:
        now += gap
        w.on_event(p, ts, now)
        out = w.on_periodic_emit(now)
        if out is not None:
            assert out > seen[-1]
            seen.append(out)
        assert w.emitted == seen[-1]


# ---- punctuated and ingestion-time watermarks in a pipeline ------------------------------------
def _windowed(strategy: str, **workload):
    from weir.sim.scenario.model import Pipeline, Scenario, WatermarkSettings, WindowSettings, Workload
    return Scenario(name=strategy, workload=Workload(records=10000, **workload),
                    pipeline=Pipeline(process_time="10us"), window=WindowSettings(size="50ms"),
                    watermarks=WatermarkSettings(strategy=strategy, bound="5ms"))


def test_punctuated_watermarks_come_only_from_marker_records():
    import numpy as np

    from weir.analysis.windowed import window_complete
    from weir.sim.scenario.run import execute
    from weir.sim.kafka.producer import marker_mask
    run = execute(_windowed("punctuated", out_of_order="5ms", marker_every=50))
    src = run.source
    marker_times = set(src["event_time"][marker_mask(src["record_id"], 50)].tolist())
    emitted = [r["ref1"] for r in run.trace.rows() if r["kind"] == "SEND" and r["message"] == "WATERMARK"]
    assert emitted[-1] == 2**63 - 1  # the end of input (a bounded source), after every marker's
    emitted = emitted[:-1]
    assert len(emitted) >= 10
    assert set(emitted) <= marker_times, f"seed {run.seed}: a watermark that no marker carried"
    assert np.all(np.diff(emitted) > 0)
    assert window_complete(run).held and run.late_dropped == 0


def test_punctuated_needs_marker_records():
    import pytest

    from weir.sim.kernel.errors import ScenarioError
    with pytest.raises(ScenarioError) as e:
        _windowed("punctuated")
    assert e.value.key == "workload.marker_every"


def test_ingestion_time_turns_no_record_late():
    """Records far out of order by event time are in order by ingestion time: none is late, and the
    windows are those of the times the source stamped."""
    from weir.analysis.checkers import check
    from weir.sim.scenario.run import execute
    disorder = dict(out_of_order="50ms", late_fraction=0.05, late_by="300ms")
    by_event_time = {v.invariant: v.held for v in check(execute(_windowed("bounded_out_of_orderness", **disorder)))}
    run = execute(_windowed("ingestion_time", **disorder))
    by_ingestion = {v.invariant: v.held for v in check(run)}
    assert by_event_time["no_late_records"] is False
    assert {"window_complete", "no_late_records", "drained"} <= set(by_ingestion)
    # every claim holds but one: the windows are of ingestion, not of when the events happened
    assert [name for name, held in by_ingestion.items() if not held] == ["event_time_complete"]
    assert (run.ingested_at >= 0).all()
