"""Each checker on hand-made runs that violate it and runs that hold."""

from __future__ import annotations

import pytest

from weir.analysis.checkers import INVARIANTS, check, drained, exactly_once, no_duplicates, no_loss

from .helpers import hand_run

SOURCE = list(range(10))


def test_no_loss_holds_when_every_record_arrived_even_twice():
    v = no_loss(hand_run(SOURCE, SOURCE + [3]))
    assert v.held and v.evidence["lost"] == 0


def test_no_loss_names_the_lost_records():
    v = no_loss(hand_run(SOURCE, [0, 1, 2, 4, 5, 6, 8, 9]))
    assert not v.held
    assert v.evidence == {"produced": 10, "lost": 2, "first_lost_ids": [3, 7], "judged": True, "unprocessed": 0}
    assert "2 of 10 records never reached the sink" in v.summary


def test_no_loss_with_an_empty_sink():
    v = no_loss(hand_run(SOURCE, []))
    assert not v.held and v.evidence["lost"] == 10 and v.evidence["first_lost_ids"] == [0, 1, 2, 3, 4]


def test_no_duplicates_counts_records_and_extra_rows():
    v = no_duplicates(hand_run(SOURCE, SOURCE + [4, 4, 9]))
    assert not v.held
    assert v.evidence == {"sink_rows": 13, "duplicated": 2, "extra_rows": 3, "first_duplicated_ids": [4, 9]}


def test_no_duplicates_holds_on_a_lossy_sink():
    assert no_duplicates(hand_run(SOURCE, [1, 2])).held


def test_exactly_once_holds_only_for_one_row_per_record():
    assert exactly_once(hand_run(SOURCE, list(reversed(SOURCE)))).held
    lossy = exactly_once(hand_run(SOURCE, SOURCE[1:]))
    dup = exactly_once(hand_run(SOURCE, SOURCE + [0]))
    phantom = exactly_once(hand_run(SOURCE, SOURCE + [42]))
    assert not lossy.held and lossy.evidence["lost"] == 1 and lossy.evidence["first_lost_ids"] == [0]
    assert not dup.held and dup.evidence["duplicated"] == 1
    assert not phantom.held and phantom.evidence["phantom"] == 1 and phantom.evidence["first_phantom_ids"] == [42]


def test_exactly_once_reports_loss_and_duplicates_together():
    v = exactly_once(hand_run(SOURCE, [0, 0, 1, 2, 3, 4, 5, 6, 7, 8]))
    assert not v.held
    assert (v.evidence["lost"], v.evidence["duplicated"]) == (1, 1)
    assert "1 lost (first [9])" in v.summary and "1 duplicated (first [0])" in v.summary


@pytest.mark.parametrize("status, held", [("drained", True), ("time_limit", False), ("event_limit", False),
                                          ("stalled", False)])
def test_drained_reads_how_the_run_ended(status, held):
    v = drained(hand_run(SOURCE, SOURCE, status=status))
    assert v.held is held
    assert v.evidence == ({"status": status} if held else {"status": status, "unprocessed": 0})


def test_check_runs_all_or_the_named_ones_in_a_fixed_order():
    run = hand_run(SOURCE, SOURCE)  # no scenario: a record pipeline
    assert [v.invariant for v in check(run)] == ["no_loss", "no_duplicates", "exactly_once", "drained"]
    assert set(INVARIANTS) > {"no_loss", "window_complete", "no_late_records", "drained"}
    assert [v.invariant for v in check(run, ["exactly_once", "no_loss"])] == ["no_loss", "exactly_once"]
    with pytest.raises(ValueError, match="unknown invariant 'nope'"):
        check(run, ["nope"])
    assert [v.invariant for v in check(run, "no_loss")] == ["no_loss"]  # one name alone, not its letters
    for names, shown in (([[]], r"\[\]"), (["no_loss", 3], "3"), ([{}], r"\{\}")):  # (not a TypeError of set or sort)
        with pytest.raises(ValueError, match=rf"^unknown invariant {shown}; known: no_user_errors, "):
            check(run, names)


def test_evidence_is_capped_at_a_few_ids():
    v = no_loss(hand_run(list(range(1000)), []))
    assert v.evidence["first_lost_ids"] == [0, 1, 2, 3, 4]
