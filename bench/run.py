"""`make bench`: weir against the bare-simpy floor, side by side in one process run.

Prints records per second for weir and the floor at batch sizes 1 and 500, the trace's size per
record for a million-record run, and as its last line the throughput ratio at batch size 500.
Each figure is the median of several repetitions, weir and the floor interleaved, so a noisy
neighbour slows both alike.
"""

from __future__ import annotations

import platform
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bare_simpy import run_bare  # noqa: E402

from sim.run import execute  # noqa: E402
from sim.scenario import Checkpointing, Pipeline, RunLimits, Scenario, Workload  # noqa: E402

REPEATS = 3


def scenario(records: int, batch_size: int) -> Scenario:
    """The floor's pipeline as a weir scenario: at_least_once, append sink, checkpoints, no faults."""
    return Scenario(
        name=f"bench_{batch_size}",
        workload=Workload(records=records, partitions=4, keys=100, produce_batch=10_000, produce_interval="1ms"),
        pipeline=Pipeline(mode="at_least_once", sink="append", batch_size=batch_size, max_in_flight=4,
                          process_time=1, write_time=100, network_latency=500, network_jitter=0,
                          commit_interval="100ms", poll_interval="1ms"),
        checkpoint=Checkpointing(interval="100ms", store_write_time=100),
        run=RunLimits(max_time="1h", max_events=10**9),
    )


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def measure(records: int, batch_size: int) -> tuple[float, float, object]:
    weir_s, bare_s, last = [], [], None
    sc = scenario(records, batch_size)
    for _ in range(REPEATS):
        dt, last = timed(lambda: execute(sc))
        weir_s.append(dt)
        dt, rows = timed(lambda: run_bare(records, batch_size))
        bare_s.append(dt)
        assert rows == records, f"the floor wrote {rows} rows, expected {records}"
    assert last.status == "drained" and len(last.sink["record_id"]) == records, "weir's bench run did not complete"
    return records / statistics.median(weir_s), records / statistics.median(bare_s), last


def main() -> None:
    print(f"weir bench: {platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
          f"median of {REPEATS}, weir and floor interleaved")
    print(f"{'batch':>6} {'records':>9} {'weir rec/s':>12} {'bare rec/s':>12} {'ratio':>6}")
    ratio_500 = None
    for batch_size, records in ((1, 20_000), (500, 1_000_000)):
        weir_rate, bare_rate, run = measure(records, batch_size)
        ratio = weir_rate / bare_rate
        print(f"{batch_size:>6} {records:>9} {weir_rate:>12,.0f} {bare_rate:>12,.0f} {ratio:>6.2f}")
        if batch_size == 500:
            ratio_500 = ratio
            trace_bytes = run.trace.nbytes
            print(f"trace at batch size 500: {len(run.trace):,} events, {trace_bytes / 1e6:.2f} MB for "
                  f"{records:,} records = {trace_bytes / records:.2f} bytes per record")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak:.0f} MB")
    print(f"weir/bare-simpy throughput ratio: {ratio_500:.2f}")


if __name__ == "__main__":
    main()
