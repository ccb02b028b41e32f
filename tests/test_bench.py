"""bench/beam_compare.py (issue 17, item 6): without apache-beam it says how to get it and exits 0;
its reading of weir's panes and its comparison are what the Beam run is judged by, so they are
pinned here without Beam (the comparison itself needs apache-beam, never a dependency)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from weir.analysis.windowed import batch_windows

BENCH = Path(__file__).resolve().parent.parent / "bench"


def load_bench(name: str, script: str | None = None):
    """bench/`script` (name.py unless given) as module `name`, with bench/ on sys.path while it
    loads (the scripts import each other); sys.path is as it was after (some scripts add to it)."""
    path = list(sys.path)
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / (script or f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path[:] = path


@pytest.fixture(scope="module")
def beam_compare():
    return load_bench("beam_compare")


def test_without_beam_it_says_how_to_get_it_and_exits_0(beam_compare, monkeypatch, capsys):
    monkeypatch.setattr(beam_compare, "_beam", lambda: None)
    assert beam_compare.main([]) == 0
    assert "apache-beam is not installed" in capsys.readouterr().out


def test_weir_side_is_every_windows_final_sum_including_the_last(beam_compare, monkeypatch):
    monkeypatch.setattr(beam_compare, "REPEATS", 1)
    seconds, sums, run = beam_compare.weir_windows(3_000)
    reference = {window: value for window, (value, _count) in batch_windows(run).items()}
    assert seconds > 0
    assert sums == reference, "weir's final panes differ from the batch reference on the bench's windowed run"
    # 3,000 records, 1,000 per millisecond: event times 0, 1000, 2000 us; the last window [2000, 4000)
    # closes only at the end-of-input watermark
    assert max(start for _key, start, _end in sums) == 2_000
    keys, times, values = beam_compare.records_of(run)
    assert (len(keys), sorted(set(times))) == (3_000, [0, 1_000, 2_000])


def test_first_difference_names_the_first_window_that_differs(beam_compare):
    ours = {(1, 0, 2000): 5, (2, 0, 2000): 7}
    assert beam_compare.first_difference(ours, dict(ours)) is None
    assert beam_compare.first_difference(ours, {(1, 0, 2000): 5, (2, 0, 2000): 8}) == \
        "window (key, start us, end us) (2, 0, 2000): weir 7, Beam 8"
    assert beam_compare.first_difference(ours, {(1, 0, 2000): 5}) == \
        "window (key, start us, end us) (2, 0, 2000): weir 7, Beam None"


def test_instructions_without_valgrind_says_so(monkeypatch, capsys):
    module = load_bench("instructions")
    monkeypatch.setattr(module.shutil, "which", lambda name: None)
    assert module.main([]) == 0
    assert "valgrind is not installed" in capsys.readouterr().out


def test_the_sink_alone_writes_the_runs_own_table_again_as_the_run_wrote_it():
    """bench/run.py's bound on a SQL sink's run: the run's rows through a fresh upsert sink, one
    write per written_at and partition; it asserts the table comes out as the run's own."""
    module = load_bench("bench_run", "run.py")
    from weir.sim.scenario.run import execute
    run = execute(module.hour(5, "default"))
    seconds, writes = module.sink_alone(run)
    groups = {(t, p) for t, p in zip(run.sink["written_at"].tolist(), run.sink["partition"].tolist())}
    assert seconds > 0 and writes == len(groups) and len(run.sink["record_id"]) == 5_000


def test_interleaved_runs_one_of_each_scenario_in_turn_and_gives_each_its_median(monkeypatch):
    """bench/run.py's rows that compare pipelines (the sinks, the hooks, parallelism) time them
    in turn, repetition by repetition, as the brief asks of ratios, not all of one then the next."""
    module = load_bench("bench_run", "run.py")
    order, real = [], module.execute
    monkeypatch.setattr(module, "execute", lambda sc: order.append(sc.name) or real(sc))
    medians, runs = module.interleaved({sink: module.into(sink, 2_000) for sink in ("append", "upsert")})
    assert order == ["bench_append", "bench_upsert"] * module.REPEATS
    assert set(medians) == set(runs) == {"append", "upsert"} and all(s > 0 for s in medians.values())
    assert len(runs["upsert"].sink["record_id"]) == 2_000


def test_costs_names_each_pipelines_parts_and_top_functions(capsys):
    """bench/costs.py (issue 17, item 2's profile summary): for each pipeline, the parts' shares
    of the profiled time, then its top functions by their own time."""
    module = load_bench("costs")
    assert module.part_of(("/x/weir/sim/kernel/network.py", 76, "send")) == "weir kernel (network, nodes, trace)"
    assert module.part_of(("/x/site-packages/simpy/core.py", 182, "step")) == "simpy"
    assert module.part_of(("~", 0, "<method 'execute' of 'sqlite3.Connection' objects>")) == "SQLite"
    assert module.part_of(("~", 0, "<built-in method builtins.len>")) == "Python built-ins"
    assert module.main(["--records", "4000", "--top", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    labels = [label for label, _build in module.PIPELINES]
    assert [line[:-1] for line in out if not line.startswith(" ")][1:] == labels
    for label in labels:
        at = out.index(label + ":")
        shares, functions = out[at + 1], out[at + 2:at + 5]
        assert "weir kernel (network, nodes, trace)" in shares and shares.count("%") >= 3, shares
        assert all(" calls  " in row and row.strip()[0].isdigit() for row in functions), functions
    upsert = out.index("exactly-once upsert, batch 500:")
    assert "SQLite" in out[upsert + 1]


# ---- bench/beam_semantics.py: weir's semantics = "beam" against Beam's DirectRunner ------------------
@pytest.fixture(scope="module")
def beam_semantics():
    return load_bench("beam_semantics")


def test_beam_semantics_without_beam_says_how_to_get_it_and_exits_0(beam_semantics, monkeypatch, capsys):
    monkeypatch.setattr(beam_semantics.beam_compare, "_beam", lambda: None)
    assert beam_semantics.main(["--cases", "3"]) == 0
    assert "apache-beam is not installed" in capsys.readouterr().out


def test_beam_semantics_refuses_too_few_cases_or_steps_in_one_line(beam_semantics, capsys):
    for argv in (["--cases", "0"], ["--steps", "1"]):
        with pytest.raises(SystemExit) as stop:
            beam_semantics.main(argv)
        assert stop.value.code == 2
        assert "--cases must be at least 1 and --steps at least 2" in capsys.readouterr().err


def test_beam_semantics_cases_are_seeded_and_in_whole_milliseconds(beam_semantics):
    """Beam's runner carries watermarks in whole milliseconds: every time a case holds is one."""
    assert beam_semantics.make_case(7) == beam_semantics.make_case(7) != beam_semantics.make_case(8)
    for seed in range(40):
        case = beam_semantics.make_case(seed)
        times = [t for step, arg in case["steps"] if step == "add" for _k, t, _v in arg]
        times += [arg for step, arg in case["steps"] if step == "watermark"] + [case["lateness"], *case["windows"][1:]]
        assert all(t % beam_semantics.MS == 0 for t in times), (seed, case)
        marks = [arg for step, arg in case["steps"] if step == "watermark"]
        assert marks == sorted(set(marks)), (seed, marks)  # each advance moves it on
        assert beam_semantics.weir_panes(case) == sorted(beam_semantics.weir_panes(case)), seed


def test_beam_semantics_leaves_out_beams_empty_on_time_panes_and_renumbers_after_them(beam_semantics):
    """Beam's OnTimeBehavior.FIRE_ALWAYS emits an empty ON_TIME pane where weir emits none."""
    beam = [("k", 0, 10, "EARLY", 0, False, 5), ("k", 0, 10, "ON_TIME", 1, False, 0),
            ("k", 0, 10, "LATE", 2, True, 3), ("j", 0, 10, "ON_TIME", 0, False, 4)]
    assert beam_semantics.without_empty_on_time(beam) == [
        ("j", 0, 10, "ON_TIME", 0, False, 4), ("k", 0, 10, "EARLY", 0, False, 5), ("k", 0, 10, "LATE", 1, True, 3)]


def test_beam_semantics_runs_weir_with_pythons_lateness_boundary(beam_semantics):
    """Beam's Python runner keeps an element at W = end + lateness, which Java's rule (weir's)
    drops: weir runs with one microsecond more, so the two say the same there."""
    case = {"windows": ("tumbling", 10_000), "lateness": 5_000, "early": None, "late": "fire", "late_n": 1,
            "accumulation": "discarding", "aggregate": "sum", "steps": [("add", [("k", 1_000, 1)]), ("watermark", 15_000),
                                                     ("add", [("k", 2_000, 2)])]}
    assert beam_semantics.weir_panes(case) == [("k", 0, 10_000, "LATE", 1, False, 2),
                                               ("k", 0, 10_000, "ON_TIME", 0, False, 1)]


def test_beam_semantics_weirs_batch_path_agrees_with_its_stream_path(beam_semantics):
    """The script compares weir's two ways in, a TestStream's bundles element by element and a
    pipeline's batches (process_batch, the columnar store for whole-number keys), before Beam."""
    for seed in range(60):
        case = beam_semantics.make_case(seed, steps=12)
        assert beam_semantics.weir_batch_panes(case) == beam_semantics.weir_panes(case), (seed, case)


def test_beam_semantics_sets_apart_a_session_that_meets_an_expired_or_finished_one(beam_semantics):
    """Beam's Python runner keeps a window past its allowed lateness (it has no cleanup timer), and
    carries a finished window's TOMBSTONE into a merge, so a later session can merge into either
    there where Java's runner and weir have it a session of its own."""
    def case(t, windows=("session", 5_000), late="fire"):
        return {"windows": windows, "lateness": 5_000, "early": None, "late": late, "late_n": 1,
                "accumulation": "discarding", "aggregate": "sum",
                "steps": [("add", [("b", 10_000, 1)]), ("watermark", 23_000), ("add", [("b", t, 2)])]}
    overlapping, apart = case(14_000), case(16_000)  # [14000, 19000) overlaps [10000, 15000); [16000, 21000) not
    for c, merges in ((overlapping, True), (apart, False)):
        panes = beam_semantics.weir_panes(c)
        assert ("b", 10_000, 15_000, "ON_TIME", 0, False, 1) in panes
        assert beam_semantics.not_comparable(c, panes) is merges
    tumbling = case(14_000, ("tumbling", 10_000))
    assert beam_semantics.not_comparable(tumbling, beam_semantics.weir_panes(tumbling)) is False
    finished = case(14_000, late="never")  # [10000, 15000) finished at W = 23000, and has not expired by lateness
    finished["lateness"] = 30_000
    assert beam_semantics.not_comparable(finished, beam_semantics.weir_panes(finished)) is True
    finished["steps"][1] = ("watermark", 12_000)  # not yet at its end: [14000, 19000) merges with it, unfinished
    assert beam_semantics.not_comparable(finished, beam_semantics.weir_panes(finished)) is False
