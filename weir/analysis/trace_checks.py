"""Checkers that read the trace: the order in which things happened, not only where records ended.

- `commits_after_ack`: a consumer commits an offset only once the sink has acknowledged every
  record below it (the seed's issue 6: "offset committed before sink confirmed" loses data).
- `checkpoint_atomic`: a restarted job's operator state and its source offsets come from the same
  checkpoint.
- `watermarks_sane`: each processor subtask's watermark never goes back, and never passes the
  smallest watermark of its active inputs; and each source subtask's merge never passes its
  slowest active partition.
- `late_accounted`: every record of a tumbling-window job is in a window's result, in a window
  still open, in the late side output, or counted as dropped: never silently gone.

Each is a pass over the batch-level trace columns (a few thousand events for a million records).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from weir.sim.kernel.trace import Kind, Msg

from weir.analysis.verdict import SHOW_IDS, Verdict

__all__ = ["commits_after_ack", "checkpoint_atomic", "watermarks_sane", "late_accounted"]

MIN, MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max


def _rows(cols: dict[str, np.ndarray], *kinds: Kind) -> np.ndarray:
    """Indices of the events of these kinds, in trace order."""
    return np.flatnonzero(np.isin(cols["kind"], [int(k) for k in kinds]))


def commits_after_ack(run: Any) -> Verdict:
    """Every accepted offset commit is at or below what the sink had acknowledged of its partition
    (the contiguous prefix of acknowledged offsets) when the commit landed.

    A batch is acknowledged when every part of it is: with parallel subtasks a batch is split by
    key (an EXCHANGE event per part) and each sink subtask acknowledges its own part."""
    cols = run.trace.columns
    kind, a, b, c, d, time = (cols[k] for k in ("kind", "a", "b", "c", "d", "time"))
    scenario = getattr(run, "scenario", None)
    # a read_uncommitted consumer reads aborted records as any other: a poll's count includes them
    reads_aborted = scenario is not None and scenario.pipeline.isolation == "read_uncommitted"
    skip = {} if reads_aborted else _aborted_offsets(run.source)
    live = {p: np.flatnonzero(~flags) for p, flags in skip.items()}  # offsets of records not aborted
    batches: dict[tuple[int, int], list[int]] = {}  # (partition, first offset) -> [end, parts, parts acked]
    acked_to: dict[int, int] = {}  # partition -> every offset below this is acknowledged (or aborted)
    pending: dict[int, list[tuple[int, int]]] = {}  # acknowledged ranges above a gap
    ahead = []
    commits = 0

    def span(p: int, first: int, count: int) -> int:
        """The end offset of `count` records from `first` (a read_committed consumer skips aborted offsets)."""
        if p not in skip:
            return first + count
        kept = live[p]
        at = int(np.searchsorted(kept, first))
        return int(kept[at + count - 1]) + 1 if count else first

    def acknowledge(p: int, first: int, end: int) -> None:
        spans = pending.setdefault(p, [])
        spans.append((first, end))
        spans.sort()
        top = acked_to.get(p, 0)
        aborted = skip.get(p)
        while True:
            if aborted is not None:  # a read_committed consumer skips aborted records: nothing to acknowledge
                while top < len(aborted) and aborted[top]:
                    top += 1
            if not spans or spans[0][0] > top:
                break
            top = max(top, spans.pop(0)[1])
        acked_to[p] = top

    rows = _rows(cols, Kind.POLL, Kind.EXCHANGE, Kind.ACK, Kind.COMMIT)
    poll, exchange, ack = int(Kind.POLL), int(Kind.EXCHANGE), int(Kind.ACK)  # plain ints: no enum per event
    for k, ai, bi, ci, di, ti in zip(*(col[rows].tolist() for col in (kind, a, b, c, d, time))):
        if k == poll:
            batches[(ai, bi)] = [span(ai, bi, ci), 0, 0]
        elif k == exchange:
            batch = batches.get((bi, ci))
            if batch is not None:
                batch[1] += 1
        elif k == ack:
            batch = batches.get((ai, bi))
            if batch is None:  # no poll in the trace (a hand-made one): the ack names its records
                acknowledge(ai, bi, span(ai, bi, ci))
                continue
            batch[2] += 1
            if batch[2] >= max(batch[1], 1):
                acknowledge(ai, bi, batch[0])
        elif di == 1:  # an accepted commit
            commits += 1
            top = acked_to.get(ai, 0)
            if bi > top:
                ahead.append({"partition": ai, "committed": bi, "acknowledged_below": top,
                              "unacknowledged": bi - top, "time_us": ti})
    evidence = {"commits": commits, "ahead_of_sink": len(ahead), "first": ahead[:SHOW_IDS]}
    if ahead:
        f = ahead[0]
        return Verdict("commits_after_ack", False, f"{len(ahead)} of {commits} commits ran ahead of the sink; first: "
                       f"partition {f['partition']} committed {f['committed']} at t={f['time_us'] / 1e6:.6f}s with "
                       f"only offsets below {f['acknowledged_below']} acknowledged ({f['unacknowledged']} records a "
                       f"crash would lose)", evidence)
    return Verdict("commits_after_ack", True, f"all {commits} accepted commits were at or behind what the sink had "
                   "acknowledged", evidence)


def _aborted_offsets(source: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    """Per partition with aborted records: a flag per offset, True where the record was aborted."""
    state = source.get("state")
    if state is None or not (state == 2).any():
        return {}
    out = {}
    for p in np.unique(source["partition"][state == 2]).tolist():
        mine = source["partition"] == p
        flags = np.zeros(int(source["offset"][mine].max()) + 1, dtype=bool)
        flags[source["offset"][mine & (state == 2)]] = True
        out[p] = flags
    return out


def checkpoint_atomic(run: Any) -> Verdict:
    """Each (re)deployment restored its operator state and its source offsets from one checkpoint."""
    cols = run.trace.columns
    state_rows = _rows(cols, Kind.STATE_RESTORE)
    offset_rows = _rows(cols, Kind.RESTORE)
    state = {int(g): int(cp) for g, cp in zip(cols["b"][state_rows], cols["a"][state_rows])}
    offsets = {int(g): int(cp) for g, cp in zip(cols["b"][offset_rows], cols["a"][offset_rows])}
    torn = [{"generation": g, "state_from": state[g], "offsets_from": offsets[g]}
            for g in sorted(state) if g in offsets and state[g] != offsets[g]]
    evidence = {"restores": len(state), "mismatched": len(torn), "first": torn[:SHOW_IDS]}
    if torn:
        f = torn[0]
        return Verdict("checkpoint_atomic", False, f"{len(torn)} of {len(state)} deployments mixed checkpoints; first: "
                       f"generation {f['generation']} took its state from checkpoint {f['state_from']} and its "
                       f"offsets from checkpoint {f['offsets_from']}", evidence)
    return Verdict("checkpoint_atomic", True, f"all {len(state)} deployments took state and offsets from one "
                   "checkpoint", evidence)


def watermarks_sane(run: Any) -> Verdict:
    """Per processor subtask, the watermark never decreases and never passes the minimum over its
    active inputs' watermarks (as received: the largest each input has sent it; idle inputs aside).
    A restarted job starts its watermarks again, as Flink's do: each attempt is judged on its own."""
    cols = run.trace.columns
    kind, node, a, b, c, d, time = (cols[k] for k in ("kind", "node", "a", "b", "c", "d", "time"))
    processor = run.trace.nodes.index("processor")
    rows = np.flatnonzero((kind == Kind.WATERMARK) | (kind == Kind.JOB_RESTART)
                          | ((kind == Kind.RECV) & (node == processor) & (b == Msg.WATERMARK)))
    inputs: dict[int, dict[int, tuple[int, bool]]] = {}  # subtask -> input node -> (largest received, idle)
    last: dict[int, int] = {}
    backwards, ahead = [], []
    moves = 0
    for i in rows.tolist():
        if kind[i] == Kind.JOB_RESTART:  # a new attempt starts its watermarks again (they are not checkpointed)
            inputs, last = {}, {}
            continue
        if kind[i] == Kind.RECV:
            j, idle = divmod(int(d[i]), 2)
            seen = inputs.setdefault(j, {})
            before = seen.get(int(a[i]), (int(c[i]), False))[0]
            seen[int(a[i])] = (max(before, int(c[i])), bool(idle))
            continue
        moves += 1
        j, w = int(a[i]), int(b[i])
        if j in last and w < last[j]:
            backwards.append({"subtask": j, "from": last[j], "to": w, "time_us": int(time[i])})
        last[j] = w
        active = [v for v, idle in inputs.get(j, {}).values() if not idle]
        if active and w > min(active):
            ahead.append({"subtask": j, "watermark": w, "min_input": min(active), "time_us": int(time[i])})
    merges, above = _source_merges(run)
    evidence = {"moves": moves, "backwards": len(backwards), "ahead_of_inputs": len(ahead),
                "first_backwards": backwards[:SHOW_IDS], "first_ahead": ahead[:SHOW_IDS],
                "source_emissions": merges, "above_slowest_partition": len(above), "first_above": above[:SHOW_IDS]}
    problems = []
    if above:
        f = above[0]
        problems.append(f"{len(above)} of {merges} source watermarks passed the slowest active partition (first: "
                        f"{f['node']} sent {f['watermark']} while partition {f['partition']} was at "
                        f"{f['partition_watermark']}, t={f['time_us'] / 1e6:.6f}s)")
    if backwards:
        f = backwards[0]
        problems.append(f"{len(backwards)} moves went backwards (first: subtask {f['subtask']} from {f['from']} to "
                        f"{f['to']} at t={f['time_us'] / 1e6:.6f}s)")
    if ahead:
        f = ahead[0]
        problems.append(f"{len(ahead)} moves passed the slowest input (first: subtask {f['subtask']} at {f['watermark']}, "
                        f"its inputs at {f['min_input']}, t={f['time_us'] / 1e6:.6f}s)")
    if problems:
        return Verdict("watermarks_sane", False, "; ".join(problems), evidence)
    return Verdict("watermarks_sane", True, f"all {moves} watermark moves went forward and stayed at or below every "
                   f"active input; all {merges} source watermarks stayed at or below the slowest active partition",
                   evidence)


def _source_merges(run: Any) -> tuple[int, list[dict]]:
    """Each watermark a source subtask sent, against its partitions' own: it may not pass the
    lowest watermark of a partition that is still active (Flink's WatermarkOutputMultiplexer
    merges by the minimum over active outputs). Each partition's watermark is replayed from the
    trace (weir.analysis.metrics.partition_watermarks). A partition is left out once it may have
    turned idle (watermarks.idle_timeout, less one emission interval of slack). Not judged with
    ingestion time or in rebalance mode (partitions move); the end-of-input watermark is exempt.
    Returns (emissions checked, those above)."""
    sc = getattr(run, "scenario", None)  # (a hand-made trace with no scenario: nothing to replay)
    wm = getattr(sc, "watermarks", None)
    if wm is None or wm.strategy == "ingestion_time" or sc.pipeline.source_failover == "rebalance":
        return 0, []
    from weir.analysis.metrics import partition_watermarks, source_nodes
    try:
        own, restarts = partition_watermarks(run)
    except Exception:  # noqa: BLE001 - the user's strategy, replayed here, raised: the run already said so
        return 0, []
    by_partition = {int(series.label.split()[-1]): series for series in own}
    cols, names = run.trace.columns, run.trace.nodes
    sources = source_nodes(names)
    index = {names.index(n): i for i, n in enumerate(sources)}
    sent = np.flatnonzero((cols["kind"] == Kind.SEND) & (cols["b"] == Msg.WATERMARK) & (cols["d"] < 2)
                          & np.isin(cols["node"], list(index)) & (cols["c"] != MAX))
    slack = wm.idle_timeout - wm.interval if wm.idle_timeout is not None else None
    above = []
    for i in sent.tolist():
        t, w = int(cols["time"][i]), int(cols["c"][i])
        k = np.searchsorted(restarts, t, side="right")
        started = int(restarts[k - 1]) if k else 0  # this attempt's start: no partition read before it counts
        active = []
        for p in range(index[int(cols["node"][i])], sc.workload.partitions, len(sources)):
            series = by_partition.get(p)
            j = -1 if series is None else int(np.searchsorted(series.time, t, side="right")) - 1
            read = j >= 0 and series.time[j] >= started
            last = int(series.time[j]) if read else started
            if slack is not None and t - last >= slack:
                continue  # it may have turned idle: out of the minimum
            active.append((int(series.value[j]) if read else MIN, p))
        if active and w > min(active)[0]:
            lowest, p = min(active)
            above.append({"node": names[int(cols["node"][i])], "watermark": w, "partition": p,
                          "partition_watermark": lowest, "time_us": t})
    return len(sent), above


def late_accounted(run: Any) -> Verdict:
    """Tumbling windows: records = those in fired windows' results + those in windows still open at
    the end + the late side output + those counted and dropped. Fewer: records silently gone (state
    lost, a late record neither kept nor counted); more: records counted twice (panes fired again
    after a restore)."""
    from weir.analysis.windowed import WindowTable, batch_windows, job_windows
    spec = run.scenario.window
    n = len(run.source["record_id"])
    if spec.kind != "tumbling":
        return Verdict("late_accounted", True, f"{spec.kind} windows: not judged (a record belongs to several "
                       "windows, or sessions merge)", {"judged": False})
    lateness = spec.allowed_lateness
    final = run.window_watermark if run.window_watermark is not None else -(2**63)
    fired = job_windows(run)
    expected = batch_windows(run, False)
    if isinstance(fired, WindowTable) and isinstance(expected, WindowTable):  # column by column
        in_results = int(fired.count.sum())
        open_rows = (fired.find(expected) < 0) & (expected.end - 1 + lateness > final)
        still_open = int(expected.count[open_rows].sum())
    else:
        in_results = sum(count for _value, count in fired.values())
        still_open = sum(count for w, (_value, count) in expected.items()
                         if w not in fired and w[2] - 1 + lateness > final)
    side, dropped = len(run.late["record_id"]), int(run.late_dropped)
    accounted = in_results + still_open + side + dropped
    evidence = {"judged": True, "records": n, "in_results": in_results, "in_open_windows": still_open,
                "side_output": side, "dropped": dropped, "difference": n - accounted}
    equation = (f"{n} records; {in_results} in results + {still_open} in open windows + {side} in the side output "
                f"+ {dropped} counted as dropped = {accounted}")
    if accounted < n:
        return Verdict("late_accounted", False, f"{n - accounted} records silently gone: {equation}", evidence)
    if accounted > n:
        return Verdict("late_accounted", False, f"{accounted - n} records counted twice: {equation}", evidence)
    return Verdict("late_accounted", True, equation, evidence)
