"""Instructions, not seconds: weir against the bare-simpy floor under valgrind's callgrind.

A shared machine moves wall-clock ratios by a tenth from run to run; an instruction count is the same
for the same code, inputs and environment whatever else the machine does. Each side runs in a
process of its own (hash seed fixed, bytecode cached by a first run), and the count of a process
that only imports the same modules is subtracted, so what is left is the run itself.

    .venv/bin/python bench/instructions.py [--records N]     # needs valgrind (apt install valgrind)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
CHILD = """
import sys
sys.path.insert(0, {bench!r})
from run import scenario, windowed
from weir.sim.scenario.run import execute
from bare_simpy import run_bare
which, n = sys.argv[1], int(sys.argv[2])
if which == "record":
    execute(scenario(n, 500))
elif which == "windowed":
    execute(windowed(n, 500))
elif which == "floor":
    run_bare(n, 500, produce_batch=10_000)
elif which == "windowed floor":
    run_bare(n, 500, produce_batch=1_000)
"""


def count(which: str, records: int) -> int:
    """Instructions of one process that runs `which` (or only imports, for "imports")."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # cached bytecode: compiling is not the run
    code = CHILD.format(bench=str(BENCH))
    subprocess.run([sys.executable, "-c", code, which, "1000"], env=env, check=True, capture_output=True)
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c",
                          code, which, str(records)], env=env, check=True, capture_output=True, text=True)
    return int(re.search(r"Collected : ([\d,]+)", out.stderr).group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt install valgrind): no instruction counts")
        return 0
    base = count("imports", args.records)
    runs = {which: count(which, args.records) - base for which in ("record", "floor", "windowed", "windowed floor")}
    print(f"instructions (callgrind, start-up subtracted), {args.records:,} records at batch size 500:")
    for weir_side, floor in (("record", "floor"), ("windowed", "windowed floor")):
        print(f"  {weir_side:<9} weir {runs[weir_side] / 1e6:>8,.0f}M  floor {runs[floor] / 1e6:>6,.0f}M  "
              f"ratio {runs[floor] / runs[weir_side]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
