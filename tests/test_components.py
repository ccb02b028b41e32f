"""User components: base classes, scenario files that name them, and the errors for bad ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import weir
from weir.sim.scenario.components import ComponentSpec
from weir.sim.kernel.errors import ScenarioError
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Checkpointing, Fault, Pipeline, Scenario, Workload
from weir.sim.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "user_components.toml"
sys.path.insert(0, str(ROOT / "examples"))
from components import DictSink, HotKeySource, KeyCounter  # noqa: E402


def test_the_example_runs_from_any_folder(tmp_path):
    for seed in ("1", "7"):
        out = subprocess.run([sys.executable, "-m", "weir.cli", "run", str(EXAMPLE), "--seed", seed],
                             cwd=tmp_path, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "outcome: as expected" in out.stdout


def counts_oracle(source: dict, scale: int) -> dict[int, int]:
    seen: dict[int, int] = {}
    out = {}
    for i in np.lexsort((source["offset"], source["partition"])):
        k = int(source["key"][i])
        seen[k] = seen.get(k, 0) + 1
        out[int(source["record_id"][i])] = seen[k] * scale
    return out


@pytest.mark.parametrize("seed", range(3))
def test_a_user_operators_state_is_checkpointed_and_restored(seed):
    run = execute(load_scenario(EXAMPLE), seed)
    assert run.restarts == 1 and run.checkpoints_completed > 0
    assert dict(zip(run.sink["record_id"].tolist(), run.sink["value"].tolist())) == counts_oracle(run.source, 10)


def test_the_user_source_shapes_the_data():
    run = execute(load_scenario(EXAMPLE), 1)
    assert (run.source["key"] == 0).mean() > 0.3  # 30% hot, plus key 0's uniform share


def test_the_python_api_takes_classes():
    scenario = Scenario(
        workload=Workload(records=1_000, keys=20, source="components:HotKeySource", source_params={"hot": 0.9}),
        pipeline=Pipeline(mode="exactly_once", sink="components:DictSink"),
        checkpoint=Checkpointing(interval="30ms"),
        operator=ComponentSpec(KeyCounter, {"scale": 2}),
        faults=(Fault(node="sink", at="50ms", down_for="20ms"),),
    )
    r = weir.run(scenario, 3)
    assert r.verdict("exactly_once").held and r.restarts == 1


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    (tmp_path / "mine.py").write_text(
        "import weir\nclass NotAnOperator:\n    pass\n"
        "class Op(weir.Operator):\n    def __init__(self, n=1):\n        self.n = n\n"
        "    def on_batch(self, batch, now):\n        return batch.value\n"
        "class BadSource(weir.Source):\n    def generate(self, rng, records, keys):\n        return ([1], [2], [3])\n")
    return path


@pytest.mark.parametrize("text, message", [
    ('[operator]\nclass = "nowhere:Op"\n', "operator.class: got 'nowhere:Op'; accepts an importable 'module:Class' that subclasses weir.Operator (ModuleNotFoundError"),
    ('[operator]\nclass = "mine:NotAnOperator"\n', "operator.class: got 'mine:NotAnOperator'; accepts an importable"),
    ('[operator]\nclass = "mine.Op"\n', "operator.class: got 'mine.Op'"),
    ('[operator]\nparams = {}\n', "operator.class: got nothing"),
    ('[operator]\nclass = "mine:Op"\nparams = { m = 2 }\n', "operator.params: got {'m': 2}; accepts the parameters Op takes"),
    ('[operator]\nclass = "mine:Op"\ncolour = 1\n', "operator.colour: got an unknown key"),
    ('[operator]\nclass = "mine:Op"\n[window]\nsize = "10ms"\n', "operator: got an [operator] table; accepts either [operator] or [window]"),
    ('[pipeline]\nsink = "mine:Op"\n', "pipeline.sink: got 'mine:Op'; accepts an importable 'module:Class' that subclasses weir.Sink"),
    ('[pipeline]\nsink = "sqlite"\n', "pipeline.sink: got 'sqlite'; accepts one of append, upsert, transactional, payments, or an importable"),
    ('[workload]\nsource = "mine:Op"\n', "workload.source: got 'mine:Op'"),
    ('[watermarks]\nstrategy = "mine:Op"\n', "watermarks.strategy: got 'mine:Op'"),
])
def test_bad_components_are_one_line_errors(tmp_path, text, message):
    path = write(tmp_path, text)
    out = subprocess.run([sys.executable, "-m", "weir.cli", "run", str(path)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == "" and len(out.stderr.splitlines()) == 1, out.stderr
    assert f"{path}: {message}" in out.stderr, out.stderr


def test_a_source_that_returns_the_wrong_shape_is_a_clear_finding(tmp_path):
    path = write(tmp_path, '[workload]\nrecords = 10\nsource = "mine:BadSource"\n')
    out = subprocess.run([sys.executable, "-m", "weir.cli", "run", str(path)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr == "", out.stderr
    assert ("BadSource.generate while the run was set up (called with 10, 100): returned 1 values for 10 records; "
            "it returns (keys, values, delays), each 10 whole numbers (keys)") in " ".join(out.stdout.split())


def test_component_spec_checks_the_class_and_params():
    with pytest.raises(ScenarioError, match="operator.class"):
        ComponentSpec(DictSink)  # a sink is not an operator
    with pytest.raises(ScenarioError, match="operator.params"):
        ComponentSpec(KeyCounter, {"scale": 1, "colour": "red"})
    assert ComponentSpec(HotKeySource, {"hot": 0.1}, "source").build().hot == 0.1


def test_a_users_module_beside_weirs_own_package_is_the_users(tmp_path, monkeypatch):
    """Which files are the user's decides whose error a traceback shows (user_files): weir's own
    package is one folder, so a sibling whose name starts like it (weir_ext/) is not weir's."""
    import importlib.util
    import os

    from weir.sim.scenario import components

    own = tmp_path / "weir"
    own.mkdir()
    (own / "mine.py").write_text("class Ours:\n    pass\n")
    beside = tmp_path / "weir_ext"
    beside.mkdir()
    (beside / "theirs.py").write_text("class Theirs:\n    pass\n")
    classes = []
    for name, path in (("weir_test_ours", own / "mine.py"), ("weir_test_theirs", beside / "theirs.py")):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        classes.append(next(v for v in vars(module).values() if isinstance(v, type)))
    assert components._WEIR_DIR == str(ROOT / "weir") + os.sep
    monkeypatch.setattr(components, "_WEIR_DIR", str(own) + os.sep)
    monkeypatch.setattr(components, "user_classes", lambda scenario: classes)
    assert components.user_files(None) == frozenset({str(beside / "theirs.py")})
