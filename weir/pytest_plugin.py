"""weir's pytest plugin: scenario files are tests.

Installed with weir (the `pytest11` entry point), it collects every `weir_*.toml` file under the
paths pytest searches and runs each scenario: the test passes when every verdict the scenario's
`[expect]` states is borne out, and fails with the verdicts that were not, the first bad record
and the command that replays the run. A file weir cannot read is a collection error of one line.

    pytest                              # every weir_*.toml, on its own seed
    pytest --weir-seeds 20              # each on 20 seeds (its seed and the 19 after it)
    pytest --weir-report reports/       # and a report of each failing run (weir report's)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from weir.sim.kernel.files import safe_file_name

__all__ = ["ScenarioFile", "ScenarioItem", "ScenarioMismatch"]


def pytest_addoption(parser) -> None:
    group = parser.getgroup("weir", "weir scenario files (weir_*.toml)")
    group.addoption("--weir-seeds", type=int, default=1, metavar="N",
                    help="run each weir scenario on N seeds: its own seed and the N-1 after it (default 1)")
    group.addoption("--weir-report", default=None, metavar="DIR",
                    help="write a report (Markdown, HTML, plots, diagram) of each failing scenario run into DIR")


def pytest_collect_file(parent, file_path: Path):
    if file_path.suffix == ".toml" and file_path.name.startswith("weir_"):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioMismatch(Exception):
    """A scenario run whose verdicts were not what its [expect] says."""

    def __init__(self, result, report: Path | None):
        super().__init__(result.scenario)
        self.result, self.report = result, report


class ScenarioFile(pytest.File):
    def collect(self):
        from weir.sim.kernel.errors import WeirError
        from weir.sim.scenario.loader import load_scenario
        try:
            scenario = load_scenario(self.path)
        except WeirError as e:
            raise self.CollectError(f"weir: {e}") from None
        seeds = self.config.getoption("weir_seeds")
        if seeds < 1:
            raise self.CollectError(f"weir: --weir-seeds: got {seeds}; accepts a whole number >= 1")
        for seed in range(scenario.seed, scenario.seed + seeds):
            name = scenario.name if seeds == 1 else f"{scenario.name}[seed {seed}]"
            yield ScenarioItem.from_parent(self, name=name, scenario=scenario, seed=seed)


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.scenario, self.seed = scenario, seed

    def runtest(self) -> None:
        from weir.sim.scenario.run import execute
        from weir.api import result_of
        finished = execute(self.scenario, self.seed)
        result = result_of(finished)
        if result.matches:
            return
        report = None
        out = self.config.getoption("weir_report")
        if out:
            from weir.analysis.report import write_report
            report = Path(out) / f"{safe_file_name(self.scenario.name)}-seed{self.seed}"
            write_report(finished, report, str(self.path), verdicts=result.verdicts)
        raise ScenarioMismatch(result, report)

    def repr_failure(self, excinfo, style=None):
        if not isinstance(excinfo.value, ScenarioMismatch):
            return super().repr_failure(excinfo)
        from weir.analysis.lineage import first_bad_record
        result = excinfo.value.result
        lines = [f"{result.scenario} seed {result.seed}: not as its [expect] says"]
        for v, e in zip(result.verdicts, result.expectations):
            if not e.met:
                lines.append(f"  {v.invariant}: expected to {e.expected}, {'held' if v.held else 'violated'}: {v.summary}")
        bad = first_bad_record(result.verdicts)
        if bad is not None:
            lines.append(f"  first bad record: {bad}")
        lines.append(f"  replay: weir run {self.path} --seed {result.seed}")
        if excinfo.value.report is not None:
            lines.append(f"  report: {excinfo.value.report / 'report.md'}")
        return "\n".join(lines)

    def reportinfo(self):
        return self.path, 0, f"weir scenario: {self.name}"
