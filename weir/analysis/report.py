"""A report of one run, in Markdown and HTML: verdicts and evidence, the lineage of the first bad
record, the plots, the counterexample diagram, the reconciliation rows and the replay command.

`write_report(run, out_dir)` writes `report.md`, `report.html`, `plots/*.png`, `mermaid.min.js`
if there is a diagram and, if the run had faults, `faults.toml` (the schedule the replay command
reads). The HTML is the Markdown rendered (markdown-it-py), so they say the same things; it opens
with no network (Mermaid is shipped with weir, weir/analysis/vendor).
"""

from __future__ import annotations

import html
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from weir.analysis.checkers import check
from weir.analysis.diagram import sequence_diagram
from weir.analysis.lineage import first_bad_record, lineage
from weir.analysis.plots import write_plots

__all__ = ["write_report", "replay_command", "run_command"]

@dataclass(frozen=True)
class _Section:
    title: str
    kind: str  # text, table, code, mermaid, images
    body: Any


def run_command(scenario_ref: str, seed: int, faults_file: str | None = None, records: int | None = None) -> str:
    """`weir run` of `scenario_ref` with `seed` (and `--records`, `--faults` where given), each part
    quoted for the shell: how weir prints a command that replays a run."""
    parts = ["weir", "run", scenario_ref, "--seed", str(seed)]
    if records is not None:
        parts += ["--records", str(records)]
    if faults_file is not None:
        parts += ["--faults", faults_file]
    return " ".join(shlex.quote(p) for p in parts)


def replay_command(run: Any, scenario_ref: str, faults_file: str | None, records: int | None = None) -> str:
    """The command that replays `run` exactly; `records` if the run overrode the scenario file's
    workload.records."""
    return run_command(scenario_ref, run.seed, faults_file, records)


def _sections(run: Any, verdicts, plots: list[Path], out: Path, command: str) -> list[_Section]:
    s = run.scenario
    facts = [f"**scenario** `{s.name}`, seed {run.seed}: {s.description}".rstrip(": "),
             (f"**mode** {s.mode}, sink {s.pipeline.sink_name}, {s.workload.records} records in "
              f"{s.workload.partitions} partitions" if s.mode is not None else
              f"**sagas** {s.workload.records}, no pipeline"),
             f"**ended** {run.status} at t={run.end_time / 1e6:.6f}s after {run.events} events; "
             f"{run.restarts} job restart(s), {run.checkpoints_completed} checkpoint(s)",
             f"**trace** {len(run.trace)} rows, sha256 `{run.trace_sha256}`"]
    faults = [f"`{f.describe()}`" for f in s.faults] or ["none"]
    rows = [["invariant", "expected", "verdict", "evidence"]]
    for v in verdicts:
        rows.append([v.invariant, s.expect.expected(v.invariant) or "-", "held" if v.held else "VIOLATED", v.summary])
    out_sections = [_Section("Run", "text", facts), _Section("Faults", "text", faults),
                    _Section("Verdicts", "table", rows)]
    for e in getattr(run, "user_errors", ())[:3]:  # what the user's code did, with their side of the traceback
        if hasattr(e, "line"):
            out_sections.append(_Section(f"Your code: {e.component}.{e.hook}", "code",
                                         e.line() + ("\n\n" + e.traceback if e.traceback else "")))
    record = first_bad_record(verdicts, run)
    if record is not None:
        out_sections.append(_Section(f"Lineage of record {record}", "code", lineage(run, record).text()))
    if any(not v.held for v in verdicts):
        out_sections.append(_Section("Counterexample", "mermaid", sequence_diagram(run, verdicts)))
    recon = next((v for v in verdicts if v.invariant == "reconciled"), None)
    if recon is not None:
        from weir.analysis.reconcile import COLUMNS
        out_sections.append(_Section("Reconciliation", "table",
                                     [list(COLUMNS)] + [[str(r[c]) for c in COLUMNS] for r in recon.evidence["rows"]]))
    out_sections.append(_Section("Plots", "images", [p.relative_to(out).as_posix() for p in plots]))
    out_sections.append(_Section("Replay", "code", command))
    return out_sections


def _markdown(title: str, sections: list[_Section]) -> str:
    lines = [f"# {title}", ""]
    for sec in sections:
        lines += [f"## {sec.title}", ""]
        if sec.kind == "text":
            lines += [f"- {item}" for item in sec.body]
        elif sec.kind == "table":
            head, *rows = sec.body
            lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        elif sec.kind == "code":
            lines += ["```", sec.body.rstrip("\n"), "```"]
        elif sec.kind == "mermaid":
            lines += ["```mermaid", sec.body.rstrip("\n"), "```"]
        elif sec.kind == "images":
            lines += [f"![{Path(p).stem}]({p})" for p in sec.body]
        lines.append("")
    return "\n".join(lines)


#: The Mermaid build a report's diagram is drawn with, shipped in weir/analysis/vendor (see its README).
MERMAID_VERSION = "11.6.0"
MERMAID_JS = Path(__file__).with_name("vendor") / "mermaid.min.js"
_STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
          "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;"
          "vertical-align:top}pre{background:#f6f6f6;padding:8px;overflow-x:auto}img{max-width:100%}")


def _renderer() -> MarkdownIt:
    """CommonMark with tables, raw HTML off (a scenario's text is shown as text, never markup), and
    a `mermaid` fence as the element Mermaid draws."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")

    def fence(self, tokens, idx, options, env):
        token = tokens[idx]
        if token.info.strip() == "mermaid":
            return f'<pre class="mermaid">{html.escape(token.content)}</pre>\n'
        return type(self).fence(self, tokens, idx, options, env)

    md.add_render_rule("fence", fence)
    return md


def _html(title: str, markdown: str, diagram: bool) -> str:
    """The report's Markdown rendered as a page; with a diagram, Mermaid from the file beside it
    (`mermaid.min.js`, copied into the report): the page needs no network."""
    script = ('\n<script src="mermaid.min.js"></script>\n'
              "<script>mermaid.initialize({startOnLoad: true});</script>") if diagram else ""
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head>\n<body>\n{_renderer().render(markdown)}{script}\n</body></html>\n")


def write_report(run: Any, out_dir: str | Path, scenario_ref: str | None = None, verdicts=None,
                 records: int | None = None, begun: Callable[[], None] | None = None) -> tuple[Path, Path]:
    """Write the report of `run` into `out_dir` (created if missing); (report.md, report.html).

    `scenario_ref` is how the replay command names the scenario (a built-in name or a path;
    default: the scenario's name); `records`, the --records the run was given, if any; `begun()`
    is called once its folder is made (weir.progress.working: the CLI's "writing" line)."""
    from weir.sim.kernel.files import atomic_dir
    from weir.sim.scenario.loader import faults_toml
    final = Path(out_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    verdicts = check(run) if verdicts is None else verdicts
    with atomic_dir(final) as out:  # the folder appears complete, or not at all
        if begun is not None:
            begun()
        faults_file = None
        if run.scenario.faults:
            (out / "faults.toml").write_text(faults_toml(run.scenario.faults, f"the fault schedule of "
                                                                               f"{run.scenario.name}, seed {run.seed}"))
            faults_file = str(final / "faults.toml")  # where it will be
        command = replay_command(run, scenario_ref or run.scenario.name, faults_file, records)
        plots = write_plots(run, out / "plots")
        title = f"weir report: {run.scenario.name}, seed {run.seed}"
        sections = _sections(run, verdicts, plots, out, command)
        markdown = _markdown(title, sections)
        diagram = any(sec.kind == "mermaid" for sec in sections)
        (out / "report.md").write_text(markdown, encoding="utf-8")
        (out / "report.html").write_text(_html(title, markdown, diagram), encoding="utf-8")
        if diagram:
            shutil.copyfile(MERMAID_JS, out / "mermaid.min.js")
    return final / "report.md", final / "report.html"
