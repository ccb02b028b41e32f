"""The `weir` command line: a thin shell over weir.api. Bad input: one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import json
import sys

from sim.errors import WeirError
from sim.scenario import builtin_scenarios, load_scenario

from . import api, show

__all__ = ["main"]

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"weir: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_BAD_INPUT)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed: got {text!r}; accepts a whole number >= 0") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--seed: got {value}; accepts a whole number >= 0")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="weir", description="Deterministic simulation and chaos testing for data pipelines.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list the built-in scenarios")
    p_run = sub.add_parser("run", help="run a scenario and check its invariants")
    p_run.add_argument("scenario", help="a built-in scenario name (see `weir list`) or a path to a TOML file")
    p_run.add_argument("--seed", type=_seed, default=None, help="the seed (default: the scenario's)")
    p_run.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
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
    result = api.run(load_scenario(args.scenario), args.seed)
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = show.console()
    try:
        return {"list": _cmd_list, "run": _cmd_run, "demo": _cmd_demo}[args.command](args, out)
    except WeirError as e:
        sys.stderr.write(f"weir: {e}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("weir: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
