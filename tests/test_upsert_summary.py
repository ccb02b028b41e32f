"""An upsert sink's overwrites, told apart (issue 18, item 2): a record written again is a replay
the upsert absorbs; a distinct record whose dedup key another shares is merged into that record's
row, which loses its own. The summary names which, with the dedup key and an example pair."""

from __future__ import annotations

from dataclasses import replace


import weir
from weir.analysis.upsert import merged_pair
from weir.cli import main
from weir.sim.patterns.sinks import DAY_US
from weir.sim.scenario.run import execute

MERGES = """
name = "merges_every_day"
[workload]
records = 400
keys = 10
[pipeline]
mode = "exactly_once"
dedup_key = ["event_date"]
[checkpoint]
interval = "10ms"
[expect]
hold = ["exactly_once"]
"""


def test_replays_of_the_same_records_are_called_replays_and_nothing_is_merged(capsys):
    result = weir.run("exactly_once_crash")
    up = result.upsert
    assert up["dedup_key"] == ["record_id"] and up["merged"] == 0 and up["example"] is None
    assert up["replays"] == result.sink_writes - result.sink_rows > 0  # keyed by record: every rewrite is a replay
    assert up["records"] == result.sink_rows == result.produced
    assert main(["run", "exactly_once_crash"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {up['replays']} rows again for records it already had: replays it absorbed (dedup key record_id)" in out
    assert "merged" not in out


def test_distinct_records_merged_by_a_shared_key_are_named_as_merges_with_the_key_and_a_pair(tmp_path, capsys):
    path = tmp_path / "merges.toml"
    path.write_text(MERGES)
    result = weir.run(str(path))
    up = result.upsert
    assert (up["records"], up["rows"], up["merged"], up["replays"]) == (400, 1, 399, 0)
    finished = execute(weir.load_scenario(str(path)))
    kept, gone = up["example"]
    src = finished.source
    day = {int(i): int(t) // DAY_US for i, t in zip(src["record_id"], src["event_time"])}
    assert day[kept] == day[gone] and kept != gone  # the pair shares the dedup key
    assert finished.sink["record_id"].tolist() == [kept] and gone == 0  # the row holds the first; the lowest id merged
    loss = result.verdict("no_loss")
    assert not loss.held and "merged 399 distinct records" in loss.summary and "(event_date)" in loss.summary
    assert loss.evidence["merged"] == 399 and loss.evidence["dedup_key"] == ["event_date"]
    assert main(["run", str(path)]) == 1
    out = capsys.readouterr().out
    assert "merged 399 distinct records into other records' rows: its dedup key (event_date) is not unique" in out
    assert "replays it absorbed" not in out  # nothing was written twice


def test_replays_and_merges_in_one_run_are_counted_apart():
    """Keyed on the record's key alone, with a crash that replays: both at once."""
    scenario = replace(weir.load_scenario("exactly_once_crash"),
                       pipeline=replace(weir.load_scenario("exactly_once_crash").pipeline, dedup_key=("key",)))
    finished = execute(scenario)
    up = weir.result_of(finished).upsert
    keys = finished.scenario.workload.keys
    assert up["rows"] == keys and up["records"] == finished.scenario.workload.records
    assert up["merged"] == up["records"] - keys and up["replays"] == finished.sink_writes - up["records"] > 0
    kept, gone = up["example"]
    key_of = dict(zip(finished.source["record_id"].tolist(), finished.source["key"].tolist()))
    assert key_of[kept] == key_of[gone] and kept in finished.sink["record_id"].tolist()


def test_no_pair_is_named_for_a_key_the_log_does_not_hold():
    finished = execute(replace(weir.load_scenario("exactly_once_crash"), faults=()))
    assert merged_pair(finished, ["written_at"]) is None
    assert merged_pair(finished, ["record_id"]) is None  # unique: nothing shares it
