"""Partitions cut exactly the links they name, for exactly their window; clock steps move one clock."""

from __future__ import annotations

import pytest

from weir.analysis.checkers import check, drains_in_time
from weir.sim.kernel.errors import ScenarioError
from weir.sim.scenario.loader import faults_toml
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Fault, RunLimits, Scenario
from weir.sim.scenario.loader import load_scenario

from .helpers import small


def drops(run) -> list[dict]:
    return [r for r in run.trace.rows() if r["kind"] == "DROP"]


def test_a_partition_drops_only_its_links_only_in_its_window():
    fault = Fault(kind="partition", node="source", peers=("broker",), at="100ms", down_for="50ms")
    run = execute(small("at_least_once", faults=(fault,)))
    lost = drops(run)
    assert lost and all({r["node"], r["from_node"]} == {"source", "broker"} for r in lost)
    assert all(100_000 <= r["time"] < 150_000 for r in lost)
    verdicts = {v.invariant: v.held for v in check(run)}
    assert verdicts["no_loss"] and verdicts["drained"] and run.restarts == 0  # nodes stay up: nothing lost


def test_a_one_way_partition_drops_one_direction():
    fault = Fault(kind="partition", node="broker", at="100ms", down_for="50ms", direction="inbound")
    run = execute(small("at_least_once", faults=(fault,)))
    lost = drops(run)
    assert lost and all(r["node"] == "broker" for r in lost)  # only messages into the broker


def test_a_clock_step_moves_that_nodes_clock_only():
    step = Fault(kind="clock_step", node="producer", at="50ms", by="-2s")
    run = execute(small("at_least_once", faults=(step,)))
    src = run.source
    before = src["event_time"][src["record_id"] < 1800].max()
    after = src["event_time"][src["record_id"] >= 2200].min()
    assert after < before - 1_000_000  # stamped from a clock two seconds behind
    written = run.sink["written_at"]
    assert written.min() >= 0  # the sink's clock did not move


def test_drains_in_time_bounds_the_liveness_phase():
    from dataclasses import replace
    s = small("at_least_once", faults=(Fault(node="processor", at="50ms", down_for="20ms"),))
    tight = replace(s, run=RunLimits(drain_within="1ms"))
    loose = replace(s, run=RunLimits(drain_within="5s"))
    assert not drains_in_time(execute(tight)).held and drains_in_time(execute(loose)).held


def test_the_liveness_phase_counts_from_the_heal_and_from_t0_only_without_faults():
    """Jepsen and VOPR measure liveness from the moment the faults heal (issue 18, item 6): a
    bound that covers the time after the heal holds however long the run went on before it."""
    from dataclasses import replace
    faulted = small("at_least_once", faults=(Fault(node="processor", at="50ms", down_for="20ms"),))
    run = execute(faulted)
    after_heal = run.end_time - 70_000
    assert 0 < after_heal < run.end_time
    bound = after_heal + 1_000  # room for the time after the heal, not for the 70ms before it
    v = drains_in_time(execute(replace(faulted, run=RunLimits(drain_within=bound))))
    assert v.held and v.evidence["last_fault_healed_at"] == 70_000 and v.evidence["drained_after_us"] == after_heal
    calm = execute(replace(faulted, faults=(), run=RunLimits(drain_within=bound)))
    v = drains_in_time(calm)  # no fault: from t=0, the whole workload
    assert v.evidence["last_fault_healed_at"] == 0 and v.evidence["drained_after_us"] == calm.end_time
    assert v.held  # 302ms of work, within the bound of 403ms
    short = drains_in_time(replace(calm, scenario=replace(calm.scenario, run=RunLimits(drain_within=calm.end_time - 1))))
    assert not short.held  # a bound shorter than the whole workload: violated, with no fault to count from


def test_partition_settings_are_checked():
    with pytest.raises(ScenarioError) as e:
        Fault(kind="partition", node="sink", peers=("sink",))
    assert e.value.key == "faults.peers"
    with pytest.raises(ScenarioError) as e:
        Scenario(faults=(Fault(kind="partition", node="sink", peers=("source-3",)),))
    assert e.value.key == "faults[0].peers"
    with pytest.raises(ScenarioError) as e:
        Fault(kind="partition", node="sink", peers="broker")
    assert e.value.key == "faults.peers"


def test_new_fault_kinds_round_trip_through_a_file(tmp_path):
    from weir.sim.scenario.loader import load_faults
    faults = (Fault(kind="partition", node="source", peers=("broker", "sink"), direction="outbound", at=5, down_for=7),
              Fault(kind="clock_step", node="producer", at=9, by=-300))
    path = tmp_path / "f.toml"
    path.write_text(faults_toml(faults))
    assert load_faults(path) == faults


def test_exactly_once_survives_a_partition_of_the_sink():
    """Batches into the sink are lost for 100ms: the job only notices when the checkpoint times out,
    fails over, and replays from the checkpoint; still exactly once."""
    from dataclasses import replace
    base = load_scenario("exactly_once_crash")
    s = replace(base, checkpoint=replace(base.checkpoint, timeout="500ms"))
    run = execute(s, 1, (Fault(kind="partition", node="sink", at="300ms", down_for="100ms", direction="inbound"),))
    verdicts = {v.invariant: v.held for v in check(run)}
    assert verdicts["exactly_once"] and verdicts["drained"] and run.restarts == 1


def test_a_paused_node_takes_in_and_sends_nothing_until_it_resumes():
    pause = Fault(kind="pause", node="sink", at="60ms", down_for="30ms")
    run = execute(small("at_least_once", faults=(pause,)))
    rows = run.trace.rows()
    assert not [r for r in rows if r["kind"] == "RECV" and r["node"] == "sink" and 60_000 <= r["time"] < 90_000]
    sent = [r for r in rows if r["kind"] == "RECV" and r["from_node"] == "sink" and 61_000 <= r["time"] < 90_000]
    assert not sent  # nothing the sink sends while paused arrives anywhere (latency is at most 700us)
    verdicts = {v.invariant: v.held for v in check(run)}
    assert verdicts["no_loss"] and verdicts["drained"] and run.restarts == 0


def test_a_paused_consumer_is_expired_from_its_group():
    from .test_consumer_group import rebalancing
    s = rebalancing(faults=(Fault(kind="pause", node="source-1", at="100ms", down_for="80ms"),))
    run = execute(s)
    reasons = [r["reason"] for r in run.trace.rows() if r["kind"] == "REBALANCE"]
    assert 1 in reasons  # expired: its heartbeats stalled for longer than the session timeout
    assert {v.invariant: v.held for v in check(run)}["no_loss"]


def test_a_slow_processor_takes_longer():
    normal = execute(small("at_least_once"))
    slow = execute(small("at_least_once", faults=(Fault(kind="slow", node="processor", at=0, down_for="10s",
                                                         factor=3),)))
    assert slow.end_time > normal.end_time + 100_000


def test_a_delay_slows_exactly_its_links_and_keeps_them_in_order():
    delay = Fault(kind="delay", node="sink", peers=("source",), direction="outbound", at="50ms", down_for="30ms",
                  slow_by="5ms")
    run = execute(small("at_least_once", faults=(delay,)))
    rows = run.trace.rows()
    sends = {}
    for r in rows:
        if r["kind"] == "SEND" and r["node"] == "sink" and r["to_node"] == "source":
            sends.setdefault((r["ref1"], r["ref2"]), r["time"])
    late = [r["time"] - sends[(r["ref1"], r["ref2"])] for r in rows if r["kind"] == "RECV" and r["node"] == "source"
            and r["from_node"] == "sink" and 50_000 <= sends.get((r["ref1"], r["ref2"]), -1) < 80_000]
    assert late and all(t >= 5_000 for t in late)
    assert {v.invariant: v.held for v in check(run)}["no_loss"]


def test_loss_drops_some_messages_and_the_pipeline_recovers():
    loss = Fault(kind="loss", node="broker", at="20ms", down_for="60ms", rate=0.3)
    run = execute(small("exactly_once", faults=(loss,)))
    assert drops(run)
    verdicts = {v.invariant: v.held for v in check(run)}
    assert verdicts["exactly_once"] and verdicts["drained"]


def test_a_late_burst_stamps_records_in_the_past():
    burst = Fault(kind="late_burst", node="producer", at="30ms", down_for="20ms", slow_by="1s")
    run = execute(small("at_least_once", faults=(burst,)))
    times = run.source["event_time"]
    assert (times < -900_000).sum() >= 600  # records 1200..1999 (produced 30-50ms) happened a second early
    with pytest.raises(ScenarioError):
        Fault(kind="late_burst", node="broker")


def test_a_crash_stop_never_comes_back():
    from dataclasses import replace
    s = small("at_least_once", faults=(Fault(kind="stop", node="processor", at="50ms"),))
    run = execute(replace(s, run=RunLimits(max_time="2s")))
    crash = [r for r in run.trace.rows() if r["kind"] == "CRASH"]
    assert [c["down_for_us"] for c in crash] == [-1]
    assert not [r for r in run.trace.rows() if r["kind"] in ("RESTART", "UP")]
    assert run.status == "stalled"  # the job waits for its processor for ever: nothing left to happen


def test_a_partition_between_two_groups_cuts_only_across():
    fault = Fault(kind="partition", node="source", group=("processor",), peers=("sink", "broker"), at="60ms",
                  down_for="20ms")
    run = execute(small("at_least_once", faults=(fault,)))
    for r in drops(run):
        assert {r["node"], r["from_node"]} & {"source", "processor"}
        assert {r["node"], r["from_node"]} & {"sink", "broker"}
    with pytest.raises(ScenarioError) as e:
        Fault(kind="partition", node="source", group=("sink",), peers=("sink",))
    assert e.value.key == "faults.group"


def test_the_slow_sink_is_what_breaks_the_liveness_bound():
    s = load_scenario("slow_sink_liveness")
    healthy = execute(s, 1, (Fault(kind="slow", node="sink", at="100ms", down_for="300ms", factor=1),))
    assert drains_in_time(healthy).held and not drains_in_time(execute(s)).held


def test_a_link_table_gives_exactly_those_links_their_own_latency():
    from dataclasses import replace

    from weir.sim.scenario.model import LinkSpec
    base = small("at_least_once")
    s = replace(base, links=(LinkSpec(between=("producer", "broker"), latency="3ms", jitter=0, direction="outbound"),))
    rows = execute(s).trace.rows()
    sent = {}
    for r in rows:
        if r["kind"] == "SEND":
            sent[(r["node"], r["to_node"], r["message"], r["ref1"], r["ref2"])] = r["time"]

    def trips(src, dst):
        return {r["time"] - sent[(src, dst, r["message"], r["ref1"], r["ref2"])] for r in rows
                if r["kind"] == "RECV" and r["node"] == dst and r["from_node"] == src}
    assert trips("producer", "broker") == {3_000}
    assert max(trips("broker", "producer")) <= 700  # the way back keeps the pipeline's 500us + up to 200us
    assert max(trips("source", "broker")) <= 700


def test_link_tables_are_checked(tmp_path):
    from weir.sim.scenario.model import LinkSpec
    from weir.sim.scenario.loader import parse_scenario
    with pytest.raises(ScenarioError) as e:
        LinkSpec(between=("sink",))
    assert e.value.key == "links.between"
    with pytest.raises(ScenarioError) as e:
        parse_scenario({"links": [{"between": ["sink", "broker"]}, {"between": ["sink", "source-2"]}]})
    assert e.value.key == "links[1].between"
    with pytest.raises(ScenarioError) as e:
        parse_scenario({"links": [{"between": ["sink", "broker"], "latency": "15ms"}]})
    assert e.value.key == "links[0].latency" and "request_timeout" in e.value.accepts
    with pytest.raises(ScenarioError) as e:
        parse_scenario({"links": [{"between": ["sink", "broker"], "jitter_shape": "normal"}]})
    assert e.value.key == "links[0].jitter_shape"


def test_the_default_long_poll_fits_a_slow_link_between_source_and_broker():
    """The default fetch wait (Pipeline.fetch_wait, half of request_timeout) is shortened to fit the
    source's own link to the broker: a fetch the broker holds over a 5ms link (a 12ms round trip with
    its jitter) is answered before the 20ms request timeout, so an idle source never times out.
    With the pipeline's wait over that link (10ms + up to 12ms) idle fetches timed out and were asked
    again."""
    from dataclasses import replace

    from weir.sim.scenario.model import LinkSpec
    base = small("at_least_once")
    s = replace(base, links=(LinkSpec(between=("source", "broker"), latency="5ms", jitter="1ms"),))
    assert s.pipeline.fetch_wait == 10_000
    run = execute(s)
    assert run.status == "drained", run.status
    held = [r for r in run.trace.rows() if r["kind"] == "TIMEOUT"]
    assert held == [], f"seed {run.seed}: {len(held)} fetches timed out, first at {held[0]['time']}us"
    with pytest.raises(ScenarioError) as e:  # a wait the user gives that the link leaves no room for
        replace(s, pipeline=replace(s.pipeline, fetch_max_wait=8_000))
    assert e.value.key == "links[0].latency" and "fetch_max_wait" in e.value.accepts
