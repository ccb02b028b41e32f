"""The result of a run is small, picklable and JSON-able; a pinned hash guards cross-machine replay."""

from __future__ import annotations

import json
import pickle

import weir

# Trace hashes of `weir run NAME --seed 1`: a record pipeline, a windowed one, two-phase commit and a
# transactional producer. They may change only when the model changes on purpose; then update them
# in the same commit and say why. A change without a model change means determinism broke (a new
# platform, or a numpy, simpy or SQLite upgrade that changed a stream or an order).
GOLDEN = {
    ("exactly_once_crash", 1): "325148f9270d8de2aa5297fc75cbb9b1ffab58f4e6d068e17244574a9727e850",
    ("late_data_side_output", 1): "fb9651e7e1c386c9a5f28e852a9675cd74b7b091091cb256ff8c180a13c5dd1c",
    ("kafka_to_delta", 1): "145ab03ab17bbf74f83f0a6d805d166768edc263e2d3c5ff8fb949bffe3ae2fa",
    ("txn_read_committed", 1): "67c32eda05f5c342f98c7dc2b2897e535d47f0d6ad3b9d3ba20251615a1286b2",
}


def test_golden_hash():
    for (name, seed), expected in GOLDEN.items():
        assert weir.run(name, seed).trace_sha256 == expected, f"{name} seed {seed}"


def test_result_pickles_and_round_trips():
    r = weir.run("at_least_once_crash", seed=2)
    blob = pickle.dumps(r)
    assert len(blob) < 10_000
    back = pickle.loads(blob)
    assert back == r and back.matches and back.verdict("no_duplicates").held is False


def test_result_is_json_able():
    r = weir.run("at_most_once_crash", seed=2)
    data = json.loads(json.dumps(r.to_dict()))
    assert data["counts"]["lost"] == r.lost > 0
    assert data["faults"] == ["t=0.350s crash processor for 0.200s"]


def test_run_accepts_a_faults_override():
    scenario = weir.load_scenario("at_most_once_crash")
    r = weir.run(scenario, seed=1, faults=())
    assert r.lost == 0 and r.faults == () and not r.matches  # it claims a loss that no longer happens
