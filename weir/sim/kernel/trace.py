"""The trace: an append-only, columnar log of everything that happened in a run.

Every event is seven integers: time (us), kind, node, and four fields a, b, c, d whose meaning
depends on the kind (see `FIELDS`). During the run events are appended to one flat `array('q')`
(one call per event, the cheapest append Python has); `freeze()` turns it into numpy columns, and
the canonical SHA-256 is computed over those columns and the name tables, so two runs have the same
hash exactly when they did the same things at the same times.

Batches are traced, not records: a batch is identified by (partition, first offset, count), which
names every record in it, so a million records at batch size 500 cost a few thousand events.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import numpy as np

__all__ = ["Kind", "Msg", "FIELDS", "Trace", "FrozenTrace", "pack_row"]


class Kind(IntEnum):
    """What an event records."""

    RUN_START = 1
    PRODUCE = 2
    POLL = 3
    SEND = 4
    PROCESS = 5
    WRITE = 6
    ACK = 7
    COMMIT = 8
    CKPT_TRIGGER = 9
    CKPT_SNAPSHOT = 10
    CKPT_COMPLETE = 11
    RESTORE = 12
    CRASH = 13
    RESTART = 14
    JOB_FAIL = 15
    JOB_RESTART = 16
    TIMEOUT = 17
    RUN_END = 18
    RECV = 19
    DROP = 20
    UP = 21
    CKPT_ABORT = 22
    TXN_COMMIT = 23
    TXN_ABORT = 24
    TXN_END = 25
    FENCED = 26
    EXCHANGE = 27
    ALIGNED = 28
    REBALANCE = 29
    RETRY = 30
    DEAD_LETTER = 31
    REPLAY = 32
    SAGA_STEP = 33
    SAGA_END = 34
    CKPT_TORN = 35
    PAUSE = 36
    DUPLICATE = 37
    STATE_RESTORE = 38
    WATERMARK = 39
    TXN_RECOVER = 40
    USER_ERROR = 41
    REFUSED = 42
    OUTPUT = 43
    NOTIFIED = 44
    REPLAY_MARK = 45
    RELAY_MARK = 46


class Msg(IntEnum):
    """What a message between nodes carries (the `message` field of SEND, RECV and DROP)."""

    PRODUCE = 1  # producer -> broker: a batch of records (ref: first record id, count)
    JOIN = 2  # source -> broker: join the consumer group (ref: generation)
    FETCH = 3  # source -> broker: fetch the next batch (ref: next partition, batch size)
    COMMIT = 4  # source -> broker: commit offsets (ref: generation, partitions)
    BATCH = 5  # source -> processor -> sink: records (ref: partition, first offset)
    BARRIER = 6  # source -> processor -> sink: checkpoint barrier (ref: checkpoint)
    ACK = 7  # sink -> source: a batch is written (ref: partition, first offset)
    TRIGGER = 8  # coordinator -> source: inject a barrier (ref: checkpoint)
    SNAPSHOT = 9  # task -> coordinator: its share of a checkpoint (ref: checkpoint)
    NOTIFY = 10  # coordinator -> source: checkpoint complete (ref: checkpoint)
    REPLY = 11  # the answer to a request (ref: the request's message, its first ref)
    WATERMARK = 12  # source -> processor: the merged watermark (ref: its value, 2 * subtask + idle)
    PANES = 13  # processor -> sink: panes a watermark fired (ref: panes, late records)
    INIT = 14  # producer -> broker: a transactional producer starts (a new epoch)
    END_TXN = 15  # producer -> broker: commit or abort a transaction (ref: txn, commit)
    HEARTBEAT = 16  # consumer -> broker: still alive, in a consumer group (ref: member, generation)
    SAGA = 17  # orchestrator -> service: a saga step or compensation (ref: saga, service * action)


class _Members(type):
    """The class of `Kind` and `Msg` as the code reads them: a plain class whose attributes are
    the members of an IntEnum (`Kind.SEND` is the member itself), and which answers a call, an
    iteration, an index, `in`, `len` and `isinstance` as the enum does.

    Why: on CPython 3.11 an Enum class defines `__getattr__`, so every `Kind.SEND` goes through
    the slot that calls it (about 100 ns, against 24 ns on a plain class), and weir reads some 25
    members a record at batch size 1: a plain class takes 4 to 6% off such a run (3.7% of its
    instructions; CPython 3.12 drops that `__getattr__`). The enums themselves are `_Kind` and
    `_Msg` (their members pickle by those names, and print as `Kind.SEND`); type checkers see them
    as `Kind` and `Msg`."""

    _enum: type[IntEnum]

    def __call__(cls, value: Any) -> Any:
        return cls._enum(value)

    def __iter__(cls) -> Any:
        return iter(cls._enum)

    def __len__(cls) -> int:
        return len(cls._enum)

    def __getitem__(cls, name: str) -> Any:
        return cls._enum[name]

    def __contains__(cls, member: object) -> bool:
        return member in cls._enum

    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, cls._enum)


def _plain(enum: type[IntEnum]) -> type:
    """`enum` behind a _Members class of the same name; the enum takes the name `_` + its own for pickle."""
    name = enum.__name__
    enum.__qualname__ = "_" + name
    front = _Members(name, (), {**enum.__members__, "_enum": enum, "__members__": enum.__members__,
                                "__module__": __name__, "__doc__": enum.__doc__})
    return front


_Kind, _Msg = Kind, Msg
if not TYPE_CHECKING:
    Kind, Msg = _plain(_Kind), _plain(_Msg)


#: What a, b, c and d mean for each kind (unused fields are 0).
FIELDS: dict[Kind, tuple[str, str, str, str]] = {
    Kind.RUN_START: ("seed", "records", "partitions", "mode"),
    Kind.PRODUCE: ("first_record_id", "count", "duplicate", "checksum"),
    Kind.POLL: ("partition", "first_offset", "count", "generation"),
    Kind.SEND: ("to_node", "message", "ref1", "ref2"),
    Kind.RECV: ("from_node", "message", "ref1", "ref2"),
    Kind.DROP: ("from_node", "message", "ref1", "ref2"),
    Kind.PROCESS: ("partition", "first_offset", "count", "generation"),
    Kind.WRITE: ("partition", "first_offset", "count", "rows_rewritten"),
    Kind.ACK: ("partition", "first_offset", "count", "generation"),
    Kind.COMMIT: ("partition", "offset", "generation", "accepted"),
    Kind.CKPT_TRIGGER: ("checkpoint", "generation", "", ""),
    Kind.CKPT_SNAPSHOT: ("checkpoint", "partition_or_-1", "offset_or_state_keys", ""),
    Kind.CKPT_COMPLETE: ("checkpoint", "duration_us", "state_entries", "bytes_written"),
    Kind.CKPT_ABORT: ("checkpoint", "duration_us", "consecutive_failures", ""),
    # a two-phase-commit sink's steps (weir.TwoPhaseCommitSink): a commit on a completion
    # notification (newly_committed -1: it raised, -2: the transaction had timed out; either way
    # the job fails over), an abort (reason 1: the run ended with it open; 2: it was open past the
    # transaction timeout at a barrier), and each step of a restore (weir/sim/stream/sink_task.py)
    Kind.TXN_COMMIT: ("checkpoint", "txn", "newly_committed", ""),
    Kind.TXN_ABORT: ("txn", "generation", "reason", ""),
    Kind.TXN_END: ("txn", "committed", "epoch", "timed_out"),
    Kind.FENCED: ("epoch", "current_epoch", "ref", ""),
    Kind.RESTORE: ("checkpoint_or_-1", "generation", "records_behind", ""),
    Kind.CRASH: ("down_for_us", "", "", ""),  # -1 for a crash-stop: it never comes back
    Kind.RESTART: ("boot_time_us", "", "", ""),
    Kind.UP: ("", "", "", ""),
    Kind.JOB_FAIL: ("generation", "in_flight_batches", "", ""),
    Kind.JOB_RESTART: ("generation", "", "", ""),
    Kind.TIMEOUT: ("to_node", "", "", ""),
    Kind.RUN_END: ("status", "", "", ""),
    # parallel jobs only: which processor subtask a batch's records went to, and a subtask's
    # snapshot (how long since the checkpoint's first barrier reached it, in-flight records saved)
    Kind.EXCHANGE: ("to_subtask", "partition", "first_offset", "count"),
    Kind.ALIGNED: ("checkpoint", "subtask", "alignment_us", "in_flight_records"),
    # consumer groups (pipeline.source_failover = "rebalance"): why (0 a member joined, 1 one expired)
    Kind.REBALANCE: ("generation", "members", "member", "reason"),
    # sink retries and the dead-letter queue (weir/sim/patterns/dlq.py); a delay of -1: no retry, the job fails
    # over (a transactional write whose acknowledgement was lost)
    Kind.RETRY: ("partition", "first_offset", "attempt", "delay_us"),
    Kind.DEAD_LETTER: ("partition", "first_offset", "count", "retries"),
    Kind.REPLAY: ("records", "depth_after", "", ""),  # the DLQ replay job wrote fixed records
    Kind.REPLAY_MARK: ("records", "depth_after", "", ""),  # and marked their entries processed
    Kind.RELAY_MARK: ("first_event_id", "events", "", ""),  # the outbox relay marked rows sent
    # sagas (weir/sim/patterns/saga.py): a service applied an action (1 step, -1 compensation); a saga ended
    Kind.SAGA_STEP: ("saga", "service", "action", "applied"),
    Kind.SAGA_END: ("saga", "committed", "", ""),
    Kind.CKPT_TORN: ("checkpoint", "", "", ""),  # a restore found it torn (bad checksum) and skipped it
    Kind.PAUSE: ("duration", "", "", ""),  # a stop-the-world pause of the node begins
    Kind.DUPLICATE: ("to", "message", "ref1", "ref2"),  # the network sends a second copy of a request
    # a (re)deployed job's operator state: the checkpoint it came from (0: none yet), and its size
    Kind.STATE_RESTORE: ("checkpoint", "generation", "state_entries", ""),
    # a processor subtask's watermark moved (windowed jobs): its value, and over how many active inputs
    Kind.WATERMARK: ("subtask", "watermark", "active_inputs", ""),
    # action 1: recover_and_commit (result: newly committed, -1: it raised, -2: timed out), -1: recover_and_abort,
    # 0: finish_recovering of a sink subtask (txn: the subtask; result: lingering ones aborted)
    Kind.TXN_RECOVER: ("checkpoint", "txn", "action", "result"),
    # user code raised (its message is in the run's user_errors, at this index); the job failed over
    Kind.USER_ERROR: ("index", "", "", ""),
    # a sink refused rows of a write: weir.Retryable (rejected 0, retried) or weir.Rejected (1, dead-lettered)
    Kind.REFUSED: ("partition", "first_offset", "count", "rejected"),
    # the values a record operator computed for a batch: a CRC-32 of them (weir diff shows where they
    # differ); in a windowed chain with user operators, of the panes' values (partition -1: fired by
    # the watermark in first_offset)
    Kind.OUTPUT: ("partition", "first_offset", "values_crc32", ""),
    # a checkpoint notification reached the sink (subtask -1: all of them) or an operator's subtask
    Kind.NOTIFIED: ("checkpoint", "complete", "subtask", ""),
}

_WIDTH = 7
_COLUMNS = ("time", "kind", "node", "a", "b", "c", "d")
#: One event's seven integers as bytes, in native order as array("q") holds them. A path that runs
#: for every message and knows the time appends `trace.rows.frombytes(pack_row(now, kind, node, a,
#: b, c, d))` itself (weir/sim/kernel/network.py): what `Trace.add` does, without its two calls.
pack_row = struct.Struct(f"={_WIDTH}q").pack
_DTYPES = {"time": "<i8", "kind": "<u1", "node": "<u2", "a": "<i8", "b": "<i8", "c": "<i8", "d": "<i8"}


class Trace:
    """The trace while a run is going on: append only."""

    __slots__ = ("nodes", "rows", "_clock")

    def __init__(self, nodes: tuple[str, ...], clock):
        self.nodes = nodes
        self.rows = array("q")
        # what tells the time, in us: its `_now` (the run's simpy Environment; read as an attribute,
        # a third of the cost of a call, and this runs for every event)
        self._clock = clock

    def add(self, kind: Kind, node: int, a: int = 0, b: int = 0, c: int = 0, d: int = 0) -> None:
        # packed by struct, then copied in: half the cost of array.extend, which parses each value
        # on its own (array's q_setitem goes through PyArg_Parse)
        self.rows.frombytes(pack_row(self._clock._now, kind, node, a, b, c, d))

    def __len__(self) -> int:
        return len(self.rows) // _WIDTH

    def freeze(self, release: bool = False) -> "FrozenTrace":
        """The trace so far as columns. With `release` the live rows are let go (the trace is empty
        after): the end of a run, where both would otherwise be held while the results are read."""
        flat = np.frombuffer(self.rows, dtype=np.int64).reshape(-1, _WIDTH)
        cols = {name: flat[:, i].astype(_DTYPES[name]) for i, name in enumerate(_COLUMNS)}
        if release:
            del flat  # the buffer export must end before the array can shrink
            self.rows = array("q")
        return FrozenTrace(nodes=self.nodes, columns=cols)


@dataclass(frozen=True, eq=False)
class FrozenTrace:
    """A finished trace: numpy columns plus the node-name table."""

    nodes: tuple[str, ...]
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["time"])

    @property
    def nbytes(self) -> int:
        return sum(col.nbytes for col in self.columns.values())

    def sha256(self) -> str:
        """The canonical hash: column names, dtypes and little-endian bytes, and the name tables."""
        h = hashlib.sha256()
        h.update(b"weir-trace-v1\n")
        h.update(("nodes=" + ",".join(self.nodes) + "\n").encode())
        # The names of the kinds that occur (codes are never reused): adding a kind leaves hashes alone.
        present = set(np.unique(self.columns["kind"]).tolist())
        h.update(("kinds=" + ",".join(f"{k.value}:{k.name}" for k in Kind if k.value in present) + "\n").encode())
        for name in _COLUMNS:
            col = self.columns[name]
            h.update(f"{name}:{col.dtype.str}:{len(col)}\n".encode())
            h.update(col.tobytes())
        return h.hexdigest()

    def rows(self, start: int = 0, stop: int | None = None) -> list[dict]:
        """Events as readable dicts (for printing and tests, not for analysis of big runs)."""
        stop = len(self) if stop is None else stop
        out = []
        for i in range(start, stop):
            kind = Kind(int(self.columns["kind"][i]))
            row = {"time": int(self.columns["time"][i]), "kind": kind.name, "node": self.nodes[int(self.columns["node"][i])]}
            for field, col in zip(FIELDS[kind], "abcd"):
                if field:
                    value = int(self.columns[col][i])
                    if field == "message":
                        row[field] = Msg(value).name
                    elif field in ("to_node", "from_node"):
                        row[field] = self.nodes[value]
                    else:
                        row[field] = value
            out.append(row)
        return out
