"""The boundary between weir and a user's component: every hook weir calls on it is guarded.

`guarded(cls)` is a subclass of the user's class whose hooks (the methods of weir's bases in
weir.sim.stream.functions that the user wrote) go through one wrapper:

- an exception from the hook becomes a `UserHookError` naming the component, the hook, what it was
  handling (a batch's partition, offsets and record ids; a checkpoint id; a timestamp) and the
  user's side of the traceback. weir's own protocol exceptions (`weir.Retryable`, `weir.Rejected`)
  pass through untouched;
- what the hook returned is checked against what the base says it returns (one int64 per record
  from `on_batch`, an int from `current`, int64 columns from `contents`, ...) and converted to
  exactly that, or it is a UserHookError saying what came back and what is accepted;
- a hook stopped by the wall-clock watchdog (weir.sim.kernel.watchdog: `run.user_timeout`) is a
  UserHookError with `timed_out` set.

The runtime then makes a finding of it (weir.sim.stream.job.Job.note_user_error): the run's
`user_errors`, and its status `user_code_raised` or `user_code_timed_out`. Only hooks the user
wrote are wrapped (weir's own defaults are trusted), so a built-in component costs nothing, and a
user's costs one Python call per hook call (hooks are called per batch, not per record).
"""

from __future__ import annotations

import functools
import inspect
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from weir.sim.kernel.batch import RecordBatch
from weir.sim.kernel.errors import UserCodeTimedOut, UserHookError
from weir.sim.stream.functions import (
    ConsumerPolicy, DeadLetterReplay, Operator, OutboxRelay, Rejected, Retryable, Sink, Source, TwoPhaseCommitSink,
    WatermarkStrategy,
)

__all__ = ["guarded", "construct", "GUARD_CODE", "HOOKS", "describe_call", "hook_error"]

INT64 = (-(2**63), 2**63 - 1)
#: How many of the user's traceback lines a finding keeps (the innermost).
TRACEBACK_LINES = 40


class _BadOutput(Exception):
    """A hook returned something its base does not accept (the message says what it got and wants)."""


def _type_of(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of {value.dtype} with shape {value.shape}"
    return "None" if value is None else type(value).__name__


def _int(value: Any, what: str, low: int = INT64[0], high: int = INT64[1], none: bool = False) -> int | None:
    """`value` as a Python int in [low, high] (None passes if `none`), else _BadOutput saying `what` it must be."""
    if value is None and none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise _BadOutput(f"returned {_type_of(value)}; it returns {what}")
    if not low <= int(value) <= high:
        raise _BadOutput(f"returned {int(value)}; it returns {what} from {low} to {high}")
    return int(value)


def _int_array(value: Any, n: int | None, what: str) -> np.ndarray:
    """`value` as a 1-D int64 array (of length n, if given), else _BadOutput."""
    if not isinstance(value, (np.ndarray, list, tuple)):
        raise _BadOutput(f"returned {_type_of(value)}; it returns {what}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise _BadOutput(f"returned a {type(value).__name__} numpy cannot read ({e}); it returns {what}") from None
    if arr.size == 0 and arr.dtype.kind == "f":  # an empty list
        arr = arr.astype(np.int64)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise _BadOutput(f"returned {_type_of(arr)}; it returns {what}")
    if n is not None and len(arr) != n:
        raise _BadOutput(f"returned {len(arr)} values for {n} records; it returns {what}")
    if arr.dtype == np.uint64 and len(arr) and int(arr.max()) > INT64[1]:
        raise _BadOutput(f"returned values past int64 (up to {int(arr.max())}); it returns {what}")
    return arr.astype(np.int64, copy=False)


def _batch_of(args: tuple) -> RecordBatch | None:
    return next((a for a in args if isinstance(a, RecordBatch)), None)


def _on_batch(out: Any, args: tuple) -> Any:
    if args and getattr(args[0], "windowed", False):  # a window operator returns its panes
        return out
    batch = _batch_of(args)
    return _int_array(out, len(batch) if batch is not None else None, "one int64 per record of the batch")


def _write(out: Any, args: tuple) -> int:
    batch = _batch_of(args)
    top = len(batch) if batch is not None else INT64[1]
    got = _int(out, "how many of the batch's rows already existed (an int, or None: 0)", 0, top, none=True)
    return 0 if got is None else got


def _contents(out: Any, args: tuple) -> dict[str, np.ndarray]:
    if not isinstance(out, dict) or "record_id" not in out:
        raise _BadOutput(f"returned {_type_of(out)}; it returns a dict of int64 columns with at least 'record_id'")
    columns, n = {}, None
    for name, column in out.items():
        if not isinstance(name, str):
            raise _BadOutput(f"returned a column named {name!r}; column names are strings")
        arr = _int_array(column, n, f"int64 columns of one length (column {name!r})")
        n = len(arr)
        columns[name] = arr
    return columns


def _count(out: Any, args: tuple) -> int:
    return _int(out, "a count (an int >= 0)", 0)


def _watermark(out: Any, args: tuple) -> int:
    return _int(out, "the watermark, an int (us)")


def _merged(out: Any, args: tuple) -> int | None:
    return _int(out, "the merged watermark, an int (us), or None", none=True)


def _offset(out: Any, args: tuple) -> int:
    return _int(out, "an offset (an int >= 0)", 0)


def _offset_or_none(out: Any, args: tuple) -> int | None:
    return _int(out, "an offset to commit (an int >= 0) or None", 0, none=True)


def _value_or_none(out: Any, args: tuple) -> int | None:
    return _int(out, "the value to write (an int) or None to give up", none=True)


def _aborted(out: Any, args: tuple) -> int | None:
    return _int(out, "how many transactions it aborted (an int >= 0) or None", 0, none=True)


def _selected(out: Any, args: tuple) -> list:
    pending = args[-1] if args else []
    if not isinstance(out, (list, tuple)):
        raise _BadOutput(f"returned {_type_of(out)}; it returns a list of the pending rows to publish")
    known = set(map(tuple, pending))
    for row in out:
        if not isinstance(row, tuple) or row not in known:
            raise _BadOutput(f"returned {_type_of(row)} {str(row)[:40]}, which is not one of the pending rows; "
                             "it returns a list of the pending rows to publish")
    return list(out)


def _generated(out: Any, args: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three int64 arrays of length `records`, keys in 0..keys-1, delays >= 0."""
    n, keys = args[-2], args[-1]
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise _BadOutput(f"returned {_type_of(out)}; it returns (keys, values, delays), three arrays")
    k, v, d = (_int_array(a, n, f"(keys, values, delays), each {n} whole numbers ({label})")
               for a, label in zip(out, ("keys", "values", "delays")))
    if len(k) and (k.min() < 0 or k.max() >= keys):
        raise _BadOutput(f"returned keys {int(k.min())}..{int(k.max())}; keys are in 0..{keys - 1}")
    if len(d) and d.min() < 0:
        raise _BadOutput(f"returned a delay of {int(d.min())}; delays are >= 0")
    return k, v, d


def _anything(out: Any, args: tuple) -> Any:
    return out


#: Per base: each hook weir calls and how what it returns is checked (and converted).
HOOKS: dict[type, dict[str, Callable[[Any, tuple], Any]]] = {
    Operator: {"on_batch": _on_batch, "open": _anything, "on_watermark": _anything,
               "notify_checkpoint_complete": _anything, "notify_checkpoint_aborted": _anything, "close": _anything,
               "snapshot": _anything, "restore": _anything, "state_size": _count, "changed_entries": _count},
    TwoPhaseCommitSink: {"begin_transaction": _anything, "write": _write, "pre_commit": _anything,
                         "commit": _anything, "abort": _anything, "recover_and_commit": _anything,
                         "recover_and_abort": _anything, "finish_recovering": _aborted, "contents": _contents,
                         "close": _anything},
    Sink: {"write": _write, "contents": _contents, "close": _anything},
    WatermarkStrategy: {"on_event": _anything, "current": _watermark, "merge": _merged},
    Source: {"generate": _generated},
    DeadLetterReplay: {"fix": _value_or_none},
    ConsumerPolicy: {"resume": _offset, "on_poll": _offset_or_none, "periodic": _offset_or_none,
                     "on_checkpoint": _offset_or_none},
    OutboxRelay: {"select": _selected},
}

_PASS = (Retryable, Rejected, UserHookError)  # weir's protocol, or a nested hook's finding: not this hook's


def describe_call(args: tuple) -> str:
    """What a hook was handling, from its arguments: a batch (partition, offsets, record ids), or
    the plain numbers it was given (a checkpoint id, a timestamp, a partition)."""
    batch = _batch_of(args)
    if batch is not None:
        n = len(batch)
        if not n:
            return f"an empty batch of partition {batch.partition_id}"
        ids = batch.record_id
        what = f"a batch of {n} record{'s' * (n != 1)}"
        if batch.partition_id < 0:  # a chain's batch of panes
            return f"{what} (window panes)"
        offsets = batch.offset
        return (f"{what} of partition {batch.partition_id}, offsets {int(offsets[0])}..{int(offsets[-1])}, "
                f"record ids {int(ids[0])}..{int(ids[-1])}" if n > 1 else
                f"record id {int(ids[0])} of partition {batch.partition_id}, offset {int(offsets[0])}")
    plain = [str(int(a)) for a in args if isinstance(a, (int, np.integer)) and not isinstance(a, bool)]
    return f"called with {', '.join(plain[:4])}" if plain else ""


def hook_error(component: str, hook: str, error: BaseException, args: tuple = (), skip: int = 1) -> UserHookError:
    """The finding for `error`, raised in `component`.`hook` called with `args`; its traceback
    without weir's `skip` frames on top (the guard's own)."""
    tb = error.__traceback__
    for _ in range(skip):
        tb = tb.tb_next if tb is not None else None
    lines = "".join(traceback.format_exception(type(error), error, tb)).splitlines()
    if len(lines) > TRACEBACK_LINES:
        lines = ["  ..."] + lines[-TRACEBACK_LINES:]
    return UserHookError(component, hook, f"{type(error).__name__}: {error}", describe_call(args), "\n".join(lines))


def _wrap(component: str, hook: str, fn: Callable, check: Callable[[Any, tuple], Any]) -> Callable:
    @functools.wraps(fn)
    def guard(*args: Any, **kwargs: Any) -> Any:  # the watchdog finds a running hook by this code object
        try:
            out = fn(*args, **kwargs)
        except _PASS:
            raise
        except UserCodeTimedOut:
            raise UserHookError(component, hook, "did not return in time", describe_call(args),
                                timed_out=True) from None
        except Exception as e:  # noqa: BLE001 - anything the user's code raises is a finding about it
            raise hook_error(component, hook, e, args) from None
        try:
            return check(out, args)
        except _BadOutput as e:
            raise UserHookError(component, hook, str(e), describe_call(args)) from None

    return guard


GUARD_CODE = _wrap("", "", lambda: None, _anything).__code__

_CACHE: dict[type, type] = {}


def _weirs(owner: type) -> bool:
    return owner.__module__.startswith("weir.")


def guarded(cls: type) -> type:
    """`cls` with every hook the user wrote guarded (the same class back if there is none)."""
    if cls in _CACHE:
        return _CACHE[cls]
    hooks: dict[str, Callable[[Any, tuple], Any]] = {}
    for base, table in HOOKS.items():
        if issubclass(cls, base):
            for name, check in table.items():
                hooks.setdefault(name, check)
    body: dict[str, Any] = {}
    for name, check in hooks.items():
        owner = next((k for k in cls.__mro__ if name in vars(k)), None)
        if owner is None or _weirs(owner):
            continue  # weir's own default: trusted
        raw = inspect.getattr_static(cls, name)
        if isinstance(raw, staticmethod):
            body[name] = staticmethod(_wrap(cls.__name__, name, raw.__func__, check))
        elif isinstance(raw, classmethod):
            body[name] = classmethod(_wrap(cls.__name__, name, raw.__func__, check))
        elif callable(raw):
            body[name] = _wrap(cls.__name__, name, raw, check)
    if cls.__module__.startswith("weir.") or not body:
        result = cls
    else:
        result = type(cls)(cls.__name__, (cls,), {**body, "__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                                  "__weir_guarded__": cls})
    _CACHE[cls] = result
    return result


def construct(cls: type, *args: Any, **params: Any) -> Any:
    """Build a user component, guarded: an exception from its constructor is a UserHookError too.
    (One of weir's own classes is built as it is.)"""
    if _weirs(cls):
        return cls(*args, **params)
    try:
        return guarded(cls)(*args, **params)
    except _PASS:
        raise
    except Exception as e:  # noqa: BLE001 - the user's constructor
        raise hook_error(cls.__name__, "__init__", e, skip=1) from None
