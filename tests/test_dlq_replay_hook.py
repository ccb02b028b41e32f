"""The DLQ replay job as a component (weir.DeadLetterReplay, issue 12 item 5): weir's own job
subclasses the same base; a user's decides the fix and the order of write and mark, and weir's
search tells the wrong order from the right one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import weir
from weir.faults.coverage import crash_points
from weir.sim.patterns.dlq import FixAndReplay
from weir.sim.scenario.run import execute

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "dlq_replay.toml"


def _with(job: str, faults=()) -> weir.Scenario:
    s = weir.load_scenario(EXAMPLE)
    return replace(s, retry=replace(s.retry, replay_job=job)).with_faults(faults)


def test_weir_s_own_replay_job_is_a_dead_letter_replay():
    assert issubclass(FixAndReplay, weir.DeadLetterReplay) and FixAndReplay.mark_first is False


def test_the_user_s_fix_is_what_lands_in_the_sink_and_the_steps_are_in_the_trace():
    run = execute(weir.load_scenario(EXAMPLE), 1)
    dead = {int(r): int(v) for r, v in zip(run.dlq["record_id"], run.dlq["value"])}
    sink = dict(zip(run.sink["record_id"].tolist(), run.sink["value"].tolist()))
    assert dead and all(sink[r] == v // 2 for r, v in dead.items())  # HalveValues
    kinds = [r["kind"] for r in run.trace.rows() if r["kind"] in ("REPLAY", "REPLAY_MARK")]
    assert kinds and kinds[:2] == ["REPLAY", "REPLAY_MARK"]  # write, then mark
    flawed = execute(_with("dlq_replay:MarkThenWrite"), 1)
    kinds = [r["kind"] for r in flawed.trace.rows() if r["kind"] in ("REPLAY", "REPLAY_MARK")]
    assert kinds[:2] == ["REPLAY_MARK", "REPLAY"]


def test_crashpoints_and_explore_refute_marking_before_writing_and_not_writing_first():
    flawed = crash_points(_with("dlq_replay:MarkThenWrite"))
    assert flawed.broken[("replay batch written", "sink")] == ("no_loss",)
    assert crash_points(_with("dlq_replay:HalveValues")).held
    found = weir.explore(_with("dlq_replay:MarkThenWrite"), budget_s=600, seed=0, max_runs=40).counterexample
    assert found is not None and found.verdict.invariant == "no_loss"
    assert weir.explore(_with("dlq_replay:HalveValues"), budget_s=600, seed=0, max_runs=40).counterexample is None


def test_the_run_waits_for_a_replay_round_to_finish():
    """Found writing this hook: with the mark first, the queue is empty before the last records are
    written, and the run used to end there, calling them lost."""
    result = weir.run(_with("dlq_replay:MarkThenWrite"), 1)
    assert result.status == "drained" and result.verdict("no_loss").held, result.verdict("no_loss").summary
