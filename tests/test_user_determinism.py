"""User code's determinism is checked: the values an operator computes enter the trace (a CRC-32 per
batch), so a run whose operator reads the wall clock, draws from an unseeded RNG or iterates a set
of strings has another hash, and weir diff points at the first batch whose values differ."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import weir
from weir.analysis.diff import first_difference
from weir.sim.scenario.run import execute

ROOT = Path(__file__).resolve().parent.parent


class WallClock(weir.Operator):
    def on_batch(self, batch, now):
        return batch.value + time.perf_counter_ns() % 1000  # the machine's clock, not `now`


class UnseededRng(weir.Operator):
    def on_batch(self, batch, now):
        return batch.value + random.randrange(1000)  # the global RNG: another draw every run


class SetOfStrings(weir.Operator):
    """The position of a key's name in a set of strings: Python salts str hashes per process."""

    def on_batch(self, batch, now):
        names = {f"key-{k}" for k in range(50)}
        order = {name: i for i, name in enumerate(names)}
        return np.array([order[f"key-{k % 50}"] for k in batch.key.tolist()], dtype=np.int64)


class Honest(weir.Operator):
    deterministic = False  # it reads `now`: exactly_once cannot know its values from the records alone

    def on_batch(self, batch, now):
        return batch.value + now % 1000  # `now` is the node's simulated clock: deterministic


def _scenario(operator) -> weir.Scenario:
    return weir.Scenario(workload=weir.Workload(records=2000), pipeline=weir.Pipeline(mode="exactly_once"),
                         checkpoint=weir.Checkpointing(interval="50ms"), operator=weir.ComponentSpec(operator))


def test_an_operator_reading_the_wall_clock_or_an_unseeded_rng_changes_the_hash_and_diff_finds_it():
    for operator in (WallClock, UnseededRng):
        one, two = execute(_scenario(operator), 1), execute(_scenario(operator), 1)
        assert one.trace_sha256 != two.trace_sha256, operator.__name__
        difference = first_difference(one.trace, two.trace)
        assert difference.left["kind"] == "OUTPUT" and difference.right["kind"] == "OUTPUT", difference.text()
        assert difference.left["values_crc32"] != difference.right["values_crc32"]


def test_an_honest_operator_gives_the_same_hash_every_time():
    assert execute(_scenario(Honest), 1).trace_sha256 == execute(_scenario(Honest), 1).trace_sha256


def test_an_operator_iterating_a_set_of_strings_changes_the_hash_across_processes():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import weir; from tests.test_user_determinism import "
            "SetOfStrings, _scenario; print(weir.run(_scenario(SetOfStrings), 1).trace_sha256)")
    hashes = set()
    for salt in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": salt}
        out = subprocess.run([sys.executable, "-c", code, str(ROOT)], env=env, capture_output=True, text=True,
                             check=True, cwd=ROOT)
        hashes.add(out.stdout.strip())
    assert len(hashes) > 1, hashes


class UnseededSource(weir.Source):
    """Flawed: draws its values from numpy's global generator instead of the `rng` it is given."""

    def generate(self, rng, records, keys):
        k = rng.integers(0, keys, records, dtype=np.int64)
        return k, np.random.default_rng().integers(1, 100, records, dtype=np.int64), np.zeros(records, dtype=np.int64)


class SeededSource(UnseededSource):
    def generate(self, rng, records, keys):
        k = rng.integers(0, keys, records, dtype=np.int64)
        return k, rng.integers(1, 100, records, dtype=np.int64), np.zeros(records, dtype=np.int64)


def test_a_source_that_ignores_its_rng_changes_the_hash_and_diff_finds_the_first_batch():
    def scenario(source):
        return weir.Scenario(workload=weir.Workload(records=2000, source=source), pipeline=weir.Pipeline(mode="exactly_once"),
                             checkpoint=weir.Checkpointing(interval="50ms"))

    one, two = execute(scenario(UnseededSource), 1), execute(scenario(UnseededSource), 1)
    difference = first_difference(one.trace, two.trace)
    assert difference is not None and difference.left["kind"] == "PRODUCE", difference and difference.text()
    assert difference.left["checksum"] != difference.right["checksum"]  # the same records, other values
    assert execute(scenario(SeededSource), 1).trace_sha256 == execute(scenario(SeededSource), 1).trace_sha256


class WallClockFee(weir.Operator):
    def on_batch(self, batch, now):
        return batch.value + time.perf_counter_ns() % 7


def test_a_nondeterministic_operator_before_a_window_changes_the_hash_too():
    def scenario(operator):
        return weir.Scenario(workload=weir.Workload(records=3000), pipeline=weir.Pipeline(mode="exactly_once"),
                             checkpoint=weir.Checkpointing(interval="50ms"), operators=(weir.ComponentSpec(operator),),
                             window=weir.WindowSettings(size="50ms"), watermarks=weir.WatermarkSettings())

    one, two = execute(scenario(WallClockFee), 1), execute(scenario(WallClockFee), 1)
    difference = first_difference(one.trace, two.trace)
    assert difference is not None and difference.left["kind"] == "OUTPUT", difference and difference.text()
    assert execute(scenario(Honest), 1).trace_sha256 == execute(scenario(Honest), 1).trace_sha256
