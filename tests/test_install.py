"""weir as a user gets it: a wheel installed into a fresh venv, in a project of the user's own.

The project has its own `analysis`, `sim`, `faults` and `scenarios` packages (names data projects
use) and `pythonpath = .`, which once broke every pytest run in an environment with weir installed:
weir's wheel put packages of those names at the top of site-packages. Now the wheel holds `weir`
and its metadata only, and the user's packages and weir's live side by side.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

USER_TEST = '''
import analysis, faults, scenarios, sim
from analysis.stats import mean

import weir


def test_the_users_packages_are_the_users():
    assert mean([1, 2, 3]) == 2
    assert (analysis.OWNER, sim.OWNER, faults.OWNER, scenarios.OWNER) == ("user",) * 4


def test_weir_runs_beside_them():
    result = weir.run("exactly_once_crash", seed=1)
    assert result.matches, result.verdicts
    assert weir.__file__.startswith(%r)
'''

USER_SCENARIO = '''
name = "users_own"
[workload]
records = 500
[pipeline]
mode = "exactly_once"
[checkpoint]
interval = "50ms"
[expect]
hold = ["exactly_once", "drained"]
'''


def _run(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # build from a copy of what a release holds, so that nothing is written into the checkout and
    # no leftover of an earlier build (setuptools' build/ keeps deleted modules) gets in
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "weir", source / "weir", ignore=shutil.ignore_patterns("__pycache__"))
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                 "--wheel-dir", out, source)
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("weir_sim-*.whl")
    return path


def test_the_wheel_holds_only_weir(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = sorted({name.split("/")[0] for name in names})
    assert tops == ["weir", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"], tops
    assert "weir/scenarios/exactly_once_crash.toml" in names  # the built-in scenarios travel with it
    assert {"weir/analysis/vendor/mermaid.min.js", "weir/analysis/vendor/mermaid.LICENSE"} <= set(names)  # offline reports
    assert "weir/py.typed" in names  # PEP 561
    metadata = zipfile.ZipFile(wheel).read(f"{tops[1]}/METADATA").decode()
    assert "Name: weir-sim" in metadata and "License-Expression: Apache-2.0" in metadata
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    entry_points = zipfile.ZipFile(wheel).read(f"{tops[1]}/entry_points.txt").decode()
    assert "weir = weir.cli:main" in entry_points and "weir = weir.pytest_plugin" in entry_points


def test_a_user_project_with_its_own_analysis_and_sim_packages_collects_and_passes(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    installed = _run(python, "-m", "pip", "install", "--quiet", wheel, "pytest")
    assert installed.returncode == 0, installed.stderr
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())

    project = tmp_path / "project"
    for package in ("analysis", "sim", "faults", "scenarios"):
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text('OWNER = "user"\n')
    (project / "analysis" / "stats.py").write_text("def mean(xs):\n    return sum(xs) / len(xs)\n")
    (project / "tests").mkdir()
    (project / "tests" / "test_mine.py").write_text(USER_TEST % str(site))
    (project / "weir_users_own.toml").write_text(USER_SCENARIO)
    (project / "pytest.ini").write_text("[pytest]\npythonpath = .\naddopts = -p no:cacheprovider\n")

    result = _run(python, "-m", "pytest", "-v", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    # two tests of the user's, and the scenario file, which only weir's plugin collects
    assert "3 passed" in result.stdout, result.stdout
    assert any("weir_users_own.toml" in line and "PASSED" in line for line in result.stdout.splitlines()), result.stdout
    version = _run(env_dir / "bin" / "weir", "--version")
    assert version.returncode == 0 and version.stdout.strip().startswith("weir "), version
