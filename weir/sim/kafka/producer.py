"""The workload and the producer that writes it to the broker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass, replace

import numpy as np
import simpy

from weir.sim.kernel.world import Node, World
from weir.sim.kafka.log import Broker
from weir.sim.kafka.partitioner import partition_for
from weir.sim.kernel.trace import Msg

if TYPE_CHECKING:
    from weir.sim.scenario.model import Scenario

#: An event time that was never stamped (no record time is this: it is int64's minimum).
NOT_STAMPED = np.iinfo(np.int64).min

__all__ = ["WorkloadData", "draw_workload", "marker_mask", "poison_mask", "Producer"]


@dataclass(frozen=True, eq=False)
class WorkloadData:
    """Every record's key, value and event-time delay, drawn up front (the upstream's durable data)."""

    keys: np.ndarray
    values: np.ndarray
    delays: np.ndarray  # how long before it was produced each event happened (its event time is that much earlier)
    payment_of: np.ndarray | None = None  # per record: the payment it carries (a client re-send repeats one)


def draw_workload(world: World, scenario: Scenario) -> WorkloadData:
    """Draw the workload from the run's `workload` and `workload.delays` streams.

    Keys are uniform over 0 .. keys-1, except that a `hot_fraction` of the records (drawn from
    their own stream, `workload.hot`) take one of the hot keys 0 .. hot_keys-1. A record produced (nominally) while its partition is to be
    idle, from `idle_from` until `idle_until`, gets the next key whose partition (Kafka's murmur2
    partitioner) is not idle, so an idle
    partition receives nothing in that time. Delays are uniform over 0 .. out_of_order, plus `late_by` for a `late_fraction`.
    """
    w = scenario.workload
    n = w.records
    rng = world.rngs.stream("workload")
    user_delays = None
    if w.source_spec is not None:
        # the guard (weir.sim.stream.guard) checked them: three int64 arrays of n, keys in range, delays >= 0
        keys, values, user_delays = (np.array(a, dtype=np.int64) for a in w.source_spec.build().generate(rng, n, w.keys))
    else:
        keys = rng.integers(0, w.keys, n, dtype=np.int64)
        values = rng.integers(1, 1000, n, dtype=np.int64)
    if w.hot_fraction:  # a hot-key skew: that share of the records goes to keys 0 .. hot_keys-1
        hrng = world.rngs.stream("workload.hot")
        hot = hrng.random(n) < w.hot_fraction
        keys[hot] = hrng.integers(0, w.hot_keys, int(hot.sum()), dtype=np.int64)
    if w.idle_partitions:
        nominal = (np.arange(n) // w.produce_batch) * w.produce_interval  # when each record is produced, faults aside
        quiet = nominal >= w.idle_from
        if w.idle_until is not None:
            quiet &= nominal < w.idle_until
        keys[quiet] = _away_from_idle(w)[keys[quiet]]
    delays = np.zeros(n, dtype=np.int64)
    if w.out_of_order or w.late_fraction:
        drng = world.rngs.stream("workload.delays")
        delays = drng.integers(0, w.out_of_order + 1, n, dtype=np.int64)
        delays[drng.random(n) < w.late_fraction] += w.late_by
    if user_delays is not None:
        delays = delays + user_delays
    if w.marker_every:  # marker records: every Nth happened just before anything produced with or after it
        delays[marker_mask(np.arange(n, dtype=np.int64), w.marker_every)] = w.out_of_order + 1
    # only the payments sink reads which payment a record carries: an arange of a million costs 8 MB
    payment_of = np.arange(n, dtype=np.int64) if w.resend_fraction or scenario.pipeline.sink == "payments" else None
    if w.resend_fraction:  # a client sends some payments again, resend_after later: new records, same payment
        rrng = world.rngs.stream("workload.resend")
        again = np.flatnonzero(rrng.random(n) < w.resend_fraction)
        if w.produce_interval:
            shift = (w.resend_after // w.produce_interval) * w.produce_batch  # records produced meanwhile
        else:  # every batch at once: a re-send any later comes after them all
            shift = n if w.resend_after else 0
        position = np.concatenate([np.arange(n) * 2, (again + shift) * 2 + 1])  # a re-send after its slot
        order = np.argsort(position, kind="stable")
        payment_of = np.concatenate([payment_of, again])[order]
        keys, values, delays = keys[payment_of], values[payment_of], delays[payment_of]
    return WorkloadData(keys, values, delays, payment_of)


def marker_mask(record_ids: np.ndarray, every: int) -> np.ndarray:
    """Which records are markers (punctuation): every `every`-th by record id.

    A marker's event time is its produce time minus `out_of_order` minus 1, so every record of its
    partition produced with it or later has a later event time: the marker's event time is a
    correct watermark for its partition (late records, by `late_fraction`, excepted: they are late).
    """
    return record_ids % every == every - 1


def poison_mask(record_ids: np.ndarray, every: int) -> np.ndarray:
    """Which records are poison: every `every`-th by record id (offset by half, so they are not markers)."""
    return record_ids % every == every // 2


def _away_from_idle(w) -> np.ndarray:
    """For each key, itself if its partition is not idle, else the next key (cyclically) whose partition is not."""
    all_keys = np.arange(w.keys, dtype=np.int64)
    allowed = ~np.isin(partition_for(all_keys, w.partitions), np.array(w.idle_partitions, dtype=np.int64))
    ok = np.flatnonzero(allowed)  # Workload validation guarantees at least one
    nxt = np.searchsorted(ok, all_keys)  # the first allowed key at or after each key
    return ok[np.where(nxt < len(ok), nxt, 0)]


class Producer:
    """Writes the workload to the broker in batches, on a schedule: batch k is due at k * produce_interval.

    With `workload.producers = N`, N producer instances on their own nodes share the schedule:
    instance i sends batches i, i + N, i + 2N, ..., stamping event times from its own node's clock
    (so a producer's clock skew shows in the event times of its records). Instance 0 runs on node
    `producer`, instance i on `producer-i`.

    Upstream events happen at their own pace, so the schedule does not wait for the broker: a batch
    goes out when it is due, or as soon as the instance's previous one is acknowledged if that is
    later (a producer that was down catches up). Event time is the producer's clock at sending,
    minus each record's delay. Each instance's next batch (the first not yet acknowledged by the
    broker) is durable, so a crash delays its production but never skips or reorders it; a
    retried batch is dropped by the broker's check of the producer's id and sequence.
    """

    def __init__(self, world: World, nodes: list[Node], broker: Broker, scenario: Scenario, workload: WorkloadData):
        w = scenario.workload
        self.data = workload
        self.total = len(workload.keys)  # records to produce
        self.world, self.nodes, self.broker = world, nodes, broker
        self.node = nodes[0]
        self.batch, self.interval = w.produce_batch, w.produce_interval
        self.timeout = scenario.pipeline.request_timeout
        self.transactional, self.txn_batches = w.transactional, w.txn_batches
        # durable: per instance, the first record not yet acknowledged. A transactional producer reads
        # where to start from the broker (init_producer), which stores it with each commit; next_id
        # only mirrors that.
        self.next_ids = [i * self.batch for i in range(len(nodes))]
        self.txn_seq = 0  # durable: transaction ids are never reused
        self.init_requests = 0  # InitProducerId requests sent (each one an id the broker answers once)
        self.finished = [False] * len(nodes)
        self.done = False
        self._on_done: list = []
        # per record id, when its event truly happened (the simulation's clock, not the producer's):
        # what a skewed clock's stamps should have been (event_time_complete judges windows by it)
        # (windowed scenarios only: only their checkers read it)
        self.true_event_time = np.full(len(workload.keys), NOT_STAMPED, dtype=np.int64) if (
            scenario.window is not None) else None
        for i, node in enumerate(nodes):
            node.on_restart(lambda _n, i=i: self._start(i))

    def release(self) -> None:
        """Every record is produced and acknowledged (or the run is over): let go of the workload's
        arrays (keys, values, delays, payments), the largest thing the producer holds, while the
        pipeline still works through what it produced, and before the run's results are read out."""
        empty = np.zeros(0, dtype=np.int64)  # not a slice: a view would keep the whole buffer alive
        self.data = replace(self.data, keys=empty, values=empty, delays=empty, payment_of=None)

    @property
    def next_id(self) -> int:
        """The first record not yet acknowledged, over all instances."""
        return min(n for n, done in zip(self.next_ids, self.finished) if not done) if not self.done else self.total

    def on_done(self, listener) -> None:
        self._on_done.append(listener)

    def start(self) -> None:
        for i in range(len(self.nodes)):
            self._start(i)

    def _start(self, i: int) -> None:
        if not self.finished[i]:
            self.nodes[i].spawn(self._run(i))

    def _run(self, i: int):
        if self.transactional:
            yield from self._run_transactional(i)
            return
        total = self.total
        step = self.batch * len(self.nodes)
        try:
            while self.next_ids[i] < total:
                first = self.next_ids[i]
                yield from self._due(first, i)  # batch k is due at k * produce_interval
                stop = min(first + self.batch, total)
                yield from self._send(first, stop, instance=i)
                self.next_ids[i] = first + step
            self._finish(i)
        except simpy.Interrupt:
            return

    def _finish(self, i: int = 0) -> None:
        self.finished[i] = True
        if all(self.finished):
            self.done = True
            self.release()  # every record is acknowledged: nothing will be sent again
            for listener in self._on_done:
                listener()

    def _due(self, first: int, instance: int = 0):
        """Wait until the batch starting at record `first` is due on the schedule (a timer of the
        producer's node: a pause holds it)."""
        env = self.world.env
        due = (first // self.batch) * self.interval
        if env.now < due:
            yield from self.nodes[instance].wait(due - env.now)

    def _send(self, first: int, stop: int, instance: int = 0, **txn):
        """Send records [first, stop) to the broker until it answers; its answer (False: fenced)."""
        data, node = self.data, self.nodes[instance]
        event_time = node.local_time() - data.delays[first:stop]
        true_time = self.world.env.now - data.delays[first:stop]
        burst = self.world.active_fault("late_burst", node.name)  # a late-data burst: these happened longer ago
        if burst:
            event_time = event_time - burst.slow_by
            true_time = true_time - burst.slow_by
        if self.true_event_time is not None:
            self.true_event_time[first:stop] = true_time
        keys, values = data.keys[first:stop], data.values[first:stop]
        if instance and "epoch" not in txn:  # transactional instances share the transactional id, so one producer id
            txn["producer"] = instance
        return (yield from self.world.net.call(
            node, self.broker.node, Msg.PRODUCE,
            lambda: self.broker.append(first, keys, event_time, values, **txn), self.timeout, ref=(first, stop - first)))

    def _run_transactional(self, i: int = 0):
        """Kafka's transactional producer: init (a new epoch fences the old one and aborts its open
        transaction), then batches in transactions of txn_batches, each committed before the next.
        Fenced (a newer epoch, or the broker's transaction timeout bumped it), it closes (a request
        timeout) and starts again with a new init, from the position the broker stored with its
        last commit. With workload.producers > 1 the instances share the one transactional id.
        A crash loses the open transaction: the next instance sends its records again. Where to
        start is read back from the broker, which stores the upstream position with each commit, so
        a commit whose answer the crash swallowed is not sent twice."""
        net, broker, node = self.world.net, self.broker, self.nodes[i]
        total = self.total
        try:
            while True:  # a fenced producer is closed and made again, as an application does on ProducerFencedException
                self.init_requests += 1
                epoch, first = yield from net.call(node, broker.node, Msg.INIT,
                                                   lambda request=self.init_requests: broker.init_producer(request),
                                                   self.timeout)
                fenced = False
                while first < total and not fenced:
                    self.txn_seq += 1
                    txn = self.txn_seq
                    for _ in range(self.txn_batches):
                        if first >= total:
                            break
                        yield from self._due(first, i)
                        stop = min(first + self.batch, total)
                        if not (yield from self._send(first, stop, i, epoch=epoch, txn=txn)):
                            fenced = True  # a newer epoch owns the transactional id (or a timeout bumped it)
                            break
                        first = stop
                    if fenced:
                        break
                    ended = yield from net.call(node, broker.node, Msg.END_TXN,
                                                lambda txn=txn, first=first: broker.end_txn(epoch, txn, True, first),
                                                self.timeout, ref=(txn, 1))
                    if not ended:
                        fenced = True
                        break
                    self.next_ids[i] = first
                if not fenced:
                    break
                yield from node.wait(self.timeout)  # closing the fenced producer before making a new one
            self._finish(i)
        except simpy.Interrupt:
            return
