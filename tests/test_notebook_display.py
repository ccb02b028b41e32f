"""weir in Jupyter: plots on Figures of their own (never pyplot, never matplotlib.use), and what a
notebook displays inline: a plot as PNG, a run as its verdict table, a diagram as Mermaid."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

import weir
from weir.analysis.diagram import Mermaid, sequence_diagram
from weir.analysis.plots import timeline


@pytest.fixture(scope="module")
def finished():
    return weir.execute(weir.load_scenario("at_least_once_crash"))


def test_importing_weir_and_drawing_leaves_the_backend_and_pyplot_alone(tmp_path):
    code = (
        "import sys, matplotlib; before = matplotlib.get_backend()\n"
        "import weir; from weir.analysis.plots import timeline, write_plots\n"
        "run = weir.execute(weir.load_scenario('exactly_once_crash'))\n"
        f"write_plots(run, {str(tmp_path)!r}); timeline(run)\n"
        "assert matplotlib.get_backend() == before, (before, matplotlib.get_backend())\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"MPLBACKEND": "svg", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints.png", "lag.png", "source_vs_sink.png",
                                                          "timeline.png"]


def test_a_plot_shows_as_a_png_picture(finished, tmp_path):
    picture = weir.show(timeline(finished))
    assert isinstance(picture, weir.Picture) and picture._repr_png_().startswith(b"\x89PNG\r\n\x1a\n")
    picture.save(tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes() == picture.png
    assert weir.show(timeline(finished).figure).png[:8] == picture.png[:8]


def test_a_run_shows_as_its_verdict_table(finished):
    result = weir.show(finished)
    assert isinstance(result, weir.RunResult) and weir.show(result) is result
    page = result._repr_html_()
    assert page.count("<tr><td><code>") == len(result.verdicts)
    assert "<code>no_duplicates</code></td><td>violate</td>" in page and "as expected" in page
    odd = replace(result, scenario="a<b & c")
    assert "<b>a&lt;b &amp; c</b>" in odd._repr_html_()  # user text is escaped, not markup


def test_a_result_not_as_expected_says_so_in_red(finished):
    result = weir.result_of(finished)
    flipped = replace(result, expectations=tuple(replace(e, expected="hold") for e in result.expectations))
    page = flipped._repr_html_()
    assert "NOT as expected" in page and "violated (not as expected)" in page and "#b3261e" in page


def test_a_sequence_diagram_is_mermaid_text_jupyter_shows_as_a_diagram(finished):
    diagram = sequence_diagram(finished)
    assert isinstance(diagram, Mermaid) and isinstance(diagram, str) and diagram.startswith("sequenceDiagram")
    assert diagram._repr_markdown_() == f"```mermaid\n{diagram}\n```"
    assert isinstance(weir.show(str(diagram)), Mermaid)


def test_show_refuses_what_it_cannot_show_and_a_run_prints_briefly(finished):
    with pytest.raises(TypeError, match="got int"):
        weir.show(3)
    brief = repr(finished)
    assert brief.startswith("Run('at_least_once_crash', seed=1, status='drained'") and len(brief) < 200


def test_an_exercise_answer_says_passed_or_not_yet_with_what_the_runs_showed():
    open_one = weir.Answer.held(weir.load_scenario("dedup_ttl_too_short"), ["payments_complete", "no_double_charge"],
                                seeds=(1, 2), label="ttl 50ms")
    assert not open_one and repr(open_one).startswith("not yet: ttl 50ms, seed 1: 1543 payments were charged more")
    assert open_one._repr_markdown_().startswith("**not yet**: ttl 50ms, seed 1:")
    solved = weir.Answer.held(weir.load_scenario("payments_idempotent"), ["no_double_charge"], seeds=(1, 2))
    assert solved and repr(solved) == "passed: no payment was charged twice (10000 charges) (on seeds 1 and 2)"
    with pytest.raises(ValueError, match="at least one seed and one claim"):
        weir.Answer.held(weir.load_scenario("payments_idempotent"), ["no_double_charge"], seeds=())


def test_an_exercise_check_turns_a_refused_setting_into_not_yet():
    @weir.exercise
    def check(settings):
        return weir.Answer.held(weir.load_scenario("at_least_once_crash").with_settings(settings), ["exactly_once"])

    refused = check({"pipeline.mode": "exactly_once"})
    assert not refused and repr(refused) == (
        "not yet: weir refused it: pipeline.offset_commit: got 'after_ack'; accepts 'on_checkpoint' when "
        "pipeline.mode = 'exactly_once' (offsets live in checkpoints)")
    assert check.__name__ == "check"

    @weir.exercise
    def broken(settings):
        raise KeyError(settings)  # only a refused setting is an answer: a bug in the check still raises

    with pytest.raises(KeyError):
        broken({})
