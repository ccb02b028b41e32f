"""A report of one run, in Markdown and HTML: verdicts and evidence, the lineage of the first bad
record, the plots, the counterexample diagram, the reconciliation rows and the replay command.

`write_report(run, out_dir)` writes `report.md`, `report.html`, `plots/*.png` and, if the run had
faults, `faults.toml` (the schedule the replay command reads). Both documents are built from one
list of sections, so they say the same things.
"""

from __future__ import annotations

import html
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weir.analysis.checkers import check
from weir.analysis.diagram import sequence_diagram
from weir.analysis.lineage import first_bad_record, lineage
from weir.analysis.plots import write_plots

__all__ = ["write_report", "replay_command"]

MERMAID_JS = "https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.esm.min.mjs"


@dataclass(frozen=True)
class _Section:
    title: str
    kind: str  # text, table, code, mermaid, images
    body: Any


def replay_command(run: Any, scenario_ref: str, faults_file: str | None, records: int | None = None) -> str:
    """The command that replays `run` exactly (paths quoted for the shell); `records` if the run
    overrode the scenario file's workload.records."""
    parts = ["weir", "run", scenario_ref, "--seed", str(run.seed)]
    if records is not None:
        parts += ["--records", str(records)]
    if faults_file is not None:
        parts += ["--faults", faults_file]
    return " ".join(shlex.quote(p) for p in parts)


def _sections(run: Any, verdicts, plots: list[Path], out: Path, command: str) -> list[_Section]:
    s = run.scenario
    facts = [f"**scenario** `{s.name}`, seed {run.seed}: {s.description}".rstrip(": "),
             f"**mode** {s.pipeline.mode}, sink {s.pipeline.sink_name}, {s.workload.records} records in "
             f"{s.workload.partitions} partitions",
             f"**ended** {run.status} at t={run.end_time / 1e6:.6f}s after {run.events} events; "
             f"{run.restarts} job restart(s), {run.checkpoints_completed} checkpoint(s)",
             f"**trace** {len(run.trace)} events, sha256 `{run.trace_sha256}`"]
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


def _inline(text: str) -> str:
    """Escape, then the two bits of Markdown the facts use: **bold** and `code`."""
    out, bold, code = [], False, False
    for i, part in enumerate(html.escape(text).split("`")):
        if i:
            code = not code
        if code:
            out.append(f"<code>{part}</code>")
            continue
        pieces = part.split("**")
        for j, piece in enumerate(pieces):
            if j:
                bold = not bold
                out.append("<strong>" if bold else "</strong>")
            out.append(piece)
    return "".join(out)


def _html(title: str, sections: list[_Section]) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for sec in sections:
        body.append(f"<h2>{html.escape(sec.title)}</h2>")
        if sec.kind == "text":
            body.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in sec.body) + "</ul>")
        elif sec.kind == "table":
            head, *rows = sec.body
            cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
            trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
            body.append(f"<table><thead><tr>{cells}</tr></thead><tbody>{trs}</tbody></table>")
        elif sec.kind == "code":
            body.append(f"<pre><code>{html.escape(sec.body)}</code></pre>")
        elif sec.kind == "mermaid":
            body.append(f'<pre class="mermaid">{html.escape(sec.body)}</pre>')
        elif sec.kind == "images":
            body += [f'<p><img src="{html.escape(p)}" alt="{html.escape(Path(p).stem)}"></p>' for p in sec.body]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;"
             "vertical-align:top}pre{background:#f6f6f6;padding:8px;overflow-x:auto}img{max-width:100%}")
    script = (f'<script type="module">import mermaid from "{MERMAID_JS}"; '
              'mermaid.initialize({startOnLoad: true});</script>')
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head>\n<body>\n" + "\n".join(body) + f"\n{script}\n</body></html>\n")


def write_report(run: Any, out_dir: str | Path, scenario_ref: str | None = None, verdicts=None,
                 records: int | None = None) -> tuple[Path, Path]:
    """Write the report of `run` into `out_dir` (created if missing); (report.md, report.html).

    `scenario_ref` is how the replay command names the scenario (a built-in name or a path;
    default: the scenario's name); `records`, the --records the run was given, if any."""
    from weir.sim.kernel.files import atomic_dir
    from weir.sim.scenario.loader import faults_toml
    final = Path(out_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    verdicts = check(run) if verdicts is None else verdicts
    with atomic_dir(final) as out:  # the folder appears complete, or not at all
        faults_file = None
        if run.scenario.faults:
            (out / "faults.toml").write_text(faults_toml(run.scenario.faults, f"the fault schedule of "
                                                                               f"{run.scenario.name}, seed {run.seed}"))
            faults_file = str(final / "faults.toml")  # where it will be
        command = replay_command(run, scenario_ref or run.scenario.name, faults_file, records)
        plots = write_plots(run, out / "plots")
        title = f"weir report: {run.scenario.name}, seed {run.seed}"
        sections = _sections(run, verdicts, plots, out, command)
        (out / "report.md").write_text(_markdown(title, sections), encoding="utf-8")
        (out / "report.html").write_text(_html(title, sections), encoding="utf-8")
    return final / "report.md", final / "report.html"
