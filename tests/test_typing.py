"""Typed: `mypy --strict` is clean on weir's public API (the modules that define what `weir`
exports, reading what they import for its types) and on a user's strictly typed code that calls it
(tests/typecheck/typed_use.py); the configuration is pyproject.toml's [tool.mypy]."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import weir

ROOT = Path(__file__).resolve().parent.parent


def _defining_modules() -> set[str]:
    """The files that define the names `weir` exports (and weir/__init__.py itself)."""
    files = {"weir/__init__.py"}
    for name in weir.__all__:
        module = getattr(getattr(weir, name), "__module__", None)
        if isinstance(getattr(weir, name), (type,)) or callable(getattr(weir, name)):
            assert module is not None and module.startswith("weir"), name
            files.add(module.replace(".", "/") + ".py")
    return files | {"weir/_version.py"}


def test_the_mypy_files_are_the_public_api():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["strict"] is True
    listed = set(config["files"]) - {"tests/typecheck/typed_use.py"}
    assert listed == _defining_modules(), (f"add {sorted(_defining_modules() - listed)}, drop "
                                           f"{sorted(listed - _defining_modules())} in [tool.mypy] files")
    assert (ROOT / "weir" / "py.typed").is_file()


def test_mypy_strict_is_clean(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout


def test_mypy_catches_a_wrong_use(tmp_path):
    """The check can fail: a duration read back is an int, not a str."""
    bad = tmp_path / "bad_use.py"
    bad.write_text("import weir\n\n\ndef f(s: weir.Scenario) -> str:\n"
                   "    return s.workload.produce_interval\n")
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir",
                           str(tmp_path / "cache"), str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1 and 'Incompatible return value type (got "int", expected "str")' in done.stdout, (
        done.stdout)
