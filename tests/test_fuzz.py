"""Fuzzing the inputs (issue 14, item 6): mutated built-in scenarios and `--faults` files either
run or are refused with exit 2 and one line. Never a traceback, never exit 3 (an internal error)."""

from __future__ import annotations

import math
import os
import tomllib
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import weir
from weir.cli import main

BUILTINS = sorted(weir.builtin_scenarios())


# ---- a small TOML writer (what the mutations need: tables, arrays of tables, scalars, lists) ------
def _scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in v) + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f'"{k}" = {_scalar(x)}' for k, x in v.items()) + "}"
    raise TypeError(v)


def to_toml(doc: dict) -> str:
    lines = [f'"{k}" = {_scalar(v)}' for k, v in doc.items()
             if not isinstance(v, dict) and not (isinstance(v, list) and v and all(isinstance(x, dict) for x in v))]
    for k, v in doc.items():
        if isinstance(v, dict):
            if any(isinstance(x, dict) for x in v.values()):  # [nodes.NAME]
                for sub, table in v.items():
                    lines.append(f'\n["{k}"."{sub}"]')
                    lines += [f'"{kk}" = {_scalar(x)}' for kk, x in (table.items() if isinstance(table, dict) else ())]
            else:
                lines.append(f'\n["{k}"]')
                lines += [f'"{kk}" = {_scalar(x)}' for kk, x in v.items()]
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for table in v:
                lines.append(f'\n[["{k}"]]')
                lines += [f'"{kk}" = {_scalar(x)}' for kk, x in table.items()]
    return "\n".join(lines) + "\n"


def test_the_writer_round_trips_every_builtin():
    for name in BUILTINS:
        doc = tomllib.loads(weir.builtin_scenarios()[name].read_text())
        assert tomllib.loads(to_toml(doc)) == doc, name


# ---- values a fuzzer tries ------------------------------------------------------------------------
leaf = st.one_of(
    st.integers(-2**70, 2**70), st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.sampled_from(["", "5ms", "-1ms", "1e308s", "99999999999999h", "[/x]", "[bold]x", "a/b", "../../x",
                     "\x00", "crash", "broker", "processor", "sink", "exactly_once", "tumbling", "beam", "never",
                     "module:Nope", "os:system", "1.5s", "0us"]),
    st.text(max_size=12),
)
value = st.recursive(leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["a", "kind", "node", "at"]), inner, max_size=2), max_leaves=6)


@st.composite
def mutated(draw, name=None):
    """A built-in scenario with one to three keys changed, removed or added."""
    name = name or draw(st.sampled_from(BUILTINS))
    doc = tomllib.loads(weir.builtin_scenarios()[name].read_text())
    for _ in range(draw(st.integers(1, 3))):
        tables = [k for k, v in doc.items() if isinstance(v, dict)]
        where = draw(st.sampled_from(["top"] + tables + (["faults"] if isinstance(doc.get("faults"), list) else [])))
        target = doc if where == "top" else doc[where]
        if isinstance(target, list):  # [[faults]]
            target = target[draw(st.integers(0, len(target) - 1))] if target else doc
        keys = [k for k, v in target.items() if not isinstance(v, dict) and not (
            isinstance(v, list) and v and isinstance(v[0], dict))]
        action = draw(st.sampled_from(["change", "change", "drop", "add"]))
        if action == "drop" and keys:
            del target[draw(st.sampled_from(keys))]
        elif action == "change" and keys:
            target[draw(st.sampled_from(keys))] = draw(value)
        else:
            target[draw(st.sampled_from(["records", "partitions", "keys", "size", "kind", "node", "extra"]))] = draw(value)
    return name, doc


def _one_line_or_ran(code: int, err: str, what: str, path: str = "") -> None:
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("weir: warning:")
             and not line.startswith(("sweep:", "explore:", "\r"))]
    assert code in (0, 1, 2), f"{what}: exit {code}: {err[-2000:]}"
    if code == 2:
        # one line of about 300 characters (320 at most), beside the file's path (here a long temporary one)
        assert len(lines) == 1 and lines[0].startswith("weir: ") and len(lines[0]) - len(path) <= 320, (
            f"{what}: {err[-2000:]}")
    assert "Traceback" not in err, f"{what}: {err[-2000:]}"


def _check_scenario(doc: dict, name: str, tmp_path, capsys) -> None:
    path = tmp_path / "fuzzed.toml"
    path.write_text(to_toml(doc))
    with warnings.catch_warnings():  # weir's warnings are lines on stderr here, as for a user (not errors)
        warnings.simplefilter("default")
        code = main(["run", str(path), "--records", "120"])
    _one_line_or_ran(code, capsys.readouterr().err, f"{name} mutated to {doc}", str(path))


def fuzz(examples: int):
    return settings(max_examples=examples, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@fuzz(150)
@given(case=mutated())
def test_a_mutated_scenario_runs_or_is_refused_in_one_line(case, tmp_path, capsys):
    name, doc = case
    _check_scenario(doc, name, tmp_path, capsys)


@pytest.mark.slow
@fuzz(int(os.environ.get("WEIR_FUZZ_EXAMPLES", "100")))  # thousands: WEIR_FUZZ_EXAMPLES=5000
@given(case=mutated())
def test_many_mutated_scenarios_run_or_are_refused_in_one_line(case, tmp_path, capsys):
    name, doc = case
    _check_scenario(doc, name, tmp_path, capsys)


# ---- values the schema accepts: deeper than random values, which the loader mostly refuses --------
SCHEMA = weir.schema("scenario")["properties"]
DURATIONS = ["0us", "1us", "3us", "1ms", "2ms", "7ms", "30ms", "100ms", "1s", "5s"]
#: keys that name the user's code or take its parameters (the examples' fuzzing is their own)
CODE_KEYS = {"source", "source_params", "sink_params", "params", "class", "strategy", "replay_job", "replay_params",
             "relay", "relay_params", "consumer", "consumer_params", "oracle"}


def accepted(spec: dict) -> st.SearchStrategy:
    """Values that `spec` (a key's JSON Schema) accepts, small and at the edges."""
    if "enum" in spec:
        return st.sampled_from(spec["enum"])
    if "anyOf" in spec:
        if any(k.get("pattern", "").startswith("^\\s*([0-9]") for k in spec["anyOf"]):
            return st.sampled_from(DURATIONS)
        return st.one_of([accepted(k) for k in spec["anyOf"] if "enum" in k] or [accepted(spec["anyOf"][0])])
    kind = spec.get("type")
    if kind == "integer":
        lo, hi = spec.get("minimum", 0), spec.get("maximum", 10**6)
        return st.sampled_from([v for v in (lo, lo + 1, 2, 3, 4, 7, 16, 100, 1000) if lo <= v <= hi] or [lo])
    if kind == "number":
        lo, hi = spec.get("minimum", 0), spec.get("maximum", 10)
        return st.sampled_from([v for v in (0.0, 0.01, 0.1, 0.5, 0.9, 1.0, 1.5, 2.0, 3.0) if lo <= v <= hi] or [lo])
    if kind == "boolean":
        return st.booleans()
    if kind == "array" and "enum" in spec.get("items", {}):
        return st.lists(st.sampled_from(spec["items"]["enum"]), min_size=1, max_size=3, unique=True)
    if kind == "array" and any("enum" in k for k in spec.get("items", {}).get("anyOf", ())):  # nodes
        return st.lists(accepted(spec["items"]), max_size=3, unique=True)
    return st.nothing()


FAULT = SCHEMA["faults"]["items"]["properties"]
FAULT_KINDS = FAULT["kind"]["enum"]
NODE_OF = {"store_fail": "coordinator", "store_slow": "coordinator", "store_torn": "coordinator"}
NODE = SCHEMA["nodes"]["additionalProperties"]["properties"]
LINK = SCHEMA["links"]["items"]["properties"]
PIPELINE_NODES = ["producer", "broker", "source", "processor", "sink", "coordinator"]


@st.composite
def schema_mutated(draw):
    """A built-in scenario with up to eight keys set to values their schema accepts, and faults
    (with any of their keys), node clocks and links added: combinations the built-ins do not
    have, about half of which load (its [expect] is dropped, as it seldom still applies)."""
    name = draw(st.sampled_from(BUILTINS))
    doc = tomllib.loads(weir.builtin_scenarios()[name].read_text())
    doc.pop("expect", None)
    for _ in range(draw(st.integers(1, 8))):
        what = draw(st.integers(0, 9))
        if what <= 1:  # a fault, with up to three of its other keys
            kind = draw(st.sampled_from(FAULT_KINDS))
            node = NODE_OF.get(kind, "sink" if kind.startswith("sink_") else draw(st.sampled_from(PIPELINE_NODES)))
            fault = {"kind": kind, "node": node, "at": draw(st.sampled_from(DURATIONS)),
                     "down_for": draw(st.sampled_from(DURATIONS[1:]))}
            for key in draw(st.lists(st.sampled_from(sorted(set(FAULT) - set(fault))), max_size=3, unique=True)):
                fault[key] = draw(accepted(FAULT[key]))
            doc.setdefault("faults", []).append(fault)
            continue
        if what == 2:  # a node's clock
            key = draw(st.sampled_from(sorted(NODE)))
            node = doc.setdefault("nodes", {}).setdefault(draw(st.sampled_from(PIPELINE_NODES)), {})
            node[key] = draw(st.sampled_from([-10_000, 0, 3, 200_000]) if key == "clock_drift_ppm" else accepted(NODE[key]))
            continue
        if what == 3:  # a link's latency and jitter
            link = {"between": draw(st.lists(st.sampled_from(PIPELINE_NODES), min_size=2, max_size=2, unique=True))}
            for key in draw(st.lists(st.sampled_from(sorted(set(LINK) - {"between"})), max_size=3, unique=True)):
                link[key] = draw(accepted(LINK[key]))
            doc.setdefault("links", []).append(link)
            continue
        table = draw(st.sampled_from([t for t in ("workload", "pipeline", "checkpoint", "window", "watermarks", "retry",
                                                  "run", "payments", "outbox", "saga", "reconcile")
                                      if t in doc or t in ("workload", "pipeline", "retry", "checkpoint")]))
        keys = sorted(set(SCHEMA[table].get("properties", {})) - CODE_KEYS)
        key = draw(st.sampled_from(keys))
        doc.setdefault(table, {})[key] = draw(accepted(SCHEMA[table]["properties"][key]))
    doc.setdefault("run", {}).update(max_time="20s", max_events=200_000)
    return name, doc


@fuzz(100)
@given(case=schema_mutated())
def test_a_scenario_of_accepted_values_runs_or_is_refused_in_one_line(case, tmp_path, capsys):
    """Each value accepted by its own key, in combinations: what a user's file is. The bugs this
    kind of fuzzing found: a retry for ever past 1,024 attempts, a [saga] beside the payments sink,
    re-sends with produce_interval 0, read_uncommitted polls of aborted records."""
    name, doc = case
    _check_scenario(doc, name, tmp_path, capsys)


@pytest.mark.slow
@fuzz(int(os.environ.get("WEIR_FUZZ_EXAMPLES", "100")))
@given(case=schema_mutated())
def test_many_scenarios_of_accepted_values_run_or_are_refused_in_one_line(case, tmp_path, capsys):
    name, doc = case
    _check_scenario(doc, name, tmp_path, capsys)


fault_table = st.dictionaries(
    st.sampled_from(["kind", "node", "at", "down_for", "slow_by", "peers", "group", "direction", "by", "factor",
                     "rate", "partition", "nope"]),
    st.one_of(value, st.sampled_from(["crash", "pause", "partition_slow", "slow", "delay", "sink_fail", "broker",
                                      "processor", "sink", "coordinator", "source", "producer", "10ms", "1s"])),
    max_size=6)


@fuzz(100)
@given(tables=st.lists(fault_table, max_size=3), top=st.dictionaries(st.sampled_from(["faults", "x"]), value, max_size=1))
def test_a_fuzzed_faults_file_runs_or_is_refused_in_one_line(tables, top, tmp_path, capsys):
    doc = dict(top)
    if tables:
        doc["faults"] = tables
    path = tmp_path / "faults.toml"
    path.write_text(to_toml(doc))
    code = main(["run", "at_least_once_crash", "--records", "120", "--faults", str(path)])
    _one_line_or_ran(code, capsys.readouterr().err, f"faults file {doc}", str(path))


@pytest.mark.parametrize("text", ["[" * 500 + "]" * 500, "a = " + "[" * 2000 + "]" * 2000,
                                  "a = " + "{b = " * 300 + "1" + "}" * 300])
def test_deep_nesting_is_refused_in_one_line(text, tmp_path, capsys):
    for args in (["run", None], ["run", "at_least_once_crash", "--faults", None]):
        path = tmp_path / "deep.toml"
        path.write_text(text)
        argv = [str(path) if a is None else a for a in args]
        assert main(argv) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and "nested" in err[0] and len(err[0]) < 300, err


@pytest.mark.parametrize("argv,key", [
    (["run", "at_least_once_crash", "--seed", str(2**70)], "--seed"),
    (["run", "at_least_once_crash", "--records", str(10**12)], "--records"),
    (["sweep", "at_least_once_crash", "--seeds", str(10**12)], "--seeds"),
    (["sweep", "at_least_once_crash", "--first", str(2**62), "--seeds", "2"], "--first"),
    (["matrix", "--runs", str(10**9)], "--runs"),
    (["matrix", "--patterns", ""], "--patterns"),
    (["sweep", "at_least_once_crash", "--seeds", "2", "--scheduler", "no address"], "--scheduler"),
    (["explore", "at_least_once_crash", "--budget", "inf"], "--budget"),
    (["explore", "at_least_once_crash", "--kinds", "crash=inf"], "--kinds"),
    (["explore", "at_least_once_crash", "--kinds", "crash=nan"], "--kinds"),
])
def test_unbounded_work_is_refused_in_one_line(argv, key, capsys):
    try:
        code = main(argv)
    except SystemExit as e:  # refused while parsing the options
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and key in err[0], err


def test_the_largest_state_entry_runs_and_a_larger_one_is_refused(tmp_path, capsys):
    """A snapshot's size (entries times checkpoint.state_entry_bytes) goes into the trace as a 64-bit
    number: at 2^62 bytes an entry, 100 keys overflowed it (an internal error, found by fuzzing).
    An entry is at most 1 GiB; the trace holds that times any run's entries."""
    doc = tomllib.loads(weir.builtin_scenarios()["exactly_once_crash"].read_text())
    path = tmp_path / "big.toml"
    doc["checkpoint"]["state_entry_bytes"] = 2**30
    path.write_text(to_toml(doc))
    assert main(["run", str(path), "--records", "2000"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    doc["checkpoint"]["state_entry_bytes"] = 2**30 + 1
    path.write_text(to_toml(doc))
    assert main(["run", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"weir: {path}: checkpoint.state_entry_bytes: got 1073741825; accepts a whole number from 1 to 1_073_741_824"]


def test_a_bad_option_value_found_after_parsing_is_one_line_too(capsys):
    assert main(["matrix", "--patterns", " , "]) == 2
    assert "--patterns" in capsys.readouterr().err


def test_a_scenario_name_with_control_characters_is_refused(tmp_path, capsys):
    doc = tomllib.loads(weir.builtin_scenarios()["commit_before_ack"].read_text())
    doc["name"] = "nul\x00name"
    path = tmp_path / "named.toml"
    path.write_text(to_toml(doc))
    assert main(["run", str(path)]) == 2
    assert "name: got 'nul\\x00name'; accepts a string of printable characters" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["[/x]", "a/b", "../../escaped", "..", "x:y*?"])
def test_a_scenario_name_is_text_and_a_safe_file_name(name, tmp_path, capsys, monkeypatch):
    doc = tomllib.loads(weir.builtin_scenarios()["commit_before_ack"].read_text())
    doc["name"] = name
    path = tmp_path / "named.toml"
    path.write_text(to_toml(doc))
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(path), "--records", "200"]) == 0
    (tmp_path / "out").mkdir()
    assert main(["explore", str(path), "--runs", "4", "--out", str(tmp_path / "out")]) == 1
    written = list((tmp_path / "out").iterdir())
    assert len(written) == 1 and written[0].parent == tmp_path / "out" and "/" not in written[0].name[:-1]
    assert main(["report", str(path), "--records", "200"]) in (0, 1)
    reports = [p for p in tmp_path.iterdir() if p.name.startswith("report-")]
    assert len(reports) == 1 and reports[0].parent == tmp_path
    assert not (tmp_path.parent.parent / "escaped").exists()


def test_an_unwritable_output_path_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "at_least_once_crash", "--records", "200", "--save-trace", str(blocker / "t.npz")]) == 2
    assert main(["run", "at_least_once_crash", "--records", "200", "--plots", str(blocker / "plots")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("weir: ") for line in err), err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no folder can be made")
@pytest.mark.parametrize("argv", [["run", "at_least_once_crash", "--records", "200", "--report", "/proc/weir-report"],
                                  ["report", "at_least_once_crash", "--records", "200", "--out", "/proc/weir-report"],
                                  ["run", "at_least_once_crash", "--records", "200", "--save-trace", "/proc/weir.npz"]])
def test_a_folder_that_cannot_be_made_is_one_line_naming_it(argv, capsys):
    """A path that passes the checks before the run but cannot be written (here /proc, even as
    root) was two lines, "report: writing ..." and an error naming weir's temporary folder
    (/proc/.weir-report.partial-PID): now the one line, naming the path given."""
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"weir: {argv[-1]}: ") and ".partial-" not in err[0], err


def test_an_internal_error_is_exit_3_with_one_line_and_the_traceback_in_a_file(capsys, monkeypatch):
    import weir.cli as cli

    def broken(args, out):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(cli, "_cmd_list", broken)
    assert main(["list"]) == 3
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "internal error (ZeroDivisionError: a bug)" in err[0] and "`weir list`" in err[0]
    path = Path(err[0].rsplit(" ", 1)[1])
    text = path.read_text()
    path.unlink()
    assert text.startswith("weir list\n") and "Traceback" in text and "ZeroDivisionError" in text


def test_crashpoints_with_message_faults_prints_its_matrix(capsys):
    """`--kind duplicate` (and reorder) are documented: they print the matrix, not a KeyError."""
    from weir import console as show
    from weir.faults.coverage import Coverage
    cov = Coverage(scenario="x", claims=("no_loss",), nodes=("sink",), steps=(("sink write", 10),),
                   broken={("sink write", "sink"): ()}, runs=2, kind="duplicate")
    show.print_coverage(cov, show.console())
    assert "had its messages duplicated" in capsys.readouterr().out


# ---- atomic artifacts (issue 14, item 4) -----------------------------------------------------------
def test_an_interrupted_report_leaves_no_folder_and_a_finished_one_is_complete(tmp_path, monkeypatch):
    import weir.analysis.report as report
    from weir.sim.scenario.run import execute
    run = execute(weir.load_scenario("at_most_once_crash"))
    out = tmp_path / "report"

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt
    with monkeypatch.context() as m:
        m.setattr(report, "write_plots", interrupted)
        with pytest.raises(KeyboardInterrupt):
            report.write_report(run, out)
    assert list(tmp_path.iterdir()) == []  # no report folder, no partial one, no faults.toml
    md, page = report.write_report(run, out)
    assert sorted(p.name for p in out.iterdir()) == ["faults.toml", "mermaid.min.js", "plots", "report.html", "report.md"]
    assert str(out / "faults.toml") in md.read_text()  # the replay command names where the file is
    with monkeypatch.context() as m:  # a second, interrupted report leaves the first one as it was
        m.setattr(report, "write_plots", interrupted)
        with pytest.raises(KeyboardInterrupt):
            report.write_report(run, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"] and (out / "report.html").exists()


def test_an_interrupted_write_leaves_the_old_file(tmp_path):
    from weir.sim.kernel.files import atomic_file, atomic_write
    path = tmp_path / "faults.toml"
    atomic_write(path, "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(path) as f:
            f.write(b"half a ne")
            raise KeyboardInterrupt
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["faults.toml"]


def test_safe_file_names():
    from weir.sim.kernel.files import safe_file_name
    assert [safe_file_name(n) for n in ("a/b", "../../escaped", "..", "x:y*?", "ok_name-1.2", "")] == [
        "a_b", "escaped", "scenario", "x_y", "ok_name-1.2", "scenario"]


# ---- the examples' own components, with fuzzed parameters -----------------------------------------
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WITH_PARAMS = sorted(p.name for p in EXAMPLES.glob("*.toml") if "params = {" in p.read_text())


@st.composite
def mutated_params(draw):
    """An example scenario whose components' parameters (every `params`/`*_params` table) are
    changed, dropped or added to: they go to the user's constructors, and whatever those make of
    them is a finding about the user's code (exit 1) or a refusal (exit 2), never a traceback."""
    name = draw(st.sampled_from(WITH_PARAMS))
    doc = tomllib.loads((EXAMPLES / name).read_text())
    tables = [body for body in doc.values() if isinstance(body, dict)]
    tables += [t for body in doc.values() if isinstance(body, list) for t in body if isinstance(t, dict)]  # [[operators]]
    found = [(i, key) for i, body in enumerate(tables) for key, v in body.items()
             if key.endswith("params") and isinstance(v, dict)]
    for i, key in draw(st.lists(st.sampled_from(found), min_size=1, max_size=2)):
        params = tables[i][key]
        action = draw(st.sampled_from(["change", "change", "drop", "add", "replace"]))
        if not isinstance(params, dict) or action == "replace":
            tables[i][key] = draw(value)
        elif action == "change" and params:
            params[draw(st.sampled_from(sorted(params)))] = draw(value)
        elif action == "drop" and params:
            del params[draw(st.sampled_from(sorted(params)))]
        else:
            params[draw(st.sampled_from(["x", "scale", "limit", "hot", "extra", "fee"]))] = draw(value)
    return name, doc


@fuzz(60)
@given(case=mutated_params())
def test_fuzzed_component_parameters_run_or_are_refused_in_one_line(case, tmp_path, capsys):
    name, doc = case
    path = EXAMPLES / f".fuzzed-{os.getpid()}.toml"  # beside the components it imports
    try:
        path.write_text(to_toml(doc))
        code = main(["run", str(path), "--records", "120"])
    finally:
        path.unlink(missing_ok=True)
    _one_line_or_ran(code, capsys.readouterr().err, f"{name} mutated to {doc}", str(path))


@pytest.mark.parametrize("text, line", [
    ("[workload]\nrecods = 100\n", "workload.recods: got an unknown key (did you mean 'records'?); accepts one of records,"),
    ("[workloads]\n", "workloads: got an unknown key (did you mean 'workload'?); accepts one of name,"),
    ("[[faults]]\nkind = 'crahs'\n", "faults[0].kind: got 'crahs' (did you mean 'crash'?); accepts one of crash,"),
    ("[expect]\nhold = ['no_los']\n", "expect.hold: got 'no_los' (did you mean 'no_loss'?); accepts one of"),
    ("[expect]\nhold = ['zzz']\n", "expect.hold: got 'zzz'; accepts one of"),  # nothing close: no guess
])
def test_a_misspelled_key_or_name_gets_a_did_you_mean(text, line, tmp_path, capsys):
    path = tmp_path / "typo.toml"
    path.write_text(text)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"weir: {path}: {line}") and err.count("\n") == 1, err


def test_misspelled_invariants_and_patterns_get_a_guess_too(capsys):
    run = weir.execute(weir.load_scenario("at_least_once_crash"))
    with pytest.raises(ValueError, match=r"unknown invariant 'no_dupes' \(did you mean 'no_duplicates'\?\)"):
        weir.check(run, ["no_dupes"])
    assert main(["matrix", "--kinds", "crsh"]) == 2
    assert "--kinds: got 'crsh' (did you mean 'crash'?)" in capsys.readouterr().err
