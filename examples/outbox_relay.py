"""Outbox relays of your own (weir.OutboxRelay): the order of publishing and marking sent, and the
relay's producer id. Used by examples/outbox_relay.toml and tests/test_outbox_relay_hook.py."""

from __future__ import annotations

import weir


class SmallBatches(weir.OutboxRelay):
    """Correct: publishes at most `limit` pending rows a round, oldest first; publish, then mark,
    keeping its producer id (the broker drops what a crash made it publish again)."""

    def __init__(self, limit: int = 20):
        self.limit = limit

    def select(self, pending):
        return pending[:self.limit]


class MarkThenPublish(SmallBatches):
    """Flawed: marks the rows sent before publishing. A crash between loses their events: orders
    in the database that no consumer ever hears of."""

    mark_first = True


class FreshProducerId(SmallBatches):
    """Flawed: takes a new producer id each time it restarts, so what a crash made it publish
    again is a second event the broker cannot tell from the first."""

    keep_producer_id = False
