"""weir's pytest plugin: scenario files are tests.

Installed with weir (the `pytest11` entry point), it collects every `weir_*.toml` file under the
paths pytest searches and runs each scenario: the test passes when every verdict the scenario's
`[expect]` states is borne out, and fails with the verdicts that were not, the first bad record
and the command that replays the run. A file weir cannot read is a collection error of one line.

    pytest                              # every weir_*.toml, on its own seed
    pytest --weir-seeds 20              # each on 20 seeds (its seed and the 19 after it)
    pytest --weir-seed 7                # each on seed 7 instead of its own (with --weir-seeds: 7 and on)
    pytest --weir-report reports/       # and a report of each failing run (weir report's)

Test ids carry the seed without spaces (`holds[seed2]`, so `-k seed2` picks it), the session's
header says which seeds run, and each test records its seed, trace hash and replay command as
user properties (JUnit XML's `<property>` elements).
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
    group.addoption("--weir-seed", type=int, default=None, metavar="S",
                    help="run each weir scenario on seed S instead of its own (with --weir-seeds N: S .. S+N-1)")
    group.addoption("--weir-report", default=None, metavar="DIR",
                    help="write a report (Markdown, HTML, plots, diagram) of each failing scenario run into DIR")


def _seeds(config) -> str:
    """Which seeds the scenario files run on, in words."""
    n, first = config.getoption("weir_seeds"), config.getoption("weir_seed")
    if first is None:
        return "each scenario's own seed" if n == 1 else f"each scenario's own seed and the {n - 1} after it"
    return f"seed {first}" if n == 1 else f"seeds {first}..{first + n - 1}"


def pytest_report_header(config) -> str:
    return f"weir: scenario files (weir_*.toml) on {_seeds(config)}"


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
        from weir.sim.scenario.model import MAX_SEED
        seeds, forced = self.config.getoption("weir_seeds"), self.config.getoption("weir_seed")
        if seeds < 1:
            raise self.CollectError(f"weir: --weir-seeds: got {seeds}; accepts a whole number >= 1")
        first = scenario.seed if forced is None else forced
        if not 0 <= first <= MAX_SEED - seeds:
            raise self.CollectError(f"weir: --weir-seed: got {forced}; accepts a whole number from 0 to "
                                    f"{MAX_SEED - seeds:_} (with --weir-seeds {seeds})")
        for seed in range(first, first + seeds):
            name = scenario.name if seeds == 1 and forced is None else f"{scenario.name}[seed{seed}]"
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
        self.user_properties += [("weir_seed", self.seed), ("weir_trace_sha256", result.trace_sha256),
                                 ("weir_replay", self.replay_command())]
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
        lines.append(f"  replay: {self.replay_command()}")
        if excinfo.value.report is not None:
            lines.append(f"  report: {excinfo.value.report / 'report.md'}")
        return "\n".join(lines)

    def replay_command(self) -> str:
        """The command that replays this test's run."""
        import shlex
        return shlex.join(["weir", "run", str(self.path), "--seed", str(self.seed)])

    def reportinfo(self):
        return self.path, 0, f"weir scenario: {self.name}"
