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
    ("exactly_once_crash", 1): "ef65525f6abaa183f11ce5f1bd2abcb15633d0fc0a24369be8f6d9daaacf5816",
    ("late_data_side_output", 1): "fb9651e7e1c386c9a5f28e852a9675cd74b7b091091cb256ff8c180a13c5dd1c",
    ("kafka_to_delta", 1): "c6ea38236404ee4b9ff2e096d76cefa6f48d1cbb6884098b1986c1c8bd132f22",
    ("txn_read_committed", 1): "d021441fe751fdb994a842ca03ced5a0f21a30b9b9f04822ef329067e2f6ca88",
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
