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
    ("exactly_once_crash", 1): "d425f1b07cf6b4a44ad2134e358828fef7212e7e5178da4432fba3a1b9727ac5",
    ("late_data_side_output", 1): "cc9029039acaf25f46d63b6c0ddd5c44b67da88c1fb8b6deb8cd45be716039ba",
    ("kafka_to_delta", 1): "9baf7197753c82b2cb73a60d1011f29d64ac94e6fcb4c30e7753b08839f15c74",
    ("txn_read_committed", 1): "45d41f228d285fdc8cfcc40c0ab26ebfaed22b0065d6b4ef24b67030cb9e102d",
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


def test_with_settings_changes_the_named_settings_and_nothing_else():
    base = weir.load_scenario("dedup_ttl_too_short")
    changed = base.with_settings({"payments.ttl": "5s", "workload.records": 2_000, "seed": 3})
    assert (changed.payments.ttl, changed.workload.records, changed.seed) == (5_000_000, 2_000, 3)
    assert changed.payments.lock_ttl == base.payments.lock_ttl and changed.faults == base.faults
    assert base.payments.ttl == 50_000  # the original is untouched (scenarios are frozen)
    # a table the scenario lacks starts from its defaults
    added = weir.load_scenario("at_least_once_crash").with_settings({"checkpoint.interval": "1s"})
    assert added.checkpoint == weir.Checkpointing(interval="1s")


def test_with_settings_of_every_value_a_builtin_has_gives_the_same_scenario():
    from dataclasses import fields

    from weir.sim.scenario.model import TABLES
    for name in weir.builtin_scenarios():
        scenario = weir.load_scenario(name)
        for table in TABLES:
            current = getattr(scenario, table)
            if current is not None:
                same = {f"{table}.{f.name}": getattr(current, f.name) for f in fields(current)}
                assert scenario.with_settings(same) == scenario, f"{name}: [{table}]"


def test_with_settings_refuses_a_bad_key_or_value_naming_it():
    import pytest
    base = weir.load_scenario("dedup_ttl_too_short")
    for settings, message in (
        ({"payments.tll": 1}, "payments.tll: got an unknown key (did you mean 'ttl'?); accepts one of dedup, ttl"),
        ({"paymnts.ttl": 1}, "paymnts.ttl: got an unknown table (did you mean 'payments'?)"),
        ({"records": 1}, "records: got a key outside any table (did you mean 'workload.records'?)"),
        ({"payments.ttl": "soon"}, "payments.ttl: got 'soon'; accepts a whole number of microseconds"),
        ([("payments.ttl", "5s")], "settings: got [('payments.ttl', '5s')]; accepts a dict of 'table.key': value"),
    ):
        with pytest.raises(weir.ScenarioError) as caught:
            base.with_settings(settings)
        assert str(caught.value).startswith(message), str(caught.value)


def test_execute_says_what_it_takes_for_a_wrong_scenario_seed_or_faults():
    """Something other than a Scenario, name or path, a seed that is not a whole number >= 0, or
    faults that are not Faults: one clear error each (they were AttributeErrors from deep inside,
    or a ValueError in another form). A name runs as its Scenario does, as in weir.run, and a
    numpy integer is a seed like the int it equals."""
    import numpy as np
    import pytest

    sc = weir.load_scenario("exactly_once_crash")
    assert weir.execute("exactly_once_crash").trace.sha256() == weir.execute(sc).trace.sha256()
    for wrong in (None, 5, ["exactly_once_crash"]):
        with pytest.raises(TypeError, match=r"^execute takes a weir.Scenario, or a built-in name or TOML path; got "):
            weir.execute(wrong)
    for seed in (-1, "3", 1.0, True, np.int64(-2), 2**62 + 1, 2**70):  # (past 2**62: the trace's 64 bits overflowed)
        with pytest.raises(weir.ScenarioError, match=r"^seed: got .*; accepts a whole number from 0 to 4_611_686_018_427_387_904$"):
            weir.execute(sc, seed=seed)
    assert weir.execute(weir.load_scenario("commit_before_ack"), seed=2**62).status == "drained"
    for faults, got in ((("crash",), "str"), (sc.faults[0], "Fault"), ([*sc.faults, None], "NoneType")):
        with pytest.raises(weir.ScenarioError, match=rf"^faults: got a {got}; accepts a tuple of weir.Fault"):
            weir.execute(sc, faults=faults)
    assert weir.execute(sc, seed=np.int64(5)).trace.sha256() == weir.execute(sc, seed=5).trace.sha256()
    assert weir.execute(sc, faults=list(sc.faults)).trace.sha256() == weir.execute(sc).trace.sha256()


def test_check_result_of_sweep_and_explore_say_what_they_take():
    """The other entry points of the Python API: a clear error for a wrong argument, before any run."""
    import pytest

    sc = weir.load_scenario("exactly_once_crash")
    with pytest.raises(TypeError, match=r"^check takes a finished run .*; got str$"):
        weir.check("exactly_once_crash")
    with pytest.raises(TypeError, match=r"^result_of takes a finished run .*; got str$"):
        weir.result_of("exactly_once_crash")
    for seeds, got in (("abc", "'abc'"), ([1, -1], "-1"), ([1.5], "1.5"), ([True], "True"), (20, "20"),
                       (None, "None"), ([2**63], str(2**63))):
        with pytest.raises(weir.ScenarioError, match=rf"^seeds: got {got}; accepts seeds, each a whole number from 0 "
                           r"to 4_611_686_018_427_387_904, as a list or a range \(range\(20\): 20 seeds\)$"):
            weir.sweep(sc, seeds)
    for kwargs, message in (({"workers": 0}, "workers: got 0; accepts a whole number from 1 to 256, or None"),
                            ({"workers": "2"}, "workers: got '2'; accepts a whole number from 1 to 256"),
                            ({"faults": [1]}, "faults: got an int; accepts a tuple of weir.Fault"),  # (it broke the pool)
                            ({"faults": "crash"}, "faults: got a str; accepts a tuple of weir.Fault"),
                            ({"progress": 5}, "progress: got 5; accepts a function of (done, total), or None"),
                            ({"journal": 123}, "journal: got 123; accepts a path"),
                            ({"resume": True}, "resume: got True; accepts False without a journal")):
        with pytest.raises(weir.ScenarioError) as raised:
            weir.sweep(sc, range(2), **kwargs)
        assert str(raised.value).startswith(message), (kwargs, str(raised.value))
    for kwargs, key in (({"max_runs": 0}, "max_runs"), ({"max_runs": 2.5}, "max_runs"), ({"budget_s": 0}, "budget_s"),
                        ({"budget_s": float("nan")}, "budget_s"), ({"budget_s": "1"}, "budget_s")):
        with pytest.raises(weir.ScenarioError, match=rf"^{key}: got "):
            weir.explore(sc, **kwargs)


def test_a_scenario_part_of_the_wrong_class_is_named_in_one_line():
    """A dict where a Workload goes, a string where a Checkpointing or a tuple of Faults goes, one
    Fault alone: a ScenarioError naming the part (they failed later, as AttributeErrors). A list
    or a generator of Faults is a tuple of them."""
    import pytest

    crash = weir.Fault(node="sink", at="1ms")
    for kwargs, line in (({"workload": {"records": 5}}, "workload: got a dict; accepts a weir.Workload"),
                         ({"checkpoint": "100ms"}, "checkpoint: got a str; accepts a weir.Checkpointing, or None"),
                         ({"faults": ("crash",)}, "faults: got a str; accepts a tuple of weir.Fault"),
                         ({"faults": crash}, "faults: got a Fault; accepts a tuple of weir.Fault"),
                         ({"links": None}, "links: got a NoneType; accepts a tuple of weir.LinkSpec")):
        with pytest.raises(weir.ScenarioError) as raised:
            weir.Scenario(**kwargs)
        assert str(raised.value) == line
    assert weir.Scenario(faults=[crash]).faults == weir.Scenario(faults=(f for f in [crash])).faults == (crash,)
    for wrong, got in (("crash", "str"), (crash, "Fault"), (("crash",), "str")):  # and what writes them out
        with pytest.raises(weir.ScenarioError, match=rf"^faults: got a {got}; accepts a tuple of weir.Fault$"):
            weir.faults_toml(wrong)


def test_a_scenario_error_pickles_with_its_line():
    """A worker process's ScenarioError reaches the sweep that started it: it pickles (its
    __init__ takes its parts, so the default pickling failed and broke the process pool), with
    the same line, whatever the value it got."""
    import pickle

    for got in (3, "x", object(), weir.Fault(kind="crash", node="sink")):
        error = weir.ScenarioError("faults", got, "a tuple of weir.Fault", "my.toml", hint="Fault")
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is weir.ScenarioError and str(again) == str(error)
        assert (again.key, again.accepts, again.file, again.hint) == ("faults", "a tuple of weir.Fault", "my.toml", "Fault")
