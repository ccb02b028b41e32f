"""A user's watermark merge across a source's partitions (WatermarkStrategy.merge, issue 12 item 4):
Flink's rule by default, the user's when overridden, and explore telling a flawed merge from Flink's.
Flink's rule: flink-core/src/main/java/org/apache/flink/api/common/eventtime/WatermarkOutputMultiplexer.java
(the combined watermark is the minimum over outputs that are not idle)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import weir
from weir.sim.stream.watermarks import BoundedOutOfOrderness, PartitionWatermarks

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
from components import FastestPartitionWatermarks  # noqa: E402  (the examples' user code)

EXAMPLE = ROOT / "examples" / "watermark_merge.toml"
RATES = {"pause": 1.0, "delay": 1.0, "slow": 1.0, "reorder": 1.0}  # no crashes: the design has no checkpoints


def test_the_default_merge_is_the_minimum_over_active_partitions_and_holds_when_all_are_idle():
    merge = weir.WatermarkStrategy.merge
    assert merge([5, 3, 9], [False, False, False]) == 3
    assert merge([5, 3, 9], [False, True, False]) == 5
    assert merge([5, 3, 9], [True, True, True]) is None
    assert BoundedOutOfOrderness.merge is weir.WatermarkStrategy.merge


def test_a_strategy_s_own_merge_is_used_and_the_source_never_goes_backwards():
    source = PartitionWatermarks(2, FastestPartitionWatermarks, bound=0, params={"extra": 0})
    source.on_event(0, 100, now=0)
    assert source.on_periodic_emit(now=1) == 99  # partition 1 has nothing yet: max ignores it
    source.on_event(1, 50, now=2)
    assert source.on_periodic_emit(now=3) is None  # still 99: a merge cannot move it back


def _with(strategy: str) -> weir.Scenario:
    s = weir.load_scenario(EXAMPLE).with_faults(())
    return replace(s, watermarks=replace(s.watermarks, strategy=strategy))


def test_explore_refutes_merging_by_the_fastest_partition_and_not_flink_s_rule():
    flawed = weir.explore(_with("components:FastestPartitionWatermarks"), budget_s=600, seed=0, rates=RATES, max_runs=40)
    assert flawed.counterexample is not None, f"nothing found in {flawed.runs} runs (search seed 0)"
    assert flawed.counterexample.verdict.invariant in ("window_complete", "no_late_records")
    correct = weir.explore(_with("components:CautiousWatermarks"), budget_s=600, seed=0, rates=RATES, max_runs=40)
    assert correct.counterexample is None, correct.counterexample.verdict
