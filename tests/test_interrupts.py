"""Interrupts stop at once and keep what is done (issue 14, item 5): Ctrl-C during a sweep or a
matrix cancels the queued runs, keeps the finished ones in a journal, and `--resume` runs only what
is missing, to the same result as an uninterrupted run."""

from __future__ import annotations

import json

import pytest

from weir.cli import main
from weir.faults.matrix import correctness_matrix
from weir.sim.kernel.errors import ScenarioError
from weir.sim.scenario.pool import Interrupted, run_all
from weir.sweep import sweep


def _stop_after(n: int):
    """A progress callback that presses Ctrl-C once `n` runs have finished."""
    def progress(done: int, total: int) -> None:
        if done >= n:
            raise KeyboardInterrupt
    return progress


def _same(a, b) -> dict:
    keep = ("scenario", "seeds", "as_expected", "failing_seeds", "tally", "trace_sha256")
    return {k: a[k] for k in keep} == {k: b[k] for k in keep}


@pytest.mark.parametrize("workers", [1, 2])
def test_an_interrupted_sweep_keeps_what_finished_and_a_resume_runs_only_the_rest(workers, tmp_path):
    journal = tmp_path / "sweep.jsonl"
    whole = sweep("at_most_once_crash", range(6), workers=workers)
    with pytest.raises(Interrupted) as e:
        sweep("at_most_once_crash", range(6), workers=workers, progress=_stop_after(2), journal=journal)
    partial = e.value.partial
    assert 2 <= len(partial.results) < 6 and e.value.total == 6
    lines = journal.read_text().splitlines()
    assert json.loads(lines[0])["journal"] == "sweep" and len(lines) == 1 + len(partial.results)
    ran = []
    resumed = sweep("at_most_once_crash", range(6), workers=workers, journal=journal, resume=True,
                    progress=lambda done, total: ran.append(done))
    assert _same(resumed.to_dict(), whole.to_dict())
    assert ran[0] == len(partial.results)  # the start: what the journal holds
    assert len(ran) == 1 + 6 - len(partial.results)  # then only the missing runs ran
    assert len(journal.read_text().splitlines()) == 7


def test_a_journal_of_other_work_is_refused(tmp_path):
    journal = tmp_path / "sweep.jsonl"
    sweep("at_most_once_crash", range(2), journal=journal)
    with pytest.raises(ScenarioError, match="--resume: got a journal of other work"):
        sweep("at_most_once_crash", range(3), journal=journal, resume=True)
    with pytest.raises(ScenarioError, match="--resume: got"):
        sweep("at_most_once_crash", range(2), journal=tmp_path / "missing.jsonl", resume=True)


@pytest.mark.parametrize("command", [["sweep", "at_most_once_crash", "--seeds", "2"],
                                     ["matrix", "--runs", "1", "--patterns", "at-most-once", "--kinds", "crash"]])
def test_a_journal_that_is_not_text_is_one_line_and_exit_2(tmp_path, capsys, command):
    """--resume of a binary file stopped with an internal error (UnicodeDecodeError), after the
    progress line: now the one line of a bad input, naming the file, and the file is untouched."""
    journal = tmp_path / "runs.jsonl"
    journal.write_bytes(b"\xff\xfe\x00")
    assert main([*command, "--resume", str(journal)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"weir: {journal}: --resume: got an unreadable file (UnicodeDecodeError); accepts a "
                                f"journal that `weir {command[0]} --journal` wrote"], err
    assert journal.read_bytes() == b"\xff\xfe\x00"


def test_a_last_line_cut_short_is_run_again(tmp_path):
    journal = tmp_path / "sweep.jsonl"
    whole = sweep("at_most_once_crash", range(3), journal=journal)
    text = journal.read_text()
    journal.write_text(text[:-40])  # killed in the middle of writing the last result
    resumed = sweep("at_most_once_crash", range(3), journal=journal, resume=True)
    assert _same(resumed.to_dict(), whole.to_dict())
    assert all(json.loads(line) for line in journal.read_text().splitlines())


def test_the_cli_prints_the_partial_tally_and_exits_130(tmp_path, capsys, monkeypatch):
    from weir.progress import Progress
    journal = tmp_path / "sweep.jsonl"
    real = Progress.update

    def interrupting(self, done, total=None, note=""):
        real(self, done, total, note)
        if done >= 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(Progress, "update", interrupting)
    assert main(["sweep", "at_most_once_crash", "--seeds", "5", "--workers", "1", "--journal", str(journal)]) == 130
    captured = capsys.readouterr()
    assert "outcome: 2 of 2 seeds as expected" in captured.out
    assert f"interrupted after 2 of 5 runs; resume with: weir sweep at_most_once_crash --seeds 5 --workers 1 " \
           f"--resume {journal}" in captured.err
    # not a terminal: whole lines, no carriage return, and the message on a line of its own
    assert "\r" not in captured.err and captured.err.endswith("\n")
    assert [line.split(":")[0] for line in captured.err.splitlines()] == ["sweep", "weir"], captured.err
    monkeypatch.setattr(Progress, "update", real)
    import shlex  # the printed resume command itself is what runs (issue 18: every printed command is run)
    resume = captured.err.split("resume with: ", 1)[1].splitlines()[0]
    assert main(shlex.split(resume)[1:]) == 0
    assert "outcome: 5 of 5 seeds as expected" in capsys.readouterr().out


def test_an_interrupted_matrix_resumes_to_the_same_matrix(tmp_path):
    journal = tmp_path / "matrix.jsonl"
    settings = dict(patterns=("at-most-once",), kinds=("crash", "pause"), runs=2, seed=3, workers=1)
    whole = correctness_matrix(**settings)
    with pytest.raises(Interrupted):
        correctness_matrix(**settings, progress=_stop_after(2), journal=journal)
    resumed = correctness_matrix(**settings, journal=journal, resume=True)
    assert resumed.to_dict() == whole.to_dict()


def test_run_all_cancels_the_queue_when_interrupted():
    with pytest.raises(Interrupted) as e:
        run_all(pow, [(2, i) for i in range(50)], workers=2, progress=_stop_after(3))
    assert 3 <= len(e.value.results) < 50
    assert all(e.value.results[i] == 2 ** i for i in e.value.results)
