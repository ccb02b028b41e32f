"""Where a run's time goes: the top costs of `make bench`'s pipelines, by part of weir and by function.

    .venv/bin/python bench/costs.py [--records N] [--top K]

Each pipeline runs once to warm up, then once under cProfile. For each, it prints the share of the
profiled time spent in each part (weir's packages, simpy, numpy, SQLite, the rest of Python) and
the functions with the most time of their own. cProfile slows small Python functions more than
C, so a share is a guide to where to look, not a measurement: `bench/run.py` measures, and
`bench/instructions.py` counts instructions without this distortion.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import into, scenario, windowed  # noqa: E402

from weir.sim.scenario.run import execute  # noqa: E402

#: (label, the scenario for `records` records); batch size 1 runs a fortieth of them
PIPELINES = (
    ("record pipeline, batch 500", lambda n: scenario(n, 500)),
    ("record pipeline, batch 1", lambda n: scenario(max(n // 40, 100), 1)),
    ("windowed pipeline, batch 500", lambda n: windowed(n, 500)),
    ("exactly-once upsert, batch 500", lambda n: into("upsert", n)),
)

#: Parts, by where a function is defined; the first that matches names it
PARTS = (
    ("weir kernel (network, nodes, trace)", "/weir/sim/kernel/"),
    ("weir kafka (log, producer, group)", "/weir/sim/kafka/"),
    ("weir stream (tasks, operators, windows)", "/weir/sim/stream/"),
    ("weir sinks and patterns", "/weir/sim/patterns/"),
    ("weir scenario (build, results)", "/weir/sim/scenario/"),
    ("weir, other", "/weir/"),
    ("simpy", "/simpy/"),
    ("numpy", "/numpy/"),
)


def part_of(function: tuple[str, int, str]) -> str:
    """The part a cProfile function key (file, line, name) belongs to."""
    file, _line, name = function
    if file == "~":  # a built-in: named by what it belongs to
        if "sqlite3" in name:
            return "SQLite"
        if "numpy" in name:
            return "numpy"
        return "Python built-ins"
    for part, marker in PARTS:
        if marker in file:
            return part
    return "Python, other"


def profile(build, records: int) -> pstats.Stats:
    """One warm run, then one under cProfile."""
    sc = build(records)
    execute(sc)
    profiler = cProfile.Profile()
    profiler.enable()
    execute(sc)
    profiler.disable()
    return pstats.Stats(profiler)


def summary(stats: pstats.Stats, top: int) -> list[str]:
    """Lines: the share of each part, then the `top` functions by their own time."""
    entries = stats.stats  # {(file, line, name): (primitive calls, calls, own time, cumulative time, callers)}
    total = sum(e[2] for e in entries.values()) or 1e-12
    parts: dict[str, float] = {}
    for function, (_cc, _nc, own, _cum, _callers) in entries.items():
        part = part_of(function)
        parts[part] = parts.get(part, 0.0) + own
    lines = ["  " + ", ".join(f"{part} {share / total:.0%}" for part, share in
                              sorted(parts.items(), key=lambda kv: (-kv[1], kv[0])) if share / total >= 0.005)]
    ranked = sorted(entries.items(), key=lambda kv: (-kv[1][2], kv[0]))[:top]
    for (file, line, name), (_cc, calls, own, _cum, _callers) in ranked:
        where = name if file == "~" else f"{name} ({Path(file).parent.name}/{Path(file).name}:{line})"
        lines.append(f"    {own / total:5.1%} {calls:>9,} calls  {where}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000, help="records per pipeline (batch size 1: a fortieth)")
    parser.add_argument("--top", type=int, default=8, help="functions to list per pipeline")
    args = parser.parse_args(argv)
    print(f"where the time goes (cProfile, one warm run each; shares of the profiled time, {args.records:,} records):")
    for label, build in PIPELINES:
        stats = profile(build, args.records)
        print(f"{label}:")
        for line in summary(stats, args.top):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
