"""The `weir` command line: a thin shell over weir.api. Bad input: one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import warnings
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

from rich.markup import escape

from weir.faults.coverage import POINT_KINDS
from weir.faults.explore import SHRINK_RUNS
from weir.faults.matrix import MATRIX_KINDS, PATTERNS
from weir._version import __version__
from weir.sim.kernel.errors import ScenarioError, WeirError, near, no_such_path, raw
from weir.sim.kernel.schema import SCHEMA_VERSION
from weir.sim.scenario.loader import builtin_scenarios, load_scenario
from weir.sim.scenario.loader import load_faults

from weir.sim.scenario.pipeline import MAX_RECORDS
from weir.sim.scenario.model import MAX_SEED
from weir.sweep import MAX_WORKERS

from . import api, console as show
from .schemas import SCHEMAS
from .progress import Progress, working
from weir.sim.kernel.files import safe_file_name

__all__ = ["main"]

#: 0 as expected, 1 not as expected, 2 bad input (one line naming what), 3 a bug in weir (one line,
#: the traceback in a file), 130 interrupted, 141 the output's reader left (128 + SIGPIPE).
EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT, EXIT_PIPE = 0, 1, 2, 141


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"weir: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_BAD_INPUT)


def _number(option: str, cast, ok, accepts: str):
    """An argparse type: `cast` the text, and accept it if `ok(value)`; else a one-line error."""
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option}: got {text!r}; accepts {accepts}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{option}: got {text}; accepts {accepts}")
        return value
    return parse


def _rates(text: str) -> dict[str, float]:
    from weir.faults.explore import NEMESIS_KINDS
    accepts = "kind[=rate],... with kinds from " + ", ".join(NEMESIS_KINDS) + " and rates > 0"
    rates = {}
    for part in text.split(","):
        kind, _, rate = part.strip().partition("=")
        try:
            value = float(rate) if rate else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"--kinds: got {part.strip()!r}; accepts {accepts}") from None
        if kind not in NEMESIS_KINDS or not 0 < value <= 1e6:  # (nan and inf fail this too)
            raise argparse.ArgumentTypeError(f"--kinds: got {part.strip()!r}; accepts {accepts} (at most 1e6)")
        rates[kind] = value
    return rates


#: Upper bounds of the options that set how much work or memory a command takes.
MAX_SEEDS, MAX_RUNS, MAX_BUDGET_S = 100_000, 1_000_000, 1e6


def _seed_of(option: str):
    return _number(option, int, lambda v: 0 <= v <= MAX_SEED, f"a whole number from 0 to {MAX_SEED:_}")


def _count_of(option: str, high: int = MAX_RUNS):
    return _number(option, int, lambda v: 1 <= v <= high, f"a whole number from 1 to {high:_}")


_seed = _seed_of("--seed")
_count = _count_of("--records", MAX_RECORDS)
_seconds = _number("--budget", float, lambda v: 0 < v <= MAX_BUDGET_S, f"a number of seconds > 0, at most {MAX_BUDGET_S:g}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="weir", description="Deterministic simulation and chaos testing for data pipelines.",
                     epilog="exit codes: 0 as expected (or nothing broken), 1 not as expected (a claim broken), "
                            "2 bad input (one line naming the file or option, the key, what it got and what it "
                            "accepts), 3 an internal error (a bug in weir: one line, the traceback in a file), "
                            "130 interrupted, 141 the reader of its output closed it (`| head`)")
    parser.add_argument("--version", action="version", version=f"weir {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p_list = sub.add_parser("list", help="list the built-in scenarios")
    _json_option(p_list)
    p_run = sub.add_parser("run", help="run a scenario and check its invariants")
    p_run.add_argument("scenario", help="a built-in scenario name (see `weir list`) or a path to a TOML file")
    p_run.add_argument("--seed", type=_seed, default=None, help="the seed (default: the scenario's)")
    _json_option(p_run)
    p_run.add_argument("--faults", default=None, help="a TOML file of [[faults]] tables to run instead of the scenario's")
    p_run.add_argument("--records", type=_count, default=None, help="run with this many records (workload.records)")
    p_run.add_argument("--plots", default=None, metavar="DIR", help="write the run's plots into DIR as PNG")
    p_run.add_argument("--report", default=None, metavar="DIR", help="write a Markdown and HTML report into DIR")
    p_run.add_argument("--save-trace", default=None, metavar="FILE", help="save the trace to FILE (.npz) for `weir diff`")
    p_report = sub.add_parser("report", help="run a scenario and write its report (Markdown, HTML, plots, diagram)")
    p_report.add_argument("scenario", help="a built-in scenario name or a path to a TOML file")
    p_report.add_argument("--seed", type=_seed, default=None, help="the seed (default: the scenario's)")
    p_report.add_argument("--faults", default=None, help="a TOML file of [[faults]] tables to run instead of the scenario's")
    p_report.add_argument("--records", type=_count, default=None, help="run with this many records (workload.records)")
    p_report.add_argument("--out", default=None, metavar="DIR", help="where to write it (default: report-NAME-seedN)")
    _json_option(p_report)
    p_diff = sub.add_parser("diff", help="run a scenario twice in two processes (or compare two saved traces) "
                                         "and name the first event that differs")
    p_diff.add_argument("what", nargs="+", metavar="SCENARIO | TRACE.npz TRACE.npz",
                        help="a scenario to run twice, or two traces saved by `weir run --save-trace`")
    p_diff.add_argument("--seed", type=_seed, default=None, help="the seed (default: the scenario's)")
    _json_option(p_diff)
    p_explore = sub.add_parser("explore", help="search crash schedules for a run that breaks the scenario's claims")
    p_explore.add_argument("scenario", help="a built-in scenario name or a path to a TOML file")
    p_explore.add_argument("--budget", type=_seconds, default=60.0, help="seconds to search (default 60)")
    p_explore.add_argument("--seed", type=_seed, default=0, help="the search's seed (default 0)")
    p_explore.add_argument("--runs", type=_count_of("--runs"), default=None,
                           help="stop after this many fault schedules (a budget that is the same on every machine; the runs reported count the fault-free run too)")
    p_explore.add_argument("--out", default=".", help="where to write the fault schedule it finds (default: here)")
    p_explore.add_argument("--kinds", type=_rates, default=None,
                           help="fault families and relative rates, e.g. crash=2,partition=1,clock_step=1 "
                                "(default: crash; with --swarm, every family the scenario allows)")
    p_explore.add_argument("--swarm", action="store_true",
                           help="switch fault families on and off at random per run (from --kinds, or every "
                                "family the scenario allows)")
    _json_option(p_explore)
    p_sweep = sub.add_parser("sweep", help="run a scenario over many seeds on a process pool; a table per invariant")
    p_sweep.add_argument("scenario", help="a built-in scenario name or a path to a TOML file")
    p_sweep.add_argument("--seeds", type=_count_of("--seeds", MAX_SEEDS), default=20, help="how many seeds (default 20)")
    p_sweep.add_argument("--first", type=_seed_of("--first"), default=0, help="the first seed (default 0)")
    p_sweep.add_argument("--workers", type=_count_of("--workers", MAX_WORKERS), default=None,
                         help="worker processes (default: one per CPU)")
    p_sweep.add_argument("--faults", default=None, help="a TOML file of [[faults]] tables to run instead of the scenario's")
    _json_option(p_sweep)
    p_sweep.add_argument("--journal", default=None, metavar="FILE",
                         help="write one JSON line per finished run to FILE, as each lands (to resume after an interrupt)")
    p_sweep.add_argument("--resume", default=None, metavar="FILE",
                         help="resume from FILE, a journal of the same sweep: run only what it does not hold")
    for p in (p_sweep,):
        _scheduler_option(p)
    p_matrix = sub.add_parser("matrix", help="the pattern x fault correctness matrix, measured from runs")
    p_matrix.add_argument("--runs", type=_count_of("--runs"), default=10, help="random schedules per cell (default 10)")
    p_matrix.add_argument("--seed", type=_seed, default=0, help="the matrix's seed (default 0)")
    p_matrix.add_argument("--workers", type=_count_of("--workers", MAX_WORKERS), default=None,
                          help="worker processes (default: one per CPU)")
    p_matrix.add_argument("--patterns", default=None,
                          help="comma-separated patterns (default all: " + ", ".join(PATTERNS) + ")")
    p_matrix.add_argument("--kinds", default=None,
                          help="comma-separated fault families (default all: " + ", ".join(MATRIX_KINDS) + ")")
    _json_option(p_matrix)
    p_matrix.add_argument("--plot", default=None, metavar="FILE", help="also draw the matrix as a heatmap, a PNG in FILE")
    p_matrix.add_argument("--out", default=None, metavar="DIR",
                          help="write each broken cell's first failing schedule into DIR, and print the command "
                               "that replays it")
    _scheduler_option(p_matrix)
    p_matrix.add_argument("--journal", default=None, metavar="FILE",
                          help="write one JSON line per finished run to FILE, as each lands (to resume after an interrupt)")
    p_matrix.add_argument("--resume", default=None, metavar="FILE",
                          help="resume from FILE, a journal of the same matrix: run only what it does not hold")
    p_points = sub.add_parser("crashpoints", help="fault each node at each protocol step (crash, pause, partition, delay, duplicate, reorder); a matrix of what held")
    p_points.add_argument("scenario", help="a built-in scenario name or a path to a TOML file")
    p_points.add_argument("--seed", type=_seed, default=None, help="the seed (default: the scenario's)")
    p_points.add_argument("--out", default=None, metavar="DIR",
                          help="write each broken cell's first failing schedule into DIR, and print the command "
                               "that replays it")
    p_points.add_argument("--kind", choices=POINT_KINDS, default="crash",
                          help="the fault to inject at each point (default crash)")
    _json_option(p_points)
    p_demo = sub.add_parser("demo", help="the delivery-semantics spectrum, measured side by side")
    p_demo.add_argument("--seed", type=_seed, default=1, help="the seed for all three runs (default 1)")
    _json_option(p_demo)
    p_schema = sub.add_parser("schema", help="print a JSON Schema: of scenario files (for an editor) or of a "
                                             "command's --json output")
    p_schema.add_argument("name", nargs="?", default=None, help="which: " + ", ".join(SCHEMAS) +
                          " (default: list them)")
    p_schema.add_argument("--out", default=None, metavar="DIR", help="write every schema into DIR as NAME.schema.json")
    _json_option(p_schema)
    return parser


def _json_option(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object (with schema_version; "
                                                            "`weir schema NAME` describes it) instead of text")


def _print_json(data) -> None:
    print(json.dumps(data, indent=2))


def _cmd_list(args, out) -> int:
    if args.json:
        _print_json(api.catalog())
        return EXIT_OK
    names = list(builtin_scenarios())
    width = max(map(len, names), default=0)
    for name in names:
        scenario = load_scenario(name)
        first = scenario.description.split(". ")[0].rstrip(".")
        head = f"{name:<{width}}  {scenario.mode or '-':<14} "  # no mode: sagas run no pipeline
        out.print(head + show.clip(first, out.width - len(head)), markup=False, highlight=False, no_wrap=True)
    return EXIT_OK


def _scenario_of(args):
    """The scenario of a run or report command, with --records and --faults applied."""
    scenario = load_scenario(args.scenario)
    if args.records is not None:
        scenario = replace(scenario, workload=replace(scenario.workload, records=args.records))
    if args.faults is not None:
        scenario = scenario.with_faults(load_faults(args.faults))
    return scenario


def _writable_dir(option: str, value: str) -> Path:
    """A folder to write into: it may not exist yet, but it must not be a file."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise ScenarioError(option, value, "a folder to write into (it is created if missing), not a file")
    # the nearest part of it that exists must be a folder too (else making it fails, after the run)
    above = next((a for a in path.absolute().parents if a.exists()), None)
    if above is not None and not above.is_dir():
        raise ScenarioError(option, value, f"a folder to write into (it is created if missing); {above} is a file")
    return path


def _writable_file(option: str, value: str) -> None:
    """`value` as a file weir may write: in a folder that exists, and not a folder itself (checked
    before a run, so that its result is not lost to a path that cannot take it)."""
    path = Path(value)
    if path.is_dir():
        raise ScenarioError(option, value, "a file path in an existing folder, not a folder")
    if not path.resolve().parent.is_dir():
        raise ScenarioError(option, value, "a file path in an existing folder")


def _existing_dir(option: str, value: str, what: str) -> Path:
    """`value` as a folder that exists (weir writes `what` into it), or a one-line ScenarioError."""
    if not Path(value).is_dir():
        raise no_such_path(option, value, f"an existing folder to write {what} into",
                           "a file, not a folder" if Path(value).exists() else "no such folder")
    return Path(value)


def _same_run(args) -> str:
    """The options of `args` that choose which run it is, for a printed command to run the same one:
    " --records N" and " --faults FILE" (shell-quoted), where given."""
    records = getattr(args, "records", None)
    faults = getattr(args, "faults", None)
    return (f" --records {records}" if records is not None else "") + (
        f" --faults {shlex.quote(faults)}" if faults else "")


def _cmd_run(args, out) -> int:
    scenario = _scenario_of(args)
    plots = _writable_dir("--plots", args.plots) if args.plots else None
    report = _writable_dir("--report", args.report) if args.report else None
    if args.save_trace:
        _writable_file("--save-trace", args.save_trace)
    finished = _executed(scenario, args.seed, not args.json)
    result = api.result_of(finished)
    if args.json:
        _print_json(result.to_dict())
    else:
        show.print_run(result, out, shlex.quote(args.scenario), _same_run(args))
    if args.save_trace:
        from weir.analysis.diff import save_trace
        save_trace(finished.trace, args.save_trace)
    if plots is not None:
        from weir.analysis.plots import write_plots
        for path in write_plots(finished, plots):
            if not args.json:
                sys.stderr.write(f"wrote {path}\n")
    if report is not None:
        _write_report(finished, result, report, args.scenario, args.records, quiet=args.json)
    return EXIT_OK if result.matches else EXIT_MISMATCH


def _scheduler_option(parser) -> None:
    parser.add_argument("--scheduler", default=None, metavar="local|ADDRESS",
                        help="run on Dask (pip install 'weir-sim[dask]'): 'local' starts a cluster on this machine "
                             "(--workers processes), an address (tcp://host:8786) uses a running one")


def _executor(args, scenarios=()):
    """The Dask executor --scheduler asks for (a context: the cluster is closed after), or none."""
    if not args.scheduler:
        return nullcontext(None)
    from .cluster import dask_executor
    return dask_executor(args.scheduler, args.workers, scenarios)


#: A run of at least this many records shows its progress (a smaller one is over in about a second).
LONG_RUN = 100_000


def _executed(scenario, seed: int | None, show_progress: bool = True):
    """Run `scenario`; a long one with its progress on stderr (a bar in a terminal, lines in a log)."""
    from weir.sim.scenario.run import execute
    records = scenario.workload.records
    with Progress(f"run {scenario.name}", records, "records", enabled=show_progress and records >= LONG_RUN) as bar:
        return execute(scenario, seed, progress=bar.update)


def _write_report(finished, result, out_dir: Path, scenario_ref: str, records: int | None,
                  quiet: bool = False) -> tuple[Path, Path]:
    """Write the report; unless `quiet` (--json: stderr carries only errors), say so on stderr."""
    from weir.analysis.report import write_report
    with working(f"report: writing {out_dir}", enabled=not quiet) as begun:
        md, page = write_report(finished, out_dir, scenario_ref, verdicts=result.verdicts, records=records,
                                begun=begun)
    if not quiet:
        sys.stderr.write(f"wrote {md} and {page}\n")
    return md, page


def _cmd_report(args, out) -> int:
    scenario = _scenario_of(args)
    seed = scenario.seed if args.seed is None else args.seed
    out_dir = _writable_dir("--out", args.out or f"report-{safe_file_name(scenario.name)}-seed{seed}")
    finished = _executed(scenario, args.seed, not args.json)
    result = api.result_of(finished)
    md, page = _write_report(finished, result, out_dir, args.scenario, args.records, quiet=args.json)
    if args.json:
        _print_json(api.report_dict(result, str(md), str(page)))
    else:
        out.print(f"{scenario.name} seed {finished.seed}: " + ("as expected" if result.matches else "NOT as expected"),
                  markup=False)
    return EXIT_OK if result.matches else EXIT_MISMATCH


def _interrupted(e, argv_of_resume: str) -> None:
    sys.stderr.write(f"weir: interrupted after {len(e.results)} of {e.total} runs"
                     + (f"; resume with: {argv_of_resume}" if argv_of_resume else "") + "\n")


def _resume_command(command: str, args, keep: list[str]) -> str:
    """The command line that resumes an interrupted sweep or matrix from its journal."""
    journal = args.resume or args.journal
    return "" if journal is None else shlex.join(["weir", command, *keep, "--resume", journal])


def _cmd_sweep(args, out) -> int:
    from weir.sim.scenario.pool import Interrupted
    from .sweep import sweep
    scenario = load_scenario(args.scenario)
    faults = load_faults(args.faults) if args.faults is not None else None
    if args.first + args.seeds - 1 > MAX_SEED:
        raise ScenarioError("--first", args.first, f"a first seed that leaves room for --seeds {args.seeds} "
                            f"below {MAX_SEED:_}")
    if args.journal is not None:
        _writable_file("--journal", args.journal)
    journal = args.resume or args.journal
    try:
        with _executor(args, [scenario]) as executor, \
                Progress("sweep", args.seeds, "seeds", enabled=not args.json) as bar:  # ended before anything else prints
            result = sweep(scenario, range(args.first, args.first + args.seeds), args.workers, faults,
                           progress=bar.update, journal=journal, resume=args.resume is not None, executor=executor)
    except Interrupted as e:
        keep = [args.scenario, "--seeds", str(args.seeds)] + (["--first", str(args.first)] if args.first else []) + (
            ["--workers", str(args.workers)] if args.workers else []) + (["--faults", args.faults] if args.faults else []) + (
            ["--scheduler", args.scheduler] if args.scheduler else [])
        if not args.json:
            show.print_sweep(e.partial, out, args.scenario, _same_run(args))
        _interrupted(e, _resume_command("sweep", args, keep))
        return 130
    if args.json:
        _print_json(result.to_dict())
    else:
        show.print_sweep(result, out, args.scenario, _same_run(args))
    return EXIT_OK if result.matches else EXIT_MISMATCH


def _cmd_matrix(args, out) -> int:
    from weir.faults.matrix import correctness_matrix

    def listed(option: str, value: str | None, known) -> tuple[str, ...] | None:
        if value is None:
            return None
        items = tuple(v.strip() for v in value.split(",") if v.strip())
        if not items:  # an empty list is a mistake, not "all"
            raise ScenarioError(option, value, "a comma-separated list of one or more of " + ", ".join(known))
        for item in items:
            if item not in known:
                raise ScenarioError(option, item, "a comma-separated list of " + ", ".join(known), hint=near(item, known))
        return items

    patterns = listed("--patterns", args.patterns, tuple(PATTERNS))
    kinds = listed("--kinds", args.kinds, MATRIX_KINDS)
    if args.plot is not None:
        _writable_file("--plot", args.plot)
    if args.journal is not None:
        _writable_file("--journal", args.journal)
    if args.out is not None:
        _existing_dir("--out", args.out, "the failing schedules")

    from weir.sim.scenario.pool import Interrupted
    try:
        with _executor(args) as executor, \
                Progress("matrix", 0, "runs", enabled=not args.json) as bar:  # its total comes with the first update
            matrix = correctness_matrix(patterns, kinds, args.runs, args.seed, args.workers or os.cpu_count() or 1,
                                        progress=bar.update, journal=args.resume or args.journal,
                                        resume=args.resume is not None, executor=executor)
    except Interrupted as e:
        keep = ["--runs", str(args.runs), "--seed", str(args.seed)] + (
            ["--patterns", args.patterns] if args.patterns else []) + (["--kinds", args.kinds] if args.kinds else []) + (
            ["--workers", str(args.workers)] if args.workers else []) + (
            ["--scheduler", args.scheduler] if args.scheduler else [])
        _interrupted(e, _resume_command("matrix", args, keep))
        return 130
    if args.json:
        _print_json(matrix.to_dict())
    else:
        show.print_matrix(matrix, out, args.out)
    if args.plot is not None:
        from weir.faults.matrix import heatmap
        from .notebook import show as picture
        picture(heatmap(matrix)).save(args.plot)
        if not args.json:
            sys.stderr.write(f"wrote {args.plot}\n")
    return EXIT_OK


def _cmd_diff(args, out) -> int:
    import subprocess
    import tempfile

    from weir.analysis.diff import diff_dict, first_difference, load_trace
    if len(args.what) == 2:
        scenarios = [w for w in args.what if w.endswith(".toml") or (not Path(w).exists() and w in builtin_scenarios())]
        if scenarios:  # two scenarios, or one and a trace: not two traces
            raise ScenarioError("diff", raw("two scenarios" if len(scenarios) == 2 else "a scenario and a trace"),
                                "one scenario (run twice, in two processes), or two traces saved by "
                                "`weir run --save-trace`")
        left, right = (load_trace(p) for p in args.what)
        label = f"{args.what[0]} and {args.what[1]}"
    elif len(args.what) == 1:
        scenario = load_scenario(args.what[0])  # a clear error now, rather than twice in the children
        seed = scenario.seed if args.seed is None else args.seed
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for hash_seed in ("1", "2"):  # different hash seeds: salted string hashes and set order leak out
                path = str(Path(tmp) / f"trace{hash_seed}.npz")
                child = subprocess.run(
                    [sys.executable, "-c", "import sys; from weir.cli import main; sys.exit(main(sys.argv[1:]))",
                     "run", args.what[0], "--seed", str(seed), "--json", "--save-trace", path],
                    env={**os.environ, "PYTHONHASHSEED": hash_seed}, capture_output=True, text=True)
                if child.returncode not in (EXIT_OK, EXIT_MISMATCH):
                    sys.stderr.write(child.stderr)
                    return EXIT_BAD_INPUT
                paths.append(path)
            left, right = (load_trace(p) for p in paths)
        label = f"two runs of {scenario.name} seed {seed} in two processes (PYTHONHASHSEED 1 and 2)"
    else:
        raise ScenarioError("diff", " ".join(args.what), "one scenario, or two trace files")
    if args.json:
        data = diff_dict(label, left, right)
        _print_json(data)
        return EXIT_OK if data["identical"] else EXIT_MISMATCH
    difference = first_difference(left, right)
    if difference is None:
        out.print(f"identical: {label}, {len(left)} trace rows each, sha256 {left.sha256()}")
        return EXIT_OK
    out.print(f"DIFFERENT: {label}")
    out.print(difference.text(), markup=False, highlight=False)
    return EXIT_MISMATCH


def _cmd_demo(args, out) -> int:
    results = api.spectrum(args.seed)
    if args.json:
        _print_json(api.demo_dict(args.seed, results))
    else:
        show.print_spectrum(results, out)
    return EXIT_OK if all(r.matches for r in results) else EXIT_MISMATCH


def _cmd_explore(args, out) -> int:
    scenario = load_scenario(args.scenario)
    out_dir = _existing_dir("--out", args.out, "the fault schedule")

    runs = f" or {args.runs} runs" if args.runs else ""
    if not args.json:
        out.print(f"explore {escape(scenario.name)}: claims {', '.join(api.claims_of(scenario))}; budget "
                  f"{args.budget:g}s{runs}, search seed {args.seed}")
    with Progress("explore", args.budget, "seconds of the budget", enabled=not args.json) as bar:
        def progress(report) -> None:
            if report.shrinking is not None:  # shrinking is bounded by runs, not by the budget
                bar.update(report.shrink_runs, SHRINK_RUNS, label="explore, shrinking", unit="runs at most",
                           note=f"{report.shrinking} broken after {report.runs} runs")
                return
            bar.update(min(report.seconds, args.budget),
                       note=f"{report.runs} runs, {report.runs_per_second:.1f} runs/s, nothing broken yet")
        report = api.explore(scenario, args.budget, args.seed, progress=progress, rates=args.kinds, swarm=args.swarm,
                             max_runs=args.runs)
    if args.json:
        saved = show.save_counterexample(report, args.scenario, out_dir)
        _print_json(report.to_dict(None if saved is None else {"faults_file": str(saved[0]), "replay": saved[1]}))
    else:
        show.print_explore(report, args.scenario, out_dir, out)
    return EXIT_MISMATCH if report.counterexample is not None else EXIT_OK


def _cmd_crashpoints(args, out) -> int:
    from weir.faults.coverage import crash_points
    scenario = load_scenario(args.scenario)
    if args.out is not None:
        _existing_dir("--out", args.out, "the failing schedules")
    if not args.json:
        out.print(f"crash points of {escape(scenario.name)}: claims {', '.join(api.claims_of(scenario))}")
    with Progress(f"crashpoints ({args.kind})", 0, "runs", enabled=not args.json) as bar:  # total: first update
        coverage = crash_points(scenario, args.seed, kind=args.kind, progress=bar.update)
    if args.json:
        _print_json(coverage.to_dict())
    else:
        show.print_coverage(coverage, out, shlex.quote(args.scenario), args.out)
    return EXIT_OK if coverage.held else EXIT_MISMATCH


def _cmd_schema(args, out) -> int:
    from .schemas import schema
    if args.name is not None and args.out is not None:
        raise ScenarioError("--out", args.out, "nothing with a NAME (--out writes every schema)")
    if args.name is not None:
        _print_json(schema(args.name))
        return EXIT_OK
    written = []
    if args.out is not None:
        from weir.sim.kernel.files import atomic_write
        folder = _writable_dir("--out", args.out)
        folder.mkdir(parents=True, exist_ok=True)
        for name in SCHEMAS:
            path = folder / f"{name}.schema.json"
            atomic_write(path, json.dumps(schema(name), indent=2) + "\n")
            written.append(str(path))
    if args.json:
        _print_json({"schema_version": SCHEMA_VERSION, "schemas": dict(SCHEMAS), "written": written})
    elif written:
        for path in written:
            sys.stderr.write(f"wrote {path}\n")
    else:
        width = max(map(len, SCHEMAS))
        for name, what in SCHEMAS.items():
            out.print(f"{name:<{width}}  {what}", markup=False, highlight=False)
    return EXIT_OK


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """weir's own warnings (a deprecated key) as one line on stderr, not a file and a source line."""
    sys.stderr.write(f"weir: warning: {message}\n")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = show.console()
    warnings.showwarning = _one_line_warning
    try:
        return {"list": _cmd_list, "run": _cmd_run, "demo": _cmd_demo, "explore": _cmd_explore,
                "crashpoints": _cmd_crashpoints, "report": _cmd_report, "diff": _cmd_diff,
                "sweep": _cmd_sweep, "matrix": _cmd_matrix, "schema": _cmd_schema}[args.command](args, out)
    except WeirError as e:
        sys.stderr.write(f"weir: {e}\n")
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # the reader of stdout left (`weir run --json | head`): nothing to say
        _stdout_to_devnull()
        return EXIT_PIPE
    except OSError as e:  # a path weir could not read or write: the user's to fix
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        sys.stderr.write(f"weir: {where}{e.strerror or e} (a path weir could read or write)\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("weir: interrupted\n")
        return 130
    except Exception as e:  # noqa: BLE001 - a bug in weir: one line, the traceback kept for the report
        return _internal_error(e, argv)


EXIT_INTERNAL = 3


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush of what the gone reader did
    not take raises nothing more (Python's documented way to leave on a broken pipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # (a stdout with no file descriptor: a test's capture)
        pass


def _internal_error(error: Exception, argv: list[str] | None) -> int:
    """A bug in weir: one line asking for a report, with the command and where the traceback is."""
    import tempfile
    import traceback
    command = "weir " + shlex.join(sys.argv[1:] if argv is None else argv)
    fd, path = tempfile.mkstemp(prefix="weir-internal-error-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write(f"{command}\n\n")
        traceback.print_exception(error, file=f)
    sys.stderr.write(f"weir: internal error ({type(error).__name__}: {str(error)[:120]}); this is a bug in weir: "
                     f"please report it with the command `{command}` and the traceback in {path}\n")
    return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
