"""Event-time windows with triggers, panes and allowed lateness, as Flink and Beam define them.

A `WindowOperator` takes elements (key, timestamp, value), watermarks and processing-time advances,
and emits `Pane`s. The rules, with where they come from:

- A window `[start, end)` has `max_ts = end - 1`. Tumbling, sliding and session windows.
- Default trigger (Flink `EventTimeTrigger`, Beam `AfterWatermark.pastEndOfWindow()` with late
  firings): the ON_TIME pane fires when the watermark reaches the window's fire time (`max_ts` in
  Flink, `end` in Beam); an element that lands in a window whose fire time has passed fires a LATE
  pane (or after `late_every_n` such elements).
- Optional early firings (Beam `AfterWatermark(early=...)`): every N elements, or a processing-time
  delay after the first element of a pane.
- Accumulation: DISCARDING (a pane holds what arrived since the previous pane) or ACCUMULATING
  (everything so far).
- Allowed lateness L, with the boundary rule named:
  - "flink" (`WindowOperator.isWindowLate`): a window expires when `max_ts + L <= W`;
  - "beam" (`LateDataUtils.garbageCollectionTime(...).isBefore(inputWM)`): when `max_ts + L < W`.
  An element is dropped from each expired window it belongs to; an element dropped from all its
  windows goes to the late side output, or is counted as dropped: never silently lost.
- Watermark timers fire in time order (at one time, on-time firings before cleanups, then in the
  order they were registered), before the operator's watermark moves (Flink's `processWatermark`).
- A window that opens after its end has passed (its first element is late, within lateness) never
  has an ON_TIME pane: everything it fires is LATE.
- Where Flink and Beam differ, `WindowSpec.semantics` picks whose rule applies (the table is in
  weir.sim.stream.windowing.WindowSpec): the on-time boundary, the drop boundary, count triggers
  per element or per bundle (`process_bundle`; a polled batch is a bundle), session merging on
  touch or overlap, lateness checked on the merged or the element's own window, Beam's
  finishing AfterWatermark (`Trigger(late="never")`; a finished session takes no part in
  merging), and three more of Beam's rules: a window opened after its end fires at its first
  bundle; a merged session's pane index starts at 0; an ON_TIME pane is last only without
  lateness or with a finishing trigger.

Where weir chooses for itself, it says so: an ON_TIME pane is emitted only if it has something to
show (DISCARDING with new elements, or ACCUMULATING with any), like Flink and unlike Beam's default
FIRE_ALWAYS; when a window is cleaned up with late elements not yet fired (late_every_n > 1) a last
pane fires for them, marked is_last (Beam's FIRE_IF_NON_EMPTY closing behaviour).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import numpy as np

from weir.sim.stream.windowing import (
    _REDUCERS, COLLECT, COUNT, LATE_FIRINGS, MAX, MAX_TIME, MIN, MIN_TIME, SEMANTICS, SUM, Aggregate, LateElement,
    Pane, Session, Sliding, Timing, Trigger, Tumbling, Window, WindowSpec, reduce,
)

__all__ = [
    "MIN_TIME", "MAX_TIME", "Window", "Tumbling", "Sliding", "Session", "Trigger", "Timing", "Pane",
    "Aggregate", "COUNT", "SUM", "MIN", "MAX", "COLLECT", "reduce", "WindowSpec", "WindowOperator", "LateElement",
    "SEMANTICS", "LATE_FIRINGS",
]

class _WindowState:
    """One key's window: accumulators since the start and since the last pane, and pane bookkeeping."""

    __slots__ = ("window", "epoch", "acc_all", "n_all", "acc_new", "n_new", "panes", "on_time_fired",
                 "late_pending", "early_timer_set", "refire_timer_set", "closed")

    def __init__(self, window: Window, epoch: int, empty: Any):
        self.window, self.epoch = window, epoch
        self.acc_all, self.n_all, self.acc_new, self.n_new = empty, 0, empty, 0
        self.panes = 0
        self.on_time_fired = False
        self.late_pending = 0
        self.early_timer_set = False
        self.refire_timer_set = False
        self.closed = False  # its trigger finished (Beam, late = "never"): later elements are dropped

    def copy(self) -> "_WindowState":
        """A copy sharing the values: a window is frozen, the rest are numbers, flags, or accumulators
        the caller knows to be immutable."""
        twin = _WindowState.__new__(_WindowState)
        for name in _WindowState.__slots__:
            setattr(twin, name, getattr(self, name))
        return twin


class _Timers:
    """Timers as a heap of (time, kind, seq, key, window, epoch) would hold them, kept by time: one
    bucket of (kind, seq, key, window, epoch) per time and a heap of the times. Many windows end
    together (every key's window of the same span), so a watermark pops one time for a hundred
    timers instead of a hundred heap entries. `pop_until` gives them in the heap's order: by time,
    then kind (on-time before cleanup), then seq (the order they were set). No timer is set while
    they are popped (firing and cleaning up set none), so a bucket is sorted once, when taken."""

    __slots__ = ("_times", "_at")

    def __init__(self) -> None:
        self._times: list[int] = []
        self._at: dict[int, list[tuple[int, int, Hashable, Window, int]]] = {}

    def push(self, time: int, kind: int, seq: int, key: Hashable, window: Window, epoch: int) -> None:
        bucket = self._at.get(time)
        if bucket is None:
            self._at[time] = [(kind, seq, key, window, epoch)]
            heapq.heappush(self._times, time)
        else:
            bucket.append((kind, seq, key, window, epoch))

    def pop_until(self, until: int):
        """Take out the timers due at or before `until`, in order."""
        times, at = self._times, self._at
        while times and times[0] <= until:
            bucket = at.pop(heapq.heappop(times))
            bucket.sort()  # (kind, seq): seq is unique, so the key is never compared
            yield from bucket

    def copy(self) -> "_Timers":
        twin = _Timers()
        twin._times = list(self._times)
        twin._at = {time: list(bucket) for time, bucket in self._at.items()}
        return twin

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._at.values())


_ON_TIME, _CLEANUP, _EARLY = 0, 1, 2

#: the built-in aggregates the columnar store keeps, with the numpy function that combines two values
_DENSE_UFUNCS = ((SUM, np.add), (COUNT, np.add), (MIN, np.minimum), (MAX, np.maximum))
#: the columnar store gives way to window objects beyond this many keys, or this many cells (key
#: slots times open window spans): it keeps a row per key in every span, used or not
_DENSE_KEYS, _DENSE_CELLS = 1 << 14, 1 << 20
#: and waits with at most this many elements of batches taken in before it adds them (_Dense.defer)
_DEFER_ROWS = 1 << 16
#: and for a value to sum as large as this (its sums are int64; the window objects' are Python
#: ints, which do not overflow): 2**32 of them would have to meet in one window to overflow
_DENSE_SUMMAND = 1 << 31


class _Span:
    """The windows of one span [start, start + size) (its start is its key in _Dense.spans): a row
    per key, a column per field of `_WindowState` (epoch 0: the key has no window here; an
    accumulator of nothing holds the aggregate's identity). Every window of a span fires at the
    same watermark, so whether it fired is one flag. Its columns are views of one row (`slot`) of
    its store's blocks (_Dense.blocks): what is written to them is written there."""

    COLUMNS = ("acc_all", "n_all", "acc_new", "n_new", "epoch", "panes", "dirty")
    __slots__ = COLUMNS + ("fired", "slot")

    def __init__(self, blocks: dict[str, np.ndarray], slot: int, fired: bool = False):
        self.fired = fired
        self.view(blocks, slot)

    def view(self, blocks: dict[str, np.ndarray], slot: int) -> None:
        """Point the columns at row `slot` of `blocks` (again, after the blocks grew)."""
        self.slot = slot
        for name in _Span.COLUMNS:
            setattr(self, name, blocks[name][slot])


class _Dense:
    """A window operator's state as columns, for the common case: tumbling or sliding windows, a
    built-in numeric aggregate, no early firings, whole-number keys in [0, 16384) and values (to
    sum, below 2**31 in size), and
    no element late for a window that has not expired (so no LATE pane). A key is its own row.
    Batches are added with numpy (a few array operations per span, none per window), and a
    watermark fires a span's panes in one pass, with the panes, their order, the sequence numbers
    and what a snapshot restores exactly as the window objects would have them
    (tests/test_windows.py runs both side by side). An element whose windows all expired is late
    output, as with window objects: without allowed lateness, every late element.

    The first thing it does not cover (an element late for a window that has not expired, a
    restore of a span that fired and waits for its cleanup, other keys or values) turns it into window objects and timers (`materialize`), and the
    operator goes on with those."""

    __slots__ = ("ufunc", "identity", "count", "sums", "capacity", "spans", "blocks", "free", "gone_changed",
                 "pending", "pending_rows")

    def __init__(self, aggregate: Aggregate, ufunc):
        self.ufunc, self.count, self.sums = ufunc, aggregate is COUNT, aggregate is SUM
        info = np.iinfo(np.int64)
        self.identity = {np.add: 0, np.minimum: info.max, np.maximum: info.min}[ufunc]
        self.capacity = 0
        self.spans: dict[int, _Span] = {}
        # every span's columns, a block per column: a row (slot) per span, a column per key, so
        # that a batch that falls in several spans updates them in one numpy call per column
        self.blocks = {name: np.zeros((0, 0), bool if name == "dirty" else np.int64) for name in _Span.COLUMNS}
        self.free: list[int] = []  # slots no span holds
        self.gone_changed = 0  # changed windows cleaned up since the last snapshot (still counted)
        # tumbling-window batches taken in and not yet added (keys, timestamps, values): see `defer`
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.pending_rows = 0

    def copy(self) -> "_Dense":
        twin = _Dense.__new__(_Dense)
        twin.ufunc, twin.identity, twin.count, twin.sums = self.ufunc, self.identity, self.count, self.sums
        twin.capacity, twin.gone_changed = self.capacity, self.gone_changed
        # the live spans' rows only, renumbered in order (a copy is a snapshot: no room to keep)
        live = np.array([span.slot for span in self.spans.values()], dtype=np.intp)
        twin.blocks = {name: block[live] for name, block in self.blocks.items()}
        twin.free = []
        twin.spans = {start: _Span(twin.blocks, i, span.fired) for i, (start, span) in enumerate(self.spans.items())}
        assert not self.pending, "a copy of a store with batches not yet added"
        twin.pending, twin.pending_rows = [], 0
        return twin

    def _span(self, start: int) -> _Span:
        """The span starting at `start`, made (with no windows) in a free slot if there is none."""
        span = self.spans.get(start)
        if span is not None:
            return span
        if not self.free:
            self._resize(max(8, 2 * len(self.blocks["epoch"])), self.capacity)
        slot = self.free.pop()
        for name, block in self.blocks.items():
            block[slot] = self._empty(name)
        span = self.spans[start] = _Span(self.blocks, slot)
        return span

    def _empty(self, name: str) -> int:
        """What a cell of column `name` holds where there is no window: the aggregate's identity in
        the accumulators, 0 (False) in the rest."""
        return self.identity if name.startswith("acc") else 0

    def _drop(self, start: int) -> None:
        """The span starting at `start` is cleaned up: its slot is free for another."""
        self.free.append(self.spans.pop(start).slot)

    def _resize(self, slots: int, capacity: int) -> None:
        """Blocks of `slots` rows and `capacity` keys (the new slots free, the new keys' cells empty),
        what they held kept, and every span pointed at its row of them."""
        held, before = len(self.blocks["epoch"]), self.capacity
        for name, block in self.blocks.items():
            grown = np.full((slots, capacity), self._empty(name), block.dtype)
            grown[:held, :before] = block[:, :before]
            self.blocks[name] = grown
        self.free.extend(range(slots - 1, held - 1, -1))  # (popped lowest first)
        self.capacity = capacity
        for span in self.spans.values():
            span.view(self.blocks, span.slot)

    def defer(self, op: "WindowOperator", keys, timestamps, values) -> bool:
        """Take in a batch of a tumbling-window operator to add later, with the batches after it,
        in one step: True if taken. (Flink's mini-batch aggregation, `table.exec.mini-batch.*`,
        buffers input to cut state accesses, up to an interval or a size; here nothing a reader
        sees changes.) Taken only if no element of it can be late (its earliest timestamp's
        window is not past its fire time): the watermark cannot move while batches wait, since
        whatever reads or changes this store adds them first (`flush`), and a batch added then is
        added as it would have been when it came."""
        w = op.spec.windows
        ts = np.asarray(timestamps)
        n = len(ts)
        if not isinstance(w, Tumbling) or ts.dtype.kind not in "iu" or self.pending_rows + n > _DEFER_ROWS:
            return False
        first = int(ts.min())
        if _last_start(w, first) + w.size + op._fire_after_end <= op.watermark:  # spec.fire_time
            return False
        self.pending.append((np.asarray(keys), ts, np.asarray(values)))
        self.pending_rows += n
        op.elements += n
        return True

    def flush(self, op: "WindowOperator") -> None:
        """Add the batches `defer` took, in one step if the store can hold them all (new windows
        numbered as they would have been batch by batch: by batch, then key, then start); else
        one by one, and from the first it cannot hold on, the operator goes on with window objects
        and takes the rest as it would have."""
        if not self.pending:
            return
        pending, self.pending, self.pending_rows = self.pending, [], 0
        if len(pending) > 1:
            keys, timestamps, values = (np.concatenate(part) for part in zip(*pending))
            batch_of = np.repeat(np.arange(len(pending)), [len(p[0]) for p in pending])
            if self._add(op, keys, values, [(_last_start(op.spec.windows, timestamps), None)], batch_of=batch_of):
                return
        for i, (keys, timestamps, values) in enumerate(pending):
            if not self._add(op, keys, values, [(_last_start(op.spec.windows, timestamps), None)]):
                op._leave_dense()
                for keys, timestamps, values in pending[i:]:
                    op.elements -= len(keys)  # counted when taken in: counted again as they go in now
                    op.process_batch(keys, timestamps, values)
                return

    def open_windows(self) -> int:
        return sum(int(np.count_nonzero(span.epoch)) for span in self.spans.values())

    def changed(self) -> int:
        return self.gone_changed + sum(int(np.count_nonzero(span.dirty)) for span in self.spans.values())

    def clear_changed(self) -> None:
        self.gone_changed = 0
        for span in self.spans.values():
            span.dirty[:] = False

    def add(self, op: "WindowOperator", k_arr: np.ndarray, v_arr: np.ndarray, shifts: list,
            in_order: bool = False) -> bool:
        """Add a batch none of whose elements joins a window late (shifts: each shift's starts, and
        which elements it puts in a window, None: all of them); False, with nothing changed, if
        the store cannot hold it. New windows take their sequence numbers as
        WindowOperator.process_batch's groups would (by shift, then key, then start), or,
        `in_order`, as `process` element by element would (a batch with late elements goes one by
        one with window objects)."""
        return self._add(op, k_arr, v_arr, shifts, in_order, counted=False)

    def _add(self, op: "WindowOperator", k_arr: np.ndarray, v_arr: np.ndarray, shifts: list,
             in_order: bool = False, batch_of: np.ndarray | None = None, counted: bool = True) -> bool:
        """`add`; `counted`: the elements were counted when `defer` took them in; `batch_of`: the
        batch of each element, for batches added in one step (new windows numbered by batch first)."""
        if k_arr.dtype.kind not in "iu" or v_arr.dtype.kind != "i":
            return False
        low, high = int(k_arr.min()), int(k_arr.max())
        if low < 0 or high >= _DENSE_KEYS or (self.sums and not -_DENSE_SUMMAND < int(v_arr.min()) <= int(v_arr.max())
                                              < _DENSE_SUMMAND):
            return False
        rows = self._rows_for(high)
        slide = _slide(op.spec.windows)
        plan = []  # per shift: its first span's start, each element's span (counted from it), how many spans
        for shift, (starts, inside) in enumerate(shifts):
            every = inside is None or bool(inside.all())
            st = starts if every else starts[inside]
            if not len(st):
                continue
            base = int(st.min())
            width = (int(st.max()) - base) // slide + 1
            plan.append((shift, base, None if width == 1 else (st - base) // slide, width, None if every else inside))
        if (len(self.spans) + sum(p[3] for p in plan)) * rows > _DENSE_CELLS:
            return False
        self._grow(rows)
        if not counted:
            op.elements += len(k_arr)
        k_arr = k_arr.astype(np.int64, copy=False)
        ufunc, identity = self.ufunc, self.identity
        if in_order and plan:
            first_start = min(p[1] for p in plan)
            new_cells, new_epochs = self._epochs_in_order(op, k_arr, plan, len(shifts), first_start, slide)
        blocks = self.blocks
        for _shift, base, at, width, inside in plan:
            k, v = (k_arr, v_arr) if inside is None else (k_arr[inside], v_arr[inside])
            # a cell per key in each span the shift's elements fall in (most often one)
            cell = k if at is None else at * rows + k
            counts = np.bincount(cell, minlength=width * rows)
            if self.count:
                values = counts
            else:
                values = np.full(width * rows, identity, np.int64)
                ufunc.at(values, cell, v)
            present = counts > 0
            # the spans the elements fall in (where each is among the shift's, its slot), each a row
            js = np.zeros(1, np.int64) if at is None else np.flatnonzero(np.bincount(at, minlength=width))
            slots = np.array([self._span(base + j * slide).slot for j in js.tolist()])
            here = present.reshape(width, rows)[js]
            jj, kk = np.nonzero(here & (blocks["epoch"][slots] == 0))  # the new windows, span by span, each by key
            if in_order:
                at_first = (base - first_start) // slide
                epochs = new_epochs[np.searchsorted(new_cells, (at_first + js[jj]) * rows + kk)]
            else:
                if batch_of is not None:  # the first batch that meets each cell (tumbling: one shift)
                    met = np.full(width * rows, len(batch_of), np.int64)
                    np.minimum.at(met, cell, batch_of)
                epochs = _epochs_by_key(op, jj, kk, None if batch_of is None else met[js[jj] * rows + kk])
            blocks["epoch"][slots[jj], kk] = epochs
            values, counts = values.reshape(width, rows)[js], counts.reshape(width, rows)[js]
            for name in ("acc_all", "acc_new"):
                block = blocks[name]
                block[slots] = ufunc(block[slots], values)
            for name in ("n_all", "n_new"):
                blocks[name][slots] += counts
            if op.count_changes:
                blocks["dirty"][slots] |= here
        return True

    def add_one(self, op: "WindowOperator", key: Any, timestamp: int, value: Any, ref: Any) -> bool:
        """`process` for one element, in Python scalars (numpy's per-call cost is for batches):
        False, with nothing changed, if the store cannot take it."""
        integer = (int, np.integer)
        if not (isinstance(key, integer) and isinstance(value, integer)) or isinstance(key, bool) or isinstance(value, bool):
            return False
        key, timestamp, value = int(key), int(timestamp), int(value)
        limit = _DENSE_SUMMAND if self.sums else 2**63
        if not 0 <= key < _DENSE_KEYS or not -limit <= value < limit:
            return False
        watermark, w = op.watermark, op.spec.windows
        slide = _slide(w)
        start = _last_start(w, timestamp)
        joins = []
        while start > timestamp - w.size:  # its windows, latest first (Tumbling/Sliding.assign)
            end = start + w.size
            if end + op._fire_after_end > watermark:  # spec.fire_time
                joins.append(start)
            elif end + op._cleanup_after_end > watermark:  # late, not expired (spec.cleanup_time): a LATE pane
                return False
            start -= slide
        rows = self._rows_for(key)
        if (len(self.spans) + len(joins)) * rows > _DENSE_CELLS:
            return False
        self._grow(rows)
        op.elements += 1
        combine = {np.add: int.__add__, np.minimum: min, np.maximum: max}[self.ufunc]
        add = 1 if self.count else value
        for start in joins:
            span = self._span(start)
            if not span.epoch[key]:  # a new window: its epoch, then its two timers' sequence numbers
                span.epoch[key] = op._seq + 1
                op._seq += 3
            span.acc_all[key] = combine(int(span.acc_all[key]), add)
            span.acc_new[key] = combine(int(span.acc_new[key]), add)
            span.n_all[key] += 1
            span.n_new[key] += 1
            if op.count_changes:
                span.dirty[key] = True
        if not joins:
            op._late_output(key, timestamp, value, ref)
        return True

    def _rows_for(self, key: int) -> int:
        """How many rows each span has once `key` has one (they grow by doubling, from 64)."""
        return self.capacity if key < self.capacity else min(_DENSE_KEYS, max(64, 2 * self.capacity, key + 1))

    def _grow(self, rows: int) -> None:
        if rows > self.capacity:
            self._resize(len(self.blocks["epoch"]), rows)

    def _epochs_in_order(self, op: "WindowOperator", k_arr: np.ndarray, plan: list, shifts: int, first_start: int,
                         slide: int) -> tuple[np.ndarray, np.ndarray]:
        """The windows a batch makes, as cells (span counted from first_start, times the rows, plus
        the key; sorted), and their epochs in the order `process` would make them: element by
        element, each element's windows latest first (shift 0 first). Takes their sequence numbers."""
        rows, positions, cells = self.capacity, [], []
        for shift, base, at, _width, inside in plan:
            idx = np.arange(len(k_arr)) if inside is None else np.flatnonzero(inside)
            positions.append(idx * shifts + shift)
            cells.append(((base - first_start) // slide + (0 if at is None else at)) * rows + k_arr[idx])
        met = np.concatenate(cells)[np.argsort(np.concatenate(positions))]
        cell, first = np.unique(met, return_index=True)  # each window once, where it is first met
        exists = np.zeros(len(cell), bool)
        span_of, key_of = cell // rows, cell % rows
        for j in np.unique(span_of).tolist():
            span = self.spans.get(first_start + j * slide)
            if span is not None:
                here = span_of == j
                exists[here] = span.epoch[key_of[here]] != 0
        cell, first = cell[~exists], first[~exists]
        rank = np.empty(len(cell), np.int64)
        rank[np.argsort(first)] = np.arange(len(cell))
        epochs = op._seq + 1 + 3 * rank
        op._seq += 3 * len(cell)
        return cell, epochs

    def advance(self, op: "WindowOperator", watermark: int) -> None:
        """What the timers due at `watermark` do: each span's ON_TIME panes (in the order its
        windows were made), then its cleanup, in time order (at one time, ON_TIME first)."""
        size, due = op.spec.windows.size, []
        for start, span in self.spans.items():
            end = start + size
            if not span.fired and end + op._fire_after_end <= watermark:
                due.append((end + op._fire_after_end, _ON_TIME, start))
            if end + op._cleanup_after_end <= watermark:
                due.append((end + op._cleanup_after_end, _CLEANUP, start))
        if not due:
            return
        due.sort()
        accumulating = op.spec.accumulation == "accumulating"
        for _time, kind, start in due:
            span = self.spans[start]
            if kind == _CLEANUP:  # nothing is pending late in here, so it fires nothing
                self.gone_changed += int(np.count_nonzero(span.dirty))
                self._drop(start)
                continue
            span.fired = True
            live = np.flatnonzero(span.epoch)
            live = live[np.argsort(span.epoch[live])]
            show = (span.n_all if accumulating else span.n_new)[live] > 0
            fire = live[show]
            span.panes[fire] += 1
            acc, n = (span.acc_all, span.n_all) if accumulating else (span.acc_new, span.n_new)
            if len(fire):
                last = op._last_on_time(start + size + op._cleanup_after_end <= watermark)  # (spec.cleanup_time)
                op._pane_blocks.append(PaneBlock(Window(start, start + size), last, watermark, op.processing_time, fire,
                                                 acc[fire], n[fire]))
            span.acc_new[live] = self.identity
            span.n_new[live] = 0

    def materialize(self, op: "WindowOperator") -> None:
        """Make the window objects and timers the operator would hold had it never had this store."""
        size, empty = op.spec.windows.size, op.spec.aggregate.empty
        rows = []
        for start, span in self.spans.items():
            window = Window(start, start + size)
            for key in np.flatnonzero(span.epoch).tolist():  # a key is its own row
                rows.append((int(span.epoch[key]), key, span, window))
        rows.sort(key=lambda row: row[0])
        state_of, timers = op._state, op._event_timers
        for epoch, key, span, window in rows:
            state = _WindowState(window, epoch, empty)
            n_all, n_new = int(span.n_all[key]), int(span.n_new[key])
            state.acc_all, state.n_all = (int(span.acc_all[key]) if n_all else empty), n_all
            state.acc_new, state.n_new = (int(span.acc_new[key]) if n_new else empty), n_new
            state.panes, state.on_time_fired = int(span.panes[key]), span.fired
            state_of.setdefault(key, {})[window] = state
            if not span.fired:
                timers.push(window.end + op._fire_after_end, _ON_TIME, epoch + 1, key, window, epoch)
            timers.push(window.end + op._cleanup_after_end, _CLEANUP, epoch + 2, key, window, epoch)
            if span.dirty[key]:
                op.touched.add((key, window))
        op._gone_changed += self.gone_changed


def _epochs_by_key(op: "WindowOperator", spans: np.ndarray, keys: np.ndarray, batches: np.ndarray | None = None
                   ) -> np.ndarray:
    """Sequence numbers for the new windows of a batch (each new window's span, counted in start
    order, and its key, span by span and each span's by key), three a window (its epoch, its
    ON_TIME and its cleanup timers), taken in the order _register would take them: by key, then by
    start; for batches added in one step (batches: each new window's first batch), by batch first."""
    total = len(keys)
    rank = np.arange(total, dtype=np.int64)  # each span's by key: the order with one span
    if total and (batches is not None or spans[0] != spans[-1]):
        order = (spans, keys)  # lexsort: last key first
        rank[np.lexsort(order if batches is None else (*order, batches))] = np.arange(total)
    epochs = op._seq + 1 + 3 * rank
    op._seq += 3 * total
    return epochs


def _dense_for(spec: WindowSpec) -> "_Dense | None":
    """A columnar store for a spec it covers (see _Dense), else None."""
    if isinstance(spec.windows, Session) or spec.trigger != Trigger(late_every_n=spec.trigger.late_every_n):
        return None
    for aggregate, ufunc in _DENSE_UFUNCS:
        if spec.aggregate is aggregate:
            return _Dense(aggregate, ufunc)
    return None


def _last_start(windows: Tumbling | Sliding, timestamp):
    """The start of the latest window a timestamp (an int, or an array of them) falls in
    (Tumbling/Sliding.assign); for tumbling windows, its only one."""
    return timestamp - (timestamp - windows.offset) % _slide(windows)


def _slide(windows: Tumbling | Sliding) -> int:
    """How far apart the starts of consecutive windows are."""
    return windows.slide if isinstance(windows, Sliding) else windows.size


def _ref_list(refs, n: int) -> list:
    """The refs given with n elements as a list (None: none given)."""
    if refs is None:
        return [None] * n
    return refs.tolist() if hasattr(refs, "tolist") else list(refs)


def _groups(spec: WindowSpec, k_arr: np.ndarray, v_arr: np.ndarray, starts: np.ndarray, inside: np.ndarray):
    """One shift of a batch's elements grouped by (key, window start), in that order: the keys,
    starts, reduced values and counts of the groups."""
    idx = np.flatnonzero(inside)
    order = idx[np.lexsort((starts[idx], k_arr[idx]))]
    gk, gs = k_arr[order], starts[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (gk[1:] != gk[:-1]) | (gs[1:] != gs[:-1])
    bounds = np.flatnonzero(first)
    counts = np.diff(np.append(bounds, len(order)))
    sums = counts if spec.aggregate.name == "count" else _REDUCERS[spec.aggregate.name](v_arr[order], bounds)
    return gk[bounds], gs[bounds], sums, counts

_new_pane, _set_attr = object.__new__, object.__setattr__


def _make_pane(key, window, timing, index, is_last, value, count, watermark, processing_time) -> Pane:
    """Pane(...) as its frozen dataclass __init__ would make it, in one attribute write instead of
    nine object.__setattr__ calls (a pane per window: thousands a run)."""
    pane = _new_pane(Pane)
    _set_attr(pane, "__dict__", {
        "key": key, "window": window, "timing": timing, "index": index, "is_last": is_last, "value": value,
        "count": count, "watermark": watermark, "processing_time": processing_time})
    return pane


class PaneBlock:
    """The ON_TIME panes (first of their windows: index 0) that one watermark fired for one span of
    the columnar store (_Dense): one window, and per pane a key, value and count (int64 arrays, in
    the order the windows were made). Iterating it makes the Pane objects, as window objects would
    have fired them; a sink that knows blocks writes the columns (WindowResults.write)."""

    __slots__ = ("window", "is_last", "watermark", "processing_time", "keys", "values", "counts")

    def __init__(self, window: Window, is_last: bool, watermark: int, processing_time: int,
                 keys: np.ndarray, values: np.ndarray, counts: np.ndarray):
        self.window, self.is_last, self.watermark, self.processing_time = window, is_last, watermark, processing_time
        self.keys, self.values, self.counts = keys, values, counts

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[Pane]:
        window, is_last, watermark, ptime = self.window, self.is_last, self.watermark, self.processing_time
        for key, value, count in zip(self.keys.tolist(), self.values.tolist(), self.counts.tolist()):
            yield _make_pane(key, window, Timing.ON_TIME, 0, is_last, value, count, watermark, ptime)


class Panes(Sequence):
    """Fired panes, in the order they fired: Pane objects, then PaneBlocks (the columnar store's,
    which always fire before the window objects take over). Read as a tuple of Pane objects
    (length, iteration, indexing, equality with a tuple); the objects of a block are made only
    when something reads them one by one."""

    __slots__ = ("objects", "blocks", "_all")

    def __init__(self, objects: tuple[Pane, ...] = (), blocks: tuple[PaneBlock, ...] = ()):
        self.objects, self.blocks, self._all = objects, blocks, None

    def __len__(self) -> int:
        return len(self.objects) + sum(len(block) for block in self.blocks)

    def __iter__(self) -> Iterator[Pane]:
        if self._all is not None:
            return iter(self._all)
        return self._iterate()

    def _iterate(self) -> Iterator[Pane]:
        yield from self.objects
        for block in self.blocks:
            yield from block

    def _tuple(self) -> tuple[Pane, ...]:
        if self._all is None:
            self._all = tuple(self._iterate())
        return self._all

    def __getitem__(self, index):
        return self._tuple()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Panes):
            other = other._tuple()
        return self._tuple() == other if isinstance(other, tuple) else NotImplemented

    def __repr__(self) -> str:
        return f"Panes({self._tuple()!r})"

#: the aggregates whose accumulators are immutable values (numbers, tuples of the elements' values)
_IMMUTABLE_ACCUMULATORS = (COUNT, SUM, MIN, MAX, COLLECT)
#: what a snapshot leaves out: the spec, outputs emitted, and what counts changes between snapshots
_NOT_SNAPSHOT = frozenset(("spec", "_panes", "_pane_blocks", "late", "touched", "_gone_changed", "count_changes"))


class WindowOperator:
    """A keyed window operator. Feed it with `process`, `advance_watermark`, `advance_processing_time`.

    Panes go to `self.panes`; late elements to `self.late` (if the spec keeps a side output) or to
    the `self.dropped` counter. `snapshot()` / `restore()` copy its whole state for checkpoints.
    """

    def __init__(self, spec: WindowSpec, count_changes: bool = True):
        self.spec = spec
        self.count_changes = count_changes  # keep `touched` (an incremental checkpoint writes only those windows)
        self.watermark = MIN_TIME
        self.processing_time = 0
        self._panes: list[Pane] = []
        self._pane_blocks: list[PaneBlock] = []  # what the columnar store fired since, after _panes
        self.late: list[LateElement] = []
        self.dropped = 0
        self.elements = 0
        self._state: dict[Hashable, dict[Window, _WindowState]] = {}
        self._event_timers = _Timers()
        self._processing_timers = _Timers()
        self._seq = 0
        # spec.fire_time(w) and spec.cleanup_time(w) are w.end plus these (asked per window, so kept)
        self._fire_after_end = spec.fire_time(Window(0, 0))
        self._cleanup_after_end = spec.cleanup_time(Window(0, 0))
        self.touched: set[tuple[Hashable, Window]] = set()  # windows changed since the last snapshot (only counted)
        self._gone_changed = 0  # changed windows the columnar store cleaned up before it gave way (counted too)
        # Beam: the windows the current bundle added to, whose count triggers are asked at its end
        self._bundle: dict[tuple[Hashable, Window], _WindowState] | None = None
        # the state as columns while the common case lasts (see _Dense), else None
        self._dense = _dense_for(spec)

    @property
    def panes(self) -> list[Pane]:
        """The panes fired so far (until the caller clears the list), in the order they fired."""
        if self._pane_blocks:
            for block in self._pane_blocks:
                self._panes.extend(block)
            self._pane_blocks.clear()
        return self._panes

    @panes.setter
    def panes(self, panes: list[Pane]) -> None:
        self._panes, self._pane_blocks = panes, []

    def take_panes(self) -> Panes:
        """The panes fired so far, as a Panes sequence (the columnar store's blocks stay columns);
        none are left behind."""
        out = Panes(tuple(self._panes), tuple(self._pane_blocks))
        self._panes, self._pane_blocks = [], []
        return out

    # ---- input ---------------------------------------------------------------------------------
    def process(self, key: Hashable, timestamp: int, value: Any, ref: Any = None) -> None:
        """One element (with Beam semantics, a bundle of one). It joins every window it belongs to
        that has not expired (nor, Beam, closed)."""
        dense = self._flushed()
        if dense is not None:
            if dense.add_one(self, key, timestamp, value, ref):
                return
            self._leave_dense()
        if self.spec.beam and self._bundle is None:
            self.process_bundle([(key, timestamp, value)], [ref])
            return
        spec = self.spec
        self.elements += 1
        accepted = False
        for window in spec.windows.assign(timestamp):
            state = self._window_for(key, window)
            if state is None or state.closed:  # expired, or (Beam) its trigger finished
                continue
            accepted = True
            self._add(key, state, value)
        if not accepted:
            self._late_output(key, timestamp, value, ref)

    def _late_output(self, key: Hashable, timestamp: int, value: Any, ref: Any) -> None:
        """An element that joined no window: to the late side output, or the drop count."""
        if self.spec.side_output_late:
            self.late.append(LateElement(key, timestamp, value, self.watermark, ref))
        else:
            self.dropped += 1

    def process_bundle(self, elements, refs=None) -> None:
        """Elements (key, timestamp, value) that arrive together: a bundle, in Beam's terms. With
        Beam semantics every element is added first, and then each window's count triggers are
        asked once (ReduceFnRunner.processElements); with Flink's, after each element."""
        refs = [None] * len(elements) if refs is None else refs
        if self._flushed() is not None and elements:
            # each element on its own: the bundle's end asks count triggers only, which the columns
            # never have, and LATE panes, which they never make
            elements, refs = list(elements), list(refs)
            for i, ((key, timestamp, value), ref) in enumerate(zip(elements, refs)):
                if not self._dense.add_one(self, key, timestamp, value, ref):
                    self._leave_dense()
                    elements, refs = elements[i:], refs[i:]
                    break
            else:
                return
        if not self.spec.beam:
            for (key, timestamp, value), ref in zip(elements, refs):
                self.process(key, timestamp, value, ref)
            return
        self._bundle = {}
        try:
            for (key, timestamp, value), ref in zip(elements, refs):
                self.process(key, timestamp, value, ref)
        finally:
            bundle, self._bundle = self._bundle, None
        for (key, window), state in bundle.items():
            if self._state.get(key, {}).get(window) is state:  # not merged away or cleaned up since
                self._end_of_bundle(key, state)

    def process_batch(self, keys, timestamps, values, refs=None) -> None:
        """Many elements, in order: the same result as calling `process` on each, faster.

        Elements that share a key and a window are added to it in one step (numpy), as long as
        nothing in the batch is late and no trigger counts elements one by one; otherwise the
        batch goes element by element, where each late element may fire its own pane. The columnar
        store (_Dense) takes a batch whose late elements only meet windows that expired, too.
        """
        spec = self.spec
        n = len(keys)
        if n > 1 and self._dense is not None and self._dense.defer(self, keys, timestamps, values):
            return
        dense = self._flushed()
        if dense is not None and n <= 1:
            if n == 0:
                return
            if dense.add_one(self, keys[0], timestamps[0], values[0], _ref_list(refs, 1)[0]):
                return
            self._leave_dense()
            dense = None
        fast = ((n > 1 or dense is not None) and not isinstance(spec.windows, Session)
                and spec.trigger.early_every_n is None and spec.aggregate.name in _REDUCERS
                and spec.trigger.late == "fire")  # a closed window (restored, under MIN again) drops elements
        starts_per_shift = []
        expired_only = False  # late elements, all in windows that expired (the columnar store takes those)
        if fast:
            ts = np.asarray(timestamps, dtype=np.int64)
            w = spec.windows
            slide = _slide(w)
            last = _last_start(w, ts)
            for shift in range(-(-w.size // slide)):
                starts = last - shift * slide
                inside = starts > ts - w.size
                # the earliest start first: if its window is not past its fire time, none is (spec.fire_time)
                late = (int(starts.min()) + w.size + self._fire_after_end <= self.watermark
                        and inside & (starts + (w.size + self._fire_after_end) <= self.watermark))
                if late is not False and late.any():
                    # An element joins no window that expired (_window_for), and one that joins none is
                    # late output; a window past its fire time but not expired (allowed lateness)
                    # fires a LATE pane for it: one by one, with window objects.
                    expired = late & (starts + (w.size + self._cleanup_after_end) <= self.watermark)  # cleanup_time
                    if dense is None or (late & ~expired).any():
                        fast = False
                        break
                    inside, expired_only = inside & ~expired, True
                starts_per_shift.append((starts, inside))
        if dense is not None:
            if fast and dense.add(self, np.asarray(keys), np.asarray(values), starts_per_shift, expired_only):
                if expired_only:
                    self._late_batch(keys, timestamps, values, refs, starts_per_shift)
                return
            self._leave_dense()
            fast = fast and n > 1 and not expired_only
        if not fast:
            as_list = [x.tolist() if hasattr(x, "tolist") else list(x) for x in (keys, timestamps, values)]
            self.process_bundle(list(zip(*as_list)), _ref_list(refs, n))  # a polled batch is a bundle
            return
        self.elements += n
        k_arr, v_arr = np.asarray(keys), np.asarray(values)
        size = spec.windows.size
        state_of, merge, empty = self._state, spec.aggregate.merge, spec.aggregate.empty
        touched = self.touched if self.count_changes else None
        early_timers = spec.trigger.early_after is not None
        for starts, inside in starts_per_shift:
            gk, gs, sums, counts = _groups(spec, k_arr, v_arr, starts, inside)
            for key, start, value, count in zip(gk.tolist(), gs.tolist(), sums.tolist(), counts.tolist()):
                # _window_for and _add_group, inlined for the window that exists (a plain tuple finds
                # a Window: a named tuple hashes and compares as one); nothing here is late, so
                # nothing has expired
                windows = state_of.get(key)
                state = windows.get((start, start + size)) if windows is not None else None
                if state is None:  # a new window: not expired, since nothing here is late (_window_for, inlined)
                    window = Window(start, start + size)
                    if windows is None:
                        windows = state_of[key] = {}
                    state = windows[window] = _WindowState(window, self._next(), empty)
                    self._register(key, state)
                if touched is not None:
                    touched.add((key, state.window))
                state.acc_all, state.n_all = merge(state.acc_all, value), state.n_all + count
                state.acc_new, state.n_new = merge(state.acc_new, value), state.n_new + count
                if state.on_time_fired or early_timers:  # what _arm acts on
                    self._arm(key, state)

    def _late_batch(self, keys, timestamps, values, refs, starts_per_shift) -> None:
        """The elements of a batch that joined no window (every one of theirs expired), in order, to
        the late side output or the drop count: what `process` does with each."""
        orphan = ~np.logical_or.reduce([inside for _starts, inside in starts_per_shift])
        at = np.flatnonzero(orphan)
        if not len(at):
            return
        if not self.spec.side_output_late:
            self.dropped += len(at)
            return
        refs = _ref_list(refs, len(keys))
        for i, key, timestamp, value in zip(at.tolist(), np.asarray(keys)[at].tolist(),
                                            np.asarray(timestamps)[at].tolist(), np.asarray(values)[at].tolist()):
            self._late_output(key, timestamp, value, refs[i])

    def advance_watermark(self, watermark: int) -> None:
        """The input watermark moves to `watermark` (never backwards: a lower value is ignored)."""
        if watermark <= self.watermark:
            return
        dense = self._flushed()
        if dense is not None:
            dense.advance(self, watermark)
            self.watermark = watermark
            return
        state_of = self._state
        for kind, _seq, key, window, epoch in self._event_timers.pop_until(watermark):  # _due, inlined
            windows = state_of.get(key)
            state = windows.get(window) if windows else None
            if state is None or state.epoch != epoch:  # cleaned up or merged away since
                continue
            if kind == _ON_TIME:
                self._on_time(key, state, watermark)
            else:
                self._cleanup(key, state)
        self.watermark = watermark

    def advance_processing_time(self, now: int) -> None:
        """Processing time (the node's clock) moves to `now`: early processing-time firings."""
        if now <= self.processing_time:
            return
        self.processing_time = now
        for _kind, key, state in self._due(self._processing_timers, now):
            state.early_timer_set = False
            if not state.on_time_fired and state.n_new and self.spec.fire_time(state.window) > self.watermark:
                self._fire(key, state, Timing.EARLY, False)

    # ---- state ---------------------------------------------------------------------------------
    def open_windows(self) -> int:
        dense = self._flushed()
        if dense is not None:
            return dense.open_windows()
        return sum(len(ws) for ws in self._state.values())

    def changed_windows(self) -> int:
        """Windows opened or updated since `clear_changed` (what an incremental snapshot writes)."""
        dense = self._flushed()
        return len(self.touched) + self._gone_changed + (dense.changed() if dense is not None else 0)

    def clear_changed(self) -> None:
        dense = self._flushed()
        self.touched.clear()
        self._gone_changed = 0
        if dense is not None:
            dense.clear_changed()

    def snapshot(self) -> dict:
        """A copy of everything (for a checkpoint); `restore` takes it back."""
        self._flushed()
        return self._copy({k: v for k, v in self.__dict__.items() if k not in _NOT_SNAPSHOT})

    def restore(self, snapshot: dict) -> None:
        pending = self.changed_windows()  # not part of a snapshot: what this operator counted stays counted
        self.__dict__.update(self._copy(snapshot))
        dense = self._dense
        if dense is not None:
            dense.clear_changed()  # what changed before the snapshot is not counted again
            # A span that fired on time and waits for its cleanup (allowed lateness) fires again, LATE,
            # after a restore (the watermark starts from MIN_TIME again): window objects do that. So
            # do they count a window changed before and after the restore once.
            if pending or any(span.fired for span in dense.spans.values()):
                self._leave_dense()

    def _copy(self, state: dict) -> dict:
        """`state` copied as deep as it is mutable. Keys, windows and timer entries are immutable, and
        so are the built-in aggregates' accumulators (numbers, tuples): each window's state is copied
        and its values shared, in a fraction of a deep copy's time (which was 29% of a windowed run).
        A user's own Aggregate may keep a mutable accumulator: its state is copied deep."""
        if self.spec.aggregate not in _IMMUTABLE_ACCUMULATORS:
            import copy
            return copy.deepcopy(state)
        out = dict(state)
        out["_state"] = {key: {window: ws.copy() for window, ws in windows.items()}
                         for key, windows in state["_state"].items()}
        out["_event_timers"] = state["_event_timers"].copy()
        out["_processing_timers"] = state["_processing_timers"].copy()
        if state["_dense"] is not None:
            out["_dense"] = state["_dense"].copy()
        return out

    # ---- internals -----------------------------------------------------------------------------
    def _flushed(self) -> "_Dense | None":
        """The columnar store with the batches it deferred added (None: window objects, perhaps
        only now, if it could not hold them)."""
        dense = self._dense
        if dense is not None and dense.pending:
            dense.flush(self)
            return self._dense
        return dense

    def _leave_dense(self) -> None:
        """From here on, window objects and timers: what the columnar store holds becomes them."""
        dense, self._dense = self._dense, None
        assert not dense.pending, "batches taken in are added (or turned into window objects) first: _flushed"
        dense.materialize(self)

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _expired(self, window: Window) -> bool:
        return window.end + self._cleanup_after_end <= self.watermark  # spec.cleanup_time(window) <= W

    def _window_for(self, key: Hashable, window: Window) -> _WindowState | None:
        """The state of the window the element joins (merging sessions first), or None if expired.

        Sessions: Flink merges first and checks the merged window's lateness; Beam checks the
        element's own window first (LateDataFilter), then merges only windows that overlap, and
        a closed window (its trigger finished) takes no part: ReduceFnRunner.emit removes it from
        the active windows, and MergingActiveWindowSet merges only ACTIVE and NEW ones. A session
        that overlaps a closed one is a session of its own; one with exactly a closed window's
        bounds is that closed window (its trigger's finished bits), whose elements are dropped."""
        spec = self.spec
        windows = self._state.setdefault(key, {})
        if isinstance(spec.windows, Session):
            if spec.beam and self._expired(window):
                if not windows:
                    del self._state[key]
                return None
            merged = spec.merging([w for w, s in windows.items() if not s.closed] if spec.beam else windows, window)
            if merged and not (len(merged) == 1 and merged[0].start <= window.start and merged[0].end >= window.end):
                return self._merge(key, window, merged)
            if merged:
                window = merged[0]
        state = windows.get(window)
        if state is not None:
            return state
        if self._expired(window):
            if not windows:
                del self._state[key]
            return None
        state = windows[window] = _WindowState(window, self._next(), self.spec.aggregate.empty)
        self._register(key, state)
        return state

    def _merge(self, key: Hashable, window: Window, merged: list[Window]) -> _WindowState | None:
        """Merge `merged` (and the element's `window`) into the window covering them all: a new
        window with their accumulators. Its pane index starts again at 0 with Beam, whose
        ReduceFnRunner.OnMergeCallback.onMerge clears the pane info of each window merged away
        ("the merge result window gets to start fresh if it is new"; PaneInfoTracker keeps it per
        window); Flink has no pane index, and weir's goes on from the highest merged."""
        windows = self._state[key]
        cover = window
        for w in merged:
            cover = cover.cover(w)
        if self._expired(cover):
            return None
        if cover in windows:  # (Beam: a closed window with the merge's bounds, whose state stays; the
            return windows[cover]  # caller drops the element, and the windows stay unmerged, none lost)
        agg = self.spec.aggregate
        new = _WindowState(cover, self._next(), agg.empty)
        for w in sorted(merged):
            old = windows.pop(w)
            new.acc_all, new.n_all = agg.merge(new.acc_all, old.acc_all), new.n_all + old.n_all
            new.acc_new, new.n_new = agg.merge(new.acc_new, old.acc_new), new.n_new + old.n_new
            if not self.spec.beam:  # Flink has no pane index: weir's goes on from the windows merged
                new.panes = max(new.panes, old.panes)
            new.late_pending += old.late_pending
        windows[cover] = new
        self._register(key, new)
        return new

    def _register(self, key: Hashable, state: _WindowState) -> None:
        """Timers for a new window: ON_TIME at max_ts (unless that moment has passed), cleanup at expiry."""
        window = state.window
        fire_at = window.end + self._fire_after_end  # spec.fire_time(window)
        if fire_at > self.watermark:
            self._event_timers.push(fire_at, _ON_TIME, self._next(), key, window, state.epoch)
        else:
            state.on_time_fired = True  # it opened after its end: every pane it fires is LATE
        self._event_timers.push(window.end + self._cleanup_after_end, _CLEANUP, self._next(), key, window, state.epoch)

    def _due(self, timers: _Timers, until: int):
        """Pop the timers due at or before `until`, in order; yield (kind, key, state) for live windows."""
        state_of = self._state
        for kind, _seq, key, window, epoch in timers.pop_until(until):
            windows = state_of.get(key)
            state = windows.get(window) if windows else None
            if state is not None and state.epoch == epoch:  # not cleaned up or merged away since
                yield kind, key, state

    def _add(self, key: Hashable, state: _WindowState, value: Any) -> None:
        agg, trigger = self.spec.aggregate, self.spec.trigger
        if self.count_changes:
            self.touched.add((key, state.window))
        state.acc_all, state.n_all = agg.add(state.acc_all, value), state.n_all + 1
        state.acc_new, state.n_new = agg.add(state.acc_new, value), state.n_new + 1
        if self._bundle is not None:  # Beam: the triggers are asked at the end of the bundle
            self._bundle.setdefault((key, state.window), state)
        if self.spec.fire_time(state.window) <= self.watermark:  # past its end, not expired: a late element
            state.late_pending += 1
            if self._bundle is None and state.late_pending >= trigger.late_every_n:
                self._fire(key, state, Timing.LATE, False)
            return
        if (self._bundle is None and trigger.early_every_n and not state.on_time_fired
                and state.n_new >= trigger.early_every_n):
            self._fire(key, state, Timing.EARLY, False)
        else:
            self._arm(key, state)

    def _end_of_bundle(self, key: Hashable, state: _WindowState) -> None:
        """Beam: ask a window the bundle added to whether its count trigger fires, once."""
        trigger = self.spec.trigger
        if self.spec.fire_time(state.window) <= self.watermark:  # its late elements
            if not state.late_pending:
                return
            if trigger.late == "never":  # a window that opened after its end fires once, then is finished
                self._fire(key, state, Timing.LATE, True)  # (finished: Beam's last pane, as _last_on_time says)
                state.closed = True
            elif state.late_pending >= trigger.late_every_n or not state.panes:
                # (no pane yet: the window opened after its end, or is a session merged past it, and
                # AfterWatermark's end-of-window part has not fired: it does now, whatever the late
                # count, which counts from then on. AfterWatermarkStateMachine.AfterWatermarkEarlyAndLate
                # .shouldFire: until the early phase finishes, `early ready || endOfWindowReached`.)
                self._fire(key, state, Timing.LATE, False)
        elif trigger.early_every_n and not state.on_time_fired and state.n_new >= trigger.early_every_n:
            self._fire(key, state, Timing.EARLY, False)

    def _arm(self, key: Hashable, state: _WindowState) -> None:
        """Set the timers an element that is not late calls for (after it was added to `state`)."""
        if state.on_time_fired:
            # Only after a restore, when the watermark starts again from MIN_TIME: the window already
            # fired on time, so (like Flink's EventTimeTrigger, which registers a timer at max_ts on
            # every element) it fires again, LATE, when the watermark passes its end once more.
            if not state.refire_timer_set:
                state.refire_timer_set = True
                self._event_timers.push(self.spec.fire_time(state.window), _ON_TIME, self._next(), key, state.window,
                                        state.epoch)
        elif self.spec.trigger.early_after and not state.early_timer_set:
            state.early_timer_set = True
            self._processing_timers.push(self.processing_time + self.spec.trigger.early_after, _EARLY, self._next(), key,
                                         state.window, state.epoch)

    def _on_time(self, key: Hashable, state: _WindowState, watermark: int) -> None:
        if state.on_time_fired:  # a re-fire after a restore (see _add)
            state.refire_timer_set = False
            if state.n_new:
                self._fire(key, state, Timing.LATE, self.spec.cleanup_time(state.window) <= watermark, watermark)
            return
        state.on_time_fired = True
        if self.spec.trigger.late == "never":  # Beam's AfterWatermark alone: fires now and is finished
            state.closed = True
        show = state.n_new if self.spec.accumulation == "discarding" else state.n_all
        if show:
            expired = self.spec.cleanup_time(state.window) <= watermark
            self._fire(key, state, Timing.ON_TIME, self._last_on_time(expired), watermark)
            if expired:
                state.late_pending = 0

    def _last_on_time(self, expired: bool) -> bool:
        """Whether a window's ON_TIME pane is its last (`is_last`, Beam's PaneInfo.isLast), given
        whether the window expires as it fires (the watermark is at or past its cleanup time).

        Flink has no panes: weir marks it last when the window expires with it, as nothing can follow.
        Beam (ReduceFnRunner.onTimers and emit): the ON_TIME pane fires at the end-of-window timer,
        which is the garbage-collection timer too only without allowed lateness; else the pane is
        last only if the trigger finished with it (AfterWatermark with no late firings,
        `late = "never"`). A watermark that jumps past the cleanup time fires the
        garbage-collection timer after it, a timer of its own, which emits nothing when nothing
        came since (ClosingBehavior.FIRE_IF_NON_EMPTY)."""
        spec = self.spec
        if not spec.beam:
            return expired
        return spec.allowed_lateness == 0 or spec.trigger.late == "never"

    def _cleanup(self, key: Hashable, state: _WindowState) -> None:
        if state.late_pending and state.n_new:
            self._fire(key, state, Timing.LATE if state.on_time_fired else Timing.ON_TIME, True)
        windows = self._state[key]
        del windows[state.window]
        if not windows:
            del self._state[key]

    def _fire(self, key: Hashable, state: _WindowState, timing: Timing, is_last: bool,
              watermark: int | None = None) -> None:
        accumulating = self.spec.accumulation == "accumulating"
        pane = _make_pane(key, state.window, timing, state.panes, is_last,
                          state.acc_all if accumulating else state.acc_new,
                          state.n_all if accumulating else state.n_new,
                          self.watermark if watermark is None else watermark, self.processing_time)
        self.panes.append(pane)
        state.panes += 1
        state.acc_new, state.n_new, state.late_pending = self.spec.aggregate.empty, 0, 0
