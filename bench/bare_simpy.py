"""The floor: the same three-stage pipeline as weir's bench scenario, in bare simpy.

Same work, same batch size: a producer fills a 4-partition log; a source polls batches (one round
trip each) and keeps at most `max_in_flight` unacknowledged; a keyed processor computes running
totals (the same numpy function weir uses) and takes `process_time` per record; an append sink
takes `write_time` per batch and acknowledges; offsets are committed every `commit_interval`; the
state and offsets are snapshotted every `checkpoint_interval`. No trace, no node lifecycle, no
failover, no checks: what weir adds on top is what the ratio measures.
"""

from __future__ import annotations

import numpy as np
import simpy

from weir.sim.stream.operators import running_totals


def run_bare(records: int, batch_size: int, *, partitions: int = 4, keys: int = 100, produce_batch: int = 10_000,
             produce_interval: int = 1_000, latency: int = 500, process_time: int = 1, write_time: int = 100,
             max_in_flight: int = 4, commit_interval: int = 100_000, checkpoint_interval: int = 100_000,
             seed: int = 1) -> int:
    """Push `records` records through; return how many rows the sink holds at the end."""
    env = simpy.Environment()
    rng = np.random.Generator(np.random.PCG64(seed))
    all_keys = rng.integers(0, keys, records, dtype=np.int64)
    all_values = rng.integers(1, 1000, records, dtype=np.int64)
    cap = records // partitions + produce_batch + 16
    log = {name: np.empty((partitions, cap), np.int64) for name in ("record_id", "key", "event_time", "value")}
    end = [0] * partitions
    sink = {name: np.empty(records + 16, np.int64) for name in ("record_id", "key", "partition", "offset", "value", "written_at")}
    rows = [0]
    totals = np.zeros(keys, np.int64)
    to_proc, to_sink = simpy.Store(env), simpy.Store(env)
    positions, acked, committed = [0] * partitions, [0] * partitions, [0] * partitions
    credit = simpy.Container(env, capacity=max_in_flight, init=max_in_flight)
    done = env.event()
    snapshots = []

    def later(delay, fn, *args):
        env.timeout(delay).callbacks.append(lambda _e: fn(*args))

    def producer():
        for first in range(0, records, produce_batch):
            stop = min(first + produce_batch, records)
            yield env.timeout(latency)
            ids = np.arange(first, stop, dtype=np.int64)
            k, v = all_keys[first:stop], all_values[first:stop]
            part = k % partitions
            for p in range(partitions):
                m = part == p
                n = int(m.sum())
                for name, col in (("record_id", ids), ("key", k), ("event_time", np.full(stop - first, env.now)), ("value", v)):
                    log[name][p, end[p]:end[p] + n] = col[m]
                end[p] += n
            yield env.timeout(produce_interval)

    def source():
        nxt = 0
        while True:
            yield credit.get(1)
            yield env.timeout(2 * latency)  # the fetch round trip
            for i in range(partitions):
                p = (nxt + i) % partitions
                if positions[p] < end[p]:
                    break
            else:
                credit.put(1)
                if sum(committed) == records:
                    done.succeed()
                    return
                yield env.timeout(1_000)
                continue
            a, b = positions[p], min(positions[p] + batch_size, end[p])
            batch = (p, a, log["record_id"][p, a:b], log["key"][p, a:b], log["value"][p, a:b])
            positions[p] = b
            nxt = (p + 1) % partitions
            later(latency, to_proc.put, batch)

    def processor():
        while True:
            p, a, ids, k, v = yield to_proc.get()
            out = running_totals(k, v, totals)
            yield env.timeout(process_time * len(ids))
            later(latency, to_sink.put, (p, a, ids, k, out))

    def ack(p, b):
        acked[p] = b
        credit.put(1)

    def sink_task():
        while True:
            p, a, ids, k, out = yield to_sink.get()
            yield env.timeout(write_time)
            n, r = len(ids), rows[0]
            sink["record_id"][r:r + n] = ids
            sink["key"][r:r + n] = k
            sink["partition"][r:r + n] = p
            sink["offset"][r:r + n] = np.arange(a, a + n)
            sink["value"][r:r + n] = out
            sink["written_at"][r:r + n] = env.now
            rows[0] = r + n
            later(latency, ack, p, a + n)

    def committer():
        while True:
            yield env.timeout(commit_interval)
            later(latency, lambda offs: committed.__setitem__(slice(None), offs), list(acked))

    def checkpointer():
        while True:
            yield env.timeout(checkpoint_interval)
            snapshots.append((tuple(positions), totals.copy()))

    for proc in (producer(), source(), processor(), sink_task(), committer(), checkpointer()):
        env.process(proc)
    env.run(until=done)
    return rows[0]
