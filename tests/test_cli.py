"""The command line: list, run (table and JSON), demo, and exit codes."""

from __future__ import annotations

import json
import re

import pytest

import weir
from weir.cli import main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_prints_one_line_per_builtin(capsys):
    code, out, _ = run_cli(capsys, "list")
    lines = out.splitlines()
    assert code == 0
    names = [line.split()[0] for line in lines]
    assert names == sorted(names)
    assert {"at_least_once_crash", "at_most_once_crash", "exactly_once_crash", "late_data_dropped",
            "idle_partition_stall"} <= set(names)
    assert all(len(line.split()) > 2 for line in lines)


@pytest.mark.parametrize("name, verdicts", [
    ("at_most_once_crash", {"no_loss": "violated", "no_duplicates": "held", "exactly_once": "violated"}),
    ("at_least_once_crash", {"no_loss": "held", "no_duplicates": "violated", "exactly_once": "violated"}),
    ("exactly_once_crash", {"no_loss": "held", "no_duplicates": "held", "exactly_once": "held"}),
])
def test_run_prints_verdicts_and_ends_with_the_trace_hash(capsys, name, verdicts):
    code, out, err = run_cli(capsys, "run", name, "--seed", "3")
    assert code == 0 and err == ""
    assert re.fullmatch(r"trace sha256: [0-9a-f]{64}", out.splitlines()[-1])
    for invariant, verdict in verdicts.items():
        row = next(line for line in out.splitlines() if line.startswith(invariant + " "))
        assert verdict in row.split(), row
    assert "outcome: as expected" in out


def test_run_json_has_the_same_facts(capsys):
    code, out, _ = run_cli(capsys, "run", "at_most_once_crash", "--seed", "3", "--json")
    data = json.loads(out)
    _, table, _ = run_cli(capsys, "run", "at_most_once_crash", "--seed", "3")
    assert code == 0
    assert data["seed"] == 3 and data["as_expected"] is True and data["status"] == "drained"
    assert data["counts"]["lost"] > 0 and data["counts"]["produced"] == 20_000
    held = {v["invariant"]: v["held"] for v in data["verdicts"]}
    assert {k: held[k] for k in ("no_loss", "no_duplicates", "exactly_once", "drained")} == {
        "no_loss": False, "no_duplicates": True, "exactly_once": False, "drained": True}
    assert table.splitlines()[-1] == f"trace sha256: {data['trace']['sha256']}"


def test_run_exits_1_when_the_outcome_is_not_as_expected(tmp_path, capsys):
    path = tmp_path / "claims_too_much.toml"
    path.write_text('[workload]\nrecords = 2000\n[pipeline]\nmode = "at_most_once"\n'
                    '[[faults]]\nnode = "processor"\nat = "30ms"\ndown_for = "10ms"\n'
                    '[expect]\nhold = ["no_loss"]\n')
    code, out, _ = run_cli(capsys, "run", str(path), "--seed", "1")
    assert code == 1
    assert "NOT as expected" in out
    row = next(line for line in out.splitlines() if line.startswith("no_loss "))
    assert "violated" in row and "NO" in row


def test_demo_prints_the_spectrum_side_by_side(capsys):
    code, out, _ = run_cli(capsys, "demo", "--seed", "2")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.split() and line.split()[0] in ("at_most_once", "at_least_once", "exactly_once")}
    assert set(rows) == {"at_most_once", "at_least_once", "exactly_once"}
    produced, lost, dup = (int(x) for x in rows["at_most_once"][1:4])
    assert produced == 20_000 and lost > 0 and dup == 0
    produced, lost, dup = (int(x) for x in rows["at_least_once"][1:4])
    assert lost == 0 and dup > 0
    assert rows["exactly_once"][1:4] == ["20000", "0", "0"] and rows["exactly_once"][5] == "held"
    assert all(r[-1] == "2" for r in rows.values())


def test_demo_json(capsys):
    code, out, _ = run_cli(capsys, "demo", "--json")
    data = json.loads(out)
    assert code == 0 and data["schema_version"] == 2 and data["as_expected"] and data["seed"] == 1
    assert [d["mode"] for d in data["runs"]] == ["at_most_once", "at_least_once", "exactly_once"]
    from .test_json import validate
    validate("demo", data)


def test_mode_is_shown_only_where_a_pipeline_runs(capsys):
    """Sagas run no pipeline: no mode in `weir list`, its JSON or a run's JSON (issue 18, item 5).
    Windowed and outbox scenarios keep theirs: it says how their pipeline commits and delivers."""
    code, out, _ = run_cli(capsys, "list")
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()}
    assert code == 0 and rows["saga_compensation"] == "-" and rows["saga_non_idempotent_compensation"] == "-"
    assert rows["exactly_once_crash"] == "exactly_once" and rows["outbox_cdc"] == "at_least_once"
    assert rows["late_data_dropped"] == "exactly_once"
    _, listed, _ = run_cli(capsys, "list", "--json")
    modes = {s["name"]: s["mode"] for s in json.loads(listed)["scenarios"]}
    assert modes["saga_compensation"] is None and modes["at_most_once_crash"] == "at_most_once"
    _, ran, _ = run_cli(capsys, "run", "saga_compensation", "--json")
    assert json.loads(ran)["mode"] is None
    _, shown, _ = run_cli(capsys, "run", "saga_compensation")
    assert " mode " not in shown.split("invariant")[0]


def test_sagas_with_a_parallelism_print_no_subtasks_and_warn_it_does_nothing(tmp_path, capsys):
    """`pipeline.parallelism` beside [saga] runs no processor subtasks (the sagas take the pipeline's
    place): the run prints without a subtask table, where it raised on max() of none (found by
    fuzzing), after one warning line that the key does nothing. The keys sagas use warn of nothing."""
    import warnings

    path = tmp_path / "sagas.toml"
    text = weir.builtin_scenarios()["saga_compensation"].read_text()
    for table, warned in (("parallelism = 4\nsink = 'upsert'", ["pipeline.sink, pipeline.parallelism: do nothing"]),
                          ("request_timeout = '50ms'\nnetwork_jitter = '1ms'", [])):
        path.write_text(text.replace("[saga]", f"[pipeline]\n{table}\n\n[saga]", 1))
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # (as the weir command shows them: once, however often the scenario is rebuilt)
            code, out, err = run_cli(capsys, "run", str(path))
        assert code == 0 and "processor subtasks" not in out and "back-pressured" not in out and "saga_atomic" in out
        assert [line.split(" beside")[0].removeprefix("weir: warning: ") for line in err.splitlines()] == warned, err


def test_diff_of_anything_but_one_scenario_or_two_traces_says_what_it_takes(tmp_path, capsys):
    """Two scenarios (or a scenario and a trace) are refused in one line that says what diff takes,
    before anything runs; a file that is not a saved trace is named with what it is."""
    toml = "weir/scenarios/exactly_once_crash.toml"
    code, out, err = run_cli(capsys, "diff", toml, "at_least_once_crash")
    assert (code, out) == (2, "") and err.splitlines() == [
        "weir: diff: got two scenarios; accepts one scenario (run twice, in two processes), or two traces saved by "
        "`weir run --save-trace`"]
    (tmp_path / "t.npz").write_text("not a trace")
    code, _, err = run_cli(capsys, "diff", str(tmp_path / "t.npz"), "exactly_once_crash")
    assert code == 2 and "got a scenario and a trace;" in err and len(err.splitlines()) == 1
    for other, found in (("t.npz", "a file that is not a saved trace (ValueError)"), ("gone.npz", "no such file"),
                         (".", "a folder")):
        code, _, err = run_cli(capsys, "diff", str(tmp_path / "t.npz"), str(tmp_path / other))
        assert code == 2 and err.splitlines() == [  # the first that is not a trace is named
            f"weir: {tmp_path / 't.npz'}: (file): got a file that is not a saved trace (ValueError); "
            "accepts a trace saved by `weir run --save-trace`"], err
        code, _, err = run_cli(capsys, "diff", str(tmp_path / other), str(tmp_path / other))
        assert code == 2 and f": (file): got {found}; accepts" in err and len(err.splitlines()) == 1, err


def test_an_error_line_cuts_a_value_only_where_the_cut_hides_more_than_a_few_characters():
    """A path a little over the length kept for a value is shown whole (it was cut by one character,
    "... (1 more characters)"); a long value is cut on a word, saying how much is left out."""
    from weir.sim.kernel.errors import ScenarioError

    path = "/work/main/weir/scenarios/exactly_once_crash.toml"  # 51 characters, 53 with its quotes
    assert f"got {path!r};" in str(ScenarioError("(file)", path, "a trace"))
    line = str(ScenarioError("key", "word " * 40, "x"))
    cut = re.search(r"got '(.*) \.\.\. \((\d+) more characters\); accepts x$", line)
    assert cut and len(cut.group(1)) <= 50 and int(cut.group(2)) > 16 and 1 + len(cut.group(1)) + int(cut.group(2)) == 202  # (the quote)


@pytest.mark.parametrize("option", [("report", "--out"), ("run", "--plots"), ("run", "--report")])
def test_a_folder_to_write_into_below_a_file_is_refused_before_the_run(tmp_path, capsys, option):
    """A folder weir would make under a file fails when it is made, after the run: say so first."""
    command, flag = option
    (tmp_path / "notes").write_text("a file")
    target = tmp_path / "notes" / "deeper" / "out"
    code, out, err = run_cli(capsys, command, "exactly_once_crash", flag, str(target))
    (line,) = err.splitlines()  # (the path it got is cut to fit the line: the file above it is named whole)
    assert (code, out) == (2, "") and line.startswith(f"weir: {flag}: got '") and line.endswith(
        f"; accepts a folder to write into (it is created if missing); {tmp_path / 'notes'} is a file"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]


@pytest.mark.parametrize("args", [("run", "exactly_once_crash", "--save-trace"),
                                  ("sweep", "exactly_once_crash", "--seeds", "2", "--journal"),
                                  ("matrix", "--kinds", "crash", "--journal"), ("matrix", "--kinds", "crash", "--plot")])
def test_a_file_to_write_that_is_a_folder_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch, args):
    """A trace, journal or plot path that is a folder failed when written (the trace's after its
    run: 'weir: /.tmp.partial-N: Is a directory'); one below a file, likewise. Both are refused
    first, in one line, with no progress shown and nothing written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").write_text("a file")
    for target, accepts in (("out", "a file path in an existing folder, not a folder"),
                            ("notes/x", "a file path in an existing folder")):
        (tmp_path / "out").mkdir(exist_ok=True)
        code, out, err = run_cli(capsys, *args, target)
        assert (code, out) == (2, "") and err.splitlines() == [f"weir: {args[-1]}: got {target!r}; accepts {accepts}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "out"] and not any((tmp_path / "out").iterdir())


def test_a_missing_path_is_named_whole(tmp_path, capsys):
    """A path that is not there leads the line, whole: as a `got` it was cut to 50 characters, and a
    long path's end (the file name) is what tells the user which it is."""
    deep = tmp_path / "a" / "folder" / "deep" / "enough" / "that" / "its" / "name" / "passes" / "fifty" / "characters"
    cases = [
        (["run", str(deep / "mine.toml")],
         f"weir: {deep / 'mine.toml'}: scenario: got no such file; accepts a path to a .toml file, or a built-in "
         f"name ({len(weir.builtin_scenarios())} in `weir list`)"),
        (["run", "at_least_once_crash", "--faults", str(deep / "f.toml")],
         f"weir: {deep / 'f.toml'}: --faults: got no such file; accepts a path to a TOML file of [[faults]] tables"),
        (["explore", "commit_before_ack", "--out", str(deep)],
         f"weir: {deep}: --out: got no such folder; accepts an existing folder to write the fault schedule into"),
        (["sweep", "commit_before_ack", "--resume", str(deep / "runs.jsonl")],
         f"weir: {deep / 'runs.jsonl'}: --resume: got no such file; accepts a journal that `weir sweep --journal` wrote"),
        (["sweep", "commit_before_ack", "--resume", str(tmp_path)],
         f"weir: {tmp_path}: --resume: got a folder; accepts a journal that `weir sweep --journal` wrote"),
    ]
    (tmp_path / "file").write_text("")
    cases.append((["explore", "commit_before_ack", "--out", str(tmp_path / "file")],
                  f"weir: {tmp_path / 'file'}: --out: got a file, not a folder; accepts an existing folder to write the "
                  "fault schedule into"))
    for argv, line in cases:
        code, out, err = run_cli(capsys, *argv)
        assert (code, out, err.splitlines()) == (2, "", [line]), argv
    code, _, err = run_cli(capsys, "run", "exactly_once_crsh")  # a name, not a path: the names near it
    assert code == 2 and "got 'exactly_once_crsh'; accepts a built-in name (" in err and "near it: exactly_once_crash," in err


@pytest.mark.parametrize("args", [["list"], ["run", "commit_before_ack", "--json"]])
def test_output_whose_reader_left_exits_141_and_says_nothing(args):
    """`weir list | head -1`: the reader closes the pipe. rich's tables exited 1 (weir's "not as
    expected") and JSON output printed "Broken pipe (a path weir could read or write)". Both leave
    quietly with 141, as a program killed by SIGPIPE does."""
    import subprocess
    import sys
    with subprocess.Popen([sys.executable, "-m", "weir", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        child.stdout.close()  # gone before weir writes a byte
        err = child.stderr.read()
        assert (child.wait(), err) == (141, b"")
