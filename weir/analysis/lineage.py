"""Record lineage: one record's path through a run, from the trace and the durable tables.

The trace names batches, not records (partition, first offset, count), so a record's steps are the
events whose batch holds its (partition, offset): each is found by one vectorised mask over the
trace columns. A record the producer wrote twice has two offsets, and both paths are shown.

    >>> print(lineage(run, 1234).text())
    record 1234: key 17, in partition 2 at offset 310
      t=0.061000s  produced       broker      appended (partition 2, offset 310)
      t=0.061920s  polled         source      in a batch of 100 from offset 300, generation 1
      ...
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from weir.sim.kernel.trace import Kind
from weir.sim.kernel.units import format_duration

__all__ = ["Step", "Lineage", "lineage", "first_bad_record", "bad_record"]


@dataclass(frozen=True)
class Step:
    """One thing that happened to the record: when, what, where, and the details as data."""

    time: int
    step: str  # produced, polled, exchanged, processed, written, acked, checkpointed, committed, ...
    node: str
    detail: str
    data: dict

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Lineage:
    record_id: int
    copies: tuple[tuple[int, int], ...]  # (partition, offset) of each copy in the log
    steps: tuple[Step, ...]
    sink_rows: int
    in_dlq: bool

    def to_dict(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "copies": [list(c) for c in self.copies], "sink_rows": self.sink_rows,
                "in_dlq": self.in_dlq, "steps": [s.to_dict() for s in self.steps]}

    def text(self) -> str:
        where = ", ".join(f"partition {p} at offset {o}" for p, o in self.copies) or "nowhere in the log"
        lines = [f"record {self.record_id}: in {where}; {self.sink_rows} row(s) in the sink"
                 + ("; in the dead-letter queue" if self.in_dlq else "")]
        for s in self.steps:
            lines.append(f"  t={s.time / 1e6:.6f}s  {s.step:<13} {s.node:<12} {s.detail}")
        return "\n".join(lines)


_STEP_NAMES = {Kind.POLL: "polled", Kind.EXCHANGE: "exchanged", Kind.PROCESS: "processed", Kind.WRITE: "written",
               Kind.RETRY: "write failed", Kind.DEAD_LETTER: "dead-lettered", Kind.ACK: "acked"}


def _subtasks(run: Any, record_id: int):
    """A function from a copy's offset to the processor subtask its record goes to (the keyed exchange)."""
    from weir.sim.stream.exchange import subtask_of
    scenario = getattr(run, "scenario", None)
    parallelism = scenario.pipeline.parallelism if scenario is not None else 1
    salts = scenario.pipeline.salts if scenario is not None else 1
    keys = run.source["key"][run.source["record_id"] == record_id] if "key" in run.source else np.zeros(1, np.int64)
    key = np.asarray(keys[:1] if len(keys) else [0], dtype=np.int64)
    return lambda offset: int(subtask_of(key, np.array([offset], dtype=np.int64), parallelism, salts)[0])


def _batch_events(cols: dict[str, np.ndarray], p: int, offset: int, subtask_of) -> list[tuple[int, str, Kind]]:
    """The trace events of the batches that held the record at (p, offset), in trace order.

    A batch is named by (partition, first offset) in every event about it, and a restarted job may
    poll a batch with the same first offset but another size: so each poll that held the record
    owns the events about its (partition, first offset) from the poll to the next poll of that
    name. A batch split over parallel subtasks is named the same in each part's events, which
    differ by their size: the record's part is the one the keyed exchange sent it to. A DLQ replay
    writes fixed records in a batch of its own, matched by its offset range."""
    kind, a, b, c, d = (cols[x] for x in ("kind", "a", "b", "c", "d"))
    polls = np.flatnonzero((kind == Kind.POLL) & (a == p))
    holding = polls[(b[polls] <= offset) & (offset < b[polls] + c[polls])]
    firsts = np.unique(b[holding])
    j = subtask_of(offset)
    out = []
    for i in holding.tolist():
        first = int(b[i])
        later = polls[(polls > i) & (b[polls] == first)]
        stop = int(later[0]) if len(later) else len(kind)
        out.append((i, "polled", Kind.POLL))
        window = np.arange(i + 1, stop)
        about = window[(b[window] == first) & (a[window] == p)]  # PROCESS, WRITE, ACK, RETRY, DEAD_LETTER
        parts = window[(kind[window] == Kind.EXCHANGE) & (b[window] == p) & (c[window] == first)]
        part = None
        for e in parts.tolist():
            if a[e] == j:
                part = int(d[e])
                out.append((e, "exchanged", Kind.EXCHANGE))
        for e in about.tolist():
            k = int(kind[e])
            if k not in _STEP_NAMES or k in (Kind.POLL, Kind.EXCHANGE):
                continue
            if part is not None and k in (Kind.PROCESS, Kind.WRITE, Kind.ACK) and c[e] != part:
                continue  # another subtask's part of the batch
            out.append((e, _STEP_NAMES[k], Kind(k)))
    replays = (kind == Kind.WRITE) & (a == p) & ~np.isin(b, firsts) & (b <= offset) & (offset < b + c)
    out += [(i, "written", Kind.WRITE) for i in np.flatnonzero(replays).tolist()]
    return sorted(set(out))


def _detail(kind: Kind, row: dict[str, int]) -> str:
    a, b, c, d = row["a"], row["b"], row["c"], row["d"]
    if kind == Kind.POLL:
        return f"in a batch of {c} from offset {b}, generation {d}"
    if kind == Kind.EXCHANGE:
        return f"to processor subtask {a}"
    if kind == Kind.PROCESS:
        return f"in a batch of {c}, generation {d}"
    if kind == Kind.WRITE:
        return f"its batch was written: {c} rows" + (f", {d} of them rewritten in place" if d else "")
    if kind == Kind.RETRY:
        if d < 0:
            return f"attempt {c}: its outcome is unknown inside a transaction; the job fails over"
        return f"attempt {c} failed; retrying after {format_duration(d)}"
    if kind == Kind.DEAD_LETTER:
        return f"sent to the dead-letter queue after {d} retries"
    return f"the sink acknowledged the batch, generation {d}"


def lineage(run: Any, record_id: int) -> Lineage:
    """The path of `record_id` through `run`: every event that touched it, in time order."""
    cols = run.trace.columns
    names = run.trace.nodes
    kind, node, time = cols["kind"], cols["node"], cols["time"]
    src = run.source
    mine = np.flatnonzero(src["record_id"] == record_id)
    copies = tuple((int(src["partition"][i]), int(src["offset"][i])) for i in mine)
    found: list[tuple[int, int, Step]] = []  # (trace index, tie, step)

    def add(i: int, step: str, detail: str, **data: int) -> None:
        row = {k: int(cols[k][i]) for k in "abcd"}
        found.append((i, len(found), Step(int(time[i]), step, names[int(node[i])], detail, {**row, **data})))

    produced = (kind == Kind.PRODUCE) & (cols["a"] <= record_id) & (record_id < cols["a"] + cols["b"])
    for i in np.flatnonzero(produced).tolist():
        dropped = cols["c"][i] == 1
        add(i, "produced", "a copy the broker already had: dropped (idempotent producer)" if dropped
            else f"appended with its batch of {int(cols['b'][i])}")
    subtask_of = _subtasks(run, record_id)
    for p, offset in copies:
        for i, step, k in _batch_events(cols, p, offset, subtask_of):
            add(i, step, _detail(k, {c: int(cols[c][i]) for c in "abcd"}), partition=p, offset=offset)
        # the first checkpoint whose offsets are past the record holds its effect
        snap = np.flatnonzero((kind == Kind.CKPT_SNAPSHOT) & (names.index("coordinator") != node)
                              & (cols["b"] == p) & (cols["c"] > offset))
        snap = [i for i in snap.tolist() if names[int(node[i])].startswith("source")]
        if snap:
            i = snap[0]
            add(i, "checkpointed", f"before checkpoint {int(cols['a'][i])}'s barrier (offset {int(cols['c'][i])})")
        commits = np.flatnonzero((kind == Kind.COMMIT) & (cols["a"] == p) & (cols["b"] > offset) & (cols["d"] == 1))
        if len(commits):
            i = int(commits[0])
            add(i, "committed", f"the group's offset moved past it, to {int(cols['b'][i])}")
    dlq = getattr(run, "dlq", None)
    in_dlq = False
    if dlq is not None and len(dlq["record_id"]):
        rows = np.flatnonzero(dlq["record_id"] == record_id)
        in_dlq = bool(len(rows))
        for r in rows.tolist():
            if dlq["processed"][r]:
                marks = np.flatnonzero(kind == Kind.REPLAY_MARK)  # its entry marked processed: when the round ended
                at = int(dlq["processed_at"][r])
                i = int(marks[min(np.searchsorted(time[marks], at), len(marks) - 1)]) if len(marks) else len(kind) - 1
                add(min(i, len(kind) - 1), "replayed", "fixed and written by the DLQ replay job, its entry marked processed")
    sink = getattr(run, "sink", None) or {}
    sink_rows = int((sink["record_id"] == record_id).sum()) if "record_id" in sink else 0
    found.sort(key=lambda f: (f[0], f[1]))
    return Lineage(int(record_id), copies, tuple(s for _i, _t, s in found), sink_rows, in_dlq)


#: Evidence keys that name bad records, in the order a report looks for one.
_BAD_KEYS = ("first_lost_ids", "first_duplicated_ids", "first_dropped_ids", "first_phantom_ids", "first_ids",
             "first_side_output_ids", "first_events_without_order", "first_orders_without_event", "first_wrong_ids")


def bad_record(verdicts, run: Any = None) -> tuple[int, Any] | None:
    """(record id, the verdict that names it) for the first violated verdict that names a record.

    With the run, a payment charged twice names the record of its second charge (a re-send or a
    replay: the one a dedup should have stopped)."""
    for v in verdicts:
        if v.held:
            continue
        for key in _BAD_KEYS:
            ids = v.evidence.get(key)
            if ids:
                return int(ids[0]), v
        payments = v.evidence.get("first_payment_ids")
        charges = getattr(run, "charges", None)
        if payments and charges is not None and v.invariant == "no_double_charge":
            rows = np.flatnonzero(np.asarray(charges["payment_id"]) == payments[0])
            if len(rows) > 1:
                return int(charges["record_id"][rows[1]]), v
    return None


def first_bad_record(verdicts, run: Any = None) -> int | None:
    """The first record id a violated verdict names as evidence (lost, duplicated, dropped, charged
    twice ...), or None."""
    found = bad_record(verdicts, run)
    return None if found is None else found[0]
