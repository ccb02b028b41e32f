"""Record lineage: a record's path through a run, as text and as data."""

from __future__ import annotations

import json

from weir.analysis.checkers import check
from weir.analysis.lineage import first_bad_record, lineage
from weir.sim.scenario.run import execute
from weir.sim.scenario.loader import load_scenario


def test_a_duplicated_record_shows_both_writes_and_the_restart_between():
    run = execute(load_scenario("at_least_once_crash"))
    verdicts = check(run)
    rid = first_bad_record(verdicts)
    dup = next(v for v in verdicts if v.invariant == "no_duplicates")
    assert rid == dup.evidence["first_duplicated_ids"][0]
    path = lineage(run, rid)
    steps = [s.step for s in path.steps]
    assert steps.count("written") == 2 and steps.count("polled") == 2 and path.sink_rows == 2
    assert steps[0] == "produced" and steps[-1] == "committed"
    generations = [s.data["d"] for s in path.steps if s.step == "polled"]
    assert generations == [1, 2]  # read again by the restarted job
    times = [s.time for s in path.steps]
    assert times == sorted(times)
    text = path.text()
    assert text.startswith(f"record {rid}: in partition") and text.count(" written ") == 2
    assert json.loads(json.dumps(path.to_dict()))["record_id"] == rid


def test_a_lost_record_was_committed_but_never_written():
    run = execute(load_scenario("at_most_once_crash"))
    rid = first_bad_record(check(run))
    steps = [s.step for s in lineage(run, rid).steps]
    assert "polled" in steps and "committed" in steps and "written" not in steps


def test_a_checkpointed_record_names_its_checkpoint():
    run = execute(load_scenario("exactly_once_crash"))
    path = lineage(run, 5000)
    checkpointed = [s for s in path.steps if s.step == "checkpointed"]
    assert len(checkpointed) == 1 and "checkpoint" in checkpointed[0].detail and path.sink_rows == 1


def test_a_poison_record_goes_through_retries_to_the_dlq_and_back():
    run = execute(load_scenario("dlq_replay_append"))
    path = lineage(run, 250)  # poison_every = 500: record 250 always fails
    steps = [s.step for s in path.steps]
    assert path.in_dlq and steps.count("write failed") == 3 and "replayed" in steps


def test_an_unknown_record_has_no_path():
    run = execute(load_scenario("exactly_once_crash"))
    path = lineage(run, 10**9)
    assert path.steps == () and path.copies == () and "nowhere in the log" in path.text()


def test_in_a_parallel_job_the_path_follows_the_records_own_part_of_each_batch():
    from .helpers import small
    run = execute(small("at_least_once", parallelism=3, commit_interval="5ms"))
    path = lineage(run, 1999)
    steps = [s.step for s in path.steps]
    assert steps == ["produced", "polled", "exchanged", "processed", "written", "acked", "committed"]
    part = next(s for s in path.steps if s.step == "exchanged").data["d"]  # the size of the record's part
    assert all(s.data["c"] == part for s in path.steps if s.step in ("processed", "written", "acked"))


def test_a_batch_polled_again_with_another_size_is_not_mixed_up_with_the_first():
    """After a restart a batch can start at the same offset with another size: each step belongs to
    the poll before it, whose batch held the record (payments_no_dedup, record 4003, seed 1)."""
    run = execute(load_scenario("payments_no_dedup"))
    path = lineage(run, 4003)
    size = None
    for s in path.steps:
        if s.step == "polled":
            size = s.data["c"]
            assert s.data["b"] <= 1133 < s.data["b"] + size
        elif s.step in ("processed", "written", "acked"):
            assert s.data["c"] == size, s


def test_a_double_charge_names_the_record_of_its_second_charge():
    from weir.analysis.lineage import bad_record
    run = execute(load_scenario("payments_no_dedup"))
    record, verdict = bad_record(check(run), run)
    assert verdict.invariant == "no_double_charge"
    payment = verdict.evidence["first_payment_ids"][0]
    charged = run.charges["record_id"][run.charges["payment_id"] == payment].tolist()
    assert len(charged) >= 2 and record == charged[1]
