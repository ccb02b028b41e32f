"""How a run's cost grows, to size a sweep: records, partitions, parallelism, simulated time, faults, windows.

One base pipeline (100,000 records from 100 keys into 4 partitions, exactly once into the upsert
sink, a checkpoint every 100ms, batch size 500, 1,000 records produced every 1ms), then one
dimension changed at a time (the windowed rows aggregate in the processor, watermarks every 1ms
and 1ms behind, and write panes). Each row is the median of three runs in this process: wall seconds,
microseconds per record, and simulation events per record. `make bench` prints it; the README's
"Sizing a sweep" table is its output.

    .venv/bin/python bench/scale.py
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

from weir.sim.scenario.model import (
    Checkpointing, Fault, Pipeline, RunLimits, Scenario, WatermarkSettings, WindowSettings, Workload,
)
from weir.sim.scenario.run import execute

REPEATS = 3
RECORDS = 100_000


def base(records: int = RECORDS, partitions: int = 4, produce_interval: str = "1ms") -> Scenario:
    return Scenario(
        name="scale",
        workload=Workload(records=records, partitions=partitions, keys=100, produce_batch=1_000,
                          produce_interval=produce_interval),
        pipeline=Pipeline(mode="exactly_once", sink="upsert", batch_size=500, process_time=1, write_time=100),
        checkpoint=Checkpointing(interval="100ms"),
        run=RunLimits(max_time="1h", max_events=10**9),
    )


def crashes(n: int) -> Scenario:
    """The base spread over 1 s of simulated time (a batch every 10ms), with `n` processor crashes of
    1ms spread evenly over it: each fails the job, which restores the last checkpoint and replays
    from its offsets."""
    spread = base(produce_interval="10ms")
    return replace(spread, faults=tuple(Fault(kind="crash", node="processor", at=(i + 1) * 1_000_000 // (n + 1),
                                              down_for="1ms") for i in range(n)))


def windowed(scenario: Scenario, **window) -> Scenario:
    """`scenario` with its processor aggregating windows per key (a sum), watermarks every 1ms, 1ms behind."""
    return replace(scenario, window=WindowSettings(aggregate="sum", **window),
                   watermarks=WatermarkSettings(bound="1ms", interval="1ms"))


def rows() -> list[tuple[str, str, Scenario]]:
    """(dimension, value, scenario): the base, then one change at a time."""
    b = base()
    out = [("base", "100k records", b)]
    out += [("records", f"{n // 1000:,}k", base(records=n)) for n in (10_000, 1_000_000)]
    out += [("partitions", str(p), base(partitions=p)) for p in (16, 64)]
    out += [("parallelism", f"{p} subtasks", replace(b, pipeline=replace(b.pipeline, parallelism=p)))
            for p in (4, 16)]
    # the same records spread over more simulated time: polling pays for every idle millisecond
    for interval, label in (("10ms", "1 s"), ("100ms", "10 s"), ("1s", "100 s")):
        spread = base(produce_interval=interval)
        out.append(("simulated time", f"{label}, polling", replace(spread, pipeline=replace(spread.pipeline, fetch_max_wait=0))))
        out.append(("simulated time", f"{label}, default", spread))  # long polls of half the 20ms request timeout
        out.append(("simulated time", f"{label}, Kafka's",
                    replace(spread, pipeline=replace(spread.pipeline, fetch_max_wait="500ms", request_timeout="30s"))))
    out += [("faults", f"1 s, {n} crash{'es' if n != 1 else ''}", crashes(n)) for n in (0, 1, 3)]
    out += [("windows", "tumbling 2ms", windowed(b, kind="tumbling", size="2ms")),
            ("windows", "sliding 10ms every 2ms", windowed(b, kind="sliding", size="10ms", slide="2ms")),
            ("windows", "session, 1ms gap", windowed(b, kind="session", gap="1ms")),
            ("windows", "tumbling 2ms, 3 crashes", windowed(crashes(3), kind="tumbling", size="2ms"))]
    return out


def measure(scenario: Scenario) -> tuple[float, int, str, int]:
    """Median wall seconds, and the last run's events, status and job restarts."""
    times, run = [], None
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        run = execute(scenario)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), run.events, run.status, run.restarts


def main() -> None:
    print(f"how cost grows (median of {REPEATS}; base: {RECORDS:,} records, 4 partitions, parallelism 1, "
          "100ms of simulated production, exactly once into the upsert sink, no faults):")
    print(f"  {'dimension':<15} {'value':<22} {'wall s':>7} {'us/record':>10} {'events/record':>14} "
          f"{'restarts':>9}  status")
    for dimension, value, scenario in rows():
        seconds, events, status, restarts = measure(scenario)
        records = scenario.workload.records
        print(f"  {dimension:<15} {value:<22} {seconds:>7.2f} {seconds * 1e6 / records:>10.1f} "
              f"{events / records:>14.3f} {restarts:>9}  {status}", flush=True)


if __name__ == "__main__":
    main()
