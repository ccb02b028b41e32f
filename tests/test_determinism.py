"""Determinism is the product: same scenario + seed -> same trace hash, in any process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import weir
from weir.sim.scenario.run import execute

from .helpers import small

ROOT = Path(__file__).resolve().parent.parent
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def test_same_seed_same_hash_in_one_process():
    a = weir.run("exactly_once_crash", seed=11)
    b = weir.run("exactly_once_crash", seed=11)
    assert HEX64.match(a.trace_sha256)
    assert a.trace_sha256 == b.trace_sha256
    assert a.to_dict() == b.to_dict()


def test_a_different_seed_gives_a_different_hash():
    hashes = {weir.run("at_least_once_crash", seed=s).trace_sha256 for s in range(5)}
    assert len(hashes) == 5


def test_different_faults_give_a_different_hash():
    from weir.sim.scenario.model import Fault
    a = execute(small("exactly_once", (Fault(node="sink", at="50ms", down_for="10ms"),)), seed=1)
    b = execute(small("exactly_once", (Fault(node="sink", at="51ms", down_for="10ms"),)), seed=1)
    assert a.trace_sha256 != b.trace_sha256


_CHILD = "import weir; r = weir.run('{name}', seed=5); print(r.trace_sha256)"
_ALL = ("import weir, sys; names = sorted(weir.builtin_scenarios()) + [sys.argv[1]]\n"
        "for n in names: print(n.rsplit('/', 1)[-1], weir.run(n, seed=3).trace_sha256)")


@pytest.mark.parametrize("name", weir.SPECTRUM)
def test_hash_is_the_same_across_processes_and_hash_seeds(name):
    here = weir.run(name, seed=5).trace_sha256
    seen = []
    for hashseed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        out = subprocess.run([sys.executable, "-c", _CHILD.format(name=name)], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=True)
        seen.append(out.stdout.strip())
    assert seen == [here, here], f"{name} seed 5: hashes {seen} vs in-process {here}"


@pytest.mark.slow
def test_every_builtin_scenario_and_the_example_replay_across_processes():
    """Windows, SQLite tables, transactions, user components: every kind of run hashes the same
    in two processes with different hash seeds."""
    example = str(ROOT / "examples" / "user_components.toml")
    children = [subprocess.Popen([sys.executable, "-c", _ALL, example], env={**os.environ, "PYTHONHASHSEED": hashseed},
                                 cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for hashseed in ("1", "98765")]  # side by side: one per core
    outs = []
    for child in children:
        stdout, stderr = child.communicate(timeout=600)
        assert child.returncode == 0, stderr[-2000:]
        outs.append(stdout.splitlines())
    assert len(outs[0]) == len(weir.builtin_scenarios()) + 1
    assert outs[0] == outs[1], [(a, b) for a, b in zip(*outs) if a != b]


# ---- the source scan ------------------------------------------------------------------------

FORBIDDEN = re.compile(
    r"(?<![\w.])(?:time\.time|time\.monotonic|time\.perf_counter|datetime\.now|datetime\.utcnow|datetime\.today"
    r"|uuid\.uuid[14]|uuid[14]|os\.urandom|secrets\.\w+|hash|id"
    r"|random\.(?:random|randint|randrange|choice|choices|shuffle|uniform|seed|sample|gauss|getrandbits)"
    r"|np\.random\.(?:rand|randn|randint|seed|random|choice|shuffle|permutation|default_rng))\("
)
SCANNED = ("weir/sim", "weir/faults", "weir/analysis")


def forbidden_calls(root: Path) -> list[str]:
    """Lines that call something that makes a run depend on the wall clock, the process or a hash seed.

    A line may opt out with the comment `# determinism: ok` (say why next to it).
    """
    hits = []
    for path in sorted(root.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if FORBIDDEN.search(code) and "# determinism: ok" not in line:
                hits.append(f"{path.relative_to(root.parent) if root.parent in path.parents else path}:{n}: {line.strip()}")
    return hits


def test_model_code_calls_nothing_nondeterministic():
    for d in SCANNED:  # a folder that moved would be scanned as empty, and pass
        assert len(list((ROOT / d).rglob("*.py"))) >= 5, f"{d} holds no model code: SCANNED is out of date"
    hits = [h for d in SCANNED for h in forbidden_calls(ROOT / d)]
    assert hits == [], "nondeterministic calls in the model:\n" + "\n".join(hits)


@pytest.mark.parametrize("line", [
    "t = time.time()", "now = datetime.now()", "key = uuid4()", "k = uuid.uuid4()", "b = os.urandom(8)",
    "x = random.random()", "random.shuffle(xs)", "h = hash(name)", "v = np.random.randint(3)", "o = id(obj)",
    "g = np.random.default_rng()",
])
def test_the_scan_catches_each_forbidden_call(tmp_path, line):
    (tmp_path / "bad.py").write_text(f"def f():\n    {line}\n")
    assert len(forbidden_calls(tmp_path)) == 1


@pytest.mark.parametrize("line", [
    "h = stable_hash(name)", "g = np.random.Generator(np.random.PCG64(seq))", "s = np.random.SeedSequence([1])",
    "t = self.time(x)", "v = rng.random(3)", "x = valid(y)",
])
def test_the_scan_passes_allowed_calls(tmp_path, line):
    (tmp_path / "ok.py").write_text(f"def f():\n    {line}\n")
    assert forbidden_calls(tmp_path) == []
