"""weir explore: the nemesis, the search, shrinking, replay files and the command line."""

from __future__ import annotations

import re

import pytest

import weir
from weir.faults.explore import broken_claim, explore, random_schedule, shrink
from weir.sim.scenario.loader import faults_toml, load_faults
from weir.sim.kernel.rng import RngStreams
from weir.sim.scenario.model import Fault
from weir.sim.scenario.loader import load_scenario
from weir.cli import main


def test_the_nemesis_draws_bounded_schedules_in_time_order():
    rng = RngStreams(3).stream("explore")
    for _ in range(50):
        faults = random_schedule(rng, ("processor", "sink"), 100_000, max_faults=3)
        assert 1 <= len(faults) <= 3
        assert [f.at for f in faults] == sorted(f.at for f in faults)
        assert all(f.node in ("processor", "sink") and 0 <= f.at < 100_000 and 1_000 <= f.down_for <= 25_000 for f in faults)
    again = random_schedule(RngStreams(3).stream("explore"), ("processor", "sink"), 100_000)
    assert again == random_schedule(RngStreams(3).stream("explore"), ("processor", "sink"), 100_000)


def test_commit_before_ack_passes_without_faults_and_explore_refutes_it():
    assert weir.run("commit_before_ack").matches
    report = explore(load_scenario("commit_before_ack"), budget_s=30, seed=0)
    ce = report.counterexample
    assert ce is not None and ce.verdict.invariant == "no_loss"
    assert len(ce.faults) == 1  # the known minimum: one crash
    assert ce.scenario.workload.records < 10_000  # and fewer records
    replayed = weir.run(ce.scenario, ce.seed, ce.faults)
    assert not replayed.verdict("no_loss").held and replayed.verdict("no_loss").summary == ce.verdict.summary


def test_progress_goes_on_while_shrinking():
    """Shrinking takes up to 400 runs whatever the budget: `progress` is told at once that the
    search broke a claim (`shrinking` names it), then after shrink runs, and last with the total."""
    seen = []
    ticks = iter(range(10**6))  # a clock a second further on at each read: progress at every chance
    report = explore(load_scenario("commit_before_ack"), budget_s=10**5, seed=0, clock=lambda: float(next(ticks)),
                     progress=lambda r: seen.append((r.shrinking, r.runs, r.shrink_runs)))
    shrinking = [s for s in seen if s[0] is not None]
    assert seen[:len(seen) - len(shrinking)] == [(None, n, 0) for n in range(2, report.runs + 1)], seen
    assert shrinking[0] == ("no_loss", report.runs, 0) and shrinking[-1] == ("no_loss", report.runs, report.shrink_runs)
    spent = [s[2] for s in shrinking]
    assert spent == sorted(spent) and len(set(spent)) >= report.shrink_runs // 2, spent


def test_explore_finds_nothing_in_exactly_once():
    report = explore(load_scenario("exactly_once_crash"), budget_s=3, seed=1)
    assert report.counterexample is None and report.runs >= 5


def test_shrinking_drops_faults_that_do_not_matter_and_moves_the_rest_earlier():
    scenario = load_scenario("commit_before_ack")
    noise = Fault(node="producer", at=5_000, down_for=2_000)  # a producer pause loses nothing
    crash = Fault(node="processor", at=300_000, down_for=50_000)
    assert broken_claim(scenario, 1, (noise, crash)) is not None
    small, faults, runs = shrink(scenario, 1, (noise, crash), "no_loss")
    assert len(faults) == 1 and faults[0].node == "processor"
    assert faults[0].at < 300_000 and faults[0].down_for < 50_000 and runs > 3
    assert broken_claim(small, 1, faults) is not None


def test_a_schedule_file_round_trips():
    faults = (Fault(node="sink", at=2498, down_for=1), Fault(kind="sink_slow", node="sink", at=10, down_for=5, slow_by=7))
    text = faults_toml(faults, "a header\nin two lines")
    assert text.startswith("# a header\n# in two lines\n")
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.toml"
        path.write_text(text)
        assert load_faults(path) == faults


def test_the_command_writes_a_replay_file_and_a_regression_test(tmp_path, capsys):
    code = main(["explore", "commit_before_ack", "--budget", "30", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 1
    # shrinking has its own progress lines, bounded by runs (the budget bounds the search only)
    spent = re.search(r"shrunk in (\d+) runs", out).group(1)
    lines = err.splitlines()
    assert lines[-2] == "explore, shrinking: 0 of 400 runs at most (0%); no_loss broken after 4 runs", err
    assert lines[-1].startswith(f"explore, shrinking: {spent} of 400 runs at most ("), err
    files = list(tmp_path.glob("commit_before_ack.seed*.faults.toml"))
    assert len(files) == 1 and "no_loss violated" in out
    replay = next(line for line in out.splitlines() if line.startswith("replay: "))
    args = replay.split()[2:]  # after "replay: weir"
    assert main(args) == 1  # the replay breaks the claim again: not as expected
    capsys.readouterr()
    test_source = out[out.index("def test_"):]
    namespace: dict = {}
    exec(compile(test_source, "regression", "exec"), namespace)
    test = next(v for k, v in namespace.items() if k.startswith("test_"))
    with pytest.raises(AssertionError, match="never reached the sink"):
        test()


def test_bad_explore_input_is_exit_2(capsys, tmp_path):
    assert main(["explore", "commit_before_ack", "--out", str(tmp_path / "missing")]) == 2
    assert "--out" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["explore", "commit_before_ack", "--budget", "-1"])
    assert e.value.code == 2


def test_the_nemesis_draws_the_kinds_asked_for_and_swarm_switches_families():
    from weir.faults.explore import swarm
    rng = RngStreams(5).stream("explore")
    rates = {"crash": 1.0, "partition": 1.0, "clock_step": 1.0, "sink_fail": 1.0}
    kinds = set()
    for _ in range(100):
        for f in random_schedule(rng, ("processor", "sink", "broker"), 200_000, 3, rates):
            kinds.add(f.kind)
            if f.kind == "partition":
                assert f.node not in f.peers and f.peers
            if f.kind == "sink_fail":
                assert f.node == "sink"
    assert kinds == set(rates)
    subsets = {tuple(sorted(swarm(rng, rates))) for _ in range(200)}
    assert all(subsets) and len(subsets) > 8


def test_swarm_explore_with_sink_faults_refutes_exactly_once_crash():
    report = explore(load_scenario("exactly_once_crash"), budget_s=30, seed=0,
                     rates={"crash": 1, "partition": 1, "clock_step": 1, "sink_fail": 1, "sink_ack_lost": 1},
                     swarm_mode=True)
    ce = report.counterexample
    assert ce is not None and len(ce.faults) == 1 and ce.faults[0].kind == "sink_fail"


def test_bad_kinds_are_exit_2(capsys):
    for bad in ("meteor=1", "", " , "):  # an empty list is a mistake, not "all" and not "crash"
        with pytest.raises(SystemExit) as e:
            main(["explore", "commit_before_ack", "--kinds", bad])
        assert e.value.code == 2 and "--kinds" in capsys.readouterr().err, bad


def test_the_families_that_apply_follow_the_scenario():
    from weir.faults.explore import NEMESIS_KINDS, applicable_kinds
    upsert = applicable_kinds(load_scenario("exactly_once_crash"))
    assert {"crash", "partition", "clock_step", "sink_fail", "store_fail", "partition_slow"} <= set(upsert)
    assert "sink_commit_fail" not in upsert  # an upsert sink commits nothing
    assert "sink_commit_fail" in applicable_kinds(load_scenario("kafka_to_delta"))
    saga = applicable_kinds(load_scenario("saga_compensation"))
    assert not any(k.startswith(("sink_", "store_")) or k == "partition_slow" for k in saga)
    no_checkpoints = applicable_kinds(load_scenario("at_least_once_crash"))
    assert not any(k.startswith("store_") for k in no_checkpoints)
    assert set(upsert) <= set(NEMESIS_KINDS)


def test_swarm_without_kinds_draws_from_every_family_that_applies(monkeypatch, capsys):
    """--swarm used to switch the default's one family (crash) on and off: a no-op. Without --kinds
    it now draws from every family the scenario allows; with --kinds, from those."""
    import weir.faults.explore as module
    drawn: list[set[str]] = []
    real = module.random_schedule

    def recording(rng, nodes, horizon, max_faults, rates, *args):
        drawn.append(set(rates))
        return real(rng, nodes, horizon, max_faults, rates, *args)

    monkeypatch.setattr(module, "random_schedule", recording)
    scenario = load_scenario("exactly_once_crash")
    explore(scenario, budget_s=60, seed=0, swarm_mode=True, max_runs=12)
    families = set().union(*drawn)
    assert families - {"crash"}, drawn
    assert families <= set(module.applicable_kinds(scenario))
    assert len({frozenset(d) for d in drawn}) > 1  # switched on and off per run
    drawn.clear()
    explore(scenario, budget_s=60, seed=0, max_runs=6)
    assert set().union(*drawn) == {"crash"}  # no swarm, no kinds: crashes, as before
    drawn.clear()
    assert main(["explore", "exactly_once_crash", "--swarm", "--kinds", "crash,partition", "--runs", "6",
                 "--json"]) in (0, 1)
    capsys.readouterr()
    assert set().union(*drawn) <= {"crash", "partition"} and drawn


def test_the_printed_replay_command_works_from_a_folder_with_spaces(tmp_path, capsys):
    import shlex
    import shutil

    from weir.sim.scenario.loader import builtin_scenarios
    from weir.cli import main
    folder = tmp_path / "my scenarios"
    folder.mkdir()
    shutil.copy(builtin_scenarios()["commit_before_ack"], folder / "cba.toml")
    assert main(["explore", str(folder / "cba.toml"), "--budget", "20", "--out", str(folder)]) == 1
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("replay: "))
    argv = shlex.split(line[len("replay: "):])
    assert argv[:2] == ["weir", "run"] and argv[2] == str(folder / "cba.toml")
    assert main(["run", *argv[2:]]) == 1  # the claim breaks again: not as expected
    assert "no_loss" in capsys.readouterr().out


def test_the_nemesis_sometimes_crashes_again_while_the_restore_recovers():
    """Issue 12, item 3: a crash during recovery. One later crash in four lands within 5ms of the
    job coming back from the first crash (crash + outage + restart delay)."""
    rng = RngStreams(5).stream("explore")
    near = 0
    for _ in range(400):
        faults = random_schedule(rng, ("processor", "sink"), 1_000_000, max_faults=3, restart_delay=100_000)
        first = faults[0]
        back = first.at + first.down_for + 100_000
        near += any(back <= f.at <= back + 5_000 for f in faults[1:])
    assert 30 <= near <= 200, near  # about a quarter of the runs with two or more crashes
