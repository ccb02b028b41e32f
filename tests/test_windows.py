"""Window semantics against hand-written cases with exact expected panes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weir.sim.kernel.errors import ScenarioError
from weir.sim.stream.teststream import TestStream
from weir.sim.stream.windows import (
    COUNT, MAX, MAX_TIME, MIN, SUM, Session, Sliding, Trigger, Tumbling, Window, WindowOperator, WindowSpec, reduce,
)

S10 = Tumbling(10_000)  # windows [0, 10000), [10000, 20000), ...; max_ts 9999, 19999


def panes(result):
    return [(p.key, p.window.start, p.timing.value, p.index, p.is_last, p.value, p.count) for p in result.panes]


def test_assigners():
    assert Tumbling(10, offset=3).assign(12) == [Window(3, 13)]
    assert Tumbling(10).assign(-1) == [Window(-10, 0)]
    assert Sliding(10, 5).assign(12) == [Window(10, 20), Window(5, 15)]
    assert Sliding(10, 5).assign(10) == [Window(10, 20), Window(5, 15)]
    assert Session(7).assign(3) == [Window(3, 10)]
    assert Window(0, 10).max_ts == 9


def test_a_trigger_refuses_a_count_or_delay_below_1_naming_which_it_is():
    """early_every_n and late_every_n count elements; early_after is a time (microseconds)."""
    for kwargs, message in (({"late_every_n": 0}, "trigger.late_every_n: got 0; accepts a whole number of elements > 0"),
                            ({"early_every_n": -2}, "trigger.early_every_n: got -2; accepts a whole number of elements"),
                            ({"early_after": 0}, "trigger.early_after: got 0; accepts a whole number of microseconds")):
        with pytest.raises(ScenarioError) as refused:
            Trigger(**kwargs)
        assert str(refused.value).startswith(message), (kwargs, str(refused.value))


def test_on_time_pane_fires_when_the_watermark_reaches_max_ts_not_before():
    base = TestStream().add_elements(("a", 1_000, 5), ("a", 9_999, 7), ("b", 4_000, 1))
    assert panes(base.advance_watermark_to(9_998).run(WindowSpec(S10))) == []
    result = base.advance_watermark_to(9_999).run(WindowSpec(S10))
    assert panes(result) == [("a", 0, "ON_TIME", 0, True, 12, 2), ("b", 0, "ON_TIME", 0, True, 1, 1)]
    assert [p.watermark for p in result.panes] == [9_999, 9_999]


def test_an_element_in_the_next_window_waits_for_its_own_end():
    result = (TestStream().add_elements(("a", 1, 1), ("a", 10_000, 2)).advance_watermark_to(15_000)
              .advance_watermark_to(19_999).run(WindowSpec(S10)))
    assert panes(result) == [("a", 0, "ON_TIME", 0, True, 1, 1), ("a", 10_000, "ON_TIME", 0, True, 2, 1)]
    assert [p.watermark for p in result.panes] == [15_000, 19_999]


def boundary_stream():
    # Window [0, 10000) has max_ts 9999; with lateness 5000 it expires at W = 14999 (Flink) or 15000 (Beam).
    return (TestStream().add_elements(("k", 100, 1)).advance_watermark_to(14_999)
            .add_elements(("k", 3_000, 10)).advance_watermark_to_infinity())


def test_flink_drops_at_exactly_max_ts_plus_lateness():
    r = boundary_stream().run(WindowSpec(S10, allowed_lateness=5_000, semantics="flink"))
    assert panes(r) == [("k", 0, "ON_TIME", 0, True, 1, 1)]  # the watermark is already at cleanup: last pane
    assert [(e.key, e.timestamp, e.value, e.watermark) for e in r.late] == [("k", 3_000, 10, 14_999)]


def test_beam_keeps_at_exactly_max_ts_plus_lateness():
    r = boundary_stream().run(WindowSpec(S10, allowed_lateness=5_000, semantics="beam"))
    assert panes(r) == [("k", 0, "ON_TIME", 0, False, 1, 1), ("k", 0, "LATE", 1, False, 10, 1)]
    assert r.late == ()


def test_one_tick_later_both_drop():
    stream = (TestStream().add_elements(("k", 100, 1)).advance_watermark_to(15_000)
              .add_elements(("k", 3_000, 10)).advance_watermark_to_infinity())
    for rule in ("flink", "beam"):
        r = stream.run(WindowSpec(S10, allowed_lateness=5_000, semantics=rule))
        assert len(r.late) == 1, rule


def late_stream():
    return (TestStream().add_elements(("k", 1, 1), ("k", 2, 2)).advance_watermark_to(10_000)
            .add_elements(("k", 3, 4)).add_elements(("k", 4, 8)).advance_watermark_to(12_000)
            .add_elements(("k", 5, 16)).advance_watermark_to_infinity())


def test_late_panes_discarding_and_accumulating():
    discarding = late_stream().run(WindowSpec(S10, allowed_lateness=5_000))
    assert panes(discarding) == [("k", 0, "ON_TIME", 0, False, 3, 2), ("k", 0, "LATE", 1, False, 4, 1),
                                 ("k", 0, "LATE", 2, False, 8, 1), ("k", 0, "LATE", 3, False, 16, 1)]
    accumulating = late_stream().run(WindowSpec(S10, allowed_lateness=5_000, accumulation="accumulating"))
    assert [(p.timing.value, p.value, p.count) for p in accumulating.panes] == [
        ("ON_TIME", 3, 2), ("LATE", 7, 3), ("LATE", 15, 4), ("LATE", 31, 5)]


def test_late_every_n_batches_late_elements_and_the_cleanup_flushes_the_rest():
    r = late_stream().run(WindowSpec(S10, allowed_lateness=5_000, trigger=Trigger(late_every_n=2)))
    assert panes(r) == [("k", 0, "ON_TIME", 0, False, 3, 2), ("k", 0, "LATE", 1, False, 12, 2),
                        ("k", 0, "LATE", 2, True, 16, 1)]


def test_without_a_side_output_late_elements_are_counted_as_dropped():
    stream = TestStream().add_elements(("k", 1, 1)).advance_watermark_to(20_000).add_elements(("k", 2, 2), ("k", 3, 3))
    kept = stream.run(WindowSpec(S10))
    counted = stream.run(WindowSpec(S10, side_output_late=False))
    assert len(kept.late) == 2 and kept.dropped == 0
    assert counted.late == () and counted.dropped == 2


def test_early_firings_every_n_elements():
    stream = (TestStream().add_elements(*[("k", t, 1) for t in range(1, 6)]).advance_watermark_to(9_999))
    r = stream.run(WindowSpec(S10, aggregate=COUNT, trigger=Trigger(early_every_n=2)))
    assert panes(r) == [("k", 0, "EARLY", 0, False, 2, 2), ("k", 0, "EARLY", 1, False, 2, 2),
                        ("k", 0, "ON_TIME", 2, True, 1, 1)]
    acc = stream.run(WindowSpec(S10, aggregate=COUNT, accumulation="accumulating", trigger=Trigger(early_every_n=2)))
    assert [(p.timing.value, p.value) for p in acc.panes] == [("EARLY", 2), ("EARLY", 4), ("ON_TIME", 5)]


def test_early_firing_after_a_processing_time_delay_from_the_panes_first_element():
    r = (TestStream().add_elements(("k", 1, 1)).advance_processing_time(400).add_elements(("k", 2, 2))
         .advance_processing_time(600).add_elements(("k", 3, 4)).advance_processing_time(999)
         .advance_processing_time(1).advance_watermark_to(9_999)
         .run(WindowSpec(S10, trigger=Trigger(early_after=1_000))))
    # Timer at 1000 (first element at 0); the next pane's first element comes at 1000, so its timer is at 2000.
    # Discarding: nothing new is left for an on-time pane to show, so none fires.
    assert [(p.timing.value, p.value, p.processing_time) for p in r.panes] == [("EARLY", 3, 1_000), ("EARLY", 4, 2_000)]


def test_sliding_windows_put_an_element_in_each_window_it_falls_in():
    r = TestStream().add_elements(("k", 12, 1)).advance_watermark_to_infinity().run(WindowSpec(Sliding(10, 5)))
    assert [(p.window.start, p.window.end, p.value) for p in r.panes] == [(5, 15, 1), (10, 20, 1)]


WINDOWS = st.tuples(st.integers(-20, 20), st.integers(0, 15)).map(lambda t: Window(t[0], t[0] + t[1]))


@settings(max_examples=200, deadline=None)
@given(windows=st.lists(WINDOWS, max_size=12, unique=True), window=WINDOWS, semantics=st.sampled_from(["flink", "beam"]))
def test_the_windows_a_session_merges_with_are_those_the_pairwise_rule_names_in_order(windows, window, semantics):
    """WindowSpec.merging (one pass, comparisons inline) is merges (Flink: intersects, touching
    included; Beam: overlaps) asked of each open window in turn: the same windows, in their order.
    Windows here may be empty or touch at either side, the cases where the two rules differ."""
    spec = WindowSpec(Session(gap=10), aggregate=SUM, semantics=semantics)
    assert spec.merging(windows, window) == [w for w in windows if spec.merges(w, window)]


def test_session_windows_merge_when_a_bridge_arrives():
    spec = WindowSpec(Session(gap=10), aggregate=SUM)
    apart = TestStream().add_elements(("u", 0, 1), ("u", 30, 2)).advance_watermark_to_infinity().run(spec)
    assert [(p.window.start, p.window.end, p.value) for p in apart.panes] == [(0, 10, 1), (30, 40, 2)]
    # [0, 10) and [20, 30) are apart; an element at 10 opens [10, 20), which touches both.
    bridged = (TestStream().add_elements(("u", 0, 1), ("u", 20, 2), ("u", 10, 4), ("v", 1, 8))
               .advance_watermark_to_infinity().run(spec))
    assert [(p.key, p.window.start, p.window.end, p.value) for p in bridged.panes] == [
        ("v", 1, 11, 8), ("u", 0, 30, 7)]
    near_miss = (TestStream().add_elements(("u", 0, 1), ("u", 30, 2), ("u", 15, 4))
                 .advance_watermark_to_infinity().run(spec))
    assert [(p.window.start, p.window.end) for p in near_miss.panes] == [(0, 10), (15, 25), (30, 40)]


def test_a_late_element_that_extends_an_open_session_is_kept():
    spec = WindowSpec(Session(gap=10), allowed_lateness=100)
    r = (TestStream().add_elements(("u", 0, 1)).advance_watermark_to(9).add_elements(("u", 5, 2))
         .advance_watermark_to_infinity().run(spec))
    assert [(p.window.start, p.window.end, p.timing.value, p.value) for p in r.panes] == [
        (0, 10, "ON_TIME", 1), (0, 15, "ON_TIME", 2)]


def test_a_window_that_opens_after_its_end_has_only_late_panes():
    r = (TestStream().advance_watermark_to(10_500).add_elements(("k", 100, 3), ("k", 200, 4))
         .advance_watermark_to_infinity().run(WindowSpec(S10, allowed_lateness=5_000, accumulation="accumulating")))
    assert [(p.timing.value, p.value) for p in r.panes] == [("LATE", 3), ("LATE", 7)]


@pytest.mark.parametrize("aggregate, expected", [(COUNT, 3), (SUM, 9), (MIN, 1), (MAX, 5),
                                                  (reduce(lambda a, b: a * b, "product"), 15)])
def test_aggregations(aggregate, expected):
    r = (TestStream().add_elements(("k", 1, 3), ("k", 2, 1), ("k", 3, 5)).advance_watermark_to_infinity()
         .run(WindowSpec(S10, aggregate=aggregate)))
    assert [p.value for p in r.panes] == [expected]


def test_teststream_refuses_a_watermark_that_does_not_move_forward():
    stream = TestStream().advance_watermark_to(100)
    for bad in (100, 99):
        with pytest.raises(ScenarioError, match=r"advance_watermark_to: got \d+; accepts a watermark after the current one \(100\)"):
            stream.advance_watermark_to(bad)
    with pytest.raises(ScenarioError, match="advance_processing_time"):
        TestStream().advance_processing_time(0)
    with pytest.raises(ScenarioError, match=r"add_elements\[0\]"):
        TestStream().add_elements(("k", "soon", 1))


def test_operator_watermark_never_moves_backwards():
    op = WindowOperator(WindowSpec(S10))
    op.advance_watermark(50)
    op.advance_watermark(20)
    assert op.watermark == 50


def test_snapshot_and_restore_give_the_same_future():
    spec = WindowSpec(S10, allowed_lateness=5_000, accumulation="accumulating")
    op = WindowOperator(spec)
    for t in (1, 2, 3):
        op.process("k", t, t)
    op.advance_watermark(9_999)
    snap = op.snapshot()
    op.process("k", 4, 4)
    op.advance_watermark(MAX_TIME)
    after = [(p.timing, p.value) for p in op.panes]
    again = WindowOperator(spec)
    again.restore(snap)
    again.process("k", 4, 4)
    again.advance_watermark(MAX_TIME)
    assert [(p.timing, p.value) for p in again.panes] == after[1:]


@settings(max_examples=60, deadline=None)
@given(elements=st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 40_000), st.integers(-5, 5)), max_size=40),
       cut=st.integers(0, 40), aggregate=st.sampled_from(["sum", "collect", "min", "user"]),
       session=st.booleans())
def test_a_snapshot_is_untouched_by_what_the_operator_does_after_it(elements, cut, aggregate, session):
    """Snapshots share immutable values and copy the rest (weir.sim.stream.windows._copy): a snapshot
    restored twice gives the same future both times, and the same as the run that never stopped,
    with the built-in aggregates (shared accumulators) and a user's own (deep-copied)."""
    from weir.sim.stream.windowing import Aggregate
    # a user's aggregate that appends in place: only a deep copy keeps its snapshot intact
    appending = Aggregate("appending", None, lambda acc, v: [v] if acc is None else (acc.append(v) or acc),
                          lambda a, b: (a or []) + (b or []))
    kinds = {"sum": SUM, "min": MIN, "user": appending}
    chosen = kinds.get(aggregate, aggregate)
    spec = WindowSpec(Session(5_000) if session else S10, allowed_lateness=8_000, aggregate=chosen,
                      accumulation="accumulating")
    head, tail = elements[:cut], elements[cut:]

    def feed(op, part):
        for i, (key, t, v) in enumerate(part):
            op.process(key, t, v)
            if i % 5 == 4:
                op.advance_watermark(t - 3_000)

    def future(op):
        feed(op, tail)
        op.advance_watermark(MAX_TIME)
        freeze = lambda v: tuple(v) if isinstance(v, list) else v  # noqa: E731 (a pane may hold the accumulator itself)
        return [(p.key, p.window, p.timing, freeze(p.value)) for p in op.panes]

    whole = WindowOperator(spec)
    feed(whole, head)
    done = len(whole.panes)
    snap = whole.snapshot()
    expected = future(whole)[done:]
    for _ in range(2):
        again = WindowOperator(spec)
        again.restore(snap)
        assert future(again) == expected


def test_spec_validation_is_one_line():
    with pytest.raises(ScenarioError, match="window.semantics: got 'spark'"):
        WindowSpec(S10, semantics="spark")
    with pytest.raises(ScenarioError, match="windows.size"):
        Tumbling(0)
    with pytest.raises(ScenarioError, match="window.aggregate: got 'avg'"):
        WindowSpec(S10, aggregate="avg")


steps = st.lists(st.one_of(
    st.tuples(st.just("e"), st.integers(0, 3), st.integers(0, 60_000), st.integers(-5, 5)),
    st.tuples(st.just("w"), st.integers(0, 70_000)),
    st.tuples(st.just("p"), st.integers(1, 3_000)),
), max_size=60)


@settings(max_examples=200)
@given(steps=steps, lateness=st.integers(0, 20_000), rule=st.sampled_from(["flink", "beam"]),
       trigger=st.builds(Trigger, early_every_n=st.none() | st.integers(1, 4), early_after=st.none() | st.integers(1, 2_000),
                         late_every_n=st.integers(1, 3)),
       side_output=st.booleans())
def test_nothing_is_silently_lost(steps, lateness, rule, trigger, side_output):
    """Every element ends in exactly one discarding pane, the late side output, or the drop counter."""
    op = WindowOperator(WindowSpec(S10, aggregate=SUM, trigger=trigger, allowed_lateness=lateness,
                                   semantics=rule, side_output_late=side_output))
    total = 0
    for step in steps:
        if step[0] == "e":
            op.process(step[1], step[2], step[3])
            total += step[3]
        elif step[0] == "w":
            op.advance_watermark(step[1])
        else:
            op.advance_processing_time(op.processing_time + step[1])
    op.advance_watermark(MAX_TIME)
    assert op.open_windows() == 0
    assert sum(p.count for p in op.panes) + len(op.late) + op.dropped == op.elements
    if side_output:
        assert sum(p.value for p in op.panes) + sum(e.value for e in op.late) == total
    for p in op.panes:
        # an EARLY pane fires before the watermark that fires ON_TIME: max_ts under Flink, end under
        # Beam (AfterWatermark needs W past max_ts), so under Beam a pane at W = max_ts is still EARLY
        assert p.timing.value != "EARLY" or p.watermark < op.spec.fire_time(p.window), (rule, p)
    last = {}
    for p in op.panes:
        assert p.index == last.get((p.key, p.window), -1) + 1
        last[(p.key, p.window)] = p.index


batches = st.lists(st.one_of(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 60_000), st.integers(-5, 5)), min_size=1, max_size=12),
    st.integers(0, 70_000),  # a watermark between batches
), max_size=15)


@settings(max_examples=200)
@given(steps=batches, windows=st.sampled_from([Tumbling(10_000), Sliding(10_000, 2_500), Sliding(7_000, 3_000)]),
       aggregate=st.sampled_from([SUM, COUNT, MIN, MAX]), accumulation=st.sampled_from(["discarding", "accumulating"]),
       lateness=st.integers(0, 20_000), early_after=st.none() | st.integers(1, 500),
       restore_at=st.none() | st.integers(0, 15))
def test_process_batch_equals_one_element_at_a_time(steps, windows, aggregate, accumulation, lateness, early_after,
                                                     restore_at):
    """Also across a restore (the watermark starts again from MIN_TIME, as after a failover)."""
    import numpy as np

    from weir.sim.stream.windows import MIN_TIME

    spec = WindowSpec(windows, aggregate=aggregate, accumulation=accumulation, allowed_lateness=lateness,
                      trigger=Trigger(early_after=early_after))
    one, many = WindowOperator(spec), WindowOperator(spec)
    for i, step in enumerate(steps):
        if i == restore_at:
            restored = []
            for op in (one, many):
                again = WindowOperator(spec)
                again.restore(op.snapshot())
                again.watermark = MIN_TIME
                again.panes, again.late = op.panes, op.late  # outputs so far stay emitted
                restored.append(again)
            one, many = restored
        for op in (one, many):
            op.advance_processing_time(100 * (i + 1))
        if isinstance(step, int):
            one.advance_watermark(step)
            many.advance_watermark(step)
            continue
        for n, (k, t, v) in enumerate(step):
            one.process(k, t, v, ref=(i, n))
        many.process_batch(np.array([k for k, _, _ in step]), np.array([t for _, t, _ in step]),
                           np.array([v for _, _, v in step]), [(i, n) for n in range(len(step))])
    for op in (one, many):
        op.advance_watermark(MAX_TIME)

    def norm(op):
        return sorted((p.key, p.window, p.index, p.timing.value, p.is_last, p.value, p.count) for p in op.panes)

    assert norm(one) == norm(many)
    assert sorted(one.late, key=lambda e: e.ref) == sorted(many.late, key=lambda e: e.ref)
    assert (one.dropped, one.elements) == (many.dropped, many.elements)


@settings(max_examples=80, deadline=None)
@given(keys=st.lists(st.integers(-3, 1_000_000), min_size=1, max_size=60), data=st.data(),
       name=st.sampled_from(["sum", "count", "min", "max"]), size=st.sampled_from([1, 7, 1_000]))
def test_the_batch_windows_count_into_cells_or_sort_alike(keys, data, name, size):
    """weir.analysis.windowed._tumbling_batch against a plain loop: the dense path (few (key, window)
    cells: bincount and ufunc.at, no sort; keys close together) and the sorted one (keys up to a
    million apart) give the batch job's windows, in (key, start) order."""
    import numpy as np

    from weir.analysis import windowed
    n = len(keys)
    times = np.array(data.draw(st.lists(st.integers(-5_000, 50_000), min_size=n, max_size=n)), dtype=np.int64)
    values = np.array(data.draw(st.lists(st.integers(-10**12, 10**12), min_size=n, max_size=n)), dtype=np.int64)
    keys = np.array(keys, dtype=np.int64)
    # dense or sorted, by the key range; the dense path a chunk of records at a time, of any integer dtype
    chunk, narrow = data.draw(st.sampled_from([1, 3, 65_536])), data.draw(st.booleans())
    found = windowed._tumbling_batch(Tumbling(size), name, keys.astype(np.int32) if narrow else keys, times, values,
                                     chunk=chunk)
    order = np.lexsort((times - times % size, keys))
    expected = {}
    for i in order.tolist():
        start = int(times[i] - times[i] % size)
        w = (int(keys[i]), start, start + size)
        acc, count = expected.get(w, (None, 0))
        v = int(values[i])
        acc = {"sum": (acc or 0) + v, "count": count + 1, "min": v if acc is None else min(acc, v),
               "max": v if acc is None else max(acc, v)}[name]
        expected[w] = (acc, count + 1)
    assert list(found.items()) == list(expected.items())


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0, 10, 20]), st.integers(-50, 50),
                               st.integers(0, 3), st.integers(0, 5), st.integers(0, 2)), max_size=40),
       name=st.sampled_from(["sum", "count", "min", "max"]), accumulating=st.booleans())
def test_the_job_windows_add_up_alike_vectorised_and_pane_by_pane(rows, name, accumulating):
    """weir.analysis.windowed: the vectorised job_windows of a built-in numeric aggregate against the
    pane-by-pane loop, with ties in written_at, several subtasks and empty panes."""
    import numpy as np

    from weir.analysis import windowed
    from weir.sim.stream.windowing import AGGREGATES
    columns = ("key", "window_start", "value", "count", "written_at", "subtask")
    panes = {c: np.array([r[i] for r in rows], dtype=np.int64) for i, c in enumerate(columns)}
    panes["window_end"] = panes["window_start"] + 10
    looped = windowed._looped_job_windows(panes, AGGREGATES[name], accumulating)
    assert windowed._numeric_job_windows(panes, name, accumulating) == looped


def _table(windows: dict):
    from weir.analysis.windowed import WindowTable
    rows = sorted(windows.items())
    cols = [np.array([w[i] for w, _ in rows], dtype=np.int64) for i in range(3)]
    return WindowTable(*cols, np.array([v for _, (v, _c) in rows], dtype=np.int64),
                       np.array([c for _, (_v, c) in rows], dtype=np.int64))


_WINDOWS = st.dictionaries(st.tuples(st.integers(0, 3), st.integers(-3, 3), st.integers(0, 4)),
                           st.tuples(st.integers(-5, 5), st.integers(0, 3)), max_size=30)


@given(_WINDOWS, _WINDOWS)
def test_a_window_table_reads_as_its_dict_and_finds_what_the_dict_holds(mine, other):
    """weir.analysis.windowed.WindowTable: the checkers' columns for (key, start, end) -> (value, count).
    It equals, iterates and looks up as the dict it stands for; find() gives each of another table's
    windows its row here, or -1, as `in` on the dict would."""
    table, others = _table(mine), _table(other)
    assert table == dict(sorted(mine.items())) and list(table) == sorted(mine) and len(table) == len(mine)
    rows = table.find(others)
    windows = list(zip(table.key.tolist(), table.start.tolist(), table.end.tolist()))
    for w, row in zip(sorted(other), rows.tolist()):
        assert (row >= 0) == (w in mine), (w, row)
        if row >= 0:
            assert windows[row] == w and table[w] == mine[w]
    assert table.find(others) is rows  # the checkers ask twice: answered once
    assert table.windows(np.ones(len(table), dtype=bool)) == sorted(mine)


def _inside(op: WindowOperator) -> tuple:
    """Everything the window objects and timers of `op` hold, with the columnar store made into them."""
    if op._dense is not None:
        op._leave_dense()
    fields = ("epoch", "acc_all", "n_all", "acc_new", "n_new", "panes", "on_time_fired", "late_pending",
              "early_timer_set", "refire_timer_set", "closed")
    windows = sorted((key, w, tuple(getattr(s, f) for f in fields))
                     for key, ws in op._state.items() for w, s in ws.items())
    timers = sorted((t, *entry) for t, bucket in op._event_timers._at.items() for entry in bucket)
    return windows, timers, op._seq, op.changed_windows()


_dense_batch = st.lists(st.tuples(st.sampled_from([0, 1, 2, 3, 7, 20_000, -1]) | st.integers(0, 3),
                                  st.integers(0, 60_000), st.integers(-5, 5)), min_size=0, max_size=12)
_dense_steps = st.lists(st.one_of(
    # a batch: keys mostly in the columnar store's range; 20_000 and -1 are not, and make it give way
    _dense_batch,
    # batches one after another, nothing read between them (a tumbling store adds them in one step)
    st.tuples(st.just("batches"), st.lists(_dense_batch, min_size=2, max_size=4)),
    st.integers(0, 70_000),  # a watermark
    st.just("snapshot"),  # a checkpoint: the change count starts again
    st.just("restore"),  # a failover to the last snapshot (the watermark starts again from MIN_TIME)
    st.tuples(st.integers(0, 3), st.integers(0, 60_000), st.integers(-5, 5)),  # one element, `process`
    st.tuples(st.just("bundle"), st.lists(st.tuples(st.sampled_from([0, 1, 2, 3, 20_000]), st.integers(0, 60_000),
                                                   st.integers(-5, 5)), max_size=5)),  # `process_bundle`
), max_size=20)


def _batch(op: WindowOperator, batch: list, i: int) -> None:
    op.process_batch(np.array([k for k, _, _ in batch], dtype=np.int64), np.array([t for _, t, _ in batch], dtype=np.int64),
                     np.array([v for _, _, v in batch], dtype=np.int64), [(i, n) for n in range(len(batch))])


def _step(op: WindowOperator, step, i: int, snaps: list, j: int) -> WindowOperator:
    """One of _dense_steps for operator `op` (the j-th, whose last snapshot is snaps[j]) at step i:
    the operator to go on with (after a restore, another one, with the outputs so far)."""
    from weir.sim.stream.windows import MIN_TIME

    op.advance_processing_time(100 * (i + 1))
    if isinstance(step, list):
        _batch(op, step, i)
    elif isinstance(step, tuple) and step[0] == "batches":
        for batch in step[1]:
            _batch(op, batch, i)
    elif isinstance(step, int):
        op.advance_watermark(step)
    elif step == "snapshot":
        op.clear_changed()
        snaps[j] = op.snapshot()
    elif step == "restore" and snaps[j] is not None:
        again = WindowOperator(op.spec)
        again.restore(snaps[j])
        again.watermark = MIN_TIME
        again.panes, again.late, again.processing_time = op.panes, op.late, op.processing_time
        return again
    elif isinstance(step, tuple) and step[0] == "bundle":
        op.process_bundle(step[1], [(i, n) for n in range(len(step[1]))])
    elif isinstance(step, tuple):
        op.process(*step, ref=(i, 0))
    return op


@settings(max_examples=300, deadline=None)
@given(steps=_dense_steps, windows=st.sampled_from([Tumbling(10_000), Tumbling(10_000, 3_000), Sliding(10_000, 2_500),
                                                    Sliding(7_000, 3_000)]),
       aggregate=st.sampled_from([SUM, COUNT, MIN, MAX]), accumulation=st.sampled_from(["discarding", "accumulating"]),
       lateness=st.sampled_from([0, 1, 5_000, 20_000]), semantics=st.sampled_from(["flink", "beam"]))
def test_the_columnar_store_does_what_window_objects_do(steps, windows, aggregate, accumulation, lateness, semantics):
    """weir.sim.stream.windows._Dense holds the common case's windows as columns. An operator with it
    and one made to use window objects from the start get the same steps; after each, their panes
    (in order, every field), late elements, counters and change counts agree, and at the end so do
    the window objects, timers and sequence numbers the store turns into."""
    spec = WindowSpec(windows, aggregate=aggregate, accumulation=accumulation, allowed_lateness=lateness,
                      semantics=semantics)
    dense, plain = WindowOperator(spec), WindowOperator(spec)
    assert dense._dense is not None
    plain._dense = None
    ops, snaps = [dense, plain], [None, None]
    for i, step in enumerate(steps):
        for j in range(2):
            ops[j] = _step(ops[j], step, i, snaps, j)
        dense, plain = ops
        assert dense.panes == plain.panes, (i, step)
        assert dense.late == plain.late, (i, step)
        assert (dense.dropped, dense.elements, dense.open_windows(), dense.changed_windows()) == \
            (plain.dropped, plain.elements, plain.open_windows(), plain.changed_windows()), (i, step)
    assert _inside(dense) == _inside(plain)
    for op in ops:
        op.advance_watermark(MAX_TIME)
    assert dense.panes == plain.panes


def test_the_columnar_store_holds_a_batch_of_many_keys_and_windows_in_columns():
    """The common case stays columnar: batches over two spans of many keys fire in the order the
    windows were made, by key then start, as window objects would (the property test above checks
    it step by step)."""
    spec = WindowSpec(Tumbling(10), aggregate=SUM)
    op = WindowOperator(spec)
    keys = np.array([5, 3, 5, 9, 3, 0], dtype=np.int64)
    op.process_batch(keys, np.array([12, 3, 1, 18, 14, 7], dtype=np.int64), np.array([1, 2, 3, 4, 5, 6], dtype=np.int64))
    assert op._dense is not None and op.open_windows() == 6 and op.changed_windows() == 6
    op.advance_watermark(19)
    assert op._dense is not None
    assert [(p.key, p.start, p.value) for p in op.panes] == [(0, 0, 6), (3, 0, 2), (5, 0, 3), (3, 10, 5), (5, 10, 1),
                                                             (9, 10, 4)]
    snap = op.snapshot()
    again = WindowOperator(spec)
    again.restore(snap)  # no span waits for its cleanup (no allowed lateness): it stays columnar
    assert again._dense is not None and again.open_windows() == 0
    op.process(1, 25, 1)  # one element at a time: in the columns too
    assert op._dense is not None and op.open_windows() == 1
    op.process("k", 26, 1)  # a key that is not a whole number: window objects from here on
    assert op._dense is None and op.open_windows() == 2
    lateness = WindowOperator(WindowSpec(Tumbling(10), aggregate=SUM, allowed_lateness=5))
    lateness.process_batch(keys, np.array([12, 3, 1, 18, 14, 7], dtype=np.int64), np.ones(6, dtype=np.int64))
    lateness.advance_watermark(9)  # the span [0, 10) fired and waits for its cleanup at 14
    again = WindowOperator(lateness.spec)
    again.restore(lateness.snapshot())
    assert again._dense is None and again.open_windows() == 6  # it fires again, LATE: window objects do that


def test_the_columnar_stores_spans_are_rows_of_its_blocks_reused_once_cleaned_up_and_a_snapshot_keeps_only_live_ones():
    """weir.sim.stream.windows._Dense keeps every span's columns as one row (slot) of one block per
    field: a span's columns are views of its row, a span cleaned up frees its row for the next, and
    a snapshot copies the live spans' rows only (renumbered), not the room the blocks keep."""
    spec = WindowSpec(Tumbling(10), aggregate=SUM)
    op = WindowOperator(spec)
    op.process_batch(np.array([1, 2, 1], dtype=np.int64), np.array([1, 11, 21], dtype=np.int64),
                     np.array([5, 6, 7], dtype=np.int64))  # three spans: [0, 10), [10, 20), [20, 30)
    assert op.open_windows() == 3  # (a read: the batch taken in is added now)
    store = op._dense
    assert sorted(store.spans) == [0, 10, 20]
    for span in store.spans.values():
        assert all(np.shares_memory(getattr(span, name), store.blocks[name]) for name in span.COLUMNS)
    assert int(store.spans[0].acc_all[1]) == 5 and int(store.blocks["acc_all"][store.spans[20].slot, 1]) == 7
    op.advance_watermark(19)  # [0, 10) and [10, 20) fire and are cleaned up (no allowed lateness)
    assert sorted(store.spans) == [20] and len(store.free) == len(store.blocks["epoch"]) - 1
    freed = set(store.free)
    op.process_batch(np.array([3, 3], dtype=np.int64), np.array([35, 36], dtype=np.int64), np.array([4, 5], dtype=np.int64))
    assert op.open_windows() == 2
    assert store.spans[30].slot in freed and int(store.spans[30].acc_all[3]) == 9  # a freed row, emptied first
    assert int(store.spans[30].acc_all[1]) == 0 and int(store.spans[30].epoch[1]) == 0
    snap = op.snapshot()
    twin = snap["_dense"]
    assert len(twin.blocks["epoch"]) == 2 and twin.free == [] and sorted(s.slot for s in twin.spans.values()) == [0, 1]
    again = WindowOperator(spec)
    again.restore(snap)
    again.advance_watermark(100)
    op.advance_watermark(100)
    assert [(p.key, p.start, p.value) for p in again.panes] == [(p.key, p.start, p.value) for p in op.panes][-2:] \
        == [(1, 20, 7), (3, 30, 9)]


def test_sums_too_large_for_the_columns_go_to_window_objects():
    """The columns sum in int64, window objects in Python ints: values of 2**31 or more give way to
    the objects, so a window summing past 2**63 (here over two batches) is exact, as before."""
    op = WindowOperator(WindowSpec(Tumbling(10), aggregate=SUM))
    for t in (1, 2):
        op.process_batch(np.array([0, 0], dtype=np.int64), np.array([t, t], dtype=np.int64),
                         np.array([2**61, 2**61], dtype=np.int64))
    assert op.open_windows() == 1 and op._dense is None  # (taken in, then added when the count is asked)
    op.advance_watermark(MAX_TIME)
    assert [p.value for p in op.panes] == [2**63]


#: steps that keep to the columnar store's case (its keys, no single elements) for longer
_columnar_steps = st.lists(st.one_of(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 60_000), st.integers(-5, 5)), min_size=1, max_size=12),
    st.integers(0, 70_000), st.just("snapshot"), st.just("restore"),
), min_size=1, max_size=19)


@settings(max_examples=150, deadline=None)
@given(steps=(_dense_steps | _columnar_steps).map(lambda steps: steps[:19] + [MAX_TIME]),
       windows=st.sampled_from([Tumbling(10_000), Sliding(10_000, 2_500)]),
       aggregate=st.sampled_from([SUM, COUNT, MAX]), lateness=st.sampled_from([0, 5_000]), staged=st.booleans(),
       peeks=st.lists(st.booleans(), min_size=20, max_size=20))
def test_window_results_write_the_columnar_stores_blocks_as_the_panes_they_hold(steps, windows, aggregate, lateness,
                                                                                staged, peeks):
    """A windowed step's panes reach the sink as a Panes sequence, whose blocks (the columnar store's
    firings) WindowResults.write writes as columns. Taken after a step (or read as a list, and taken
    later: then objects come before blocks), they read as the tuple of panes window objects fire;
    and two tables, one written those sequences and one the same panes as Pane objects, hold the
    same rows: upserted (each step's panes written twice, the second time later), or staged under
    transactions and committed."""
    from weir.sim.patterns.sinks import WindowResults
    from weir.sim.stream.windows import Panes

    spec = WindowSpec(windows, aggregate=aggregate, allowed_lateness=lateness)
    ops, snaps = [WindowOperator(spec), WindowOperator(spec)], [None, None]
    ops[1]._dense = None
    columns, objects = WindowResults(), WindowResults()
    try:
        for i, (step, peek) in enumerate(zip(steps, peeks)):
            for j in range(2):
                ops[j] = _step(ops[j], step, i, snaps, j)
            if peek and i < len(steps) - 1:  # read one by one: the blocks so far become objects, ahead of later blocks
                assert isinstance(ops[0].panes, list)
                continue
            got, want = ops[0].take_panes(), ops[1].take_panes()
            assert isinstance(got, Panes) and not want.blocks
            assert got == tuple(want) and list(got) == list(want) and len(got) == len(want), (i, step)
            assert bool(got) == bool(want) and (not got or got[-1] == tuple(want)[-1]), (i, step)
            assert ops[0].panes == [] and ops[1].panes == []
            for again in (0, 1000):
                for table, panes in ((columns, got), (objects, tuple(want))):
                    txn = 2 * i + again // 1000 + 1 if staged else None
                    if staged:
                        table.begin_transaction(0, txn)
                    table.write(panes, [], written_at=i + again, txn=txn, subtask=i % 2)
                    if staged:
                        table.commit(txn)
        mine, theirs = columns.contents()[0], objects.contents()[0]
        assert mine.keys() == theirs.keys()
        for name in mine:
            assert mine[name].tolist() == theirs[name].tolist(), name
    finally:
        columns.close()
        objects.close()


def test_panes_taken_read_in_the_order_they_fired_objects_then_blocks():
    """Reading `panes` one by one makes the blocks so far into objects; blocks fired after them
    come after them, in a Panes sequence and in the table it is written to."""
    from weir.sim.patterns.sinks import WindowResults

    op = WindowOperator(WindowSpec(Tumbling(10), aggregate=SUM))
    op.process_batch(np.array([4, 2, 4]), np.array([1, 12, 25]), np.array([5, 6, 7]))
    op.advance_watermark(9)
    assert [(p.key, p.start) for p in op.panes] == [(4, 0)]  # read: an object now
    op.advance_watermark(29)
    taken = op.take_panes()
    assert (len(taken.objects), len(taken.blocks)) == (1, 2)
    assert [(p.key, p.start, p.value) for p in taken] == [(4, 0, 5), (2, 10, 6), (4, 20, 7)]
    assert taken[1].start == 10 and taken == tuple(taken) and taken != tuple(taken)[::-1]
    results = WindowResults()
    try:
        results.write(taken, [], written_at=30)
        panes = results.contents()[0]
    finally:
        results.close()
    assert list(zip(panes["key"].tolist(), panes["window_start"].tolist(), panes["value"].tolist())) == \
        [(2, 10, 6), (4, 0, 5), (4, 20, 7)]


def test_a_tumbling_store_adds_batches_when_something_reads_it_as_they_would_have_been_added():
    """Batches of a tumbling-window operator wait (_Dense.defer, as Flink's mini-batch aggregation
    buffers input) until a watermark, a snapshot or a count reads the store; then they are added
    in one step, new windows numbered by batch, then key, then start, as batch by batch. A batch
    that may hold a late element is not taken in: the ones waiting are added first."""
    spec = WindowSpec(Tumbling(10), aggregate=SUM)
    waits, plain = WindowOperator(spec), WindowOperator(spec)
    plain._dense = None
    batches = [([7, 2, 7], [1, 12, 3], [1, 2, 3]), ([2, 5], [4, 25], [4, 5]), ([9, 2], [11, 14], [6, 7])]
    for keys, times, values in batches:
        for op in (waits, plain):
            op.process_batch(np.array(keys), np.array(times), np.array(values))
    assert len(waits._dense.pending) == 3 and waits.elements == 7
    assert waits.open_windows() == plain.open_windows() == 5 and not waits._dense.pending
    for op in (waits, plain):
        op.advance_watermark(19)
    assert [(p.key, p.start, p.value) for p in waits.panes] == [(p.key, p.start, p.value) for p in plain.panes] == [
        (7, 0, 4), (2, 0, 4), (2, 10, 9), (9, 10, 6)]  # by window, each window's keys as made
    waits.process_batch(np.array([1, 1]), np.array([30, 31]), np.array([1, 1]))
    waits.process_batch(np.array([1, 3]), np.array([5, 32]), np.array([1, 1]))  # 5 is late: added at once
    assert not waits._dense.pending and waits.open_windows() == 3
    assert [(e.key, e.timestamp) for e in waits.late] == [(1, 5)]


@settings(max_examples=120, deadline=None)
@given(keys=st.lists(st.one_of(st.integers(-3, 5), st.integers(-3, 1_000_000)), min_size=1, max_size=60),
       data=st.data(), name=st.sampled_from(["sum", "count", "min", "max"]), size=st.sampled_from([1, 7, 10, 1_000]),
       slide=st.sampled_from([1, 3, 5, 7, 10, 400, 1_000]), offset=st.integers(0, 2_000))
def test_the_sliding_batch_windows_equal_the_record_by_record_ones(keys, data, name, size, slide, offset):
    """weir.analysis.windowed._sliding_batch against Sliding.assign record by record (what the check
    did before, some 30us a record for ten windows each): the dense path (keys close together),
    the sorted one (keys up to a million apart) and the one-by-one fallback (None past
    SLIDING_ROWS) give the batch job's windows, in (key, start) order. Slides above the size too
    (windows with gaps between them: some records are in none)."""
    import numpy as np

    from weir.analysis import windowed
    from weir.sim.stream.windowing import AGGREGATES, Sliding
    n = len(keys)
    times = np.array(data.draw(st.lists(st.integers(-5_000, 50_000), min_size=n, max_size=n)), dtype=np.int64)
    values = np.array(data.draw(st.lists(st.integers(-10**12, 10**12), min_size=n, max_size=n)), dtype=np.int64)
    keys = np.array(keys, dtype=np.int64)
    windows, agg = Sliding(size, slide, offset % slide), AGGREGATES[name]
    slow: dict = {}
    for k, t, v in zip(keys.tolist(), times.tolist(), values.tolist()):
        for w in windows.assign(t):
            acc, count = slow.get((k, w.start, w.end), (agg.empty, 0))
            slow[(k, w.start, w.end)] = (agg.add(acc, v), count + 1)
    expected = sorted(slow.items())
    chunk = data.draw(st.sampled_from([1, 3, 65_536]))
    found = windowed._sliding_batch(windows, name, keys, times, values, chunk=chunk)
    assert list(found.items()) == expected, f"keys {keys}, times {times}, chunk {chunk}"


def test_the_sliding_batch_gives_way_to_the_loop_past_its_rows(monkeypatch):
    """Sparse cells and more rows than SLIDING_ROWS: None, and batch_windows goes record by record."""
    import numpy as np

    from weir.analysis import windowed
    from weir.sim.stream.windowing import Sliding
    keys, times = np.array([0, 10**6], dtype=np.int64), np.array([0, 40_000], dtype=np.int64)
    monkeypatch.setattr(windowed, "SLIDING_ROWS", 3)
    assert windowed._sliding_batch(Sliding(4, 1), "sum", keys, times, keys) is None
    monkeypatch.setattr(windowed, "SLIDING_ROWS", 8)
    assert len(windowed._sliding_batch(Sliding(4, 1), "sum", keys, times, keys)) == 8
    # dense keys, but more cells than SLIDING_CELLS: the sorting path, the same windows
    keys, times = np.array([0, 1], dtype=np.int64), np.array([0, 100], dtype=np.int64)  # 2 x 104 cells
    dense = windowed._sliding_batch(Sliding(4, 1), "sum", keys, times, keys)
    assert len(dense) == 8
    monkeypatch.setattr(windowed, "SLIDING_CELLS", 10)
    assert list(windowed._sliding_batch(Sliding(4, 1), "sum", keys, times, keys).items()) == list(dense.items())


@settings(max_examples=150, deadline=None)
@given(records=st.lists(st.tuples(st.one_of(st.integers(0, 3), st.integers(-3, 10**6)), st.integers(-5_000, 5_000),
                                  st.integers(-10**12, 10**12)), max_size=80),
       name=st.sampled_from(["sum", "count", "min", "max"]), gap=st.integers(1, 700), beam=st.booleans())
def test_the_session_batch_windows_equal_the_record_by_record_ones(records, name, gap, beam):
    """weir.analysis.windowed._session_batch against the loop batch_windows ran for sessions (and
    still runs for other aggregates): per key, by time, a record joins the session while it comes
    before the session's end (Beam: the windows overlap) or at it (Flink: they touch); equal times,
    gaps of exactly `gap`, one record alone."""
    import numpy as np

    from weir.analysis import windowed
    from weir.sim.stream.windowing import AGGREGATES
    slow = windowed.session_windows(gap, beam, AGGREGATES[name], *([r[i] for r in records] for i in range(3)))
    keys, times, values = (np.array([r[i] for r in records], dtype=np.int64) for i in range(3))
    found = windowed._session_batch(gap, beam, name, keys, times, values)
    assert list(found.items()) == sorted(slow.items()), f"records {records}, gap {gap}, beam {beam}"
