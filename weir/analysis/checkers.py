"""Invariant checkers: pure functions from a finished run to a verdict with evidence.

A checker reads only the run's durable results (the records in the source log, the rows in the sink
table, how the run ended), never live objects, so it can be fed a hand-made run in a test. Every
check is a few vectorised numpy operations over record-id columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from weir.analysis.memo import shared
from weir.analysis.reconcile import reconciled
from weir.analysis.upsert import upsert_summary
from weir.analysis.trace_checks import checkpoint_atomic, commits_after_ack, late_accounted, watermarks_sane
from weir.analysis.oracles import matches_reference, user_oracle, wrong_values
from weir.analysis.pattern_checks import (
    no_double_charge, no_double_compensation, outbox_consistent, payments_complete, saga_atomic,
)
from weir.analysis.verdict import SHOW_IDS, RunLike, Verdict, _committed, _distinct, _first, _judge, produced_ids
from weir.analysis.windowed import MIN_TIME, closing_watermark, event_time_complete, no_late_records, window_complete
from weir.sim.kernel.errors import UserHookError, near
from weir.sim.kernel.memory import BIG_RUN, trim
from weir.sim.kernel.node import Status
from weir.sim.scenario.invariants import APPLIES, applicable
from weir.sim.scenario.run import Run

__all__ = ["Verdict", "INVARIANTS", "applicable", "check", "produced_ids", "no_loss", "no_duplicates", "exactly_once", "drained",
           "checkpoints_succeed", "commits_monotonic", "no_aborted_reads", "log_complete", "no_silent_drops", "no_double_charge", "payments_complete", "outbox_consistent", "saga_atomic",
           "no_double_compensation", "load_balanced", "drains_in_time", "no_user_errors", "SHOW_IDS"]

def _tally(run: RunLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(committed source ids, copies in the sink of each id up to the largest id seen, sink ids).
    The copies are counted first, so that the count's working copy of the sink's ids and the
    source's distinct ids are never held at once (a million-record run's peak is made of such)."""
    committed = _committed(run.source)
    dst = np.asarray(run.sink["record_id"])
    top = int(max(committed.max(initial=-1), dst.max(initial=-1))) + 1
    copies = np.bincount(dst, minlength=top) if len(dst) else np.zeros(top, dtype=np.int64)
    return _distinct(committed, top), copies, dst


def _loss(src: np.ndarray, copies: np.ndarray) -> np.ndarray:
    """The ids in `src` (sorted) with no copy in the sink: through a byte a record id, not copies[src]'s eight."""
    lost: np.ndarray = src[(copies == 0)[src]]
    return lost


def _dups(copies: np.ndarray) -> tuple[np.ndarray, int]:
    ids = np.flatnonzero(copies > 1)
    return ids, int((copies[ids] - 1).sum())


def _unprocessed(run: RunLike, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split records missing from the sink into (lost, still to be processed). A run that did not
    drain stopped with records at or past its frontier (Run.frontier: where the job would have
    gone on from) not yet processed: they are not judged. One that drained has none."""
    frontier = getattr(run, "frontier", ())
    if run.status == "drained" or not frontier or not len(missing):
        return missing, missing[:0]
    src = run.source
    past = np.asarray(src["offset"]) >= np.asarray(frontier, dtype=np.int64)[np.asarray(src["partition"])]
    pending = np.isin(missing, np.asarray(src["record_id"])[past])
    return missing[~pending], missing[pending]


def no_loss(run: RunLike) -> Verdict:
    """Every record in the source log has at least one row in the sink. In a run that did not
    drain, records it had not yet processed are not judged (only those before its frontier)."""
    src, copies, _ = _tally(run)
    lost, pending = _unprocessed(run, _loss(src, copies))
    evidence = {"produced": len(src), "lost": len(lost), "first_lost_ids": _first(lost),
                "judged": run.status == "drained", "unprocessed": len(pending)}
    not_judged = (f"; {len(pending)} records still to be processed were not judged: the run did not drain "
                  f"({run.status})") if run.status != "drained" else ""
    if len(lost):
        merged = upsert_summary(run) if getattr(run, "sink_records", None) is not None else None
        if merged is not None and merged["merged"]:  # handed to the sink, then overwritten by another record
            key = ", ".join(merged["dedup_key"])
            pair = merged["example"]
            example = f" (records {pair[0]} and {pair[1]} share it; the row holds {pair[0]})" if pair else ""
            return Verdict("no_loss", False, f"{len(lost)} of {len(src)} records have no row in the sink: the upsert "
                           f"merged {merged['merged']} distinct records into other records' rows, its dedup key ({key}) "
                           f"is not unique per record{example}; first ids {_first(lost)}{not_judged}",
                           {**evidence, "merged": merged["merged"], "dedup_key": merged["dedup_key"]})
        return Verdict("no_loss", False, f"{len(lost)} of {len(src)} records never reached the sink; "
                       f"first ids {_first(lost)}{not_judged}", evidence)
    if run.status != "drained":
        return Verdict("no_loss", True, f"not judged: the run did not drain ({run.status}); {len(pending)} records "
                       "were still to be processed, and every record before them reached the sink", evidence)
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
    """Every source record has exactly one row in the sink, with the value that processing each
    record of the log exactly once gives (weir.analysis.oracles.expected_values, where it is
    known), and the sink has no row from elsewhere."""
    values = wrong_values(run)  # first: its working arrays are gone before the tally's are made
    wrong, first_wrong, expected_from = values if values is not None else (np.zeros(0, dtype=np.int64), [], None)
    src, copies, dst = _tally(run)
    lost, pending = _unprocessed(run, _loss(src, copies))
    dup_ids, extra = _dups(copies)
    in_source = np.zeros(len(copies), dtype=bool)
    in_source[src] = True
    phantom = np.flatnonzero((copies > 0) & ~in_source)
    evidence = {"produced": len(src), "sink_rows": len(dst), "lost": len(lost), "duplicated": len(dup_ids),
                "phantom": len(phantom), "first_lost_ids": _first(lost), "first_duplicated_ids": _first(dup_ids),
                "first_phantom_ids": _first(phantom), "values_judged_by": expected_from,
                "wrong_values": len(wrong), "first_wrong": first_wrong, "first_wrong_ids": _first(wrong),
                "unprocessed": len(pending)}
    judged = len(src) - len(pending)
    held = (f"each of {len(src)} records is in the sink exactly once" if not len(pending) else
            f"not judged for {len(pending)} records still to be processed when the run stopped ({run.status}); "
            f"each of the other {judged} is in the sink exactly once")
    verdict = _judge("exactly_once", [(lost, "lost"), (dup_ids, "duplicated"),
                                      (phantom, "rows for records the source never had"),
                                      (wrong, f"written with a value other than {expected_from} gives")],
                     held + (f", with the value {expected_from} gives" if expected_from else ""), evidence)
    if not verdict.held and first_wrong:
        f = first_wrong[0]
        return Verdict("exactly_once", False, f"{verdict.summary}; record {f['record_id']} (key {f['key']}): "
                       f"got {f['got']}, expected {f['expected']}", evidence)
    return verdict


def log_complete(run: Run) -> Verdict:
    """Every record the upstream had (ids 0 to records - 1) is committed in the log: what a
    transaction abort took back (a crash, a timeout) was written again. A loss here is upstream
    of the log, where no_loss (the log against the sink) cannot see it."""
    records = run.scenario.workload.records
    committed = produced_ids(run.source)
    have = np.zeros(records, dtype=bool)
    have[committed[committed < records]] = True
    missing = np.flatnonzero(~have)
    evidence = {"upstream": records, "committed": int(have.sum()), "missing": len(missing), "first_lost_ids": _first(missing)}
    return _judge("log_complete", [(missing, "upstream records never committed in the log")],
                  f"all {records} upstream records are committed in the log", evidence)


def _error_line(error: Any) -> str:
    return error.line() if hasattr(error, "line") else str(error)


def no_user_errors(run: RunLike) -> Verdict:
    """No user component raised, returned what its base does not accept, or ran past
    run.user_timeout: the finding (component, hook, simulated time, what it was handling, the
    user's traceback in the evidence). With run.on_user_error = "fail_over" an operator or sink
    that raised failed the job over, as in Flink: that holds (the scenario asked for it) unless
    the errors ended the run."""
    errors = tuple(getattr(run, "user_errors", ()))
    if not errors:
        return Verdict("no_user_errors", True, "your components raised nothing and returned what their bases say",
                       {"errors": 0})
    stopped = run.status in Status.USER
    last = errors[-1] if stopped else errors[0]
    evidence = {"errors": len(errors), "stopped": stopped, "lines": [_error_line(e) for e in errors],
                "error": last.to_dict() if hasattr(last, "to_dict") else {"error": str(last)}}
    if not stopped:
        return Verdict("no_user_errors", True, f"your code raised {len(errors)} time(s); the job failed over each "
                       f"time (run.on_user_error = \"fail_over\"); first: {_error_line(last)}", evidence)
    before = f" (after {len(errors) - 1} that failed the job over)" if len(errors) > 1 else ""
    return Verdict("no_user_errors", False, f"{_error_line(last)}{before}", evidence)


def drained(run: RunLike) -> Verdict:
    """The run ended because the pipeline finished its work, not because a guard stopped it."""
    if run.status == "drained":
        return Verdict("drained", True, "the pipeline processed everything and stopped", {"status": run.status})
    why = {"time_limit": "simulated time reached run.max_time first",
           "event_limit": "the event budget run.max_events ran out first",
           "stalled": "nothing was left to happen, yet work was unfinished",
           "settled": "every fault had healed and nothing durable changed any more (stopped early)",
           Status.USER_CODE_RAISED: "your code raised, or returned what it must not (no_user_errors says what)",
           Status.USER_CODE_TIMED_OUT: "your code did not return within run.user_timeout (no_user_errors says which)",
           }.get(run.status, run.status)
    left = getattr(run, "unprocessed", 0)
    still = f"; {left} records were still to be processed" if left else ""
    return Verdict("drained", False, f"did not drain: {why}{still}", {"status": run.status, "unprocessed": left})


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


def checkpoints_succeed(run: Run) -> Verdict:
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
    scenario = getattr(run, "scenario", None)
    limit = scenario.expect.max_skew if scenario is not None else 1.5
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
    dropped, pending = _unprocessed(run, np.sort(src[~in_sink & ~parked[src]]))
    waiting = int((dlq["processed"] == 0).sum()) if dlq is not None else 0
    skipped = int(getattr(run, "skipped", 0) or 0)
    evidence = {"produced": len(src), "in_sink": int(in_sink.sum()), "only_in_dlq": int(only_dlq.sum()),
                "dlq_depth": waiting, "dropped": len(dropped), "skipped_counted": skipped,
                "first_dropped_ids": _first(dropped), "unprocessed": len(pending)}
    accounted = f"{int(in_sink.sum())} in the sink + {int(only_dlq.sum())} only in the DLQ"
    if len(pending):
        accounted += f" + {len(pending)} still to be processed when the run stopped ({run.status}), not judged"
    if len(dropped):
        how = (f"{min(skipped, len(dropped))} skipped by retry.exhausted = 'skip' (counted, not kept), "
               f"{max(len(dropped) - skipped, 0)} gone without a count") if skipped else "none of them even counted"
        return Verdict("no_silent_drops", False, f"{len(dropped)} of {len(src)} records are neither in the sink nor "
                       f"in the DLQ ({accounted}): {how}; first ids {_first(dropped)}", evidence)
    return Verdict("no_silent_drops", True, f"all {len(src)} records accounted for: {accounted}", evidence)


def commits_monotonic(run: RunLike) -> Verdict:
    """No partition's committed offset ever moved backwards: each accepted commit is at or past the
    one before it. An older commit that lands after a newer one (reordered or retried requests, a
    restore from an older checkpoint) rewinds the group, and a restart reads those records again."""
    from weir.sim.kernel.trace import Kind
    trace = getattr(run, "trace", None)
    if trace is None:
        return Verdict("commits_monotonic", True, "the run has no trace: not judged", {"judged": False})
    cols = trace.columns
    rows = np.flatnonzero((cols["kind"] == Kind.COMMIT) & (cols["d"] == 1))
    part, offset, time = cols["a"][rows], cols["b"][rows], cols["time"][rows]
    order = np.lexsort((np.arange(len(rows)), part))  # by partition, in trace order within each
    part, offset, time = part[order], offset[order], time[order]
    back = np.flatnonzero((part[1:] == part[:-1]) & (offset[1:] < offset[:-1])) + 1
    evidence: dict[str, Any] = {"commits": len(rows), "rewinds": len(back), "first_rewinds": [
        {"partition": int(part[i]), "from": int(offset[i - 1]), "to": int(offset[i]), "time_us": int(time[i])}
        for i in back[:SHOW_IDS]]}
    if len(back):
        first = evidence["first_rewinds"][0]
        return Verdict("commits_monotonic", False, f"{len(back)} commits moved an offset backwards; first: partition "
                       f"{first['partition']} from {first['from']} to {first['to']} at t={first['time_us'] / 1e6:.6f}s",
                       evidence)
    return Verdict("commits_monotonic", True, f"all {len(rows)} accepted commits moved forward or stayed", evidence)






def drains_in_time(run: Run) -> Verdict:
    """After the last fault healed, the pipeline drained within `run.drain_within` (the liveness phase).
    A windowed run whose watermark stalled has not drained, whatever its status: its closed windows
    never fire; the verdict names the stall."""
    bound = run.scenario.run.drain_within
    if bound is None:  # (the invariant applies only with a bound)
        return Verdict("drains_in_time", True, "no run.drain_within: not judged", {"judged": False})
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


def _stalled_watermark(run: Run) -> dict[str, int] | None:
    """For a windowed run: where its watermark stopped, if short of what the data closes (else None)."""
    if getattr(run, "windows", None) is None or run.scenario.window is None:
        return None
    closing = closing_watermark(run)
    mark = MIN_TIME if run.window_watermark is None else run.window_watermark
    return {"watermark_us": mark, "closing_us": closing} if mark < closing else None




















#: Every invariant weir checks, by name, in check order: its checker, and which scenarios it applies
#: to (the names and the predicates are weir.sim.scenario.invariants.APPLIES, which [expect] is checked against).
_CHECKERS: dict[str, Callable[[Any], Verdict]] = {
    "no_loss": no_loss,
    "no_duplicates": no_duplicates,
    "exactly_once": exactly_once,
    "window_complete": window_complete,
    "event_time_complete": event_time_complete,
    "no_late_records": no_late_records,
    "checkpoints_succeed": checkpoints_succeed,
    "commits_monotonic": commits_monotonic,
    "no_aborted_reads": no_aborted_reads,
    "log_complete": log_complete,
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
    "no_user_errors": no_user_errors,
    "drains_in_time": drains_in_time,
    "matches_reference": matches_reference,
}
#: (a full Run for most; no_loss, no_duplicates and exactly_once also judge anything RunLike)
INVARIANTS: dict[str, tuple[Callable[[Any], Verdict], Callable[[Any], bool]]] = {
    name: (_CHECKERS[name], applies) for name, applies in APPLIES.items()}


def _judged(name: str, fn: Callable[[Any], Verdict], run: RunLike, big: bool = False) -> Verdict:
    """`fn(run)`; a checker that runs the user's code again (a reference computation) and meets
    an error in it cannot judge: a violated verdict that says so, not a crash. After a big run's
    checker, its working arrays go back to the system (so the next one's do not add to them)."""
    try:
        return fn(run)
    except UserHookError as e:
        return Verdict(name, False, f"not judged: your code raised when weir ran it again for the reference: {e}",
                       {"judged": False, "error": str(e), "context": e.context})
    finally:
        if big:
            trim()


def check(run: RunLike, names: Iterable[str] | None = None) -> tuple[Verdict, ...]:
    """Run the named checkers (by default every one that applies to the run), in INVARIANTS order,
    then the scenario's own oracle (`expect.oracle`, under its function's name), if it has one."""
    if not all(hasattr(run, field) for field in ("source", "sink", "status")):
        raise TypeError(f"check takes a finished run (weir.execute gives one), or an object with its source, sink "
                        f"and status; got {type(run).__name__}")
    scenario = getattr(run, "scenario", None)
    expect = getattr(scenario, "expect", None)
    oracle = getattr(expect, "oracle", None)
    own = getattr(expect, "oracle_name", None) if oracle is not None else None
    if isinstance(names, str):  # one name
        names = (names,)
    given = None if names is None else list(names)
    unknown = [n for n in given or () if not isinstance(n, str) or (n not in INVARIANTS and n != own)]
    if unknown:
        close = near(unknown[0], INVARIANTS) if isinstance(unknown[0], str) else None
        raise ValueError(f"unknown invariant {unknown[0]!r}" + (f" (did you mean {close!r}?)" if close else "")
                         + f"; known: {', '.join(INVARIANTS)}")
    wanted = set(applicable(scenario)) | ({own} if own else set()) if given is None else set(given)
    if any(getattr(e, "phase", "run") != "run" for e in getattr(run, "user_errors", ())):
        wanted &= {"no_user_errors", "drained"}  # user code failed before or after the simulation: nothing else to read
    big = len(getattr(run, "source", None) or {"record_id": ()}["record_id"]) >= BIG_RUN
    with shared():  # the checkers' common results (the batch job's windows, say) computed once
        verdicts = tuple(_judged(name, fn, run, big) for name, (fn, _applies) in INVARIANTS.items() if name in wanted)
    if own is not None and own in wanted:
        verdicts += (user_oracle(oracle, run),)
    return verdicts
