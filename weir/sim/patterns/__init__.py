"""The patterns a pipeline is built from: sinks (append, upsert MERGE, two-phase commit, on SQLite),
the key-value store with TTLs, the dead-letter queue, payments, the transactional outbox with CDC,
and sagas."""

from weir.sim.patterns.dlq import DeadLetterQueue
from weir.sim.patterns.kv import KVStore
from weir.sim.patterns.sinks import AppendSink, TransactionalSink, UpsertSink, WindowResults, make_sink

__all__ = ["DeadLetterQueue", "KVStore", "AppendSink", "TransactionalSink", "UpsertSink", "WindowResults", "make_sink"]
