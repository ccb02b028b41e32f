"""Trace checkers against hand-made traces that violate them in each way they classify, and hold."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from weir.analysis.checkers import check
from weir.analysis.trace_checks import checkpoint_atomic, commits_after_ack, late_accounted, watermarks_sane
from weir.sim.scenario.run import execute
from weir.sim.scenario.loader import load_scenario
from weir.sim.kernel.trace import Kind, Msg, Trace

NODES = ("producer", "broker", "source", "processor", "sink", "coordinator")


def traced(events, source=None, **extra) -> SimpleNamespace:
    """A run whose trace is `events`: (time, kind, node name, a, b, c, d)."""
    clock = SimpleNamespace(_now=0)
    trace = Trace(NODES, clock)
    for time, kind, node, *fields in events:
        clock._now = time
        trace.add(kind, NODES.index(node), *fields)
    source = source or {"record_id": np.arange(0), "partition": np.arange(0), "offset": np.arange(0)}
    return SimpleNamespace(trace=trace.freeze(), source=source, **extra)


# ---- commits_after_ack ----------------------------------------------------------------------------
def test_a_commit_at_or_behind_the_acknowledged_prefix_holds():
    run = traced([(1, Kind.ACK, "source", 0, 0, 100, 1), (2, Kind.ACK, "source", 0, 200, 100, 1),
                  (3, Kind.COMMIT, "broker", 0, 100, 1, 1),  # 0..99 acknowledged; 200..299 beyond a gap
                  (4, Kind.ACK, "source", 0, 100, 100, 1), (5, Kind.COMMIT, "broker", 0, 300, 1, 1)])
    v = commits_after_ack(run)
    assert v.held and v.evidence["commits"] == 2


def test_a_commit_past_a_gap_in_the_acknowledgements_is_ahead_of_the_sink():
    run = traced([(1, Kind.ACK, "source", 0, 0, 100, 1), (2, Kind.ACK, "source", 0, 200, 100, 1),
                  (3, Kind.COMMIT, "broker", 0, 300, 1, 1),  # 100..199 not acknowledged yet
                  (4, Kind.COMMIT, "broker", 1, 50, 1, 0)])  # a refused commit does not count
    v = commits_after_ack(run)
    assert not v.held
    assert v.evidence["first"] == [{"partition": 0, "committed": 300, "acknowledged_below": 100,
                                    "unacknowledged": 200, "time_us": 3}]
    assert "partition 0 committed 300" in v.summary


def test_aborted_records_need_no_acknowledgement():
    source = {"record_id": np.arange(6), "partition": np.zeros(6, dtype=np.int64), "offset": np.arange(6),
              "state": np.array([0, 2, 2, 0, 0, 0])}
    run = traced([(1, Kind.ACK, "source", 0, 0, 2, 1),  # records at offsets 0 and 3: the batch spans 0..3
                  (2, Kind.COMMIT, "broker", 0, 4, 1, 1)], source=source)
    assert commits_after_ack(run).held


def test_a_read_uncommitted_poll_counts_the_aborted_records_it_read():
    """A read_committed poll of 2 records from offset 0 skips the aborted 1 and 2 (it ends at 4); a
    read_uncommitted one reads them (it ends at 2). Counting them as skipped moved the acknowledged
    prefix past records nobody acknowledged (a commit ahead of the sink held), or past the end of
    the partition's records (IndexError)."""
    source = {"record_id": np.arange(6), "partition": np.zeros(6, dtype=np.int64), "offset": np.arange(6),
              "state": np.array([0, 2, 2, 0, 0, 0])}
    events = [(1, Kind.POLL, "source", 0, 0, 2, 1), (2, Kind.ACK, "source", 0, 0, 2, 1), (3, Kind.COMMIT, "broker", 0, 4, 1, 1)]
    isolation = {name: SimpleNamespace(pipeline=SimpleNamespace(isolation=name)) for name in ("read_committed", "read_uncommitted")}
    assert commits_after_ack(traced(events, source=source, scenario=isolation["read_committed"])).held
    v = commits_after_ack(traced(events, source=source, scenario=isolation["read_uncommitted"]))
    assert not v.held and v.evidence["first"][0]["acknowledged_below"] == 2
    rest = events[:2] + [(3, Kind.POLL, "source", 0, 2, 4, 1), (4, Kind.ACK, "source", 0, 2, 4, 1),
                         (5, Kind.COMMIT, "broker", 0, 6, 1, 1)]  # offsets 2..5: four records, two not aborted
    assert commits_after_ack(traced(rest, source=source, scenario=isolation["read_uncommitted"])).held


def test_read_uncommitted_transactions_that_time_out_are_judged():
    """Transactions aborted by their timeout, read by a read_uncommitted consumer: the check runs
    (it stopped with an IndexError) and holds, as the after_ack committer never runs ahead."""
    run = execute(load_scenario("txn_read_uncommitted").with_settings({"workload.records": 1000,
                                                                       "workload.transaction_timeout": "3ms"}))
    assert (run.source["state"] == 2).sum() > 0
    v = commits_after_ack(run)
    assert v.held and v.evidence["commits"] > 0, v.summary


# ---- checkpoint_atomic ----------------------------------------------------------------------------
def test_state_and_offsets_from_one_checkpoint_hold_and_from_two_do_not():
    same = traced([(1, Kind.STATE_RESTORE, "processor", 3, 2, 100, 0), (2, Kind.RESTORE, "source", 3, 2, 0, 0)])
    assert checkpoint_atomic(same).held
    mixed = traced([(1, Kind.STATE_RESTORE, "processor", 3, 2, 100, 0), (2, Kind.RESTORE, "source", 4, 2, 0, 0)])
    v = checkpoint_atomic(mixed)
    assert not v.held and v.evidence["first"] == [{"generation": 2, "state_from": 3, "offsets_from": 4}]


def test_real_restores_are_atomic():
    v = check(execute(load_scenario("exactly_once_crash")), ["checkpoint_atomic"])[0]
    assert v.held and v.evidence["restores"] == 2


# ---- watermarks_sane ------------------------------------------------------------------------------
def wm_recv(t, value, subtask=0, idle=False, src="source"):
    return (t, Kind.RECV, "processor", NODES.index(src), Msg.WATERMARK, value, 2 * subtask + int(idle))


def test_watermarks_that_follow_their_inputs_hold():
    run = traced([wm_recv(1, 100), (2, Kind.WATERMARK, "processor", 0, 100, 1, 0),
                  wm_recv(3, 250), (4, Kind.WATERMARK, "processor", 0, 250, 1, 0)])
    assert watermarks_sane(run).held


def test_a_watermark_that_goes_back_or_runs_ahead_is_named():
    back = traced([wm_recv(1, 300), (2, Kind.WATERMARK, "processor", 0, 300, 1, 0),
                   (3, Kind.WATERMARK, "processor", 0, 200, 1, 0)])
    v = watermarks_sane(back)
    assert not v.held and v.evidence["first_backwards"][0] == {"subtask": 0, "from": 300, "to": 200, "time_us": 3}
    ahead = traced([wm_recv(1, 100), wm_recv(1, 500, src="producer"), (2, Kind.WATERMARK, "processor", 0, 400, 2, 0)])
    v = watermarks_sane(ahead)
    assert not v.held and v.evidence["first_ahead"][0]["min_input"] == 100
    idle = traced([wm_recv(1, 100, idle=True), wm_recv(1, 500, src="producer"),
                   (2, Kind.WATERMARK, "processor", 0, 400, 1, 0)])
    assert watermarks_sane(idle).held  # an idle input does not hold the watermark back
    restarted = traced([wm_recv(1, 300), (2, Kind.WATERMARK, "processor", 0, 300, 1, 0),
                        (3, Kind.JOB_RESTART, "coordinator", 2, 0, 0, 0), wm_recv(4, 50),
                        (5, Kind.WATERMARK, "processor", 0, 50, 1, 0)])
    assert watermarks_sane(restarted).held  # a new attempt starts again


# ---- late_accounted ---------------------------------------------------------------------------------
def test_late_records_are_accounted_for_or_named():
    run = execute(load_scenario("late_data_dropped"))
    v = late_accounted(run)
    assert v.held and v.evidence["dropped"] > 0 and v.evidence["difference"] == 0
    gone = SimpleNamespace(**{**vars(run), "late_dropped": run.late_dropped - 7})
    v = late_accounted(gone)
    assert not v.held and v.summary.startswith("7 records silently gone")
    twice = SimpleNamespace(**{**vars(run), "late_dropped": run.late_dropped + 3})
    assert late_accounted(twice).summary.startswith("3 records counted twice")


def test_drains_in_time_names_a_stalled_watermark():
    from dataclasses import replace

    from weir.analysis.checkers import drains_in_time
    from weir.sim.scenario.model import RunLimits
    stalled = load_scenario("idle_partition_stall")
    bounded = replace(stalled, run=RunLimits(drain_within="10s"))
    v = drains_in_time(execute(bounded))
    assert not v.held and v.summary.startswith("a stalled watermark") and v.evidence["watermark_us"] < v.evidence["closing_us"]
    healthy = load_scenario("idle_partition_idleness")
    assert drains_in_time(execute(replace(healthy, run=RunLimits(drain_within="10s")))).held


def test_commits_monotonic_on_hand_made_traces():
    from weir.analysis.checkers import commits_monotonic
    forward = traced([(1, Kind.COMMIT, "broker", 0, 100, 1, 1), (2, Kind.COMMIT, "broker", 1, 50, 1, 1),
                      (3, Kind.COMMIT, "broker", 0, 100, 1, 1), (4, Kind.COMMIT, "broker", 0, 180, 1, 1)])
    assert commits_monotonic(forward).held
    rewound = traced([(1, Kind.COMMIT, "broker", 0, 180, 1, 1), (2, Kind.COMMIT, "broker", 0, 100, 1, 1),
                      (3, Kind.COMMIT, "broker", 0, 50, 2, 0)])  # a refused commit moves nothing
    v = commits_monotonic(rewound)
    assert not v.held and v.evidence["first_rewinds"] == [{"partition": 0, "from": 180, "to": 100, "time_us": 2}]


def test_a_split_batch_is_acknowledged_only_when_every_part_is():
    poll = (1, Kind.POLL, "source", 0, 0, 100, 1)
    parts = [(2, Kind.EXCHANGE, "source", 0, 0, 0, 60), (2, Kind.EXCHANGE, "source", 1, 0, 0, 40)]
    half = traced([poll, *parts, (3, Kind.ACK, "source", 0, 0, 60, 1), (4, Kind.COMMIT, "broker", 0, 100, 1, 1)])
    v = commits_after_ack(half)
    assert not v.held and v.evidence["first"][0]["acknowledged_below"] == 0
    whole = traced([poll, *parts, (3, Kind.ACK, "source", 0, 0, 60, 1), (4, Kind.ACK, "source", 0, 0, 40, 1),
                    (5, Kind.COMMIT, "broker", 0, 100, 1, 1)])
    assert commits_after_ack(whole).held


def test_parallel_at_least_once_commits_after_the_sink():
    from .helpers import small
    run = execute(small("at_least_once", parallelism=3, commit_interval="5ms"))  # batches split over 3 subtasks
    assert [r for r in run.trace.rows() if r["kind"] == "EXCHANGE"]
    v = commits_after_ack(run)
    assert v.held, v.summary
