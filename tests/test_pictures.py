"""Plots, the counterexample diagram, the report and the determinism diff."""

from __future__ import annotations

import re
import struct
import warnings
import zlib

import matplotlib.pyplot as plt
import numpy as np
import pytest

from weir.analysis.diagram import checkpoint_diagram, sequence_diagram
from weir.analysis.diff import first_difference, load_trace, save_trace
from weir.analysis.plots import PLOTS, timeline, write_plots
from weir.analysis.report import write_report
from weir.sim.kernel.errors import ScenarioError
from weir.sim.scenario.run import execute
from weir.sim.scenario.loader import load_scenario
from weir.cli import main


def png_pixels(path) -> np.ndarray:
    """The RGBA pixels of a PNG matplotlib wrote (8-bit RGBA, no interlace), without a PNG library."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
            assert (depth, color) == (8, 6)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 4 * width
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - 4] if i >= 4 else 0
            up, corner = prev[i], prev[i - 4] if i >= 4 else 0
            if f == 1:
                line[i] = (line[i] + left) & 255
            elif f == 2:
                line[i] = (line[i] + up) & 255
            elif f == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif f == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line))
        prev = line
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(height, width, 4)


def test_plots_are_written_and_not_blank(tmp_path):
    run = execute(load_scenario("kafka_to_delta"))
    paths = write_plots(run, tmp_path, dpi=40)
    assert [p.stem for p in paths] == ["timeline", "checkpoints", "source_vs_sink", "lag"]
    for path in paths:
        assert path.stat().st_size > 2_000
        pixels = png_pixels(path)[..., :3].reshape(-1, 3)
        colors = np.unique(pixels, axis=0)
        assert len(colors) > 20, path.name  # lines, text and fills, not a blank canvas
    crashed = np.array([0xd1, 0x49, 0x5b])  # the timeline's crashed spans: three crashes in this scenario
    assert (np.abs(png_pixels(paths[0])[..., :3].astype(int) - crashed).sum(axis=-1) < 10).sum() > 50


def test_each_plot_takes_and_returns_an_axes():
    run = execute(load_scenario("late_data_side_output"))
    for name, (draw, applies) in PLOTS.items():
        if not applies(run):
            continue
        fig, ax = plt.subplots()
        try:
            assert draw(run, ax) is ax and ax.has_data(), name
        finally:
            plt.close(fig)
    fig, ax = plt.subplots()
    try:
        timeline(run, ax)
        assert [t.get_text() for t in ax.get_yticklabels()] == list(run.trace.nodes)
    finally:
        plt.close(fig)


def parse_mermaid(text: str):
    """(participants, messages, notes) of a Mermaid sequenceDiagram; fails on a line it does not know."""
    lines = text.strip().splitlines()
    assert lines[0] == "sequenceDiagram"
    participants, messages, notes = {}, [], []
    for line in lines[1:]:
        line = line.strip()
        if line.startswith("%%"):
            continue
        if m := re.fullmatch(r"participant (\w+) as ([\w-]+)", line):
            participants[m[1]] = m[2]
        elif m := re.fullmatch(r"(\w+)(->>|-x)(\w+): (.+)", line):
            assert m[1] in participants and m[3] in participants, line
            messages.append((participants[m[1]], m[2], participants[m[3]], m[4]))
        elif m := re.fullmatch(r"Note over (\w+): (.+)", line):
            assert m[1] in participants, line
            notes.append((participants[m[1]], m[2]))
        else:
            raise AssertionError(f"not Mermaid: {line!r}")
    return participants, messages, notes


def test_the_diagram_of_a_duplicate_shows_the_batch_twice_around_the_failover():
    run = execute(load_scenario("at_least_once_crash"))
    participants, messages, notes = parse_mermaid(sequence_diagram(run))
    assert {"source", "processor", "sink", "broker"} <= set(participants.values())
    to_sink = [m for m in messages if m[0] == "processor" and m[2] == "sink" and "BATCH" in m[3]]
    assert len(to_sink) == 2 and to_sink[0][3].split(" ", 1)[1] == to_sink[1][3].split(" ", 1)[1]
    texts = [n[1] for n in notes]
    assert any("CRASH" in t for t in texts) and any("restores committed offsets" in t for t in texts)


def test_the_diagram_of_a_lost_message_draws_a_cross():
    from weir.analysis.checkers import Verdict
    from weir.sim.scenario.model import Fault
    s = load_scenario("at_most_once_crash")
    run = execute(s, 1, (Fault(kind="partition", node="sink", at="300ms", down_for="100ms", direction="inbound"),))
    dropped = next(r for r in run.trace.rows() if r["kind"] == "DROP")
    pointed = Verdict("made_up", False, "a violation at the first lost message",
                      {"first": [{"time_us": dropped["time"]}]})
    _participants, messages, _notes = parse_mermaid(sequence_diagram(run, [pointed]))
    lost = [m for m in messages if m[1] == "-x"]
    assert lost and all("(lost)" in label and dst == "sink" for _src, _arrow, dst, label in lost)


def test_a_run_that_holds_has_an_empty_diagram():
    run = execute(load_scenario("exactly_once_crash"))
    participants, messages, notes = parse_mermaid(sequence_diagram(run))
    assert not participants and not messages and not notes


def test_the_two_phase_commit_diagram_follows_one_checkpoint_from_trigger_to_commit():
    # the seed's section 4.2, drawn from kafka_to_delta's run: trigger, barrier, snapshots, the
    # sink's pre-commit, completion, notification, commit; in that order
    run = execute(load_scenario("kafka_to_delta"), 1, ())
    participants, messages, notes = parse_mermaid(checkpoint_diagram(run))
    assert set(participants.values()) == {"source", "processor", "sink", "coordinator"}
    steps = [(src, dst, label.split(" ", 1)[1]) for src, _arrow, dst, label in messages]
    assert steps[0] == ("coordinator", "source", "TRIGGER checkpoint 1")
    assert ("source", "processor", "BARRIER checkpoint 1") in steps and ("processor", "sink", "BARRIER checkpoint 1") in steps
    assert ("coordinator", "sink", "NOTIFY checkpoint 1") in steps
    texts = [text.split(" ", 1)[1] for _node, text in notes]
    order = [next(i for i, t in enumerate(texts) if t.startswith(prefix)) for prefix in
             ("snapshot of offsets p0@", "snapshot of operator state", "pre-commit: the transaction holding",
              "checkpoint 1 complete", "commits transaction")]
    assert order == sorted(order), texts
    assert texts[-1].endswith("of checkpoint 1: its rows become visible")
    # another checkpoint on request; an upsert sink has nothing to pre-commit; no checkpoint, nothing to draw
    assert "checkpoint 3" in checkpoint_diagram(run, 3).splitlines()[1]
    upsert = checkpoint_diagram(execute(load_scenario("exactly_once_crash")))
    assert "nothing to pre-commit" in upsert and "commits transaction" not in upsert
    assert checkpoint_diagram(execute(load_scenario("at_least_once_crash"))).splitlines()[1:] == [
        "    %% at_least_once_crash seed 1: no checkpoint completed"]


def test_the_report_has_every_part(tmp_path):
    run = execute(load_scenario("at_least_once_crash"))
    md, page = write_report(run, tmp_path / "r", "at_least_once_crash")
    text = md.read_text()
    for part in ("## Verdicts", "| no_duplicates | violate | VIOLATED |", "## Lineage of record 5042", "```mermaid",
                 "![timeline](plots/timeline.png)", "weir run at_least_once_crash --seed 1 --faults"):
        assert part in text, part
    assert (tmp_path / "r" / "plots" / "timeline.png").exists()
    assert load_scenario("at_least_once_crash").faults == __import__("weir.sim.scenario.loader").sim.scenario.loader.load_faults(
        tmp_path / "r" / "faults.toml")
    html = page.read_text()
    assert html.startswith("<!doctype html>") and '<pre class="mermaid">' in html and "<td>VIOLATED</td>" in html


def test_the_report_command_and_run_flags(tmp_path, capsys):
    assert main(["report", "reconciliation_daily", "--out", str(tmp_path / "rep")]) == 0
    assert "## Reconciliation" in (tmp_path / "rep" / "report.md").read_text()
    code = main(["run", "at_least_once_crash", "--records", "3000", "--report", str(tmp_path / "small")])
    first = capsys.readouterr().out.splitlines()[-1]
    assert code in (0, 1) and first.startswith("trace sha256: ")
    replay = (tmp_path / "small" / "report.md").read_text().split("## Replay", 1)[1].split("```")[1].strip()
    assert replay.startswith("weir run at_least_once_crash --seed 1 --records 3000 --faults ")
    assert main(replay.split()[1:]) == code  # the replay command replays the run: the same trace
    assert capsys.readouterr().out.splitlines()[-1] == first
    assert main(["run", "exactly_once_crash", "--plots", str(tmp_path / "p"), "--save-trace",
                 str(tmp_path / "t.npz")]) == 0
    assert (tmp_path / "p" / "checkpoints.png").exists() and (tmp_path / "t.npz").exists()
    (tmp_path / "file").write_text("x")
    capsys.readouterr()
    assert main(["run", "exactly_once_crash", "--plots", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--plots" in err
    assert main(["run", "exactly_once_crash", "--save-trace", str(tmp_path / "no" / "t.npz")]) == 2
    assert "--save-trace" in capsys.readouterr().err


def test_diff_finds_the_first_difference(tmp_path):
    a = execute(load_scenario("exactly_once_crash"))
    b = execute(load_scenario("exactly_once_crash"))
    assert first_difference(a.trace, b.trace) is None
    path = save_trace(a.trace, tmp_path / "a.npz")
    assert first_difference(load_trace(path), b.trace) is None
    cols = {k: v.copy() for k, v in b.trace.columns.items()}
    cols["c"][1234] += 1
    changed = type(b.trace)(b.trace.nodes, cols)
    d = first_difference(a.trace, changed)
    assert d.index == 1234 and d.left != d.right and len(d.context) == 3
    shorter = type(b.trace)(b.trace.nodes, {k: v[:100] for k, v in b.trace.columns.items()})
    d = first_difference(a.trace, shorter)
    assert d.index == 100 and d.right is None and "(the trace ends)" in d.text()
    with pytest.raises(ScenarioError):
        load_trace(tmp_path / "nothing.npz")


LEAKY = '''
import numpy as np
import weir


class LeakySource(weir.Source):
    """Keys from Python's hash() of a string: they change with PYTHONHASHSEED."""

    def generate(self, rng, records, keys):
        k = np.array([hash(f"key-{i}") % keys for i in range(records)], dtype=np.int64)
        return k, np.ones(records, dtype=np.int64), np.zeros(records, dtype=np.int64)
'''


def test_the_diff_command_finds_a_leak_in_a_user_component(tmp_path, capsys, monkeypatch):
    (tmp_path / "leaky.py").write_text(LEAKY)
    (tmp_path / "leaky.toml").write_text('name = "leaky"\n[workload]\nrecords = 500\nsource = "leaky:LeakySource"\n'
                                         '[pipeline]\nmode = "at_least_once"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["diff", str(tmp_path / "leaky.toml")]) == 1
    out = capsys.readouterr().out
    assert "DIFFERENT" in out and "- left" in out and "+ right" in out
    assert main(["diff", "at_least_once_crash"]) == 0
    assert "identical" in capsys.readouterr().out


# ---- windowed runs (issue 13, item 8) ---------------------------------------------------------------
def test_source_vs_sink_counts_the_panes_of_a_windowed_run():
    from weir.analysis.metrics import metrics
    from weir.analysis.plots import source_vs_sink
    run = execute(load_scenario("late_data_side_output"))
    sink = metrics(run)["sink.count"][0]
    assert sink.value[-1] == len(run.windows["key"]) > 1000  # every pane written (transactional: staged, then published)
    fig, ax = plt.subplots()
    try:
        source_vs_sink(run, ax)
        labels = [line.get_label() for line in ax.get_lines()]
        assert "sink (panes written to the window results, right axis)" in labels
        right = [other for other in fig.axes if other is not ax][0]
        assert right.get_lines()[0].get_ydata()[-1] == len(run.windows["key"])
    finally:
        plt.close(fig)


@pytest.mark.parametrize("name,mark,count", [("idle_timeout_trap", "dropped", "late_dropped"),
                                             ("late_data_side_output", "late, in a LATE pane", None)])
def test_the_watermark_plot_shows_each_partition_the_merged_one_and_the_late_records(name, mark, count):
    from weir.analysis.metrics import late_marks
    from weir.analysis.plots import watermarks
    run = execute(load_scenario(name))
    fig, ax = plt.subplots()
    try:
        watermarks(run, ax)
        labels = [line.get_label() for line in ax.get_lines()]
    finally:
        plt.close(fig)
    assert {f"partition {p}: its watermark" for p in range(4)} <= set(labels)
    assert "merged: the window operator's" in labels
    marks = late_marks(run)
    n = len(marks["dropped" if mark == "dropped" else "late"][0])
    assert f"{mark} ({n})" in labels and n > 0
    if count is not None:  # the plot's count is the run's own: it marks exactly the records the job dropped
        assert n == getattr(run, count)


def test_the_late_marks_agree_with_the_job_on_a_pair_of_scenarios():
    """late_data_dropped drops what late_data_side_output keeps in LATE panes: the same records."""
    from weir.analysis.metrics import late_marks
    dropped = late_marks(execute(load_scenario("late_data_dropped")))["dropped"]
    kept = late_marks(execute(load_scenario("late_data_side_output")))["late"]
    assert len(dropped[0]) == execute(load_scenario("late_data_dropped")).late_dropped == len(kept[0])


def test_a_windowed_run_too_short_for_a_watermark_draws_every_plot(tmp_path):
    """Ten records: the window operator never gets a watermark, so no record is late (late_marks
    indexed the empty watermark series, and `weir run --plots` stopped with an internal error)."""
    from weir.analysis.metrics import late_marks
    run = execute(load_scenario("late_data_side_output").with_settings({"workload.records": 10}))
    marks = late_marks(run)
    assert len(marks["on_time"][0]) == 10 and len(marks["late"][0]) == len(marks["dropped"][0]) == 0
    written = write_plots(run, tmp_path)
    assert {p.name for p in written} >= {"watermarks.png", "late_data.png"}


def _legend(ax) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend is not None else []


def test_the_late_data_picture_sets_each_record_against_the_watermark_and_its_window():
    """On time, late but allowed, and too late apart, each counted in the legend as the run counts it;
    the watermark; window bands of the window's size."""
    from weir.analysis.metrics import late_marks
    from weir.analysis.plots import late_data
    for name, too_late in (("late_data_side_output", None), ("late_data_dropped", "too late: dropped"),
                           ("idle_timeout_trap", "too late: dropped")):
        run = execute(load_scenario(name))
        marks = late_marks(run)
        fig, ax = plt.subplots()
        try:
            late_data(run, ax)
            labels = _legend(ax)
            on_time = len(marks["on_time"][0])
            assert f"on time ({on_time})" in labels and on_time > 1000, (name, labels)
            assert "watermark (the window operator's)" in labels
            band = next(label for label in labels if label.startswith("a window (tumbling"))
            size = run.scenario.window.size
            assert f"{size / 1000:g}ms" in band
            heights = {round(p.get_height() * 1e6) for p in ax.patches}  # the bands (axhspan: Rectangles)
            assert heights == {size}, (name, heights)
            if too_late is not None:
                assert f"{too_late} ({len(marks['dropped'][0])})" in labels and len(marks["dropped"][0]) > 0
                assert len(marks["dropped"][0]) == run.late_dropped
            else:
                assert f"late, within the allowed lateness ({len(marks['late'][0])})" in labels
            assert sum(len(marks[k][0]) for k in ("on_time", "late", "dropped")) >= len(run.source["record_id"])
        finally:
            plt.close(fig)


def test_the_panes_picture_puts_each_pane_at_its_watermark_and_each_run_in_a_band():
    """One stream under Flink's rules and Beam's: a row per window and run, a row for a run's late
    side output; each pane a dot at the watermark it fired at (side by side where several fired at
    one), labelled with its value; panes the end of input fired at the right edge."""
    from weir.analysis.plots import panes
    from weir.sim.stream.teststream import TestStream
    from weir.sim.stream.windows import SUM, Tumbling, WindowSpec
    stream = (TestStream().add_elements(("k", 1_000, 1)).advance_watermark_to(9_999).advance_watermark_to(12_000)
              .add_elements(("k", 3_000, 4), ("k", 4_000, 8)).advance_watermark_to(14_999)
              .add_elements(("k", 6_000, 32), ("k", 15_000, 64)).advance_watermark_to_infinity())
    results = {s: stream.run(WindowSpec(Tumbling(10_000), aggregate=SUM, allowed_lateness=5_000, semantics=s))
               for s in ("flink", "beam")}
    fig, ax = plt.subplots()
    try:
        panes(results, ax)
        rows = [t.get_text() for t in ax.get_yticklabels()]
        assert rows == ["flink: k [0, 10,000)", "flink: k [10,000, 20,000)", "flink: late side output",
                        "beam: k [0, 10,000)", "beam: k [10,000, 20,000)"]
        dots = {}  # (row, value) -> x, from the annotations over each mark
        for text in ax.texts:
            x, y = text.xy
            dots[(int(y), text.get_text())] = x
        assert dots[(0, "1")] == 9_999 and dots[(3, "1")] == 12_000  # ON_TIME: at max_ts (Flink), past it (Beam)
        assert dots[(0, "4")] == 12_000 < dots[(0, "8")]  # two LATE panes at one watermark, side by side
        assert 12_000 < dots[(3, "12")] < 12_500  # Beam: one LATE pane a bundle, beside its ON_TIME one
        assert dots[(3, "32")] == 14_999  # and Beam keeps 32
        assert dots[(2, "32 @6,000")] == 14_999  # Flink: 32 comes too late
        end = dots[(1, "64")]
        assert end == dots[(4, "64")] > 14_999 and ax.get_xlim()[1] > end  # end of input: the right edge
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        assert ticks[-1] == "+infinity" and "12,000" in ticks, ticks  # the watermark's ticks, and the edge named
        labels = _legend(ax)
        assert labels == ["ON_TIME pane", "LATE pane", "late element (side output)",
                          "end of input (watermark +infinity)"], labels
    finally:
        plt.close(fig)
    with pytest.raises(TypeError, match=r"panes takes a test stream's result .*; got int for 'beam'"):
        panes({"flink": results["flink"], "beam": 3})
    quiet = TestStream().advance_watermark_to(5).run(WindowSpec(Tumbling(10), aggregate=SUM))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (an empty legend would warn)
        ax = panes(quiet)
    assert [t.get_text() for t in ax.texts] == ["no pane fired and no element came too late"]
    assert ax.get_legend() is None


def test_checkpoint_durations_are_on_their_own_scale_and_the_timeout_is_named():
    from weir.analysis.plots import checkpoint_durations
    fig, (far, near) = plt.subplots(2)
    try:
        run = execute(load_scenario("exactly_once_crash"))  # 10s timeout, checkpoints of ~20ms
        checkpoint_durations(run, far)
        durations = far.get_lines()[0].get_ydata()
        assert far.get_ylim()[1] < 2 * max(durations)  # not flattened onto the axis by a line at 10000ms
        assert any("timeout 10000ms" in t.get_text() and "off the scale" in t.get_text() for t in far.texts)
        assert [label for label in _legend(far)] == [f"completed ({len(durations)})"]
        run = execute(load_scenario("checkpoint_timeout"))  # checkpoints that run into their timeout
        checkpoint_durations(run, near)
        timeout = run.scenario.checkpoint.timeout
        assert f"timeout ({timeout / 1000:g}ms)" in _legend(near)
        assert any(label.startswith("failed (") for label in _legend(near))
        assert near.get_ylim()[1] >= timeout / 1000
    finally:
        plt.close(fig)


def test_every_partition_shows_in_the_lag_plot():
    """Each partition its own colour and dash, drawn over the pale lag-max: one that lies on another
    (or on the maximum) is still seen."""
    from weir.analysis.plots import lag
    run = execute(load_scenario("idle_partition_stall"))
    fig, ax = plt.subplots()
    try:
        lag(run, ax)
        lines = {line.get_label(): line for line in ax.get_lines()}
        parts = [lines[f"partition {p}"] for p in range(run.scenario.workload.partitions)]
        assert len({(line.get_color(), line.get_linestyle()) for line in parts}) == len(parts)
        assert all(line.get_zorder() > lines["records.lag-max"].get_zorder() for line in parts)
        assert set(_legend(ax)) == set(lines)
    finally:
        plt.close(fig)


def test_the_timeline_legend_names_every_mark():
    run = execute(load_scenario("checkpoint_store_outage"))  # a crash, a store fault, checkpoints done and failed
    fig, ax = plt.subplots()
    try:
        timeline(run, ax)
        labels = _legend(ax)
    finally:
        plt.close(fig)
    assert {"up", "crashed", "scripted fault (its kind above)", "checkpoint completed", "checkpoint failed",
            "job failover"} <= set(labels), labels
