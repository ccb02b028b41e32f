"""A counterexample as a Mermaid `sequenceDiagram` (the notation the seed uses), for a design doc or PR.

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

__all__ = ["sequence_diagram", "violation_window", "Mermaid"]


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
