"""Small scenarios for fast tests."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from weir.sim.scenario.model import Checkpointing, Expect, Fault, Pipeline, Scenario, Workload


def small(mode: str = "exactly_once", faults: tuple[Fault, ...] = (), records: int = 4000,
          checkpoint: Checkpointing | None = None, **pipeline) -> Scenario:
    """A quick version of the spectrum scenario: 4000 records, all in the log by t=0.1s.

    exactly_once checkpoints every 50ms unless `checkpoint` says otherwise; other modes only if given one.
    """
    if checkpoint is None and mode == "exactly_once":
        checkpoint = Checkpointing(interval="50ms")
    return Scenario(
        name=f"small_{mode}",
        workload=Workload(records=records, partitions=4, keys=50, produce_batch=200, produce_interval="5ms"),
        pipeline=Pipeline(mode=mode, **pipeline),
        checkpoint=checkpoint,
        faults=faults,
        expect=Expect(),
    )


def hand_run(source_ids, sink_ids, status: str = "drained") -> SimpleNamespace:
    """A made-up finished run, for feeding checkers known losses and duplicates."""
    return SimpleNamespace(source={"record_id": np.asarray(source_ids, dtype=np.int64)},
                           sink={"record_id": np.asarray(sink_ids, dtype=np.int64)}, status=status)


def oracle_running_totals(source: dict[str, np.ndarray]) -> dict[int, int]:
    """record id -> its key's running total, computed record by record in log order (the batch answer)."""
    totals: dict[int, int] = {}
    out: dict[int, int] = {}
    order = np.lexsort((source["offset"], source["partition"]))
    for i in order:
        k = int(source["key"][i])
        totals[k] = totals.get(k, 0) + int(source["value"][i])
        out[int(source["record_id"][i])] = totals[k]
    return out
