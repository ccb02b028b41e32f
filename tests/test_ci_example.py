"""The README's "weir in CI" workflow (examples/ci/github-actions.yml) is the one shipped, and its
test command does what it says on a suite with a failing scenario: JUnit with the replay
properties, and a report of each failing run where the upload step looks for them."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"

FAILING = '''
name = "at_least_once_claimed_exactly_once"
[workload]
records = 2000
[pipeline]
mode = "at_least_once"
commit_interval = "50ms"
[[faults]]
node = "processor"
at = "30ms"
down_for = "10ms"
[expect]
hold = ["no_duplicates"]
'''


def test_the_readme_shows_the_workflow_that_is_shipped():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## weir in CI", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert block == WORKFLOW.read_text()


def test_the_workflow_s_test_command_writes_junit_and_the_reports_it_uploads(tmp_path):
    text = WORKFLOW.read_text()
    (command,) = re.findall(r"run: (python -m pytest .*)", text)
    uploaded = re.findall(r"path: (\S+)", text)
    suite = tmp_path / "scenarios"
    suite.mkdir()
    (suite / "weir_claim.toml").write_text(FAILING)
    args = command.split()[1:]
    args[args.index("20")] = "2"  # two seeds, not twenty: the same command, quicker
    done = subprocess.run([sys.executable, *args, "-p", "no:cacheprovider"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 1, done.stdout[-2000:]  # the claim is false: the job fails, the uploads run
    assert uploaded == ["weir-reports/", "weir-junit.xml"]
    reports = sorted(p.name for p in (tmp_path / "weir-reports").iterdir())
    assert reports == ["at_least_once_claimed_exactly_once-seed1", "at_least_once_claimed_exactly_once-seed2"]
    cases = list(ET.parse(tmp_path / "weir-junit.xml").getroot().iter("testcase"))
    replays = [p.get("value") for c in cases for p in c.iter("property") if p.get("name") == "weir_replay"]
    assert len(cases) == 2 and all(r.startswith("weir run ") and "weir_claim.toml --seed" in r for r in replays)
