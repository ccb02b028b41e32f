"""A user's consumer policy (weir.ConsumerPolicy, issue 12 item 4): where partitions resume after a
restart and what is committed when. weir's own offset_commit policies subclass the same base."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import weir
from weir.sim.scenario.pipeline import OFFSET_COMMITS
from weir.sim.stream.consumer import POLICIES

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "consumer_policy.toml"


def _with(policy: str, faults=()) -> weir.Scenario:
    s = weir.load_scenario(EXAMPLE)
    return replace(s, pipeline=replace(s.pipeline, consumer=policy)).with_faults(faults)


def test_every_offset_commit_setting_is_a_consumer_policy():
    assert set(POLICIES) == set(OFFSET_COMMITS)
    assert all(issubclass(cls, weir.ConsumerPolicy) for cls in POLICIES.values())


def test_a_user_policy_that_resumes_from_the_committed_offsets_is_refuted_and_the_checkpoint_s_is_not():
    flawed = weir.explore(_with("consumer_policy:ResumeFromCommitted"), budget_s=600, seed=0, max_runs=80)
    assert flawed.counterexample is not None, f"nothing found in {flawed.runs} runs (search seed 0)"
    assert flawed.counterexample.verdict.invariant in ("exactly_once", "no_duplicates")
    correct = weir.explore(_with("consumer_policy:CheckpointedOffsets"), budget_s=600, seed=0, max_runs=80)
    assert correct.counterexample is None, correct.counterexample.verdict


class CommitNothing(weir.ConsumerPolicy):
    """Commits nothing ever: a restart without checkpoints starts from the beginning again."""


def test_a_policy_that_never_commits_replays_everything_after_a_restart():
    scenario = weir.Scenario(workload=weir.Workload(records=3000), pipeline=weir.Pipeline(consumer=CommitNothing),
                             faults=(weir.Fault(node="processor", at="150ms", down_for="20ms"),))
    run = weir.execute(scenario, 1)
    assert run.committed == (0, 0, 0, 0)
    result = weir.result_of(run)
    assert result.verdict("no_loss").held and result.duplicated > 0  # all read again, from offset 0


def test_a_bad_consumer_policy_is_one_line_naming_the_key():
    with pytest.raises(weir.ScenarioError, match="pipeline.consumer: got 'nowhere:Nothing'"):
        weir.Pipeline(consumer="nowhere:Nothing")
