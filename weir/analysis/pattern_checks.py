"""Checkers of the patterns' own promises: payments charged once and all, an outbox whose events
match its orders, sagas that end all-committed or all-compensated."""

from __future__ import annotations

import numpy as np

from weir.analysis.verdict import RunLike, Verdict, _committed, _first, _judge, produced_ids

__all__ = ["no_double_charge", "payments_complete", "outbox_consistent", "saga_atomic", "no_double_compensation"]


def _payment_counts(run: RunLike) -> tuple[np.ndarray, np.ndarray]:
    """(the payments in the source log, charges per payment id)."""
    payment_of = np.asarray(run.payment_of)
    payments = np.unique(payment_of[produced_ids(run.source)])
    charged = np.asarray(run.charges["payment_id"], dtype=np.int64)
    top = int(max(payments.max(initial=-1), charged.max(initial=-1))) + 1
    return payments, np.bincount(charged, minlength=top)


def no_double_charge(run: RunLike) -> Verdict:
    """No payment was charged more than once (the seed's "a payment should never be processed twice")."""
    _payments_seen, charges = _payment_counts(run)
    twice = np.flatnonzero(charges > 1)
    amounts = dict(zip(np.asarray(run.charges["payment_id"]).tolist(), np.asarray(run.charges["amount"]).tolist()))
    overcharged = sum(amounts[int(p)] * int(charges[p] - 1) for p in twice)
    evidence = {"charges": int(charges.sum()), "charged_twice_or_more": len(twice), "extra_charges": int((charges[twice] - 1).sum()),
                "overcharged_amount": overcharged, "first_payment_ids": _first(twice)}
    if len(twice):
        return Verdict("no_double_charge", False, f"{len(twice)} payments were charged more than once "
                       f"({overcharged} overcharged); first payment ids {_first(twice)}", evidence)
    return Verdict("no_double_charge", True, f"no payment was charged twice ({int(charges.sum())} charges)", evidence)


def payments_complete(run: RunLike) -> Verdict:
    """Every payment in the source log was charged and recorded in the payments table."""
    payments, charges = _payment_counts(run)
    recorded = np.zeros(len(charges), dtype=bool)
    recorded[np.asarray(run.sink["payment_id"], dtype=np.int64)] = True
    missing = payments[(charges[payments] == 0) | ~recorded[payments]]
    evidence = {"payments": len(payments), "missing": len(missing), "first_missing_ids": _first(missing)}
    if len(missing):
        return Verdict("payments_complete", False, f"{len(missing)} of {len(payments)} payments were never applied; "
                       f"first payment ids {_first(missing)}", evidence)
    return Verdict("payments_complete", True, f"all {len(payments)} payments applied", evidence)


def outbox_consistent(run: RunLike) -> Verdict:
    """Every order in the application's database has exactly one event in the log, and every event
    an order: no row without its event, no event without its row, no event twice."""
    orders = np.asarray(run.orders, dtype=np.int64)
    ids = _committed(run.source)
    events, counts = np.unique(ids, return_counts=True)
    no_event = np.setdiff1d(orders, events)
    no_order = np.setdiff1d(events, orders)
    twice = events[counts > 1]
    evidence = {"orders": len(orders), "events": len(events), "orders_without_event": len(no_event),
                "events_without_order": len(no_order), "events_twice": len(twice),
                "first_orders_without_event": _first(no_event), "first_events_without_order": _first(no_order)}
    return _judge("outbox_consistent", [(no_event, "orders have no event"), (no_order, "events have no order"),
                                        (twice, "events are in the log twice")],
                  f"each of {len(orders)} orders has exactly one event", evidence)


def _saga_effects(run: RunLike) -> tuple[np.ndarray, np.ndarray]:
    """Per (saga, service): steps applied and compensations applied, as two (sagas x 4) arrays."""
    saga = run.saga
    n = len(saga["outcome"])
    done = np.zeros((n, 4), dtype=np.int64)
    undone = np.zeros((n, 4), dtype=np.int64)
    do = saga["action"] == 1
    np.add.at(done, (saga["saga"][do], saga["service"][do]), 1)
    np.add.at(undone, (saga["saga"][~do], saga["service"][~do]), 1)
    return done, undone


def saga_atomic(run: RunLike) -> Verdict:
    """Every saga ended all-committed (every step applied once, none undone) or all-compensated
    (every step it applied undone, so nothing is left in effect)."""
    done, undone = _saga_effects(run)
    outcome = run.saga["outcome"]
    net = done - undone
    committed = (done == 1).all(axis=1) & (undone == 0).all(axis=1)
    compensated = (net == 0).all(axis=1)
    unfinished = np.flatnonzero(outcome < 0)
    partial = np.flatnonzero(~committed & ~compensated)
    evidence = {"sagas": len(outcome), "committed": int(committed.sum()), "compensated": int((compensated & ~committed).sum()),
                "partial": len(partial), "unfinished": len(unfinished), "first_partial": _first(partial)}
    return _judge("saga_atomic", [(partial, "sagas left partly applied"), (unfinished, "sagas never ended")],
                  f"all {len(outcome)} sagas ended all-committed ({int(committed.sum())}) or all-compensated "
                  f"({int((compensated & ~committed).sum())})", evidence)


def no_double_compensation(run: RunLike) -> Verdict:
    """No compensation took effect twice: each step is undone at most as often as it was applied."""
    done, undone = _saga_effects(run)
    twice = np.flatnonzero(((undone > 1) | (undone > done)).any(axis=1))
    evidence = {"compensations": int(undone.sum()), "sagas_compensated_twice": len(twice), "first_sagas": _first(twice)}
    return _judge("no_double_compensation", [(twice, "sagas had a compensation take effect twice")],
                  f"no compensation took effect twice ({int(undone.sum())} compensations)", evidence)
