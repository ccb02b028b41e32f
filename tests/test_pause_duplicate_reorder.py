"""Stop-the-world pauses freeze a node's timers and work; duplicate and reorder faults act on
requests and replies, never on the ordered connections between tasks."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

from weir.analysis.checkers import check
from weir.faults.coverage import crash_points
from weir.sim.kernel.clock import NodeClock
from weir.sim.kernel.world import World
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Expect, Fault
from weir.sim.scenario.loader import load_scenario
from weir.sim.kernel.trace import Msg

from .helpers import small


def world(**kw) -> World:
    opts = dict(latency=100, jitter=0, max_time=10**7, max_events=100_000)
    opts.update(kw)
    return World(1, {"a": NodeClock(), "b": NodeClock()}, **opts)


def link_fault(w: World, kind: str, rate: float = 0.0, slow_by: int = 0) -> None:
    """A fault on the link a -> b, active from now on."""
    fault = SimpleNamespace(kind=kind, rate=rate, slow_by=slow_by)
    w.net.link_faults.append((fault, frozenset({(0, 1)})))


# ---- pauses -------------------------------------------------------------------------------------
def test_work_overlapping_a_pause_ends_that_much_later():
    w = world()
    a = w.node("a")
    done = []

    def job():
        yield from a.work(10_000)
        done.append(w.now)

    w.env.process(job())
    w.env.timeout(5_000).callbacks.append(lambda _ev: a.pause(3_000))
    w.run()
    assert done == [13_000]  # 5ms of work, 3ms frozen, the other 5ms


def test_a_timer_due_in_a_pause_goes_off_when_it_ends_and_others_keep_time():
    w = world()
    a, b = w.node("a"), w.node("b")
    fired = []

    def timer(node, delay, name):
        yield from node.wait(delay)
        fired.append((name, w.now))

    w.env.process(timer(a, 4_000, "a"))
    w.env.process(timer(b, 4_000, "b"))
    a.later(4_500, lambda: fired.append(("a later", w.now)))
    w.env.timeout(2_000).callbacks.append(lambda _ev: a.pause(5_000))
    w.run()
    assert sorted(fired) == [("a", 7_000), ("a later", 7_000), ("b", 4_000)]


def test_a_request_timeout_of_a_paused_caller_waits_for_the_pause():
    w = world()
    a, b = w.node("a"), w.node("b")
    b.crash(None)
    answers = []

    def client():
        yield w.net.request(a, b, Msg.FETCH, lambda: "pong", timeout=1_000)
        answers.append(w.now)

    w.env.process(client())
    w.env.timeout(500).callbacks.append(lambda _ev: a.pause(2_000))
    w.run()
    assert answers == [2_500]  # due at 1000, held until the pause ended


def test_a_paused_processor_processes_nothing_and_the_pause_is_traced():
    pause = Fault(kind="pause", node="processor", at="60ms", down_for="30ms")
    run = execute(small("at_least_once", faults=(pause,)))
    rows = run.trace.rows()
    assert [(r["time"], r["node"], r["duration"]) for r in rows if r["kind"] == "PAUSE"] == [(60_000, "processor", 30_000)]
    assert not [r for r in rows if r["kind"] == "PROCESS" and 60_000 < r["time"] < 90_000]
    assert [r for r in rows if r["kind"] == "PROCESS" and r["time"] >= 90_000]
    assert {v.invariant: v.held for v in check(run)}["no_loss"]


def test_a_paused_coordinator_triggers_no_checkpoint():
    pause = Fault(kind="pause", node="coordinator", at="60ms", down_for="120ms")
    s = small("exactly_once", faults=(pause,))  # a checkpoint every 50ms
    rows = execute(s).trace.rows()
    triggers = [r["time"] for r in rows if r["kind"] == "CKPT_TRIGGER"]
    assert [t for t in triggers if t < 60_000] and not [t for t in triggers if 60_000 < t < 180_000]
    assert min(t for t in triggers if t >= 180_000) <= 230_000  # they start again when the pause ends


def test_a_paused_consumer_sends_no_heartbeats():
    from .test_consumer_group import rebalancing
    run = execute(rebalancing(faults=(Fault(kind="pause", node="source-1", at="100ms", down_for="80ms"),)))
    beats = [r["time"] for r in run.trace.rows() if r["kind"] == "SEND" and r["message"] == "HEARTBEAT"
             and r["node"] == "source-1"]
    assert beats and not [t for t in beats if 100_000 < t < 180_000]


# ---- duplicates ---------------------------------------------------------------------------------
def test_a_duplicated_request_is_served_twice_and_answered_once():
    w = world()
    a, b = w.node("a"), w.node("b")
    link_fault(w, "duplicate", rate=1.0)
    served, answers = [], []

    def client():
        answers.append((yield w.net.request(a, b, Msg.PRODUCE, lambda: served.append(w.now) or len(served), 10_000)))

    w.env.process(client())
    w.run()
    assert len(served) == 2 and answers == [1]
    assert [r["kind"] for r in w.trace.freeze().rows()].count("DUPLICATE") == 1


def test_a_connection_drops_duplicates():
    w = world()
    a, b = w.node("a"), w.node("b")
    link_fault(w, "duplicate", rate=1.0)
    got = []
    for i in range(5):
        w.net.send(a, b, Msg.BATCH, got.append, i)
    w.run()
    assert got == [0, 1, 2, 3, 4]


def test_duplicates_between_tasks_leave_the_run_as_it_was():
    plain = small("exactly_once")
    fault = Fault(kind="duplicate", node="source", peers=("processor",), at="20ms", down_for="40ms", rate=1.0)
    assert execute(replace(plain, faults=(fault,))).trace_sha256 == execute(plain).trace_sha256


def test_duplicated_produce_requests_need_an_idempotent_producer():
    bad = load_scenario("duplicated_produce_requests")
    good = replace(bad, workload=replace(bad.workload, idempotent=True))
    broken = {v.invariant: v for v in check(execute(bad))}
    held = {v.invariant: v for v in check(execute(good))}
    assert not broken["no_duplicates"].held and broken["no_loss"].held
    assert held["exactly_once"].held, held["exactly_once"].summary
    rows = execute(good).trace.rows()
    copies = [r for r in rows if r["kind"] == "DUPLICATE"]
    assert copies and {(r["node"], r["message"]) for r in copies} == {("producer", "PRODUCE")}
    assert [r for r in rows if r["kind"] == "PRODUCE" and r["duplicate"] == 1]  # the broker dropped the copies


def test_a_duplicated_init_does_not_fence_the_transactional_producer():
    s = load_scenario("txn_read_committed")
    fault = Fault(kind="duplicate", node="producer", peers=("broker",), direction="outbound", at=0, down_for="50ms",
                  rate=1.0)
    run = execute(replace(s, faults=(*s.faults, fault)))
    assert not [r for r in run.trace.rows() if r["kind"] == "FENCED" and r["node"] == "broker" and r["time"] < 50_000]
    assert {v.invariant: v.held for v in check(run)}["drained"]


# ---- reordering ---------------------------------------------------------------------------------
def test_reordered_requests_overtake_and_ordered_messages_do_not():
    for ordered in (True, False):
        w = world()
        a, b = w.node("a"), w.node("b")
        link_fault(w, "reorder", slow_by=5_000)
        got = []
        for i in range(50):
            w.env.timeout(10 * i).callbacks.append(
                lambda _ev, i=i: w.net.send(a, b, Msg.COMMIT, got.append, i, ordered=ordered))
        w.run()
        assert sorted(got) == list(range(50))
        assert (got == list(range(50))) is ordered


def test_reordered_offset_commits_rewind_the_group():
    s = load_scenario("reordered_offset_commits")
    verdicts = {v.invariant: v for v in check(execute(s))}
    assert not verdicts["commits_monotonic"].held and verdicts["no_loss"].held
    rewind = verdicts["commits_monotonic"].evidence["first_rewinds"][0]
    assert rewind["to"] < rewind["from"]
    without = execute(s, s.seed, s.faults[1:])  # the same crash, no reordering
    assert {v.invariant: v.held for v in check(without)}["commits_monotonic"]
    assert verdicts["no_duplicates"].evidence["extra_rows"] > check(without, ["no_duplicates"])[0].evidence["extra_rows"]


# ---- crash points ---------------------------------------------------------------------------------
def test_duplicates_at_each_step_break_only_a_producer_without_idempotence():
    def scenario(idempotent: bool):
        s = small("at_least_once", records=2000)  # produced over 200ms, so production is a step of the run
        return replace(s, workload=replace(s.workload, idempotent=idempotent, produce_interval="20ms"),
                       expect=Expect(hold=("no_duplicates",)))
    bad = crash_points(scenario(False), kind="duplicate")
    assert bad.kind == "duplicate"
    assert bad.broken[("record produced", "producer")] == ("no_duplicates",)
    assert not [cell for cell, broken in bad.broken.items() if broken and cell[1] not in ("producer", "broker")]
    assert crash_points(scenario(True), kind="duplicate").held


# ---- schedules ---------------------------------------------------------------------------------
def test_message_faults_round_trip_through_a_schedule_file(tmp_path):
    from weir.sim.scenario.loader import faults_toml, load_faults
    faults = (Fault(kind="duplicate", node="producer", peers=("broker",), direction="outbound", at=5, down_for=7,
                    rate=0.25),
              Fault(kind="reorder", node="source", group=("source-1",), at=9, down_for=11, slow_by=3_000),
              Fault(kind="store_slow", node="coordinator", at=1, down_for=2, slow_by=4_000))
    path = tmp_path / "f.toml"
    path.write_text(faults_toml(faults))
    assert load_faults(path) == faults


from weir.faults.strategies import property_test  # noqa: E402

test_exactly_once_survives_duplicates_and_reordering = property_test(
    "exactly_once_crash", kinds=("duplicate", "reorder", "crash"), max_examples=6)


def test_a_drifting_clock_s_timers_go_off_early_or_late():
    w = World(1, {"fast": NodeClock(drift_ppm=100_000), "slow": NodeClock(drift_ppm=-100_000),
                  "stepped": NodeClock(offset=-5_000_000)}, max_time=10**7, max_events=1_000)
    fired = {}
    for name in ("fast", "slow", "stepped"):
        w.node(name).later(10_000, lambda name=name: fired.setdefault(name, w.now))
    w.run()
    assert fired == {"fast": 9_091, "slow": 11_112, "stepped": 10_000}  # 10ms by a clock 10% fast, 10% slow
