"""Idempotent payments: the KV store with TTL, the payments sink, and its invariants."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings, strategies as st

import weir
from weir.analysis.checkers import check
from weir.sim.patterns.kv import KVStore
from weir.sim.scenario.run import execute
from weir.sim.scenario.model import Fault, PaymentSettings
from weir.sim.scenario.loader import load_scenario


def test_kv_setex_expires_and_set_nx_is_a_lock():
    kv = KVStore()
    kv.setex("processed:a", 100, 1, now=0)
    assert kv.exists("processed:a", 99) and not kv.exists("processed:a", 100)
    assert kv.expired == 1 and len(kv) == 0
    assert kv.set_nx("lock:a", "w1", 50, now=0) and not kv.set_nx("lock:a", "w2", 50, now=10)
    assert kv.get("lock:a", 10) == "w1"
    assert kv.set_nx("lock:a", "w2", 50, now=50)  # the lock expired: the duplicate window reopens
    assert kv.delete("lock:a") and not kv.exists("lock:a", 51)


def test_resends_are_new_records_carrying_an_earlier_payment():
    run = execute(load_scenario("payments_idempotent"))
    payment_of = run.payment_of
    n = run.scenario.workload.records
    assert len(payment_of) > n and sorted(set(payment_of.tolist())) == list(range(n))
    resent = np.flatnonzero(np.bincount(payment_of) == 2)
    # a re-send comes after the original, about resend_after (40 batches of 100) later
    first = {p: int(np.flatnonzero(payment_of == p)[0]) for p in resent[:20].tolist()}
    again = {p: int(np.flatnonzero(payment_of == p)[1]) for p in resent[:20].tolist()}
    assert all(3900 <= again[p] - first[p] <= 4100 for p in first)


def test_resends_of_a_producer_without_pauses_come_after_every_original():
    """workload.produce_interval = 0 produces every batch at once: a re-send resend_after later comes
    after all of them (it divided by the interval, and the run stopped with an internal error)."""
    base = load_scenario("payments_idempotent").with_settings({"workload.records": 300, "workload.produce_interval": 0})
    later, at_once = (execute(base.with_settings({"workload.resend_after": after})) for after in ("200ms", 0))
    for run in (later, at_once):
        assert run.status == "drained" and len(run.payment_of) > 300, run.status
    # 200ms later: the originals in order, then the re-sends in order; at once: each right after its original
    assert later.payment_of[:300].tolist() == list(range(300)) and np.all(np.diff(later.payment_of[300:]) > 0)
    assert np.all(np.diff(at_once.payment_of) >= 0) and len(at_once.payment_of) == len(later.payment_of)


def test_payment_scenarios():
    ok, no_dedup, short = (weir.run(n) for n in ("payments_idempotent", "payments_no_dedup", "dedup_ttl_too_short"))
    assert ok.matches and no_dedup.matches and short.matches
    assert ok.payments == {"payments": 10000, "applied": 10000, "charges": 10000, "charged_twice_or_more": 0}
    assert no_dedup.payments["charged_twice_or_more"] > short.payments["charged_twice_or_more"] > 400
    assert "no_loss" not in [v.invariant for v in ok.verdicts]  # payments are judged per payment, not per record


def test_a_long_enough_ttl_closes_the_window_and_a_short_one_does_not():
    base = load_scenario("dedup_ttl_too_short")
    held = {}
    for ttl in ("50ms", "199ms", "1s"):
        s = replace(base, payments=PaymentSettings(ttl=ttl), faults=())
        held[ttl] = {v.invariant: v.held for v in check(execute(s))}["no_double_charge"]
    assert held == {"50ms": False, "199ms": False, "1s": True}


@settings(max_examples=6, deadline=None)
@given(st.sampled_from(["processor", "sink", "source", "broker"]), st.integers(0, 400_000), st.integers(1, 150_000))
def test_dedup_holds_for_any_crash(node, at, down_for):
    s = load_scenario("payments_idempotent").with_faults((Fault(node=node, at=at, down_for=down_for),))
    verdicts = {v.invariant: v for v in check(execute(s))}
    assert verdicts["no_double_charge"].held and verdicts["payments_complete"].held, (
        f"{node} down at {at}us for {down_for}us, seed {s.seed}: {verdicts['no_double_charge'].summary}")


def test_payments_complete_fails_when_a_payment_was_never_charged():
    from types import SimpleNamespace

    from weir.analysis.checkers import no_double_charge, payments_complete
    ids = np.arange(4, dtype=np.int64)
    run = SimpleNamespace(source={"record_id": ids, "state": np.zeros(4, dtype=np.int64)},
                          payment_of=np.array([0, 1, 2, 0]),  # record 3 re-sends payment 0
                          charges={"payment_id": np.array([0, 1, 0]), "amount": np.array([5, 6, 5])},
                          sink={"payment_id": np.array([0, 1])})
    v = payments_complete(run)
    assert not v.held and v.evidence["first_missing_ids"] == [2]
    d = no_double_charge(run)
    assert not d.held and d.evidence["overcharged_amount"] == 5 and d.evidence["first_payment_ids"] == [0]
