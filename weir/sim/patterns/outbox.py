"""The transactional outbox with a CDC relay, and the dual write it replaces (the seed's pattern 3).

An application on the `producer` node takes orders (the workload's records, on the producer's
schedule) and must both store each in its database (`orders`, SQLite) and publish an event for it
to the log. Each order takes `outbox.db_write_time` in the database. A crash loses the order being
handled (its client gets an error and gives up); the application goes on with the next one.

- `outbox` (the remedy): one SQLite transaction inserts the order and an outbox row
  (`status = 'pending'`); a crash before the commit leaves neither. A relay (CDC) on the same
  node tails the outbox every `relay_interval`, publishes what is pending in order, and marks
  it sent once the broker acknowledged; a crash between the two publishes it again, and the
  broker's idempotent producer drops the copy. Every order has exactly one event.
- `dual_write` with `order = "db_first"`: commit the order, then publish (the producer client
  holds the record `linger` before sending it); a crash between them leaves an order with no
  event. With `"log_first"`: publish, then commit; a crash between them leaves an event for an
  order that does not exist.

The relay keeps its producer id across restarts (as a transactional id would), so the broker drops
the events it sends again after a crash; with a fresh producer id they would be duplicates, and
the consumers would have to deduplicate by event id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import simpy

from weir.sim.kernel.node import wake
from weir.sim.kernel.world import Node, World
from weir.sim.kafka.log import Broker
from weir.sim.kernel.trace import Kind, Msg
from weir.sim.kafka.producer import WorkloadData
from weir.sim.stream.functions import OutboxRelay
from weir.sim.patterns.sinks import memory_db

if TYPE_CHECKING:
    from weir.sim.scenario.model import Scenario

__all__ = ["OutboxApp", "CdcRelay"]

_DDL = (
    "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, account INTEGER NOT NULL, amount INTEGER NOT NULL, "
    "created_at INTEGER NOT NULL)",
    "CREATE TABLE outbox (event_id INTEGER PRIMARY KEY, account INTEGER NOT NULL, amount INTEGER NOT NULL, "
    "event_time INTEGER NOT NULL, status TEXT NOT NULL)",
)


class CdcRelay(OutboxRelay):
    """weir's relay: publish the pending rows in order, then mark them sent, keeping its producer
    id across restarts (the broker drops what a crash made it publish again)."""


class OutboxApp:
    """The application and its relay; takes the Producer's place (start, done, on_done, data)."""

    def __init__(self, world: World, node: Node, broker: Broker, scenario: Scenario, workload: WorkloadData,
                 relay: OutboxRelay | None = None):
        self.world, self.node, self.broker, self.data = world, node, broker, workload
        self.relay = relay if relay is not None else CdcRelay()
        self.relay_starts = 0  # how often the relay (re)started: a fresh producer id each, unless it keeps one
        w, cfg = scenario.workload, scenario.outbox
        self.cfg = cfg
        self.batch, self.interval = w.produce_batch, w.produce_interval
        self.timeout = scenario.pipeline.request_timeout
        self.db = memory_db()
        for ddl in _DDL:
            self.db.execute(ddl)
        self.next_order = 0  # durable: the client requests are a queue the application works through
        self.lost_orders = 0  # orders a crash cut short (their clients gave up)
        self.done = False
        self._handled = False
        self._on_done: list = []
        self._relay_waiters: list[simpy.Event] = []  # an idle relay, woken when an outbox row commits
        node.on_restart(lambda _n: self.start())

    def on_done(self, listener) -> None:
        self._on_done.append(listener)

    def start(self) -> None:
        if not self.done:
            self.node.spawn(self._app())
            if self.cfg.mode == "outbox":
                self.node.spawn(self._relay())

    def _finish_if_done(self) -> None:
        if self._handled and not self.done and (self.cfg.mode != "outbox" or not self._pending(1)):
            self.done = True
            for listener in self._on_done:
                listener()

    # ---- the application ------------------------------------------------------------------------
    def _app(self):
        env, data, db = self.world.env, self.data, self.db
        total = len(data.keys)
        try:
            while self.next_order < total:
                i = self.next_order
                due = (i // self.batch) * self.interval
                if env.now < due:
                    yield from self.node.wait(due - env.now)
                self.next_order = i + 1  # a crash from here on loses order i
                account, amount = int(data.keys[i]), int(data.values[i])
                event_time = self.node.local_time() - int(data.delays[i])
                if self.cfg.mode == "outbox":
                    # the transaction's work; a crash here and it never commits. Its statements run at
                    # the end, at once: the relay shares the connection, and a transaction left open
                    # across the wait would take the relay's writes into it (and a rollback undo them)
                    yield from self.node.work(self.cfg.db_write_time)
                    db.execute("BEGIN")
                    db.execute("INSERT INTO orders VALUES (?, ?, ?, ?)", (i, account, amount, event_time))
                    db.execute("INSERT INTO outbox VALUES (?, ?, ?, ?, 'pending')", (i, account, amount, event_time))
                    db.execute("COMMIT")
                    wake(self._relay_waiters)  # a row for the relay to find
                elif self.cfg.order == "db_first":
                    yield from self.node.work(self.cfg.db_write_time)
                    db.execute("INSERT INTO orders VALUES (?, ?, ?, ?)", (i, account, amount, event_time))
                    if self.cfg.linger:  # the producer client holds the record to batch it: a crash loses it
                        yield from self.node.wait(self.cfg.linger)
                    yield from self._publish(np.array([i]), np.array([account]), np.array([event_time]),
                                             np.array([amount]))
                else:  # log_first
                    if self.cfg.linger:
                        yield from self.node.wait(self.cfg.linger)
                    yield from self._publish(np.array([i]), np.array([account]), np.array([event_time]),
                                             np.array([amount]))
                    yield from self.node.work(self.cfg.db_write_time)
                    db.execute("INSERT INTO orders VALUES (?, ?, ?, ?)", (i, account, amount, event_time))
            self._handled = True
            self._finish_if_done()
        except simpy.Interrupt:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self.lost_orders += 1

    def _publish(self, ids: np.ndarray, keys: np.ndarray, times: np.ndarray, values: np.ndarray, producer: int = 0):
        ids = ids.astype(np.int64)
        return (yield from self.world.net.call(
            self.node, self.broker.node, Msg.PRODUCE,
            lambda: self.broker.append(int(ids[0]), keys.astype(np.int64), times.astype(np.int64),
                                       values.astype(np.int64), record_ids=ids, producer=producer),
            self.timeout, ref=(int(ids[0]), len(ids))))

    # ---- the relay (CDC) ---------------------------------------------------------------------------
    def _pending(self, limit: int) -> list[tuple[int, int, int, int]]:
        return self.db.execute("SELECT event_id, account, amount, event_time FROM outbox WHERE status = 'pending' "
                               "ORDER BY event_id LIMIT ?", (limit,)).fetchall()

    def _relay(self):
        """The relay (weir.OutboxRelay says how): publish the pending rows and mark them sent, in its
        order. Publishing is a round trip to the broker, marking a db_write_time: a crash can land
        between them. It polls every relay_interval; a poll that finds no pending row at all
        sleeps until a row commits (Node.next_tick) and polls at the tick the interval would have
        given, so an idle relay costs nothing (pending rows its select() held back: it polls on)."""
        relay = self.relay
        self.relay_starts += 1
        producer = 0 if relay.keep_producer_id else 1_000 + self.relay_starts  # the application's own is 0
        try:
            while True:
                pending = self._pending(self.cfg.relay_batch)
                rows = relay.select(pending)
                if rows:
                    ids, keys, values, times = (np.array(col, dtype=np.int64) for col in zip(*rows))
                    if relay.mark_first:
                        yield from self._mark_sent(ids)
                    if self.cfg.linger:  # its producer client holds the batch before sending it, too
                        yield from self.node.wait(self.cfg.linger)
                    yield from self._publish(ids, keys, times, values, producer)
                    if not relay.mark_first:
                        yield from self._mark_sent(ids)  # a crash before this: published, not marked
                    self._finish_if_done()
                    continue
                self._finish_if_done()
                if pending:
                    yield from self.node.wait(self.cfg.relay_interval)
                else:
                    yield from self.node.next_tick(self._relay_waiters, self.cfg.relay_interval)
        except simpy.Interrupt:
            return

    def _mark_sent(self, ids: np.ndarray):
        yield from self.node.work(self.cfg.db_write_time)
        self.db.executemany("UPDATE outbox SET status = 'sent' WHERE event_id = ?", [(int(e),) for e in ids])
        self.world.trace.add(Kind.RELAY_MARK, self.node.index, int(ids[0]), len(ids))

    def orders(self) -> np.ndarray:
        """The ids of the orders the database holds."""
        return np.array([r for (r,) in self.db.execute("SELECT order_id FROM orders ORDER BY order_id")],
                        dtype=np.int64)

    def close(self) -> None:
        self.db.close()
