"""How a user's code that is itself checked with `mypy --strict` uses weir's public API.

tests/test_typing.py runs mypy on this file beside weir's own public modules: if weir's types
were wrong (a duration read back as `int | str`, a result field as Any), this would not check.
It is never run, only type-checked.
"""

from __future__ import annotations

import weir
from weir import Checkpointing, Expect, Fault, Pipeline, RunResult, Scenario, Verdict, Workload


def build() -> Scenario:
    # durations go in as microseconds or as strings with a unit, lists or tuples alike ...
    scenario = Scenario(
        name="typed",
        workload=Workload(records=2000, partitions=2, produce_interval="5ms"),
        pipeline=Pipeline(mode="exactly_once", commit_interval=weir.millis(50)),
        checkpoint=Checkpointing(interval="50ms"),
        faults=[Fault(kind="crash", node="processor", at="30ms", down_for=weir.millis(10))],
        expect=Expect(hold=["no_loss", "no_duplicates"]),
    )
    # ... and come out as whole microseconds and tuples
    interval: int = scenario.checkpoint.interval if scenario.checkpoint is not None else 0
    heals: int = scenario.faults[0].at + scenario.faults[0].down_for
    held: tuple[str, ...] = scenario.expect.hold
    assert interval + heals >= 0 and held
    return scenario


def judge(scenario: Scenario) -> bool:
    result: RunResult = weir.run(scenario, seed=3)
    verdict: Verdict = result.verdict("no_loss")
    lost: int | None = result.lost
    data = result.to_dict()
    sha: str = data["trace"]["sha256"]
    counted: int = data["counts"]["produced"]
    schema: dict[str, object] = weir.schema("run")
    return verdict.held and lost == 0 and bool(sha) and counted > 0 and bool(schema)


def sweep_seeds() -> list[int]:
    sweep = weir.sweep("at_least_once_crash", range(2), workers=1)
    return [seed for seed in sweep.failing_seeds()]


def faults_from_file(path: str) -> tuple[Fault, ...]:
    faults = weir.load_faults(path)
    return tuple(f for f in faults if f.heals_at > 0)
