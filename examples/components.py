"""Example user components: one of each kind, used by examples/user_components.toml.

Each is an ordinary class that subclasses weir's base for its kind. weir runs them under the same
faults and checks as its own components.
"""

from __future__ import annotations

import numpy as np

import weir


class KeyCounter(weir.Operator):
    """Stateful: a record's output is how many records of its key the operator has seen, times `scale`."""

    def __init__(self, scale: int = 1):
        self.scale = scale
        self.counts: dict[int, int] = {}
        self.changed: set[int] = set()

    def on_batch(self, batch, now):
        out = np.empty(len(batch), dtype=np.int64)
        for i, key in enumerate(batch.key.tolist()):
            self.counts[key] = self.counts.get(key, 0) + 1
            self.changed.add(key)
            out[i] = self.counts[key] * self.scale
        return out

    def snapshot(self):
        self.changed.clear()
        return dict(self.counts)  # a copy: later changes must not reach the checkpoint

    def restore(self, snapshot):
        self.counts = dict(snapshot)

    def state_size(self):
        return len(self.counts)

    def changed_entries(self):
        return len(self.changed)


class DictSink(weir.Sink):
    """An idempotent table in a dict: the last write of a record id wins."""

    def __init__(self):
        self.rows: dict[int, tuple[int, int]] = {}

    def write(self, batch, value, written_at):
        rewritten = 0
        for rid, v in zip(batch.record_id.tolist(), value.tolist()):
            rewritten += rid in self.rows
            self.rows[rid] = (v, written_at)
        return rewritten

    def contents(self):
        ids = sorted(self.rows)
        return {"record_id": np.array(ids, dtype=np.int64),
                "value": np.array([self.rows[i][0] for i in ids], dtype=np.int64),
                "written_at": np.array([self.rows[i][1] for i in ids], dtype=np.int64)}


class CautiousWatermarks(weir.WatermarkStrategy):
    """Bounded out-of-orderness, holding back `extra` microseconds more."""

    def __init__(self, bound: int = 0, extra: int = 0):
        super().__init__(bound)
        self.extra = extra
        self.max_ts = None

    def on_event(self, ts, marker=False):
        self.max_ts = ts if self.max_ts is None else max(self.max_ts, ts)

    def current(self):
        return -(2**63) if self.max_ts is None else self.max_ts - self.bound - self.extra - 1


class HotKeySource(weir.Source):
    """Uniform keys, except that a `hot` fraction of the records all have key 0."""

    def __init__(self, hot: float = 0.5):
        self.hot = hot

    def generate(self, rng, records, keys):
        k = rng.integers(0, keys, records, dtype=np.int64)
        k[rng.random(records) < self.hot] = 0
        values = rng.integers(1, 100, records, dtype=np.int64)
        return k, values, np.zeros(records, dtype=np.int64)


def counts_match_the_log(run):
    """The user's own invariant (`expect.oracle`): for every key, the highest count KeyCounter wrote
    is the number of that key's records in the log, times the scale. A restore that lost or doubled
    a key's state, or a replay that counted records again, breaks it."""
    scale = run.scenario.operator.params.get("scale", 1)
    key_of = np.zeros(int(run.source["record_id"].max()) + 1, dtype=np.int64)
    key_of[run.source["record_id"]] = run.source["key"]
    expected = np.bincount(run.source["key"]) * scale  # each record once (the log holds each once here)
    got = np.zeros(len(expected), dtype=np.int64)
    np.maximum.at(got, key_of[run.sink["record_id"]], run.sink["value"])
    wrong = np.flatnonzero(got != expected)
    if len(wrong):
        k = int(wrong[0])
        return weir.Verdict("counts_match_the_log", False, f"{len(wrong)} keys' final counts are off (first: key {k}, "
                            f"got {int(got[k])}, expected {int(expected[k])})", {"wrong_keys": len(wrong)})
    return weir.Verdict("counts_match_the_log", True, f"every one of the {len(expected)} keys' final count is its "
                        "number of records in the log", {"keys": len(expected)})


class FastestPartitionWatermarks(CautiousWatermarks):
    """Flawed: merges a source's partitions by the most advanced one (max), not the least (min).
    A window closes as soon as one partition has moved past it; the other partitions' records for
    it arrive late and are dropped."""

    @staticmethod
    def merge(watermarks, idle):
        active = [w for w, i in zip(watermarks, idle) if not i]
        return max(active) if active else None


class ThrottledTable(weir.Sink):
    """An append-only table that takes at most `limit` rows per write: it writes the first `limit`
    and pushes back on the rest with weir.Retryable, naming them. Correct: what it names, it did
    not write."""

    def __init__(self, limit: int = 60):
        self.limit = limit
        self.rows: list[tuple[int, int]] = []

    def write(self, batch, value, written_at):
        ids, values = batch.record_id.tolist(), value.tolist()
        self.rows.extend(zip(ids[:self.limit], values[:self.limit]))
        if len(ids) > self.limit:
            raise weir.Retryable("throttled: too many rows in one write", rows=list(range(self.limit, len(ids))))
        return 0

    def contents(self):
        return {"record_id": np.array([r for r, _v in self.rows], dtype=np.int64),
                "value": np.array([v for _r, v in self.rows], dtype=np.int64)}


class LeakyThrottledTable(ThrottledTable):
    """Flawed: writes the whole batch, then pushes back on the rows over the limit as if it had not
    written them. Retried, they land twice. Only a burst (a backlog after a pause) shows it."""

    def write(self, batch, value, written_at):
        self.rows.extend(zip(batch.record_id.tolist(), value.tolist()))
        if len(batch) > self.limit:
            raise weir.Retryable("throttled", rows=list(range(self.limit, len(batch))))
        return 0


class Fee(weir.Operator):
    """Stateless: a record's value plus a fixed `fee` (a first step in a chain)."""

    def __init__(self, fee: int = 1):
        self.fee = fee

    def on_batch(self, batch, now):
        return batch.value + self.fee


class RunningSum(weir.Operator):
    """Stateful: each key's running sum of the values it is given (after the chain's earlier steps)."""

    def __init__(self):
        self.sums: dict[int, int] = {}

    def on_batch(self, batch, now):
        out = np.empty(len(batch), dtype=np.int64)
        for i, (key, value) in enumerate(zip(batch.key.tolist(), batch.value.tolist())):
            self.sums[key] = self.sums.get(key, 0) + value
            out[i] = self.sums[key]
        return out

    def snapshot(self):
        return dict(self.sums)

    def restore(self, snapshot):
        self.sums = dict(snapshot)

    def state_size(self):
        return len(self.sums)


class ForgetfulSum(RunningSum):
    """Flawed: its snapshot is the live dict, not a copy, so later changes reach the checkpoint:
    a restore gives back state that already counted records the replay will count again."""

    def snapshot(self):
        return self.sums


class PaneTotal(RunningSum):
    """After a window: each key's running total of its windows' results (a pane operator)."""


class ForgetfulPaneTotal(ForgetfulSum):
    """The same, flawed as ForgetfulSum: its snapshot is the live dict."""
