"""Recovery after a crash at every step of the checkpoint protocol, on every task node.

A reference run gives the times of each protocol step of one checkpoint; then each task node is
crashed exactly at each step (and 1us after it, since events at one instant run in order), and
exactly-once must hold every time: with the upsert sink and with the two-phase-commit sink.
"""

from __future__ import annotations

import pytest

import weir
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Checkpointing, Fault
from weir.sim.scenario.nodes import JOB_NODES

from .helpers import small

STEPS = (
    ("CKPT_TRIGGER", "coordinator", None),  # the coordinator asks for checkpoint n
    ("RECV", "source", "TRIGGER"),  # the source gets the request
    ("CKPT_SNAPSHOT", "source", None),  # the source injects the barrier and snapshots its offsets
    ("CKPT_SNAPSHOT", "processor", None),  # the barrier reached the processor: state snapshot
    ("CKPT_SNAPSHOT", "sink", None),  # the barrier reached the sink: pre-commit
    ("CKPT_COMPLETE", "coordinator", None),  # the snapshot is durable: complete
    ("RECV", "sink", "NOTIFY"),  # the sink hears of it: commit (two-phase commit)
    ("RECV", "source", "NOTIFY"),  # the source hears of it: commit offsets
    ("COMMIT", "broker", None),  # the offsets are committed
)


def step_times(run, checkpoint: int) -> dict[str, int]:
    """The time of each protocol step for `checkpoint`, from the trace."""
    times = {}
    rows = run.trace.rows()
    started = next(r["time"] for r in rows if r["kind"] == "CKPT_TRIGGER" and r["checkpoint"] == checkpoint)
    for kind, node, message in STEPS:
        for r in rows:
            if r["kind"] != kind or r["node"] != node or r["time"] < started:
                continue
            if message and r.get("message") != message:
                continue
            if kind.startswith("CKPT") and r.get("checkpoint") != checkpoint:
                continue
            times[f"{kind}:{node}:{message or ''}"] = r["time"]
            break
    return times


@pytest.mark.slow
@pytest.mark.parametrize("sink,parallelism,unaligned", [("upsert", 1, False), ("transactional", 1, False),
                                                        ("transactional", 2, False), ("upsert", 2, True)])
def test_exactly_once_survives_a_crash_at_every_checkpoint_step(sink, parallelism, unaligned):
    """Also with two source and two processor subtasks (each step timed at its first occurrence),
    aligned with two-phase commit per sink subtask, and unaligned."""
    scenario = small("exactly_once", records=3_000, sink=sink, parallelism=parallelism, source_parallelism=parallelism,
                     checkpoint=Checkpointing(interval="40ms", unaligned=unaligned))
    reference = execute(scenario, 1)
    times = step_times(reference, checkpoint=2)
    expected_steps = len(STEPS) - (0 if sink == "transactional" else 1)  # no sink NOTIFY without 2PC
    assert len(times) == expected_steps, sorted(times)
    assert list(times.values()) == sorted(times.values()), times  # the protocol's steps happen in this order
    failures = []
    for step, t in times.items():
        for node in JOB_NODES + ("broker",):
            for offset in (0, 1):
                run = execute(scenario.with_faults((Fault(node=node, at=t + offset, down_for="15ms"),)), 1)
                r = weir.result_of(run)
                if not (r.status == "drained" and r.verdict("exactly_once").held):
                    failures.append((step, node, offset, r.status, r.verdict("exactly_once").summary, "seed 1"))
    assert failures == []
