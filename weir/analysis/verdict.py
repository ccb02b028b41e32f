"""What a checker returns: a verdict with its evidence, and the few helpers every checker shares
(what was produced, how a verdict names its problems)."""

from __future__ import annotations

import html

from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

import numpy as np

__all__ = ["Verdict", "VerdictJSON", "RunLike", "SHOW_IDS", "produced_ids", "verdict_table_html"]

SHOW_IDS = 5  # how many example record ids a verdict carries


class RunLike(Protocol):
    """What a checker reads: `source` and `sink` columns (with "record_id") and `status`."""

    @property
    def source(self) -> dict[str, np.ndarray]: ...
    @property
    def sink(self) -> dict[str, np.ndarray]: ...
    @property
    def status(self) -> str: ...


class VerdictJSON(TypedDict):
    """One invariant's verdict in one run."""

    invariant: str
    held: bool
    summary: str
    evidence: dict[str, Any]  # the checker's own evidence: counts, example record ids, ...


@dataclass(frozen=True)
class Verdict:
    """Whether one invariant held in one run, with the evidence (JSON-able: ints, strings, lists)."""

    invariant: str
    held: bool
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> VerdictJSON:
        return {"invariant": self.invariant, "held": self.held, "summary": self.summary, "evidence": dict(self.evidence)}


def _first(ids: np.ndarray) -> list[int]:
    return [int(i) for i in ids[:SHOW_IDS]]


def _judge(name: str, problems: list[tuple[np.ndarray, str]], held: str, evidence: dict[str, Any]) -> Verdict:
    """Violated, naming each kind of problem found ("3 lost (first [...])"), or held with `held`."""
    found = [f"{len(ids)} {what} (first {_first(ids)})" for ids, what in problems if len(ids)]
    if found:
        return Verdict(name, False, "; ".join(found), evidence)
    return Verdict(name, True, held, evidence)


def produced_ids(source: dict[str, np.ndarray]) -> np.ndarray:
    """The distinct ids of the records produced: committed in the log, each once however often it was
    written, in order (record ids are whole numbers >= 0, so a mask over them does it in linear time)."""
    return _distinct(_committed(source))


def _distinct(ids: np.ndarray, top: int | None = None) -> np.ndarray:
    """The distinct values of `ids` (whole numbers >= 0, below `top` if given), in order (ids_where's dtype)."""
    if not len(ids):
        return np.zeros(0, dtype=np.int32)  # (ids_where's dtype for no ids)
    seen = np.zeros(int(ids.max()) + 1 if top is None else top, dtype=bool)  # a byte an id, not a count's eight
    seen[ids] = True
    return ids_where(seen)


#: Flags turned into ids at a time (ids_where)
IDS_CHUNK = 1 << 16


def ids_where(flags: np.ndarray) -> np.ndarray:
    """The positions where a flag per record id is set, in order: int32 while they fit (a record id
    does: the format bounds it), else int64. Found a chunk at a time, so that no int64 array of
    them all is made first (np.flatnonzero's): for a million-record run's checks, 4 bytes an id
    where they would hold 8, and never 12 at once."""
    dtype = np.int32 if len(flags) <= np.iinfo(np.int32).max else np.int64
    out = np.empty(int(np.count_nonzero(flags)), dtype=dtype)
    at = 0
    for start in range(0, len(flags), IDS_CHUNK):
        found = np.flatnonzero(flags[start:start + IDS_CHUNK])
        out[at:at + len(found)] = found + start
        at += len(found)
    return out


def _committed(source: dict[str, np.ndarray]) -> np.ndarray:
    """The ids of the records the log holds as committed (a transaction's aborted records never were):
    the column itself (no copy) when every record is."""
    ids = np.asarray(source["record_id"])
    state = source.get("state")
    if state is None:
        return ids
    kept = np.asarray(state) == 0
    return ids if kept.all() else ids[kept]


def verdict_table_html(result: Any) -> str:
    """A RunResult as HTML: its header (scenario, seed, status, trace hash) and one row per
    verdict: the invariant, what was expected, what happened and why."""
    rows = []
    for v, e in zip(result.verdicts, result.expectations):
        expected, ok = e.expected, e.met
        mark = "held" if v.held else "violated"
        rows.append(
            f"<tr><td><code>{html.escape(v.invariant)}</code></td><td>{html.escape(expected or '-')}</td>"
            f"<td style=\"color:{'#2a7a4b' if ok else '#b3261e'}\">{mark}{'' if ok else ' (not as expected)'}</td>"
            f"<td>{html.escape(v.summary)}</td></tr>")
    verdict = "as expected" if result.matches else "NOT as expected"
    head = (f"<p><b>{html.escape(result.scenario)}</b> seed {result.seed}: {html.escape(result.status)}, "
            f"<b>{verdict}</b>; {result.events} events, trace <code>{result.trace_sha256[:16]}</code></p>")
    return (head + "<table><thead><tr><th>invariant</th><th>expected</th><th>result</th><th>why</th></tr></thead>"
            "<tbody>" + "".join(rows) + "</tbody></table>")
