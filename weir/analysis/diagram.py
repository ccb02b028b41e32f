"""A counterexample as a Mermaid `sequenceDiagram` (the notation the seed uses), for a design doc or PR;
and (`checkpoint_diagram`) one checkpoint's two-phase commit, as the seed's section 4.2 draws it.

The slice of the trace around the first violation: for a violation that names a record (lost,
duplicated, dropped), the record's path from its first step to the failover that decided its fate
(the messages that carried its batches, offset commits, crashes, restarts, restores, checkpoints);
for one that names a time (a commit ahead of the sink, a rewound offset, a watermark), a few
milliseconds either side of it. Messages are arrows from sender to receiver at the time they were
sent; a message that never arrived is a cross (`-x`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from weir.sim.kernel.trace import Kind, Msg

from weir.analysis.lineage import bad_record, lineage

__all__ = ["sequence_diagram", "checkpoint_diagram", "violation_window", "Mermaid"]


class Mermaid(str):
    """A Mermaid diagram's text (a str: it prints, compares and writes as one) that Jupyter shows
    as the diagram: a Markdown block fenced as `mermaid`, which JupyterLab renders offline."""

    def _repr_markdown_(self) -> str:
        return f"```mermaid\n{self}\n```"

MARGIN_US = 2_000
_CONTROL = (Kind.CRASH, Kind.RESTART, Kind.UP, Kind.JOB_FAIL, Kind.JOB_RESTART, Kind.RESTORE, Kind.CKPT_COMPLETE,
            Kind.CKPT_ABORT, Kind.TXN_COMMIT, Kind.DEAD_LETTER, Kind.PAUSE, Kind.COMMIT)


def _time_of(verdict) -> int | None:
    """A time the verdict's evidence names (its first offending event), if any."""
    error = verdict.evidence.get("error")
    if isinstance(error, dict) and error.get("phase") == "run":  # no_user_errors: when the user's code failed
        return int(error["at"])
    for key in ("first", "first_rewinds", "first_backwards", "first_ahead"):
        items = verdict.evidence.get(key)
        if items and isinstance(items[0], dict) and "time_us" in items[0]:
            return int(items[0]["time_us"])
    return None


def violation_window(run: Any, verdicts) -> tuple[int, int, int | None, str]:
    """(start, end, record id or None, what) of the slice to draw for the first violated verdict."""
    bad = [v for v in verdicts if not v.held]
    if not bad:
        return 0, 0, None, "no violation"
    cols = run.trace.columns
    found = bad_record(bad, run)
    if found is not None:
        record, which = found
        steps = lineage(run, record).steps
        read = [s.time for s in steps if s.step == "polled"]  # from its first read (it may wait long in the log)
        first = min(read or [s.time for s in steps] or [0])
        last = max((s.time for s in steps), default=first)
        fails = cols["time"][np.isin(cols["kind"], [Kind.JOB_FAIL, Kind.CRASH]) & (cols["time"] >= first)]
        if len(fails):  # through the failover that decided the record's fate, and the restore after it
            restores = cols["time"][(cols["kind"] == Kind.RESTORE) & (cols["time"] >= fails[0])]
            last = max(last, int(restores[0]) if len(restores) else int(fails[0]))
        return first - MARGIN_US, last + MARGIN_US, record, f"{which.invariant}: record {record}"
    for v in bad:
        t = _time_of(v)
        if t is not None:
            return t - MARGIN_US, t + MARGIN_US, None, f"{v.invariant} at t={t / 1e6:.6f}s"
    return 0, 0, None, f"{bad[0].invariant}: no event to point at"


def _batches_of(run: Any, record: int) -> set[tuple[int, int]]:
    """(partition, first offset) of every batch that carried the record (from its lineage)."""
    out = set()
    for s in lineage(run, record).steps:
        if s.step in ("polled", "processed", "written", "acked"):
            out.add((s.data["a"], s.data["b"]))
    return out


def _label(msg: Msg, r1: int, r2: int) -> str:
    if msg in (Msg.BATCH, Msg.ACK):
        return f"{msg.name} partition {r1} from offset {r2}"
    if msg == Msg.PRODUCE:
        return f"PRODUCE records {r1}..{r1 + r2 - 1}"
    if msg in (Msg.BARRIER, Msg.TRIGGER, Msg.NOTIFY, Msg.SNAPSHOT):
        return f"{msg.name} checkpoint {r1}"
    if msg == Msg.COMMIT:
        return f"COMMIT generation {r1}, {r2} partition(s)"
    return msg.name


def _note(kind: Kind, a: int, b: int, c: int, d: int) -> str:
    return {Kind.CRASH: "CRASH" + (" for good" if a < 0 else f" for {a / 1000:g}ms"),
            Kind.RESTART: "restarting", Kind.UP: "up again",
            Kind.JOB_FAIL: f"job fails over (generation {a}, {b} batches in flight)",
            Kind.JOB_RESTART: f"job restarts as generation {a}",
            Kind.RESTORE: "restores " + ("committed offsets" if a < 0 else f"checkpoint {a}") + f", {c} records behind",
            Kind.CKPT_COMPLETE: f"checkpoint {a} complete", Kind.CKPT_ABORT: f"checkpoint {a} failed",
            Kind.TXN_COMMIT: f"transaction of checkpoint {a} committed",
            Kind.DEAD_LETTER: f"{c} records of partition {a} to the DLQ",
            Kind.PAUSE: f"paused for {a / 1000:g}ms",
            Kind.COMMIT: f"committed partition {a} at offset {b}" + ("" if d else " (refused: stale generation)"),
            }[kind]


def _id(name: str) -> str:
    return name.replace("-", "_")


def sequence_diagram(run: Any, verdicts=None, max_lines: int = 60) -> Mermaid:
    """The Mermaid text for the slice of `run` around its first violation (all its verdicts if not given)."""
    if verdicts is None:
        from weir.analysis.checkers import check
        verdicts = check(run)
    start, end, record, what = violation_window(run, verdicts)
    if end <= start:  # nothing to draw: every claim held, or nothing points at a time
        return Mermaid(f"sequenceDiagram\n    %% {run.scenario.name} seed {run.seed}: {what}\n")
    cols, names = run.trace.columns, run.trace.nodes
    kind, node, time, a, b, c, d = (cols[k] for k in ("kind", "node", "time", "a", "b", "c", "d"))
    batches = _batches_of(run, record) if record is not None else set()
    inside = (time >= start) & (time <= end)
    sends = inside & (kind == Kind.SEND)
    controls = inside & np.isin(kind, [int(k) for k in _CONTROL])
    if record is not None:  # only the messages that carried the record's batches, and checkpoint control
        carried = np.zeros(len(kind), dtype=bool)
        for p, first in batches:
            carried |= (c == p) & (d == first) & np.isin(b, [Msg.BATCH, Msg.ACK])
        carried |= (b == Msg.PRODUCE) & (c <= record) & (record < c + d)
        carried |= np.isin(b, [Msg.TRIGGER, Msg.NOTIFY])
        sends &= carried
        partitions = [p for p, _first in batches]
        controls &= (kind != Kind.COMMIT) | np.isin(a, partitions)  # commits of the record's partition only
    rows = np.flatnonzero(sends | controls).tolist()
    arrived = {}  # (src, dst, msg, r1, r2) -> delivered? from the RECV / DROP after each SEND
    for i in np.flatnonzero(inside | (time > end) & np.isin(kind, [Kind.RECV, Kind.DROP])).tolist():
        if kind[i] in (Kind.RECV, Kind.DROP):
            arrived.setdefault((int(a[i]), int(node[i]), int(b[i]), int(c[i]), int(d[i])), kind[i] == Kind.RECV)
    used = sorted({int(node[i]) for i in rows} | {int(a[i]) for i in rows if kind[i] == Kind.SEND})
    lines = ["sequenceDiagram", f"    %% {run.scenario.name} seed {run.seed}: {what}"]
    lines += [f"    participant {_id(names[n])} as {names[n]}" for n in used]
    body = []
    for i in rows:
        src = names[int(node[i])]
        if kind[i] == Kind.SEND:
            dst = names[int(a[i])]
            msg = Msg(int(b[i]))
            ok = arrived.get((int(node[i]), int(a[i]), int(b[i]), int(c[i]), int(d[i])), True)
            arrow = "->>" if ok else "-x"
            body.append(f"    {_id(src)}{arrow}{_id(dst)}: t={time[i] / 1e6:.6f}s {_label(msg, int(c[i]), int(d[i]))}"
                        + ("" if ok else " (lost)"))
        else:
            text = _note(Kind(int(kind[i])), int(a[i]), int(b[i]), int(c[i]), int(d[i]))
            body.append(f"    Note over {_id(src)}: t={time[i] / 1e6:.6f}s {text}")
    if len(body) > max_lines:
        body = body[:max_lines] + [f"    Note over {_id(names[used[0]])}: ... {len(body) - max_lines} more events"]
    return Mermaid("\n".join(lines + body) + "\n")


_PROTOCOL = (Msg.TRIGGER, Msg.BARRIER, Msg.SNAPSHOT, Msg.NOTIFY)


def checkpoint_diagram(run: Any, checkpoint: int | None = None) -> Mermaid:
    """One checkpoint's two-phase commit, drawn from the run (the seed's section 4.2): the
    coordinator's trigger, the barrier through the tasks and each one's snapshot (the sources'
    offsets, the operator's state), the sink's pre-commit of the transaction it wrote into since the
    last barrier (staged, invisible to readers), the checkpoint completing, the notification, and
    the commit that makes the transaction's rows visible. `checkpoint` by default: the first whose
    transaction was committed (or the first completed, for a job with no two-phase-commit sink)."""
    cols, names = run.trace.columns, run.trace.nodes
    kind, node, time, a, b, c = (cols[k] for k in ("kind", "node", "time", "a", "b", "c"))
    committed = a[kind == Kind.TXN_COMMIT]
    completed = a[kind == Kind.CKPT_COMPLETE]
    if checkpoint is None:
        checkpoint = int(committed[0]) if len(committed) else int(completed[0]) if len(completed) else None
    head = ["sequenceDiagram", f"    %% {run.scenario.name} seed {run.seed}: checkpoint {checkpoint}"]
    triggered = np.flatnonzero((kind == Kind.CKPT_TRIGGER) & (a == (checkpoint if checkpoint is not None else -1)))
    if not len(triggered):
        return Mermaid("\n".join(head[:1] + [f"    %% {run.scenario.name} seed {run.seed}: no checkpoint "
                                              f"{'completed' if checkpoint is None else checkpoint}"]) + "\n")
    n = checkpoint
    ends = np.flatnonzero(((kind == Kind.TXN_COMMIT) | (kind == Kind.CKPT_COMPLETE) | (kind == Kind.CKPT_ABORT)) & (a == n))
    start, end = int(time[triggered[0]]), int(time[ends[-1]]) if len(ends) else int(run.end_time)
    inside = (time >= start) & (time <= end)
    rows = np.flatnonzero(inside & (((kind == Kind.SEND) & np.isin(b, [int(m) for m in _PROTOCOL]) & (c == n))
                                    | (np.isin(kind, [Kind.CKPT_COMPLETE, Kind.CKPT_ABORT, Kind.TXN_COMMIT]) & (a == n))
                                    | ((kind == Kind.CKPT_SNAPSHOT) & (a == n))
                                    | np.isin(kind, [Kind.CRASH, Kind.JOB_FAIL]))).tolist()
    two_phase = run.scenario.pipeline.two_phase  # the sinks pre-commit at the barrier
    sinks = {int(node[i]) for i in rows if two_phase and kind[i] == Kind.CKPT_SNAPSHOT and b[i] == -1
             and names[int(node[i])].startswith("sink")}
    body, snapshot_noted = [], set()
    for i in rows:
        here, t = int(node[i]), f"t={time[i] / 1e6:.6f}s"
        if kind[i] == Kind.SEND:
            body.append(f"    {_id(names[here])}->>{_id(names[int(a[i])])}: {t} {_label(Msg(int(b[i])), int(c[i]), 0)}")
        elif kind[i] == Kind.CKPT_SNAPSHOT:
            if here in snapshot_noted:
                continue  # a source snapshots each of its partitions at once: one note for them all
            snapshot_noted.add(here)
            body.append(f"    Note over {_id(names[here])}: {t} " + _snapshot_note(run, here, n, sinks))
        elif kind[i] == Kind.TXN_COMMIT:
            outcome = {1: ": its rows become visible", 0: ": committed already", -1: ": the commit raised",
                       -2: ": it had timed out, the commit fails"}[int(c[i])]
            body.append(f"    Note over {_id(names[here])}: {t} commits transaction {int(b[i])} of checkpoint {n}{outcome}")
        else:
            text = _note(Kind(int(kind[i])), int(a[i]), int(b[i]), int(c[i]), int(cols["d"][i]))
            body.append(f"    Note over {_id(names[here])}: {t} {text}")
    used = sorted({int(node[i]) for i in rows} | {int(a[i]) for i in rows if kind[i] == Kind.SEND})
    head += [f"    participant {_id(names[u])} as {names[u]}" for u in used]
    return Mermaid("\n".join(head + body) + "\n")


def _snapshot_note(run: Any, here: int, n: int, sinks: set[int]) -> str:
    """What node `here` put into checkpoint n: a source its partitions' offsets, an operator its
    state, a two-phase-commit sink its pre-commit (with the batches written into the transaction)."""
    cols = run.trace.columns
    kind, node, time, a, b, c = (cols[k] for k in ("kind", "node", "time", "a", "b", "c"))
    mine = np.flatnonzero((kind == Kind.CKPT_SNAPSHOT) & (node == here) & (a == n))
    if b[mine[0]] >= 0:
        offsets = ", ".join(f"p{int(b[i])}@{int(c[i])}" for i in mine)
        return f"snapshot of offsets {offsets}"
    if run.trace.nodes[here].startswith("sink") and here not in sinks:
        return "snapshot (nothing to pre-commit: the sink writes as it goes)"
    if here not in sinks:
        return f"snapshot of operator state ({int(c[mine[0]])} keys)"
    at = time[mine[0]]
    before = np.flatnonzero((kind == Kind.CKPT_SNAPSHOT) & (node == here) & (a < n) & (time <= at))
    since = time[before[-1]] if len(before) else -1
    writes = np.flatnonzero((kind == Kind.WRITE) & (node == here) & (time > since) & (time <= at))
    records = int(c[writes].sum())
    return (f"pre-commit: the transaction holding {len(writes)} batches ({records} records) written since "
            f"the last barrier is flushed, invisible to readers until committed")
