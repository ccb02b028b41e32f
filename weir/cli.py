"""The `weir` command line: a thin shell over weir.api. Bad input: one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import json
import sys

from dataclasses import replace
from pathlib import Path

from faults.coverage import POINT_KINDS
from sim.errors import ScenarioError, WeirError
from sim.scenario import builtin_scenarios, load_scenario
from sim.loader import load_faults

from . import api, show

__all__ = ["main"]

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT = 0, 1, 2


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
    from faults.explore import NEMESIS_KINDS
    accepts = "kind[=rate],... with kinds from " + ", ".join(NEMESIS_KINDS) + " and rates > 0"
    rates = {}
    for part in text.split(","):
        kind, _, rate = part.strip().partition("=")
        try:
            value = float(rate) if rate else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"--kinds: got {part.strip()!r}; accepts {accepts}") from None
        if kind not in NEMESIS_KINDS or not value > 0:
            raise argparse.ArgumentTypeError(f"--kinds: got {part.strip()!r}; accepts {accepts}")
        rates[kind] = value
    return rates


_seed = _number("--seed", int, lambda v: v >= 0, "a whole number >= 0")
_count = _number("--records", int, lambda v: v >= 1, "a whole number >= 1")
_seconds = _number("--budget", float, lambda v: v > 0, "a number of seconds > 0")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="weir", description="Deterministic simulation and chaos testing for data pipelines.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list the built-in scenarios")
    p_run = sub.add_parser("run", help="run a scenario and check its invariants")
    p_run.add_argument("scenario", help="a built-in scenario name (see `weir list`) or a path to a TOML file")
    p_run.add_argument("--seed", type=_seed, default=None, help="the seed (default: the scenario's)")
    p_run.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p_run.add_argument("--faults", default=None, help="a TOML file of [[faults]] tables to run instead of the scenario's")
    p_run.add_argument("--records", type=_count, default=None, help="run with this many records (workload.records)")
    p_explore = sub.add_parser("explore", help="search crash schedules for a run that breaks the scenario's claims")
    p_explore.add_argument("scenario", help="a built-in scenario name or a path to a TOML file")
    p_explore.add_argument("--budget", type=_seconds, default=60.0, help="seconds to search (default 60)")
    p_explore.add_argument("--seed", type=_seed, default=0, help="the search's seed (default 0)")
    p_explore.add_argument("--out", default=".", help="where to write the fault schedule it finds (default: here)")
    p_explore.add_argument("--kinds", type=_rates, default={"crash": 1.0},
                           help="fault families and relative rates, e.g. crash=2,partition=1,clock_step=1 "
                                "(default: crash)")
    p_explore.add_argument("--swarm", action="store_true", help="switch fault families on and off at random per run")
    p_points = sub.add_parser("crashpoints", help="fault each node at each protocol step (crash, pause, partition, delay, duplicate, reorder); a matrix of what held")
    p_points.add_argument("scenario", help="a built-in scenario name or a path to a TOML file")
    p_points.add_argument("--seed", type=_seed, default=None, help="the seed (default: the scenario's)")
    p_points.add_argument("--kind", choices=POINT_KINDS, default="crash",
                          help="the fault to inject at each point (default crash)")
    p_demo = sub.add_parser("demo", help="the delivery-semantics spectrum, measured side by side")
    p_demo.add_argument("--seed", type=_seed, default=1, help="the seed for all three runs (default 1)")
    p_demo.add_argument("--json", action="store_true", help="print a JSON array instead of the table")
    return parser


def _cmd_list(args, out) -> int:
    names = list(builtin_scenarios())
    width = max(map(len, names), default=0)
    for name in names:
        scenario = load_scenario(name)
        first = scenario.description.split(". ")[0].rstrip(".")
        out.print(f"{name:<{width}}  {scenario.pipeline.mode:<14} {first}", overflow="ellipsis", no_wrap=True)
    return EXIT_OK


def _cmd_run(args, out) -> int:
    scenario = load_scenario(args.scenario)
    if args.records is not None:
        scenario = replace(scenario, workload=replace(scenario.workload, records=args.records))
    faults = load_faults(args.faults) if args.faults is not None else None
    result = api.run(scenario, args.seed, faults)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        show.print_run(result, out)
    return EXIT_OK if result.matches else EXIT_MISMATCH


def _cmd_demo(args, out) -> int:
    results = api.spectrum(args.seed)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        show.print_spectrum(results, out)
    return EXIT_OK if all(r.matches for r in results) else EXIT_MISMATCH


def _cmd_explore(args, out) -> int:
    scenario = load_scenario(args.scenario)
    out_dir = Path(args.out)
    if not out_dir.is_dir():
        raise ScenarioError("--out", args.out, "an existing folder to write the fault schedule into")

    def progress(report) -> None:
        sys.stderr.write(f"\rexplore: {report.runs} runs, {report.runs_per_second:.1f} runs/s, "
                         f"{report.seconds:.0f}s of {args.budget:g}s, nothing broken yet")
        sys.stderr.flush()

    out.print(f"explore {scenario.name}: claims {', '.join(api.claims_of(scenario))}; budget {args.budget:g}s, "
              f"search seed {args.seed}")
    report = api.explore(scenario, args.budget, args.seed, progress=progress, rates=args.kinds, swarm=args.swarm)
    sys.stderr.write("\n")
    show.print_explore(report, args.scenario, out_dir, out)
    return EXIT_MISMATCH if report.counterexample is not None else EXIT_OK


def _cmd_crashpoints(args, out) -> int:
    from faults.coverage import crash_points
    scenario = load_scenario(args.scenario)
    out.print(f"crash points of {scenario.name}: claims {', '.join(api.claims_of(scenario))}")
    coverage = crash_points(scenario, args.seed, kind=args.kind)
    show.print_coverage(coverage, out)
    return EXIT_OK if coverage.held else EXIT_MISMATCH


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = show.console()
    try:
        return {"list": _cmd_list, "run": _cmd_run, "demo": _cmd_demo, "explore": _cmd_explore,
                "crashpoints": _cmd_crashpoints}[args.command](args, out)
    except WeirError as e:
        sys.stderr.write(f"weir: {e}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("weir: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
