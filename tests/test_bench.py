"""The bench scripts: bench/beam_compare.py (issue 17, item 6), bench/beam_semantics.py and
bench/flink_semantics.py each say how to get Beam or Flink and exit 0 without it; their reading of
weir's panes and their comparisons are what the runs against Beam and Flink are judged by, so they
are pinned here without either (neither is ever a dependency), and so is Flink's own output on
hand-worked cases."""

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


def test_sqlite_alone_upserts_every_row_with_the_sinks_own_statement():
    """bench/run.py's floor of any real SQL sink: SQLite upserting rows it makes itself. It asserts
    the table holds them all (a count it checks itself); both times are measured."""
    module = load_bench("bench_run", "run.py")
    upsert_s, cte_s = module.sqlite_alone(20_000)
    assert upsert_s > 0 and cte_s > 0


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


@pytest.mark.parametrize("script", ["beam_semantics", "flink_semantics"])
def test_semantics_checks_refuse_too_few_cases_or_steps_in_one_line(script, request, capsys):
    for argv in (["--cases", "0"], ["--steps", "1"]):
        with pytest.raises(SystemExit) as stop:
            request.getfixturevalue(script).main(argv)
        assert stop.value.code == 2, (script, argv)
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


@pytest.fixture(scope="module")
def flink_semantics():
    return load_bench("flink_semantics")


def test_flink_semantics_without_flinks_jars_says_how_to_get_them_and_exits_0(flink_semantics, monkeypatch, capsys):
    monkeypatch.setattr(flink_semantics, "flink_lib", lambda given: None)
    assert flink_semantics.main(["--cases", "3"]) == 0
    assert "pip install apache-flink-libraries==1.20.5" in capsys.readouterr().out


def test_flink_semantics_with_the_jars_but_no_jdk_says_so_and_exits_0(flink_semantics, monkeypatch, tmp_path, capsys):
    (tmp_path / "flink-dist-1.20.5.jar").write_bytes(b"")
    monkeypatch.setattr(flink_semantics.shutil, "which", lambda name: None)
    assert flink_semantics.main(["--cases", "3", "--flink-lib", str(tmp_path)]) == 0
    assert "a JDK is not" in capsys.readouterr().out


def test_flink_semantics_finds_the_jars_by_flag_then_environment(flink_semantics, monkeypatch, tmp_path):
    given, env, empty = tmp_path / "given", tmp_path / "env", tmp_path / "empty"
    for folder in (given, env, empty):
        folder.mkdir()
    for folder in (given, env):
        (folder / "flink-dist-1.20.5.jar").write_bytes(b"")
    monkeypatch.delenv("FLINK_HOME", raising=False)
    monkeypatch.setenv("FLINK_LIB", str(env))
    assert flink_semantics.flink_lib(str(given)) == given
    assert flink_semantics.flink_lib(str(empty)) == env  # (a folder without flink-dist is passed over)
    monkeypatch.delenv("FLINK_LIB")
    monkeypatch.setattr(flink_semantics.importlib.util, "find_spec", lambda name: None)  # (no pyflink either)
    assert flink_semantics.flink_lib(None) is None
    monkeypatch.setenv("FLINK_HOME", str(tmp_path))
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "flink-dist-1.20.5.jar").write_bytes(b"")
    assert flink_semantics.flink_lib(None) == tmp_path / "lib"


def test_flink_semantics_cases_are_seeded_and_in_the_oracles_format(flink_semantics):
    assert flink_semantics.make_case(7) == flink_semantics.make_case(7) != flink_semantics.make_case(8)
    restored = 0
    for seed in range(40):
        steps = [step for step, _arg in flink_semantics.make_case(seed)["steps"]]
        marks = [arg for step, arg in flink_semantics.make_case(seed)["steps"] if step == "watermark"]
        assert marks == sorted(set(marks)) and all(m >= -50 for m in marks), (seed, marks)
        if "fail" in steps:  # one checkpoint, and one failure after it
            restored += 1
            assert steps.count("checkpoint") == steps.count("fail") == 1, (seed, steps)
            assert steps.index("checkpoint") < steps.index("fail"), (seed, steps)
        else:
            assert "checkpoint" not in steps, (seed, steps)
    assert 8 <= restored <= 24  # (four in ten)
    before_0 = sum(any(t < 0 for step, arg in flink_semantics.make_case(seed)["steps"] if step == "add"
                       for _k, t, _v in arg) for seed in range(100))
    assert 8 <= before_0 <= 35  # (a fifth have their times 50 lower)
    case = {"windows": ("sliding", 20, 5), "lateness": 10, "accumulation": "discarding", "aggregate": "max",
            "steps": [("add", [(0, 3, 4), (1, 9, 2)]), ("watermark", 12)]}
    case["steps"] += [("checkpoint", None), ("watermark", 15), ("fail", None)]
    assert flink_semantics.case_lines(7, case) == ["CASE 7 sliding 20 5 0 10 discarding max", "A 0 3 4", "A 1 9 2",
                                                   "W 12", "C", "W 15", "F", "END"]
    case["offset"], case["windows"] = -3, ("tumbling", 10)
    assert flink_semantics.case_lines(7, case)[0] == "CASE 7 tumbling 10 0 -3 10 discarding max"
    assert flink_semantics.weir_spec(case).windows.offset == -3


def test_flink_semantics_weirs_batch_path_agrees_with_its_stream_path(flink_semantics):
    for seed in range(60):
        case = flink_semantics.make_case(seed, steps=12)
        assert flink_semantics.weir_outcome(case, batch=True) == flink_semantics.weir_outcome(case, batch=False), \
            (seed, case)


#: What Flink 1.20.5's window operator did (bench/flink/WindowOracle.java, 2026-12-01) on hand-worked
#: cases: four for rules of the Flink column, flink-streaming-java/src/main/java/org/
#: apache/flink/streaming/runtime/operators/windowing/WindowOperator.java (isWindowLate: a window is
#: gone at `maxTimestamp + allowedLateness <= watermark`; processElement: an element goes to the late
#: side output only when every window it belongs to is gone, and a session's lateness is its merged
#: window's), .../api/windowing/triggers/EventTimeTrigger.java (fires at maxTimestamp, and on every
#: element of a window the watermark has passed), .../api/windowing/windows/TimeWindow.java
#: (intersects: sessions that touch merge) and PurgingTrigger.java (discarding); and four with a
#: checkpoint and a failure after it, for .../api/operators/InternalTimerServiceImpl.java (timers
#: are restored from the checkpoint, the watermark is not: it starts again at Long.MIN_VALUE).
FLINK_RECORDED = """\
P 1 0 0 10 ON_TIME 1
P 1 0 0 10 LATE 3
P 1 0 0 10 LATE 7
L 1 0 4 8
DONE 1
P 2 0 0 10 ON_TIME 3
P 2 0 20 25 ON_TIME 4
DONE 2
P 3 0 0 20 ON_TIME 1
L 3 0 5 1
P 3 0 10 30 ON_TIME 2
DONE 3
P 4 0 0 5 ON_TIME 1
P 4 0 0 12 ON_TIME 7
P 4 0 0 12 LATE 15
L 4 0 2 16
DONE 4
P 5 0 0 10 ON_TIME 1
P 5 0 0 10 LATE 3
P 5 0 0 10 LATE 3
DONE 5
P 6 0 0 10 ON_TIME 1
P 6 0 0 10 LATE 2
P 6 0 0 10 ON_TIME 1
P 6 0 0 10 LATE 2
P 6 0 0 10 LATE 4
P 6 0 10 20 ON_TIME 5
DONE 6
P 7 0 0 10 ON_TIME 1
P 7 0 0 10 ON_TIME 4
L 7 0 3 8
DONE 7
P 8 0 20 40 LATE 6
P 8 0 20 40 LATE 1
DONE 8
"""
FLINK_CASES = {
    # [0, 10) with lateness 5 is gone at W = 9 + 5 = 14: an element at W = 13 fires LATE, at 14 is late output
    1: {"windows": ("tumbling", 10), "lateness": 5, "accumulation": "accumulating", "aggregate": "sum",
        "steps": [("add", [(0, 1, 1)]), ("watermark", 9), ("add", [(0, 2, 2)]), ("watermark", 13),
                  ("add", [(0, 3, 4)]), ("watermark", 14), ("add", [(0, 4, 8)])]},
    # [0, 5) and [5, 10) touch: one session [0, 10)
    2: {"windows": ("session", 5), "lateness": 0, "accumulation": "discarding", "aggregate": "sum",
        "steps": [("add", [(0, 0, 1), (0, 5, 2)]), ("watermark", 9), ("add", [(0, 20, 4)]), ("watermark", 30)]},
    # at W = 19, 12 joins [10, 30) alone ([0, 20) is gone) and is no late element; 5's windows are all gone
    3: {"windows": ("sliding", 20, 10), "lateness": 0, "accumulation": "accumulating", "aggregate": "count",
        "steps": [("add", [(0, 15, 1)]), ("watermark", 19), ("add", [(0, 12, 1), (0, 5, 1)]), ("watermark", 40)]},
    # a session that fired merges into a new, later one; a late element merges into it while it lives; after
    # its cleanup at W = 11 + 10 = 21 an element's own session [2, 7) is gone at once: late output
    4: {"windows": ("session", 5), "lateness": 10, "accumulation": "accumulating", "aggregate": "sum",
        "steps": [("add", [(0, 0, 1)]), ("watermark", 4), ("add", [(0, 7, 2), (0, 3, 4)]), ("watermark", 20),
                  ("add", [(0, 1, 8)]), ("watermark", 21), ("add", [(0, 2, 16)])]},
    # restored after it fired on time: the replayed element is not late (the watermark is MIN again), and the
    # window fires again, LATE, when the watermark passes its end once more; what was written stays written
    5: {"windows": ("tumbling", 10), "lateness": 20, "accumulation": "accumulating", "aggregate": "sum",
        "steps": [("add", [(0, 1, 1)]), ("watermark", 9), ("checkpoint", None), ("add", [(0, 2, 2)]),
                  ("fail", None), ("watermark", 30)]},
    # restored before it fired: it fires ON_TIME again, then LATE for each late element, as the first time
    6: {"windows": ("tumbling", 10), "lateness": 5, "accumulation": "discarding", "aggregate": "sum",
        "steps": [("add", [(0, 1, 1), (0, 12, 5)]), ("checkpoint", None), ("watermark", 9), ("add", [(0, 3, 2)]),
                  ("fail", None), ("add", [(0, 4, 4)]), ("watermark", 40)]},
    # restored after [0, 10) was cleaned up: until a watermark comes, nothing is late, and an element of [0, 10)
    # opens it again, to fire ON_TIME; once the watermark is back past its end, the next is late output
    7: {"windows": ("tumbling", 10), "lateness": 0, "accumulation": "accumulating", "aggregate": "sum",
        "steps": [("add", [(0, 1, 1)]), ("watermark", 20), ("checkpoint", None), ("fail", None),
                  ("add", [(0, 2, 4)]), ("watermark", 25), ("add", [(0, 3, 8)])]},
    # a window that opened after its end fired LATE; restored, it fires again at its end, and that is LATE too
    # (the oracle's timing: a firing after an ON_TIME or LATE one is LATE, as in Beam's PaneInfoTracker)
    8: {"windows": ("tumbling", 20), "lateness": 10, "accumulation": "discarding", "aggregate": "sum",
        "steps": [("watermark", 41), ("add", [(0, 33, 6)]), ("checkpoint", None), ("fail", None),
                  ("add", [(0, 34, 1)])]},
}


def test_weir_does_what_flinks_window_operator_did_on_hand_worked_cases(flink_semantics):
    """weir's Flink semantics against Flink's own output, recorded (FLINK_RECORDED): each window's
    firings in order, with their timing and value, and the late side output; on both of weir's paths."""
    flink = flink_semantics.parse_output(FLINK_RECORDED.splitlines())
    assert sorted(flink) == sorted(FLINK_CASES)
    for seed, case in FLINK_CASES.items():
        for batch in (False, True):
            ours = flink_semantics.weir_outcome(case, batch)
            assert flink_semantics.first_difference(ours, flink[seed]) is None, (seed, batch)
            assert ours == flink[seed], (seed, batch)


def test_flink_semantics_reads_failures_and_names_the_first_difference(flink_semantics):
    parsed = flink_semantics.parse_output(["log4j: something", "P 3 0 0 10 ON_TIME 5", "DONE 3",
                                           "FAILED 4 java.lang.IllegalStateException: no"])
    assert parsed == {3: ({(0, 0, 10): [("ON_TIME", 5)]}, []), 4: "java.lang.IllegalStateException: no"}
    ours = ({(0, 0, 10): [("ON_TIME", 5)], (1, 0, 10): [("ON_TIME", 2), ("LATE", 3)]}, [])
    theirs = ({(0, 0, 10): [("ON_TIME", 5)], (1, 0, 10): [("ON_TIME", 2)]}, [])
    assert flink_semantics.first_difference(ours, theirs) == \
        "window (1, 0, 10): weir [('ON_TIME', 2), ('LATE', 3)], Flink [('ON_TIME', 2)]"
    assert flink_semantics.first_difference((ours[0], [(0, 4, 8)]), ours) == \
        "late side output: weir [(0, 4, 8)], Flink []"
    assert flink_semantics.first_difference(ours, ours) is None


def test_flink_semantics_says_in_one_line_when_the_oracle_cannot_compile_or_run(flink_semantics, monkeypatch,
                                                                                 tmp_path, capsys):
    import subprocess
    monkeypatch.setattr(flink_semantics, "flink_or_say_how", lambda given: tmp_path)
    failures = [subprocess.CalledProcessError(1, "javac", stderr="error: error reading flink-dist.jar\nmore"),
                RuntimeError("Flink's job failed (exit code 1): java.net.BindException")]
    for failure in failures:
        def run_flink(lib, cases, progress=None, failure=failure):
            raise failure
        monkeypatch.setattr(flink_semantics, "run_flink", run_flink)
        assert flink_semantics.main(["--cases", "2"]) == 1
        last = capsys.readouterr().out.strip().splitlines()[-1]
        assert last in (f"javac could not compile WindowOracle.java against {tmp_path}: error: error reading "
                        "flink-dist.jar", "Flink's job failed (exit code 1): java.net.BindException"), last
