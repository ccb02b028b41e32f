"""Every command weir prints is run (issue 18, item 1): the replay lines, the `weir report` hint
and the regression-test snippets that run, explore (a zero-fault counterexample too) and sweep
print are harvested from their output, executed, and must reproduce the verdict they were printed
for. A printed command that drops an option (--records, --faults) replays another run: these
tests are how that is caught."""

from __future__ import annotations

import ast
import json
import re
import shlex

import pytest

from weir.cli import main

#: a weir command as weir prints it: up to a closing backtick or parenthesis, or the line's end
COMMAND = re.compile(r"\bweir (?:run|report|sweep|explore) [^`)\n]*")


def harvest(text: str, verb: str) -> list[str]:
    return [m.group(0).strip() for m in COMMAND.finditer(text) if m.group(0).startswith(f"weir {verb} ")]


def cli(capsys, argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().out


def verdicts_of(capsys, command: str) -> dict[str, bool]:
    """Run a printed command with --json; its verdicts by invariant."""
    argv = shlex.split(command)[1:] + ["--json"]
    code, out = cli(capsys, argv)
    data = json.loads(out)
    run = data["run"] if "run" in data else data  # weir report --json wraps the run
    assert code in (0, 1), f"{command!r} exited {code}"
    return {v["invariant"]: v["held"] for v in run["verdicts"]}


def run_snippet(snippet: str) -> None:
    """Parse a printed regression test, define it and call it (it fails until the design is fixed)."""
    tree = ast.parse(snippet)
    (test,) = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    namespace: dict = {}
    exec(compile(tree, "<printed regression test>", "exec"), namespace)
    namespace[test]()


def snippet_of(out: str) -> str:
    return out.split("regression test:\n", 1)[1]


def test_explore_replay_report_hint_and_regression_test_all_reproduce_the_counterexample(tmp_path, capsys,
                                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)  # `weir report` writes its folder here
    code, out = cli(capsys, ["explore", "commit_before_ack", "--runs", "40", "--seed", "0", "--out", str(tmp_path)])
    assert code == 1, out
    broken = re.search(r"(\w+) violated after", out).group(1)
    (replay,) = harvest(out, "run")
    assert "--records" in replay and "--faults" in replay, replay
    assert verdicts_of(capsys, replay)[broken] is False, f"the replay does not break {broken}: {replay}"

    # the replay's own output names the first bad record and how to report it: the same run
    code, shown = cli(capsys, shlex.split(replay)[1:])
    assert code == 1 and "NOT as expected" in shown
    (report,) = harvest(shown, "report")
    assert "--records" in report and "--faults" in report, f"the report hint replays another run: {report}"
    assert verdicts_of(capsys, report) == verdicts_of(capsys, replay)

    with pytest.raises(AssertionError):  # the pasted test fails while the design is broken
        run_snippet(snippet_of(out))
    assert run_pasted(snippet_of(out), tmp_path) == 1


ZERO_FAULTS = """
name = "merges_every_day"
description = "an upsert keyed on the key alone: distinct records of a key overwrite each other"
[workload]
records = 400
keys = 10
[pipeline]
mode = "exactly_once"
dedup_key = ["key"]
[checkpoint]
interval = "10ms"
[expect]
hold = ["exactly_once"]
"""


def run_pasted(snippet: str, folder) -> int:
    """Paste a printed regression test into a test file and run pytest on it, as a user would: its exit code."""
    import subprocess
    import sys
    path = folder / "test_pasted.py"
    path.write_text(snippet)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
                          cwd=folder, capture_output=True, text=True).returncode


def test_a_counterexample_with_no_fault_left_prints_a_test_that_parses_and_a_replay_that_breaks(tmp_path, capsys):
    scenario = tmp_path / "merges.toml"
    scenario.write_text(ZERO_FAULTS)
    code, out = cli(capsys, ["explore", str(scenario), "--runs", "20", "--seed", "0", "--out", str(tmp_path)])
    assert code == 1, out
    assert "to 0," in out, out  # shrunk to no fault at all: the design breaks on a plain run
    snippet = snippet_of(out)
    assert "faults = ()" in snippet and "from weir import Fault" not in snippet, snippet
    with pytest.raises(AssertionError):
        run_snippet(snippet)
    assert run_pasted(snippet, tmp_path) == 1  # collected, run, and failing while the design is broken
    (replay,) = harvest(out, "run")
    assert verdicts_of(capsys, replay)["exactly_once"] is False


def test_a_reports_replay_command_replays_the_reported_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scenario = tmp_path / "cba.toml"
    scenario.write_text(COMMIT_BEFORE_ACK)
    faults = tmp_path / "crash.faults.toml"
    faults.write_text('[[faults]]\nkind = "crash"\nnode = "sink"\nat = "20ms"\ndown_for = "15ms"\n')
    argv = ["report", "cba.toml", "--records", "500", "--faults", "crash.faults.toml", "--out", "rep"]
    reported = verdicts_of(capsys, "weir " + shlex.join(argv))
    (replay,) = harvest((tmp_path / "rep" / "report.md").read_text(), "run")
    assert "--records 500" in replay and "--faults" in replay
    assert verdicts_of(capsys, replay) == reported and not reported["no_loss"]


CLAIMS_TOO_MUCH = """
name = "claims_too_much"
[workload]
records = 4000
produce_batch = 200
produce_interval = "5ms"
[pipeline]
mode = "at_least_once"
batch_size = 100
process_time = "50us"
write_time = "1ms"
commit_interval = "100ms"
[expect]
hold = ["exactly_once"]
"""


def test_sweep_replays_the_first_failing_seed_with_the_sweeps_faults(tmp_path, capsys):
    """At least once holds exactly-once on a plain run and breaks it under a crash: a replay line
    without the sweep's --faults would replay a run that holds."""
    scenario = tmp_path / "claims_too_much.toml"
    scenario.write_text(CLAIMS_TOO_MUCH)
    faults = tmp_path / "crash.faults.toml"
    faults.write_text('[[faults]]\nkind = "crash"\nnode = "processor"\nat = "50ms"\ndown_for = "20ms"\n')
    code, out = cli(capsys, ["sweep", str(scenario), "--seeds", "2", "--workers", "1"])
    assert code == 0 and not harvest(out, "run"), out  # no fault: as expected, nothing to replay
    code, out = cli(capsys, ["sweep", str(scenario), "--seeds", "2", "--workers", "1", "--faults", str(faults)])
    assert code == 1, out
    (replay,) = harvest(out, "run")
    assert "--faults" in replay, f"the replay runs the scenario's own faults, not the sweep's: {replay}"
    assert verdicts_of(capsys, replay)["exactly_once"] is False, f"{replay} holds, but its seed failed the sweep"


def test_the_demos_replay_lines_run_the_rows_it_shows(capsys):
    code, out = cli(capsys, ["demo", "--seed", "7"])
    shown = json.loads(cli(capsys, ["demo", "--seed", "7", "--json"])[1])
    commands = harvest(out, "run")
    assert code == 0 and len(commands) == 3, out
    for command in commands:
        scenario = shlex.split(command)[2]
        row = next(r for r in shown["runs"] if r["scenario"] == scenario)
        held = {v["invariant"]: v["held"] for v in row["verdicts"]}
        assert verdicts_of(capsys, command) == held, command


def test_the_matrix_replays_each_broken_cells_first_failure(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["matrix", "--patterns", "at-most-once,commit before ack", "--kinds", "crash,pause", "--runs", "3",
            "--workers", "1"]
    code, out = cli(capsys, argv)
    assert code == 0 and "--out DIR writes each broken cell's first failing schedule" in out and not harvest(out, "run")
    code, out = cli(capsys, [*argv, "--out", str(tmp_path)])
    broken = re.findall(r"broken: (.+) under (\w+): (\w+) \d+ runs", out)
    replays = harvest(out, "run")
    assert code == 0 and broken and len(replays) == len(broken), out
    for (_pattern, _kind, claim), replay in zip(broken, replays):
        assert verdicts_of(capsys, replay)[claim] is False, f"{replay} does not break {claim}"


COMMIT_BEFORE_ACK = """
name = "commit_before_ack_small"
[workload]
records = 1000
produce_batch = 100
produce_interval = "5ms"
[pipeline]
mode = "at_least_once"
offset_commit = "before_processing"
sink = "upsert"
process_time = "50us"
[expect]
hold = ["no_loss", "drained"]
"""


def test_crashpoints_replays_each_broken_cell(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scenario = tmp_path / "cba.toml"
    scenario.write_text(COMMIT_BEFORE_ACK)
    code, out = cli(capsys, ["crashpoints", str(scenario)])
    assert code == 1 and "--out DIR writes each broken cell's first failing schedule" in out and not harvest(out, "run")
    code, out = cli(capsys, ["crashpoints", str(scenario), "--out", str(tmp_path)])
    replays = harvest(out, "run")
    cells = int(re.search(r"\[?(\d+) cells broke a claim", out).group(1))
    assert code == 1 and len(replays) == cells > 0, out
    for replay in replays:
        held = verdicts_of(capsys, replay)
        assert not (held["no_loss"] and held["drained"]), f"{replay} holds the claims its cell broke"
