"""Idempotent payment processing (the seed's scenario 2), as a sink.

Each record is a payment attempt: its payload (payment id, idempotency key, source system and
amount) comes from the workload, and a client re-send (`workload.resend_fraction`) is a new
record with the same payload. The sink does what the seed's answer does, per record:

    dedup_key = f"{payment_id}:{idempotency_key}:{source_system}"
    if EXISTS processed:{dedup_key}: a duplicate, skipped
    SET lock:{dedup_key} NX PX lock_ttl           (another worker has it: skipped, it will be redelivered)
    charge the payment with the provider          (the side effect: a row in `charges`)
    SETEX processed:{dedup_key} ttl
    INSERT INTO payments ... ON CONFLICT (dedup_key) DO NOTHING   (MERGE ... WHEN NOT MATCHED THEN INSERT)
    DEL lock:{dedup_key}

With `payments.dedup = false` it charges whatever it is given. The charge and the SETEX happen at
one instant here, so a crash cannot fall between them; a real system closes that gap by passing
the idempotency key on to the payment provider.
"""

from __future__ import annotations

import numpy as np

from weir.sim.kernel.batch import RecordBatch
from weir.sim.stream.functions import Sink
from weir.sim.patterns.sinks import memory_db
from weir.sim.patterns.kv import KVStore

__all__ = ["PaymentsSink", "dedup_key"]

_DDL = (
    """CREATE TABLE payments (dedup_key TEXT PRIMARY KEY, payment_id INTEGER NOT NULL, record_id INTEGER NOT NULL,
       amount INTEGER NOT NULL, applied_at INTEGER NOT NULL)""",
    """CREATE TABLE charges (payment_id INTEGER NOT NULL, record_id INTEGER NOT NULL, idempotency_key TEXT NOT NULL,
       amount INTEGER NOT NULL, charged_at INTEGER NOT NULL)""",
)
_MERGE = ("INSERT INTO payments (dedup_key, payment_id, record_id, amount, applied_at) VALUES (?, ?, ?, ?, ?) "
          "ON CONFLICT (dedup_key) DO NOTHING")


def dedup_key(payment_id: int, source_system: str) -> str:
    """The seed's key: payment id, idempotency key (one per payment, reused by every re-send), source."""
    return f"{payment_id}:ik-{payment_id}:{source_system}"


class PaymentsSink(Sink):
    """Applies payments once (with dedup) or every time it sees one (without), on SQLite and a KV store."""

    kind = "payments"

    def __init__(self, payment_of: np.ndarray, systems: list[str], dedup: bool = True, ttl: int = 86_400_000_000,
                 lock_ttl: int = 1_000_000):
        self.payment_of, self.systems = payment_of, systems
        self.dedup, self.ttl, self.lock_ttl = dedup, ttl, lock_ttl
        self.kv = KVStore()
        self.duplicates_skipped = 0
        self._db = memory_db()
        for ddl in _DDL:
            self._db.execute(ddl)

    def write(self, batch: RecordBatch, value: np.ndarray, written_at: int) -> int:
        db, kv = self._db, self.kv
        charges, merges = [], []
        for rid, amount in zip(batch.record_id.tolist(), batch.value.tolist()):
            pid = int(self.payment_of[rid])
            key = dedup_key(pid, self.systems[pid])
            if self.dedup:
                if kv.exists(f"processed:{key}", written_at):
                    self.duplicates_skipped += 1
                    continue
                if not kv.set_nx(f"lock:{key}", rid, self.lock_ttl, written_at):
                    continue  # another worker holds it (not with one writer per key)
            charges.append((pid, rid, f"ik-{pid}", amount, written_at))
            if self.dedup:
                kv.setex(f"processed:{key}", self.ttl, rid, written_at)
                kv.delete(f"lock:{key}")
            merges.append((key, pid, rid, amount, written_at))
        db.execute("BEGIN")
        db.executemany("INSERT INTO charges VALUES (?, ?, ?, ?, ?)", charges)
        db.executemany(_MERGE, merges)
        db.execute("COMMIT")
        return len(batch) - len(charges)

    def contents(self) -> dict[str, np.ndarray]:
        """The payments table (one row per payment applied): record_id, payment_id, amount, applied_at."""
        return self._columns("SELECT record_id, payment_id, amount, applied_at FROM payments ORDER BY payment_id",
                             ("record_id", "payment_id", "amount", "applied_at"))

    def charges(self) -> dict[str, np.ndarray]:
        """Every charge the provider made: payment_id, record_id, amount, charged_at."""
        return self._columns("SELECT payment_id, record_id, amount, charged_at FROM charges ORDER BY rowid",
                             ("payment_id", "record_id", "amount", "charged_at"))

    def _columns(self, sql: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        data = np.array(self._db.execute(sql).fetchall(), dtype=np.int64).reshape(-1, len(names))
        return {name: np.ascontiguousarray(data[:, i]) for i, name in enumerate(names)}

    def close(self) -> None:
        self._db.close()
