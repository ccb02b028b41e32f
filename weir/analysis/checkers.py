"""Invariant checkers: pure functions from a finished run to a verdict with evidence.

A checker reads only the run's durable results (the records in the source log, the rows in the sink
table, how the run ended), never live objects, so it can be fed a hand-made run in a test. Every
check is a few vectorised numpy operations over record-id columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from weir.analysis.reconcile import reconciled
from weir.analysis.trace_checks import checkpoint_atomic, commits_after_ack, late_accounted, watermarks_sane
from weir.analysis.verdict import SHOW_IDS, RunLike, Verdict, _first
from weir.analysis.windowed import MIN_TIME, closing_watermark, no_late_records, window_complete
from weir.sim.scenario.invariants import APPLIES, applicable

__all__ = ["Verdict", "INVARIANTS", "applicable", "check", "produced_ids", "no_loss", "no_duplicates", "exactly_once", "drained",
           "checkpoints_succeed", "commits_monotonic", "no_aborted_reads", "no_silent_drops", "no_double_charge", "payments_complete", "outbox_consistent", "saga_atomic",
           "no_double_compensation", "load_balanced", "drains_in_time", "SHOW_IDS"]

def produced_ids(source: dict[str, np.ndarray]) -> np.ndarray:
    """The distinct ids of the records produced: committed in the log, each once however often it was
    written, in order (record ids are whole numbers >= 0, so a bincount does it in linear time)."""
    ids = _committed(source)
    if not len(ids):
        return ids
    return np.flatnonzero(np.bincount(ids)).astype(np.int64)


def _committed(source: dict[str, np.ndarray]) -> np.ndarray:
    """The ids of the records the log holds as committed (a transaction's aborted records never were)."""
    ids = np.asarray(source["record_id"], dtype=np.int64)
    state = source.get("state")
    return ids if state is None else ids[np.asarray(state) == 0]


def _tally(run: RunLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(committed source ids, copies in the sink of each id up to the largest id seen, sink ids)."""
    src = produced_ids(run.source)
    dst = np.asarray(run.sink["record_id"], dtype=np.int64)
    top = int(max(src.max(initial=-1), dst.max(initial=-1))) + 1
    copies = np.bincount(dst, minlength=top) if len(dst) else np.zeros(top, dtype=np.int64)
    return src, copies, dst


def _loss(src: np.ndarray, copies: np.ndarray) -> np.ndarray:
    return np.sort(src[copies[src] == 0])


def _dups(copies: np.ndarray) -> tuple[np.ndarray, int]:
    ids = np.flatnonzero(copies > 1)
    return ids, int((copies[ids] - 1).sum())


def no_loss(run: RunLike) -> Verdict:
    """Every record in the source log has at least one row in the sink."""
    src, copies, _ = _tally(run)
    lost = _loss(src, copies)
    evidence = {"produced": len(src), "lost": len(lost), "first_lost_ids": _first(lost)}
    if len(lost):
        return Verdict("no_loss", False, f"{len(lost)} of {len(src)} records never reached the sink; "
                       f"first ids {_first(lost)}", evidence)
    return Verdict("no_loss", True, f"all {len(src)} records reached the sink", evidence)


def no_duplicates(run: RunLike) -> Verdict:
    """No record has more than one row in the sink."""
    _, copies, dst = _tally(run)
    dup_ids, extra = _dups(copies)
    evidence = {"sink_rows": len(dst), "duplicated": len(dup_ids), "extra_rows": extra, "first_duplicated_ids": _first(dup_ids)}
    if len(dup_ids):
        return Verdict("no_duplicates", False, f"{len(dup_ids)} records have more than one row ({extra} extra rows); "
                       f"first ids {_first(dup_ids)}", evidence)
    return Verdict("no_duplicates", True, f"no record has more than one of the {len(dst)} rows", evidence)


def exactly_once(run: RunLike) -> Verdict:
    """Every source record has exactly one row in the sink, and the sink has no row from elsewhere."""
    src, copies, dst = _tally(run)
    lost = _loss(src, copies)
    dup_ids, extra = _dups(copies)
    in_source = np.zeros(len(copies), dtype=bool)
    in_source[src] = True
    phantom = np.flatnonzero((copies > 0) & ~in_source)
    evidence = {"produced": len(src), "sink_rows": len(dst), "lost": len(lost), "duplicated": len(dup_ids),
                "phantom": len(phantom), "first_lost_ids": _first(lost), "first_duplicated_ids": _first(dup_ids),
                "first_phantom_ids": _first(phantom)}
    return _judge("exactly_once", [(lost, "lost"), (dup_ids, "duplicated"),
                                   (phantom, "rows for records the source never had")],
                  f"each of {len(src)} records is in the sink exactly once", evidence)


def _judge(name: str, problems: list[tuple[np.ndarray, str]], held: str, evidence: dict[str, Any]) -> Verdict:
    """Violated, naming each kind of problem found ("3 lost (first [...])"), or held with `held`."""
    found = [f"{len(ids)} {what} (first {_first(ids)})" for ids, what in problems if len(ids)]
    if found:
        return Verdict(name, False, "; ".join(found), evidence)
    return Verdict(name, True, held, evidence)


def drained(run: RunLike) -> Verdict:
    """The run ended because the pipeline finished its work, not because a guard stopped it."""
    if run.status == "drained":
        return Verdict("drained", True, "the pipeline processed everything and stopped", {"status": run.status})
    why = {"time_limit": "simulated time reached run.max_time first",
           "event_limit": "the event budget run.max_events ran out first",
           "stalled": "nothing was left to happen, yet work was unfinished"}.get(run.status, run.status)
    return Verdict("drained", False, f"did not drain: {why}", {"status": run.status})


def no_aborted_reads(run: RunLike) -> Verdict:
    """No sink row came from a record of an aborted transaction (Jepsen's "aborted read")."""
    src, sink = run.source, run.sink
    if "partition" not in sink or "offset" not in sink:
        return Verdict("no_aborted_reads", True, "the sink keeps no partition and offset: not judged", {"judged": False})
    sizes = np.bincount(src["partition"], minlength=int(sink["partition"].max(initial=-1)) + 1)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    where = starts[sink["partition"]] + sink["offset"]
    aborted = np.asarray(src["state"])[where] == 2 if len(where) else np.zeros(0, bool)
    ids = np.asarray(sink["record_id"])[aborted]
    evidence = {"judged": True, "aborted_reads": int(aborted.sum()), "first_ids": _first(np.unique(ids))}
    if aborted.any():
        return Verdict("no_aborted_reads", False, f"{int(aborted.sum())} sink rows came from aborted transactions; "
                       f"first ids {_first(np.unique(ids))}", evidence)
    return Verdict("no_aborted_reads", True, "no sink row came from an aborted transaction", evidence)


def checkpoints_succeed(run: RunLike) -> Verdict:
    """No checkpoint failed: every one triggered completed, or was cut short by a failover (none timed
    out, none refused by the store)."""
    stats = dict(run.checkpoint_stats or {})
    timed_out, completed = stats.get("timed_out", 0), stats.get("completed", 0)
    longest = stats.get("max_duration_us", 0)
    refused = stats.get("write_failures", 0)
    if refused:
        return Verdict("checkpoints_succeed", False, f"{refused} of {stats.get('triggered', 0)} checkpoints could not be "
                       f"written (refused by the store, or torn and caught on read-back); {timed_out} timed out, "
                       f"{completed} completed", stats)
    if timed_out:
        return Verdict("checkpoints_succeed", False,
                       f"{timed_out} of {stats.get('triggered', 0)} checkpoints timed out ({completed} completed; "
                       f"the longest ran {longest / 1000:.1f}ms, writing up to {stats.get('max_bytes', 0):,} bytes)", stats)
    return Verdict("checkpoints_succeed", True, f"{completed} checkpoints completed, none timed out "
                   f"(the longest took {longest / 1000:.1f}ms)", stats)


def load_balanced(run: RunLike) -> Verdict:
    """No processor subtask took in more than `expect.max_skew` times the mean number of records.

    The seed's "data skew causing hotspots": one subtask, given a hot key, does most of the work
    while its peers idle, and its full queue back-pressures the sources.
    """
    subtasks = list(getattr(run, "subtasks", ()) or ())
    limit = run.scenario.expect.max_skew if getattr(run, "scenario", None) is not None else 1.5
    records = [s["records"] for s in subtasks]
    mean = sum(records) / len(records) if records else 0.0
    skew = max(records) / mean if mean else 1.0
    busiest = records.index(max(records)) if records else 0
    stalled = sum(s.get("backpressured_us", 0) for s in getattr(run, "sources", ()) or ())
    evidence = {"records_per_subtask": records, "skew": round(skew, 3), "max_skew": limit, "busiest_subtask": busiest,
                "source_backpressured_us": stalled}
    share = f"subtask {busiest} took in {max(records) if records else 0} records, {skew:.2f}x the mean of {mean:.0f}"
    if skew > limit:
        return Verdict("load_balanced", False, f"{share} (more than {limit}x); the sources were back-pressured for "
                       f"{stalled / 1000:.0f}ms in all", evidence)
    return Verdict("load_balanced", True, f"{share} (at most {limit}x)", evidence)


def no_silent_drops(run: RunLike) -> Verdict:
    """Every record in the source log is in the sink or in the dead-letter queue: what failed was
    put aside with its metadata, never dropped without a trace (the seed's "don't drop data")."""
    src, copies, _ = _tally(run)
    dlq = getattr(run, "dlq", None)
    parked = np.zeros(len(copies), dtype=bool)
    if dlq is not None and len(dlq["record_id"]):
        ids = np.asarray(dlq["record_id"])
        ids = ids[ids < len(copies)]
        parked[ids] = True
    in_sink = copies[src] > 0
    only_dlq = ~in_sink & parked[src]
    dropped = np.sort(src[~in_sink & ~parked[src]])
    waiting = int((dlq["processed"] == 0).sum()) if dlq is not None else 0
    skipped = int(getattr(run, "skipped", 0) or 0)
    evidence = {"produced": len(src), "in_sink": int(in_sink.sum()), "only_in_dlq": int(only_dlq.sum()),
                "dlq_depth": waiting, "dropped": len(dropped), "skipped_counted": skipped,
                "first_dropped_ids": _first(dropped)}
    accounted = f"{int(in_sink.sum())} in the sink + {int(only_dlq.sum())} only in the DLQ"
    if len(dropped):
        how = (f"{min(skipped, len(dropped))} skipped by retry.exhausted = 'skip' (counted, not kept), "
               f"{max(len(dropped) - skipped, 0)} gone without a count") if skipped else "none of them even counted"
        return Verdict("no_silent_drops", False, f"{len(dropped)} of {len(src)} records are neither in the sink nor "
                       f"in the DLQ ({accounted}): {how}; first ids {_first(dropped)}", evidence)
    return Verdict("no_silent_drops", True, f"all {len(src)} records accounted for: {accounted}", evidence)


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


def commits_monotonic(run: RunLike) -> Verdict:
    """No partition's committed offset ever moved backwards: each accepted commit is at or past the
    one before it. An older commit that lands after a newer one (reordered or retried requests, a
    restore from an older checkpoint) rewinds the group, and a restart reads those records again."""
    from weir.sim.kernel.trace import Kind
    if getattr(run, "trace", None) is None:
        return Verdict("commits_monotonic", True, "the run has no trace: not judged", {"judged": False})
    cols = run.trace.columns
    rows = np.flatnonzero((cols["kind"] == Kind.COMMIT) & (cols["d"] == 1))
    part, offset, time = cols["a"][rows], cols["b"][rows], cols["time"][rows]
    order = np.lexsort((np.arange(len(rows)), part))  # by partition, in trace order within each
    part, offset, time = part[order], offset[order], time[order]
    back = np.flatnonzero((part[1:] == part[:-1]) & (offset[1:] < offset[:-1])) + 1
    evidence = {"commits": len(rows), "rewinds": len(back), "first_rewinds": [
        {"partition": int(part[i]), "from": int(offset[i - 1]), "to": int(offset[i]), "time_us": int(time[i])}
        for i in back[:SHOW_IDS]]}
    if len(back):
        first = evidence["first_rewinds"][0]
        return Verdict("commits_monotonic", False, f"{len(back)} commits moved an offset backwards; first: partition "
                       f"{first['partition']} from {first['from']} to {first['to']} at t={first['time_us'] / 1e6:.6f}s",
                       evidence)
    return Verdict("commits_monotonic", True, f"all {len(rows)} accepted commits moved forward or stayed", evidence)






def drains_in_time(run: RunLike) -> Verdict:
    """After the last fault healed, the pipeline drained within `run.drain_within` (the liveness phase).
    A windowed run whose watermark stalled has not drained, whatever its status: its closed windows
    never fire; the verdict names the stall."""
    bound = run.scenario.run.drain_within
    healed = max((f.heals_at for f in run.scenario.faults), default=0)
    took = run.end_time - healed
    evidence = {"status": run.status, "last_fault_healed_at": healed, "drained_after_us": took, "bound_us": bound}
    if run.status != "drained":
        return Verdict("drains_in_time", False, f"did not drain at all ({run.status})", evidence)
    stall = _stalled_watermark(run)
    if stall is not None:
        evidence.update(stall)
        return Verdict("drains_in_time", False, f"a stalled watermark: the records went through, but the watermark "
                       f"stopped at {stall['watermark_us'] / 1e6:.6f}s of event time, short of "
                       f"{stall['closing_us'] / 1e6:.6f}s, so the windows it should have closed never fire", evidence)
    if took > bound:
        return Verdict("drains_in_time", False, f"drained {took / 1000:.1f}ms after the last fault healed, "
                       f"more than the {bound / 1000:.1f}ms allowed", evidence)
    return Verdict("drains_in_time", True, f"drained {max(took, 0) / 1000:.1f}ms after the last fault healed "
                   f"(at most {bound / 1000:.1f}ms)", evidence)


def _stalled_watermark(run: RunLike) -> dict[str, int] | None:
    """For a windowed run: where its watermark stopped, if short of what the data closes (else None)."""
    if getattr(run, "windows", None) is None or run.scenario.window is None:
        return None
    closing = closing_watermark(run)
    mark = MIN_TIME if run.window_watermark is None else run.window_watermark
    return {"watermark_us": mark, "closing_us": closing} if mark < closing else None




















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








#: Every invariant weir checks, by name, in check order: its checker, and which scenarios it applies
#: to (the names and the predicates are weir.sim.scenario.invariants.APPLIES, which [expect] is checked against).
_CHECKERS: dict[str, Callable[[RunLike], Verdict]] = {
    "no_loss": no_loss,
    "no_duplicates": no_duplicates,
    "exactly_once": exactly_once,
    "window_complete": window_complete,
    "no_late_records": no_late_records,
    "checkpoints_succeed": checkpoints_succeed,
    "commits_monotonic": commits_monotonic,
    "no_aborted_reads": no_aborted_reads,
    "no_silent_drops": no_silent_drops,
    "no_double_charge": no_double_charge,
    "outbox_consistent": outbox_consistent,
    "saga_atomic": saga_atomic,
    "no_double_compensation": no_double_compensation,
    "payments_complete": payments_complete,
    "load_balanced": load_balanced,
    "reconciled": reconciled,
    "commits_after_ack": commits_after_ack,
    "checkpoint_atomic": checkpoint_atomic,
    "watermarks_sane": watermarks_sane,
    "late_accounted": late_accounted,
    "drained": drained,
    "drains_in_time": drains_in_time,
}
INVARIANTS: dict[str, tuple[Callable[[RunLike], Verdict], Callable[[Any], bool]]] = {
    name: (_CHECKERS[name], applies) for name, applies in APPLIES.items()}


def check(run: RunLike, names: Iterable[str] | None = None) -> tuple[Verdict, ...]:
    """Run the named checkers (by default every one that applies to the run), in INVARIANTS order."""
    scenario = getattr(run, "scenario", None)
    wanted = set(applicable(scenario)) if names is None else set(names)
    unknown = sorted(wanted - set(INVARIANTS))
    if unknown:
        raise ValueError(f"unknown invariant {unknown[0]!r}; known: {', '.join(INVARIANTS)}")
    return tuple(fn(run) for name, (fn, _applies) in INVARIANTS.items() if name in wanted)
