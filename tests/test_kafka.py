"""Kafka behaviours: the idempotent producer, offset-commit policies."""

from __future__ import annotations

import pytest

import weir
from sim.errors import ScenarioError
from sim.run import execute
from sim.scenario import Checkpointing, Pipeline, Scenario

from .helpers import small

NEW = ("producer_retry_duplicates", "producer_idempotent", "auto_commit_crash")


@pytest.mark.parametrize("name", NEW)
def test_scenarios_as_expected(name):
    for seed in range(4):
        r = weir.run(name, seed)
        assert r.matches, f"{name} seed {seed}: {[(v.invariant, v.held, v.summary) for v in r.verdicts]}"


def test_without_idempotence_the_retried_batch_is_in_the_log_twice():
    dup = execute(weir.load_scenario("producer_retry_duplicates"), 2)
    ids = dup.source["record_id"]
    assert len(ids) == 20_200 and len(set(ids.tolist())) == 20_000
    produces = [r for r in dup.trace.rows() if r["kind"] == "PRODUCE" and r["first_record_id"] == 4_000]
    assert [r["duplicate"] for r in produces] == [0, 0]  # appended both times
    idem = execute(weir.load_scenario("producer_idempotent"), 2)
    produces = [r for r in idem.trace.rows() if r["kind"] == "PRODUCE" and r["first_record_id"] == 4_000]
    assert [r["duplicate"] for r in produces] == [0, 1] and len(idem.source["record_id"]) == 20_000


def commits(run):
    return [r for r in run.trace.rows() if r["kind"] == "COMMIT" and r["accepted"]]


def test_auto_commit_commits_what_was_polled_and_after_ack_what_was_written():
    auto = execute(small("at_least_once", offset_commit="auto", commit_interval="20ms"), 1)
    acked = execute(small("at_least_once", commit_interval="20ms"), 1)

    def first_commit_vs_acks(run):
        first = commits(run)[0]
        acked_end = max((r["first_offset"] + r["count"] for r in run.trace.rows()
                         if r["kind"] == "ACK" and r["partition"] == first["partition"] and r["time"] < first["time"]),
                        default=0)
        return first["offset"], acked_end

    committed, written = first_commit_vs_acks(auto)
    assert committed > written  # auto-commit ran ahead of the sink
    committed, written = first_commit_vs_acks(acked)
    assert committed <= written


def test_commit_policy_defaults_follow_the_mode():
    assert [Pipeline(mode=m).offset_commit for m in ("at_most_once", "at_least_once", "exactly_once")] == [
        "before_processing", "after_ack", "on_checkpoint"]


@pytest.mark.parametrize("build, key", [
    (lambda: Pipeline(mode="exactly_once", offset_commit="auto"), "pipeline.offset_commit"),
    (lambda: Scenario(pipeline=Pipeline(offset_commit="on_checkpoint")), "pipeline.offset_commit"),
    (lambda: Pipeline(offset_commit="sometimes"), "pipeline.offset_commit"),
])
def test_commit_policy_errors(build, key):
    with pytest.raises(ScenarioError) as info:
        build()
    assert info.value.key == key


def test_at_least_once_can_commit_on_checkpoints():
    scenario = small("at_least_once", offset_commit="on_checkpoint", checkpoint=Checkpointing(interval="30ms"))
    run = execute(scenario, 1)
    assert run.status == "drained" and commits(run)
