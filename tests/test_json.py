"""Machine-readable everywhere: every command's --json output has a schema_version and matches its
published JSON Schema exactly (no key the schema does not name), and the scenario schema agrees with
the loader: a file the loader accepts, the schema accepts; an unknown key or a wrong type, it rejects."""

from __future__ import annotations

import json
import tomllib

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from weir.cli import main
from weir.schemas import SCHEMAS, schema
from weir.sim.kernel.errors import ScenarioError
from weir.sim.scenario.loader import builtin_scenarios, parse_scenario

from .test_examples import EXAMPLES

#: A scenario small enough to explore and crash-point in a second or two; at-most-once loses records.
SMALL_LOSSY = ('name = "small_lossy"\n[workload]\nrecords = 2000\npartitions = 2\n'
               '[pipeline]\nmode = "at_most_once"\n[expect]\nhold = ["no_loss"]\n')


def validate(name: str, data) -> None:
    """`data` matches schema `name` closed: every key it has is one the schema names."""
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema(name, closed=True)).iter_errors(data))
    assert error is None, (f"weir {name} --json does not match its schema at "
                           f"{'/'.join(map(str, error.absolute_path))}: {error.message[:300]}")


def printed(capsys, *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_every_schema_is_a_valid_json_schema(name):
    jsonschema.Draft202012Validator.check_schema(schema(name))
    jsonschema.Draft202012Validator.check_schema(schema(name, closed=True))


def test_a_schema_name_that_is_not_one_is_a_clear_error():
    """A name weir has no schema for, or no name at all (a list was a TypeError of a dict lookup)."""
    for name, got in (("nope", "'nope'"), ([], r"\[\]"), (None, "None")):
        with pytest.raises(ScenarioError, match=rf"^schema: got {got}; accepts one of scenario, faults, "):
            schema(name)


def test_the_output_schemas_are_open_and_the_closed_ones_are_not():
    run = {**{"schema_version": 2}, "a key from a later version": 1}
    assert not list(jsonschema.Draft202012Validator(schema("list")).iter_errors({**run, "scenarios": []}))
    assert list(jsonschema.Draft202012Validator(schema("list", closed=True)).iter_errors({**run, "scenarios": []}))


def test_list_run_and_report(tmp_path, capsys):
    code, data = printed(capsys, "list", "--json")
    assert code == 0 and data["schema_version"] == 2
    assert [s["name"] for s in data["scenarios"]] == list(builtin_scenarios())
    validate("list", data)

    code, data = printed(capsys, "run", "at_most_once_crash", "--records", "2000", "--json")
    assert code == (0 if data["as_expected"] else 1) and data["schema_version"] == 2 and data["records"] == 2000
    validate("run", data)

    code, data = printed(capsys, "report", "at_most_once_crash", "--records", "2000", "--out", str(tmp_path / "r"),
                         "--json")
    assert code == (0 if data["run"]["as_expected"] else 1) and data["run"]["records"] == 2000
    assert (tmp_path / "r" / "report.md").is_file() and data["markdown"] == str(tmp_path / "r" / "report.md")
    validate("report", data)


def test_diff_of_the_same_and_of_different_runs(tmp_path, capsys):
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert main(["run", "at_most_once_crash", "--records", "2000", "--seed", seed, "--json",
                     "--save-trace", str(tmp_path / f"{name}.npz")]) in (0, 1)
    capsys.readouterr()
    code, same = printed(capsys, "diff", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--json")
    assert code == 0 and same["identical"] and same["difference"] is None and same["sha256"][0] == same["sha256"][1]
    validate("diff", same)
    code, other = printed(capsys, "diff", str(tmp_path / "a.npz"), str(tmp_path / "c.npz"), "--json")
    assert code == 1 and not other["identical"] and other["difference"]["index"] >= 0
    validate("diff", other)


def test_explore_found_and_not_found(tmp_path, capsys):
    path = tmp_path / "lossy.toml"
    path.write_text(SMALL_LOSSY)
    code, found = printed(capsys, "explore", str(path), "--runs", "20", "--out", str(tmp_path), "--json")
    assert code == 1, found
    ce = found["counterexample"]
    assert ce["verdict"]["invariant"] == "no_loss" and ce["faults"] and ce["saved"]["replay"].startswith("weir run ")
    assert (tmp_path / ce["saved"]["faults_file"]).is_file()
    assert ce["faults"][0]["kind"] == "crash" and isinstance(ce["faults"][0]["at"], int)
    validate("explore", found)

    safe = tmp_path / "safe.toml"
    safe.write_text(SMALL_LOSSY.replace('hold = ["no_loss"]', 'hold = ["no_duplicates"]'))
    code, nothing = printed(capsys, "explore", str(safe), "--runs", "3", "--out", str(tmp_path), "--json")
    # (runs counts the fault-free run that measures how long a run takes, then 3 schedules)
    assert code == 0 and nothing["counterexample"] is None and nothing["runs"] == 1 + 3
    validate("explore", nothing)


def test_crashpoints(tmp_path, capsys):
    path = tmp_path / "lossy.toml"
    path.write_text(SMALL_LOSSY)
    code, data = printed(capsys, "crashpoints", str(path), "--json")
    assert code == 1 and not data["held"]
    assert len(data["cells"]) == len(data["steps"]) * len(data["nodes"])
    assert any("no_loss" in c["broken"] for c in data["cells"])
    validate("crashpoints", data)


def test_sweep_and_matrix(capsys):
    code, data = printed(capsys, "sweep", "at_most_once_crash", "--seeds", "2", "--workers", "1", "--json")
    assert code == 0 and data["seeds"] == [0, 1]
    validate("sweep", data)
    code, data = printed(capsys, "matrix", "--runs", "1", "--patterns", "at-least-once", "--kinds", "crash",
                         "--workers", "1", "--json")
    assert code == 0 and data["schema_version"] == 2
    validate("matrix", data)


def test_schema_command(tmp_path, capsys):
    code, data = printed(capsys, "schema", "scenario")
    assert code == 0 and data["title"] == "weir scenario file" and "workload" in data["properties"]
    assert main(["schema", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.schema.json" for n in SCHEMAS)
    assert json.loads((tmp_path / "run.schema.json").read_text()) == schema("run")
    assert main(["schema", "runn"]) == 2
    err = capsys.readouterr().err
    assert "schema: got 'runn'" in err and "did you mean 'run'" in err
    assert main(["schema", "run", "--out", str(tmp_path)]) == 2


def test_every_builtin_scenario_and_example_matches_the_scenario_schema():
    validator = jsonschema.Draft202012Validator(schema("scenario"))
    files = list(builtin_scenarios().values()) + [p for p in EXAMPLES if p.suffix == ".toml"]
    assert len(files) > 30
    for path in files:
        errors = list(validator.iter_errors(tomllib.loads(path.read_text())))
        assert not errors, f"{path.name}: {errors[0].message}"


def test_a_faults_file_that_explore_wrote_matches_the_faults_schema(tmp_path, capsys):
    from weir.sim.scenario.loader import faults_toml
    from weir.sim.scenario.model import Fault
    text = faults_toml((Fault(kind="partition", node="sink", at=5, down_for=7), Fault(kind="clock_step", by=-3)))
    assert not list(jsonschema.Draft202012Validator(schema("faults")).iter_errors(tomllib.loads(text)))


#: Values to give a key: right for some keys, wrong for others.
VALUES = st.sampled_from([0, 1, 7, -1, 2**70, 0.5, 1.5, True, "15ms", "-2s", "1.5s", "fast", "at_least_once",
                          "upsert", "uniform", [], ["no_loss"], [1, 2], ["processor"], {}, {"x": 1}, "5MB/s"])


def _keys():
    """(section or None for the top level, key) of every key of a scenario file's tables."""
    props = schema("scenario")["properties"]
    out = [(None, k) for k in ("name", "description", "seed")]
    for section, sub in props.items():
        if sub.get("type") == "object" and "properties" in sub and section != "operator":
            out += [(section, k) for k in sub["properties"]]
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_what_the_loader_accepts_the_schema_accepts(data):
    """The schema never flags a file weir would run (an editor's red line on a good file is worse
    than none). (It cannot say all the loader does: rules across keys are the loader's alone.)"""
    section, key = data.draw(st.sampled_from(_keys()), label="key")
    value = data.draw(VALUES, label="value")
    doc = {"workload": {"records": 100}}
    if section is None:
        doc[key] = value
    else:
        doc.setdefault(section, {})[key] = value
    try:
        parse_scenario(doc)
        loads = True
    except ScenarioError:
        loads = False
    errors = list(SCENARIO.iter_errors(doc))
    if loads:
        assert not errors, f"{doc}: the loader runs it, the schema says {errors[0].message}"


SCENARIO = jsonschema.Draft202012Validator(schema("scenario"))


@pytest.mark.parametrize("doc", [
    {"no_such_key": 1}, {"workload": {"recrods": 5}}, {"workload": {"records": "many"}},
    {"pipeline": {"mode": "exactly_twice"}}, {"faults": [{"kind": "crash", "at": "soon"}]},
    {"faults": [{"node": "nobody"}]}, {"nodes": {"nobody": {"skew": 0}}}, {"expect": {"hold": ["no_such_invariant"]}},
    {"checkpoint": {"interval": -5}}, {"retry": {"jitter": 1.5}}, {"operators": [{"window": False}]},
])
def test_what_the_schema_rejects_the_loader_rejects(doc):
    assert list(SCENARIO.iter_errors(doc)), doc
    with pytest.raises(ScenarioError):
        parse_scenario(doc)


@pytest.mark.parametrize("name", ["late_data_side_output", "payments_idempotent", "saga_compensation",
                                  "reconciliation_daily", "outbox_cdc", "dlq_poison", "hot_key_skew"])
def test_the_run_json_of_every_kind_of_pipeline_matches(name):
    """Windowed, payments, saga, reconciliation, outbox, DLQ and parallel runs fill other parts."""
    from weir import run
    validate("run", run(name).to_dict())
