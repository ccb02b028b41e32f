"""Peak memory per record of a run and its checks, each in a fresh process (`make bench` runs it).

    python bench/memory.py                       # exactly_once_crash at 1M and 10M records, and
                                                 # the other two sinks and a windowed job at 1M
    python bench/memory.py SCENARIO RECORDS...   # others

For each size a child process imports weir, runs a 1,000-record warm-up (so imports, SQLite and
numpy's own buffers are in the baseline), notes its peak resident memory, then runs the scenario
with RECORDS records and checks it (`weir.result_of`: every checker that applies), and reports
the growth of the peak over the baseline: in all, per record, and per record beyond the trace
(which grows with the run's events, not its records). The aim (issue 14): at most 100 bytes per
record beyond the trace, and a ten-million-record run in 2 GB.
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys
from dataclasses import replace
import weir
from weir.sim.scenario.run import execute

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

name, records = sys.argv[1], int(sys.argv[2])
base = weir.load_scenario(name)
def sized(n):
    return replace(base, workload=replace(base.workload, records=n),
                   run=replace(base.run, max_events=10**10, max_time="100000s"))
weir.result_of(execute(sized(1_000)))
before = peak()
run = execute(sized(records))
result = weir.result_of(run)
print(json.dumps({"before": before, "peak": peak(), "trace": run.trace.nbytes, "status": result.status,
                  "as_expected": result.matches}))
"""


def measure(scenario: str, records: int) -> dict:
    """Run one size in a fresh process; its baseline, peak and trace bytes."""
    out = subprocess.run([sys.executable, "-c", CHILD, scenario, str(records)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(scenario: str, records: int) -> tuple[str, float]:
    """One size's line, and its bytes per record beyond the trace."""
    m = measure(scenario, records)
    grown = m["peak"] - m["before"]
    beyond = (grown - m["trace"]) / records
    return (f"  {scenario} {records:>11,} records: peak {m['peak'] / 2**20:,.0f} MiB, grown {grown / 2**20:,.0f} MiB "
            f"= {grown / records:.0f} B/record, {beyond:.0f} B/record beyond the trace "
            f"({m['trace'] / records:.1f} B/record); {m['status']}, "
            f"{'as expected' if m['as_expected'] else 'NOT as expected'}"), beyond


#: What `make bench` measures: the goal's scenario (an upsert sink on SQLite) at both sizes, then
#: the append sink (numpy columns), the two-phase-commit sink (SQLite, sorted on reading) and a
#: windowed job (panes and late records on SQLite, its windows checked against a batch job's) at a million.
DEFAULT = (("exactly_once_crash", 1_000_000), ("exactly_once_crash", 10_000_000),
           ("at_least_once_crash", 1_000_000), ("kafka_to_delta", 1_000_000), ("late_data_side_output", 1_000_000))


def main(argv: list[str]) -> None:
    runs = [(argv[0], int(a)) for a in argv[1:] or ["1000000", "10000000"]] if argv else DEFAULT
    print("peak memory of a run and its checks, each size in a fresh process (goal: <= 100 B/record beyond the trace):")
    beyond = []
    for scenario, records in runs:
        line, per_record = report(scenario, records)
        beyond.append(per_record)
        print(line, flush=True)
    # for scripts: the first run's (make bench: exactly_once_crash, a million records) beyond the trace
    print(f"peak memory: {beyond[0]:.0f} bytes per record")


if __name__ == "__main__":
    main(sys.argv[1:])
