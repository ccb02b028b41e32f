"""Oracles for values: the same workload without faults says what every value should be; and the
user's own invariant (`expect.oracle`).

`matches_reference` judges a run by what it wrote, not only by which records arrived: it runs the
scenario again with the same seed and no faults (the reference; same workload, since the workload
is drawn from the seed), and compares values. A record pipeline's rows are compared per record: a
row of record r must carry the value the reference wrote for r. A windowed one's results are
compared per key and window, as the job's panes add up to (weir.analysis.windowed.job_windows).
Records or windows the reference has and the run lacks are no_loss's and window_complete's
business, and only counted here.

It is opt-in (a scenario names it in `[expect]`, or `check(run, ["matches_reference"])`), since it
costs a second run. The reference of the last few (scenario, seed) pairs is kept, so explore and
sweeps that check many schedules of one scenario and seed run it once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from weir.analysis.verdict import SHOW_IDS, Verdict, ids_where
from weir.analysis.windowed import WindowTable, job_windows
from weir.analysis.reference import reference_run
from weir.sim.scenario.run import Run

__all__ = ["matches_reference", "reference_run", "user_oracle", "expected_values"]

#: Records summed (and sink rows compared) at a time: the working arrays of `wrong_values` stay this
#: small beside the one table of expected values it keeps per record id.
CHUNK = 1 << 16


def expected_values(run: Any) -> tuple[np.ndarray, np.ndarray, str] | None:
    """What each record's value in the sink must be if every record in the log took effect exactly
    once: (record ids, their values, where that comes from), or None where it is not known.

    - weir's running totals: a record's value is its key's total after it, over the log in order
      (the records the consumer reads: not an aborted transaction's under read_committed). A
      record the log holds twice (a producer's re-send) is not judged: either copy's total is right.
    - a user operator that declares itself `deterministic` (the default): the value the fault-free
      run with the same seed wrote for the record (weir.analysis.oracles.reference_run).
    - anything else (windows, payments, an outbox, sagas, an operator whose output depends on
      processing time): None.
    A record that went through the dead-letter queue is not judged by `wrong_values`: the replay
    job writes the fixed record's own value, not the operator's.
    """
    expected = _expected_table(run)
    if expected is None:
        return None
    table, known, source = expected
    ids = np.flatnonzero(known)
    return ids, table[ids], source


def _expected_table(run: Any, top: int = 0) -> tuple[np.ndarray, np.ndarray, str] | None:
    """`expected_values` as a table by record id, at least `top` long: (expected value, whether it is
    known, where it comes from); None where nothing is known. One int64 and one flag per record id
    is all it keeps: the running totals are summed a chunk at a time, straight into the table."""
    s = getattr(run, "scenario", None)
    if (s is None or s.window is not None or s.saga is not None or s.outbox is not None
            or s.pipeline.sink == "payments" or "value" not in run.sink):
        return None
    users = [spec.cls for spec in s.operators] or ([s.operator.cls] if s.operator is not None else [])
    if users:
        if not all(getattr(cls, "deterministic", True) for cls in users):
            return None
        reference = reference_run(run)
        ref = reference.sink
        if reference.user_errors or "value" not in ref:  # your code failed without faults, or wrote no value
            return None
        ids = np.asarray(ref["record_id"])
        last, where = np.unique(ids[::-1], return_index=True)  # the row a reader sees: the last
        table, known = _table(int(last.max(initial=-1)) + 1, top)
        table[last], known[last] = np.asarray(ref["value"], dtype=np.int64)[len(ids) - 1 - where], True
        return table, known, "the fault-free run"
    ids, keys, values = _in_log_order(run.source, s.pipeline.isolation == "read_committed")
    table, known = _table(int(ids.max(initial=-1)) + 1, top)
    if len(ids):
        _once(ids, known)  # a record the log holds twice (a re-send) is not judged
        for rows, totals in _running_totals(keys, values):
            table[ids[rows]] = totals
    return table, known, "each key's running total over the log"


def _table(size: int, top: int) -> tuple[np.ndarray, np.ndarray]:
    """An empty table of expected values (zeros, none known), max(size, top) long."""
    n = max(size, top)
    return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)


def _once(ids: np.ndarray, once: np.ndarray) -> None:
    """Set `once` (a flag per id, all False) where an id occurs exactly once in `ids`: with a byte
    an id and CHUNK ids sorted at a time, where a bincount would take sixteen bytes a record."""
    twice = np.zeros(len(once), dtype=bool)
    for start in range(0, len(ids), CHUNK):
        part = np.sort(ids[start:start + CHUNK])
        twice[part[1:][part[1:] == part[:-1]]] = True  # twice within the chunk
        twice[part[once[part]]] = True  # and seen in an earlier one
        once[part] = True
    once &= ~twice


def _running_totals(keys: np.ndarray, values: np.ndarray):
    """Each record's key's running total (the sum of its key's values up to and including it, in
    order), CHUNK records at a time: yields (the records' positions, their totals). Within a chunk,
    a stable sort by key and a cumulative sum per key; each key's total so far carries over."""
    distinct = np.unique(keys)
    carry = np.zeros(len(distinct), dtype=np.int64)  # each key's total before the chunk
    for start in range(0, len(keys), CHUNK):
        k = np.searchsorted(distinct, keys[start:start + CHUNK])
        order = np.argsort(k, kind="stable")
        grouped = k[order]
        sums = np.cumsum(np.asarray(values[start:start + CHUNK], dtype=np.int64)[order])
        first = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
        last = np.r_[first[1:] - 1, len(grouped) - 1]
        sums += np.repeat(carry[grouped[first]] - np.r_[0, sums[first[1:] - 1]], np.diff(np.r_[first, len(grouped)]))
        carry[grouped[last]] = sums[last]
        yield start + order, sums


def _in_log_order(src: dict[str, np.ndarray], read_committed: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(record ids, keys, values) in log order (by partition, then offset): the run's own columns
    when they already are (weir's runs are), without the records of aborted transactions under
    read_committed. Copies only what it must: a million-record run's columns are 4 to 8 MB each."""
    partition, offset = np.asarray(src["partition"]), np.asarray(src["offset"])
    same = partition[1:] == partition[:-1]
    ordered = bool((partition[1:] >= partition[:-1]).all() and (offset[1:] > offset[:-1])[same].all())
    del same
    cols = [np.asarray(src[c]) for c in ("record_id", "key", "value")]
    if not ordered:
        order = np.lexsort((offset, partition))
        cols = [c[order] for c in cols]
    if read_committed and "state" in src:
        state = np.asarray(src["state"]) if ordered else np.asarray(src["state"])[order]
        seen = state != 2
        if not seen.all():
            cols = [c[seen] for c in cols]
    return cols[0], cols[1], cols[2]


def wrong_values(run: Any) -> tuple[np.ndarray, list[dict], str] | None:
    """The records the sink holds with a value other than `expected_values` says: (their ids, the
    first few as {record_id, key, got, expected}, where the expectation came from); None if not judged."""
    sink = run.sink
    ids = np.asarray(sink["record_id"])
    expected = _expected_table(run, int(ids.max(initial=-1)) + 1)
    if expected is None:
        return None
    values = np.asarray(sink["value"])
    table, known, source = expected
    dlq = getattr(run, "dlq", None)
    if dlq is not None and len(dlq["record_id"]):  # a dead letter's value is the fix's, not the operator's
        dead = np.asarray(dlq["record_id"], dtype=np.int64)
        known[dead[dead < len(known)]] = False
    wrong = np.zeros(len(known), dtype=bool)  # by record id: a byte each, however many rows are wrong
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        wrong[part[known[part] & (values[start:start + CHUNK] != table[part])]] = True
    wrong_ids = ids_where(wrong)
    del wrong
    shown = np.flatnonzero(np.isin(ids, wrong_ids[:SHOW_IDS]))  # the rows of the first few, to show them
    shown = shown[values[shown] != table[ids[shown]]]
    shown = shown[np.argsort(ids[shown], kind="stable")]
    return wrong_ids, _first_wrong(sink, ids, values, shown, table), source


def _first_wrong(sink: dict, ids: np.ndarray, values: np.ndarray, wrong_rows: np.ndarray,
                 expected: np.ndarray) -> list[dict]:
    """The first few wrong records, one each: {record_id, key, got, expected}."""
    keys = sink.get("key")
    first: list[dict] = []
    for row in wrong_rows:
        if len(first) == SHOW_IDS:
            break
        r = int(ids[row])
        if all(r != f["record_id"] for f in first):
            first.append({"record_id": r, "key": int(keys[row]) if keys is not None else -1, "got": int(values[row]),
                          "expected": int(expected[r])})
    return first


def matches_reference(run: Any) -> Verdict:
    """Every value the run wrote is the value the same workload gives without faults."""
    reference = reference_run(run)
    if reference.user_errors:  # what it wrote is what your code wrote before it failed: no reference
        return Verdict("matches_reference", True, "not judged: the fault-free run stopped on an error in your code "
                       f"({reference.user_errors[0].line()})", {"judged": False})
    if run.scenario.window is not None:
        return _windows_match(run, reference)
    return _records_match(run, reference)


def _records_match(run: Any, reference: Run) -> Verdict:
    sink, ref = run.sink, reference.sink
    if "value" not in sink or "value" not in ref:
        return Verdict("matches_reference", True, "the sink keeps no value column: not judged", {"judged": False})
    ids = np.asarray(sink["record_id"], dtype=np.int64)
    values = np.asarray(sink["value"], dtype=np.int64)
    ref_ids = np.asarray(ref["record_id"], dtype=np.int64)
    top = int(max(ids.max(initial=-1), ref_ids.max(initial=-1))) + 1
    expected = np.zeros(top, dtype=np.int64)
    known = np.zeros(top, dtype=bool)
    # a record the reference wrote more than once: its last row, as a reader of the table sees it
    last, where = np.unique(ref_ids[::-1], return_index=True)
    expected[last] = np.asarray(ref["value"], dtype=np.int64)[len(ref_ids) - 1 - where]
    known[last] = True
    judged = known[ids]
    wrong_rows = np.flatnonzero(judged & (values != expected[ids]))
    wrong_ids = np.unique(ids[wrong_rows])
    unknown = np.unique(ids[~judged])
    missing = int(np.count_nonzero(known)) - len(np.unique(ids[judged]))
    evidence = {"reference_rows": len(ref_ids), "rows": len(ids), "wrong_rows": len(wrong_rows),
                "wrong_records": len(wrong_ids), "records_not_in_reference": len(unknown),
                "reference_records_missing": missing, "first_wrong": [], "reference_trace": reference.trace_sha256}
    if not len(wrong_ids):
        return Verdict("matches_reference", True, f"every value of the {len(ids)} rows is the fault-free run's "
                       f"({missing} of its records missing, for no_loss to judge)", evidence)
    first = _first_wrong(sink, ids, values, wrong_rows, expected)
    evidence["first_wrong"] = first
    evidence["first_wrong_ids"] = [f["record_id"] for f in first]  # for lineage, reports and diagrams
    f = first[0]
    return Verdict("matches_reference", False,
                   f"{len(wrong_ids)} records written with values the fault-free run does not give (first: record "
                   f"{f['record_id']}, key {f['key']}: got {f['got']}, expected {f['expected']})", evidence)


def _windows_match(run: Any, reference: Run) -> Verdict:
    actual, expected = job_windows(run), job_windows(reference)
    if isinstance(actual, WindowTable) and isinstance(expected, WindowTable):  # column by column
        found, differs = expected.compare(actual)
        wrong = actual.windows(differs)
        missing = int((actual.find(expected) < 0).sum())
        extra = int((~found).sum())
    else:
        wrong = sorted(w for w in actual if w in expected and actual[w][0] != expected[w][0])
        missing = sum(1 for w in expected if w not in actual)
        extra = sum(1 for w in actual if w not in expected)
    evidence = {"reference_windows": len(expected), "windows": len(actual), "wrong": len(wrong), "missing": missing,
                "not_in_reference": extra, "first_wrong": [[*w, expected[w][0], actual[w][0]] for w in wrong[:SHOW_IDS]],
                "reference_trace": reference.trace_sha256}
    if not wrong:
        return Verdict("matches_reference", True, f"every one of the {len(actual)} windows written has the fault-free "
                       f"run's result ({missing} of its windows missing, for window_complete to judge)", evidence)
    k, s, e = wrong[0]
    return Verdict("matches_reference", False,
                   f"{len(wrong)} windows differ from the fault-free run (first: key {k} [{s}, {e}) expected "
                   f"{expected[wrong[0]][0]}, got {actual[wrong[0]][0]})", evidence)


def user_oracle(fn: Any, run: Any) -> Verdict:
    """Call the scenario's own invariant on a finished run: its verdict, under the function's name.

    The function returns a weir.Verdict or a bool. Whatever else happens in it (an exception, some
    other return value) is a violated verdict that says so, never a crash of weir.
    """
    name = getattr(fn, "__name__", "oracle")
    try:
        got = fn(run)
    except Exception as e:  # user code: its failure is a finding about the run or the oracle
        return Verdict(name, False, f"the oracle raised {e.__class__.__name__}: {e}", {"raised": e.__class__.__name__})
    if isinstance(got, Verdict):
        return got if got.invariant == name else Verdict(name, got.held, got.summary, dict(got.evidence))
    if isinstance(got, (bool, np.bool_)):
        return Verdict(name, bool(got), "the oracle says it holds" if got else "the oracle says it is violated", {})
    return Verdict(name, False, f"the oracle returned {type(got).__name__}, not a weir.Verdict or a bool",
                   {"returned": type(got).__name__})
