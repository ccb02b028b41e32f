"""Progress fit for where it is shown: plain, whole lines in a log (a few, paced), a live bar in a
terminal that is cleared when the work ends; and a long run's progress never changes the run."""

from __future__ import annotations

import io

import pytest

import weir
from weir import progress as progress_mod
from weir.progress import Progress, working
from weir.sim.kernel import world as world_mod


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_log_progress_is_a_few_whole_lines(monkeypatch):
    clock = iter(range(0, 10_000, 1))  # a second a call: pacing lets every new tenth through
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: float(next(clock)) * 10)
    log = io.StringIO()
    with Progress("sweep", 200, "seeds", stream=log) as bar:
        bar.update(0)  # (weir.sim.scenario.pool.run_all says 0 first: the work is under way)
        for done in range(1, 201):
            bar.update(done, note="fine")
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and lines[0] == "sweep: 0 of 200 seeds (0%)"
    assert lines[-1] == "sweep: 200 of 200 seeds (100%); fine" and len(lines) == 11  # the start and each tenth


def test_in_a_log_lines_are_paced_and_the_end_is_always_said(monkeypatch):
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: 0.0)  # no time passes: no line between
    log = io.StringIO()
    with Progress("matrix", 0, "runs", stream=log) as bar:  # total unknown until the first update
        for done in range(1, 51):
            bar.update(done, 50)
    assert log.getvalue().splitlines() == ["matrix: 1 of 50 runs (2%)", "matrix: 50 of 50 runs (100%)"]


def test_an_error_before_the_work_starts_leaves_no_progress_line():
    """A bad input found inside the progress block (a journal to resume that cannot be read) is the
    one line on stderr: the plain start line waits for the first update."""
    log = io.StringIO()
    with pytest.raises(ValueError), Progress("sweep", 20, "seeds", stream=log):
        raise ValueError("an unreadable journal")
    assert log.getvalue() == ""


def test_a_step_says_what_it_does_once_under_way_and_not_when_it_could_not_start():
    log = io.StringIO()
    with working("report: writing out/", stream=log) as begun:
        begun()
        assert log.getvalue() == "report: writing out/\n"
        begun()
    assert log.getvalue() == "report: writing out/\n"
    failed = io.StringIO()
    with pytest.raises(OSError), working("report: writing /proc/x", stream=failed):
        raise OSError("the folder cannot be made")
    assert failed.getvalue() == ""


def test_in_a_terminal_it_is_a_live_bar_cleared_at_the_end():
    tty = Terminal()
    with Progress("sweep", 10, "seeds", stream=tty) as bar:
        assert bar.live
        for done in range(1, 11):
            bar.update(done)
    text = tty.getvalue()
    assert "\x1b[" in text and "sweep: " not in text  # rich's control codes, not the log's lines


def test_disabled_progress_writes_nothing_and_a_step_without_a_count_is_one_line():
    quiet = io.StringIO()
    with Progress("run", 5, "records", stream=quiet, enabled=False) as bar:
        bar.update(5)
    assert quiet.getvalue() == ""
    log = io.StringIO()
    with working("report: writing out/", stream=log):
        pass
    assert log.getvalue() == "report: writing out/\n"


def test_a_run_told_to_report_progress_is_the_same_run(monkeypatch):
    monkeypatch.setattr(world_mod, "PROGRESS_MASK", 511)  # told every 512 events, not 65,536: a small run will do
    scenario = weir.load_scenario("exactly_once_crash")
    seen: list[tuple[int, int]] = []
    watched, plain = weir.execute(scenario, progress=lambda done, total: seen.append((done, total))), weir.execute(scenario)
    assert watched.trace_sha256 == plain.trace_sha256 and watched.events == plain.events
    assert len(seen) == watched.events // 512 + 1 and seen[-1] == (20_000, 20_000)  # along the way, then the end
    assert 0 < seen[len(seen) // 2][0] < 20_000
    assert [d for d, _t in seen] == sorted(d for d, _t in seen) and all(t == 20_000 for _d, t in seen)
