"""Rendering results for a person: verdict tables and the spectrum table (rich, plain in CI logs)."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from weir.sim.kernel.units import format_duration

from .api import RunResult
from weir.sim.kernel.files import atomic_write, safe_file_name

__all__ = ["console", "run_table", "subtask_table", "reconciliation_table", "print_explore", "save_counterexample", "regression_test", "print_coverage", "print_run", "spectrum_table", "print_spectrum"]


def clip(text: str, width: int) -> str:
    """`text` cut to `width` characters at a word boundary, with an ellipsis if anything was cut."""
    if len(text) <= width:
        return text
    cut = text[:max(0, width - 1)]
    if " " in cut:
        cut = cut[:cut.rindex(" ")]
    return cut.rstrip(" ,;:(") + "…"


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader of the output left (`weir list | head`): rich exits with 1, which is weir's
        "not as expected"; raised on, weir.cli.main leaves with 141, as for JSON output."""
        self.quiet = True
        raise BrokenPipeError


def console(file=None) -> Console:
    """A console at least 120 columns wide, so tables do not wrap in CI logs."""
    width = max(120, shutil.get_terminal_size((120, 24)).columns)
    return _Console(file=file, width=width, soft_wrap=False, highlight=False)


def run_table(result: RunResult) -> Table:
    table = Table(box=box.SIMPLE_HEAVY, show_edge=False, pad_edge=False)
    table.add_column("invariant")
    table.add_column("expected")
    table.add_column("verdict")
    table.add_column("as expected")
    table.add_column("evidence", overflow="fold")
    for v, e in zip(result.verdicts, result.expectations):
        verdict = "[green]held[/]" if v.held else "[red]violated[/]"
        met = "-" if e.expected is None else ("not shown on this seed" if e.not_shown else
                                              "yes" if e.met else "[bold red]NO[/]")
        table.add_row(v.invariant, e.expected or "-", verdict, met, escape(v.summary))  # user text: never markup
    return table


def subtask_table(result: RunResult) -> Table:
    """Per processor subtask: records taken in, share of the total, time busy, deepest input queue."""
    table = Table(title="processor subtasks", box=box.SIMPLE_HEAVY, show_edge=False, pad_edge=False)
    for name in ("subtask", "records", "share", "busy", "max queued records"):
        table.add_column(name, justify="right")
    total = sum(t["records"] for t in result.subtasks) or 1
    busiest = max((t["records"] for t in result.subtasks), default=0)
    for t in result.subtasks:
        style = "[bold]" if t["records"] == busiest and len(result.subtasks) > 1 else ""
        table.add_row(f"{style}{t['subtask']}", f"{style}{t['records']}", f"{100 * t['records'] / total:.1f}%",
                      format_duration(t["busy_us"]), str(t["max_queued_records"]))
    return table


def reconciliation_table(result: RunResult) -> Table:
    """The reconciliation job's rows, as the seed's query returns them (worst status first)."""
    table = Table(title="reconciliation (source log vs sink, per day and source system)", box=box.SIMPLE_HEAVY,
                  show_edge=False, pad_edge=False)
    names = ("day", "source system", "source", "source unique", "sink", "sink unique", "missing", "duplicate", "status")
    for name in names:
        table.add_column(name, justify="left" if name in ("source system", "status") else "right")
    colour = {"OK": "green", "WARN": "yellow", "CRITICAL": "red"}
    for r in result.reconciliation:
        cells = [r["event_date"], r["source_system"], r["source_count"], r["source_unique"], r["sink_count"],
                 r["sink_unique"], r["missing_records"], r["duplicate_records"]]
        table.add_row(*("-" if c is None else str(c) for c in cells), f"[{colour[r['status']]}]{r['status']}[/]")
    return table


#: How many lines of the user's traceback `weir run` shows (the report shows all of it).
TRACEBACK_SHOWN = 12


def print_user_errors(r: RunResult, out: Console) -> None:
    """What the user's code did wrong: each finding once, and the traceback of the one that
    stopped the run (its innermost lines)."""
    shown = list(dict.fromkeys(r.user_errors))  # the same error again and again: once
    out.print(f"  your code failed {len(r.user_errors)} time(s): " + "; ".join(shown[:3]), markup=False)
    verdict = next((v for v in r.verdicts if v.invariant == "no_user_errors"), None)
    lines = (verdict.evidence.get("error", {}).get("traceback") or "").splitlines() if verdict else []
    if lines:
        cut = lines[-TRACEBACK_SHOWN:]
        more = f" (last {len(cut)} of {len(lines)} lines; `weir report` keeps it all)" if len(lines) > len(cut) else ""
        out.print(f"  your side of the traceback{more}:", markup=False)
        for line in cut:
            out.print(f"    {line}", markup=False, overflow="fold")


def print_run(result: RunResult, out: Console, scenario_ref: str | None = None, options: str = "") -> None:
    """A run's verdicts and counts. `scenario_ref` and `options` (" --records N --faults FILE", as
    given to `weir run`, shell-quoted) make the hints name the same run."""
    r = result
    out.print(f"[bold]{escape(r.scenario)}[/]  seed {r.seed}")
    if r.description:
        out.print(f"  {r.description}", overflow="fold", markup=False)
    if r.sagas is not None:
        out.print(f"  {r.records} sagas: order -> payment -> inventory -> shipping, compensated last first on failure")
    else:
        if r.panes is None:
            output = f"sink {escape(r.sink)}"
        else:  # a windowed job writes panes to the results table: upserted, or through two-phase commit
            output = "window results (" + ("two-phase commit" if r.sink == "transactional" else "upserted") + ")"
        out.print(f"  mode {r.mode}, {output}, {r.records} records in {r.partitions} partitions, "
                  f"batch size {r.batch_size}")
    out.print("  faults: " + ("; ".join(r.faults) if r.faults else "none"))
    out.print(f"  ended: {r.status} at t={format_duration(r.end_time_us)} after {r.events} events; "
              f"{r.restarts} job restart(s), {r.checkpoints} checkpoint(s) completed")
    if r.status != "drained" and r.unprocessed:
        out.print(f"  {r.unprocessed} records were still to be processed when it stopped: not judged as lost")
    if r.user_errors:
        print_user_errors(r, out)
    if r.sagas is not None:
        g = r.sagas
        out.print(f"  sagas: {g['committed']} committed, {g['compensated']} compensated, {g['partial']} left partly "
                  f"applied, {g['unfinished']} unfinished")
    elif r.panes is not None:
        out.print(f"  windows: {r.panes} panes written for {r.produced} produced records; "
                  f"{r.late_records} records too late for their windows")
    elif r.payments is not None:
        pay = r.payments
        out.print(f"  payments: {pay['applied']} of {pay['payments']} applied, {pay['charges']} charges for "
                  f"{r.produced} payment records (re-sends and replays included); "
                  f"{pay['charged_twice_or_more']} charged twice or more")
    else:
        out.print(f"  sink: {r.sink_rows} rows for {r.produced} produced records: {r.lost} lost, "
                  f"{r.duplicated} duplicated ({r.extra_rows} extra rows)")
        if r.dlq and (r.dlq["dead_lettered"] or r.dlq["skipped"]):
            out.print(f"  dead-letter queue: {r.dlq['dead_lettered']} records dead-lettered, {r.dlq['replayed']} "
                      f"replayed, {r.dlq['depth']} still waiting (deepest {r.dlq['max_depth']}); "
                      f"{r.dlq['skipped']} skipped")
        up = r.upsert
        if up is not None and up["replays"]:
            out.print(f"  the upsert sink wrote {up['replays']} rows again for records it already had: replays it "
                      f"absorbed (dedup key {', '.join(up['dedup_key'])})")
        if up is not None and up["merged"]:
            pair = up["example"]
            example = (f"; records {pair[0]} and {pair[1]} share it, and the row holds {pair[0]}"
                       if pair is not None else "")
            out.print(f"  the upsert sink merged {up['merged']} distinct records into other records' rows: its dedup "
                      f"key ({', '.join(up['dedup_key'])}) is not unique per record{example}", markup=False)
    if r.subtasks and (r.parallelism > 1 or len(r.sources) > 1):  # (sagas run no pipeline: no subtasks)
        stalled = ", ".join(f"{format_duration(t['backpressured_us'])} (subtask {t['subtask']})" for t in r.sources)
        out.print(f"  parallelism {r.parallelism}; sources back-pressured (could not poll): {stalled}")
        out.print()
        out.print(subtask_table(r))
    if r.reconciliation:
        out.print()
        out.print(reconciliation_table(r))
    out.print()
    out.print(run_table(r))
    out.print()
    out.print("outcome: " + ("as expected" if r.matches else "[bold red]NOT as expected[/]"))
    if any(e.not_shown for e in r.expectations):
        out.print(f"  (a `violate` claim is a demonstration promised on the scenario's own seed; seed {r.seed} is "
                  f"another, where it may not show: `weir sweep` says how often it does)", markup=False)
    from weir.analysis.lineage import first_bad_record
    bad = first_bad_record(r.verdicts)
    if bad is not None:
        out.print(f"first bad record: {bad} (its path, plots and a sequence diagram: "
                  f"weir report {scenario_ref or r.scenario} --seed {r.seed}{options})", markup=False, highlight=False,
                  soft_wrap=True)  # a command: never broken across lines (a terminal wraps it, a paste keeps it)
    out.print(f"trace sha256: {r.trace_sha256}")


def spectrum_table(results: tuple[RunResult, ...]) -> Table:
    table = Table(title="The delivery-semantics spectrum, measured: same workload, same crash",
                  box=box.SIMPLE_HEAVY, show_edge=False, pad_edge=False)
    for name, justify in (("mode", "left"), ("produced", "right"), ("lost", "right"), ("duplicated", "right"),
                          ("extra rows", "right"), ("exactly-once", "left"), ("seed", "right")):
        table.add_column(name, justify=justify)
    for r in results:
        eo = r.verdict("exactly_once")
        table.add_row(r.mode, str(r.produced), str(r.lost), str(r.duplicated), str(r.extra_rows),
                      "[green]held[/]" if eo.held else "[red]violated[/]", str(r.seed))
    return table


def print_spectrum(results: tuple[RunResult, ...], out: Console) -> None:
    faults = results[0].faults if results else ()
    out.print(spectrum_table(results))
    out.print()
    out.print(f"each row: {results[0].records} records through source -> processor -> sink; "
              f"faults: {'; '.join(faults) or 'none'}")
    out.print("lost = records with no row in the sink; duplicated = records with more than one row.")
    for r in results:
        flag = "as expected" if r.matches else "NOT as expected"
        out.print(f"  {r.scenario}: {flag}; replay with `weir run {r.scenario} --seed {r.seed}`", soft_wrap=True)


def regression_test(scenario_ref: str, ce) -> str:
    """A pytest test that replays a counterexample and asserts the claim it broke (it fails until fixed)."""
    name = "".join(c if c.isalnum() else "_" for c in ce.scenario.name)
    # every field the kind uses (Fault's repr); none left: the design breaks on a plain run
    faults = "    faults = (\n" + "".join(f"        {f!r},\n" for f in ce.faults) + "    )\n" if ce.faults else "    faults = ()\n"
    return (f"def test_{name}_{ce.verdict.invariant}_seed_{ce.seed}():\n"
            f"    from dataclasses import replace\n\n"
            f"    import weir\n"
            + ("    from weir import Fault\n\n" if ce.faults else "\n") +
            f"    scenario = weir.load_scenario({scenario_ref!r})\n"
            f"    scenario = replace(scenario, workload=replace(scenario.workload, records={ce.scenario.workload.records}))\n"
            f"{faults}"
            f"    result = weir.run(scenario, seed={ce.seed}, faults=faults)\n"
            f"    verdict = result.verdict({ce.verdict.invariant!r})\n"
            f"    assert verdict.held, verdict.summary\n")


def save_schedule(out_dir, file_stem: str, scenario_ref: str, seed: int, faults, found_by: str,
                  records: int | None = None) -> tuple[Path, str]:
    """Write `faults` as a faults file `out_dir/FILE_STEM.faults.toml`; (its path, the command that
    runs that schedule on `scenario_ref` with `seed`, and `records` if given). `found_by` heads the
    file's comment."""
    from weir.analysis.report import run_command
    from weir.sim.scenario.loader import faults_toml
    path = Path(out_dir) / f"{safe_file_name(file_stem)}.faults.toml"
    replay = run_command(scenario_ref, seed, str(path), records)
    atomic_write(path, faults_toml(faults, f"{found_by}\nreplay: {replay}"))
    return path, replay


def save_counterexample(report, scenario_ref: str, out_dir) -> tuple[Path, str] | None:
    """Write what explore found as a faults file in `out_dir`; (its path, the command that replays
    it), or None if it found nothing."""
    ce = report.counterexample
    if ce is None:
        return None
    return save_schedule(out_dir, f"{ce.scenario.name}.seed{ce.seed}", scenario_ref, ce.seed, ce.faults,
                         f"found by weir explore {scenario_ref}: {ce.verdict.invariant} violated",
                         ce.scenario.workload.records)


def print_explore(report, scenario_ref: str, out_dir, out: Console) -> None:
    """What explore found (or that it found nothing), the replay command and a regression test."""
    ce = report.counterexample
    if ce is None:
        out.print(f"nothing broken: {report.runs} runs in {report.seconds:.1f}s ({report.runs_per_second:.1f} runs/s)")
        return
    v = ce.verdict
    out.print(f"[bold red]{v.invariant} violated[/] after {report.runs} runs; shrunk in {report.shrink_runs} runs "
              f"from {len(ce.found_faults)} fault(s) to {len(ce.faults)}, with {ce.scenario.workload.records} records "
              f"({report.seconds:.1f}s in all)")
    for f in ce.faults:
        out.print(f"  {f.describe()}")
    out.print(f"  {v.summary}", overflow="fold", markup=False)
    _path, replay = save_counterexample(report, scenario_ref, out_dir)
    out.print(f"replay: {replay}", soft_wrap=True, markup=False)
    out.print("regression test:")
    out.print(regression_test(scenario_ref, ce), markup=False, highlight=False, soft_wrap=True)


#: What matrix and crashpoints say when cells broke and no --out was given.
OUT_HINT = "  (--out DIR writes each broken cell's first failing schedule there, with the command that replays it)"


def print_coverage(coverage, out: Console, scenario_ref: str | None = None, out_dir=None) -> None:
    """The crash-point matrix: a row per protocol step, a column per node, what a crash there broke;
    with `out_dir`, each broken cell's first failing schedule written there, and its replay command."""
    table = Table(box=box.SIMPLE_HEAVY, show_edge=False, pad_edge=False)
    table.add_column("step (time in the reference run)")
    for node in coverage.nodes:
        table.add_column(node)
    for label, t in coverage.steps:
        cells = []
        for node in coverage.nodes:
            broken = coverage.broken[(label, node)]
            cells.append("[red]" + ", ".join(broken) + "[/]" if broken else "[green]ok[/]")
        table.add_row(f"{label} (t={format_duration(t)})", *cells)
    out.print(table)
    out.print()
    bad = sum(1 for b in coverage.broken.values() if b)
    what = {"crash": "crashed", "pause": "paused", "partition": "partitioned off", "delay": "delayed",
            "duplicate": "had its messages duplicated", "reorder": "had its messages reordered"}.get(
        coverage.kind, f"given a {coverage.kind} fault")
    out.print(f"{coverage.runs} runs: {len(coverage.steps)} steps x {len(coverage.nodes)} nodes, each {what} at the "
              f"step and 1us after; " + (f"[red]{bad} cells broke a claim[/]" if bad else "every claim held"))
    if bad and out_dir is None:
        out.print(OUT_HINT, markup=False, highlight=False)
    if out_dir is None:
        return
    ref = scenario_ref or coverage.scenario
    for (label, node), schedule in coverage.failing.items():
        _path, replay = save_schedule(out_dir, f"{coverage.scenario}.{coverage.kind}.{node}.{label}", ref,
                                      coverage.seed, schedule, f"weir crashpoints: {node} given a {coverage.kind} "
                                      f"fault at {label} broke {', '.join(coverage.broken[(label, node)])}")
        out.print(f"  {label}, {node}: replay: {replay}", markup=False, highlight=False, soft_wrap=True)


def print_sweep(result, out: Console, scenario_ref: str, options: str = "") -> None:
    """A seed sweep: per invariant, how many seeds held and violated it, and where it was not as
    expected; `options` (" --faults FILE", shell-quoted) make the replay line run the same runs."""
    n = len(result.results)
    seeds = result.seeds
    span = f"seeds {seeds[0]}..{seeds[-1]}" if seeds == tuple(range(seeds[0], seeds[0] + n)) else f"{n} seeds"
    out.print(f"[bold]{escape(result.scenario)}[/]  {span} on {result.workers} worker(s), {result.seconds:.1f}s")
    table = Table(box=box.SIMPLE_HEAVY, show_edge=False, pad_edge=False)
    for name, justify in (("invariant", "left"), ("expected", "left"), ("held", "right"), ("violated", "right"),
                          ("violated on", "right"), ("not as expected in seeds", "left")):
        table.add_column(name, justify=justify)
    tally = result.tally()
    for invariant, row in tally.items():
        bad = row["unexpected"]
        shown = ", ".join(map(str, bad[:8])) + (f" (+{len(bad) - 8})" if len(bad) > 8 else "")
        table.add_row(invariant, row["expected"] or "-", str(row["held"]), str(row["violated"]),
                      f"{100 * row['violated_share']:.0f}%", f"[bold red]{shown}[/]" if bad else "")
    out.print(table)
    failing = result.failing_seeds()
    out.print(f"outcome: {n - len(failing)} of {n} seeds as expected")
    if any(row["expected"] == "violate" for row in tally.values()):
        out.print("  (`hold` claims must hold on every seed; a `violate` claim is a demonstration, promised on the "
                  "scenario's own seed and shown here as how often it shows)", markup=False)
    if failing:
        out.print(f"replay the first: weir run {shlex.quote(scenario_ref)} --seed {failing[0]}{options}", markup=False,
                  highlight=False, soft_wrap=True)


#: The matrix's column headers, short enough that the table fits 120 columns (a key below names them).
KIND_HEADERS = {"crash": "crash", "partition": "part", "pause": "pause", "duplicate": "dup", "reorder": "reord",
                "clock_step": "clock", "sink_ack_lost": "ackl", "store_fail": "store"}


def _ms(us: int) -> str:
    return f"{us / 1000:.0f}ms" if us >= 10_000 else f"{us / 1000:.1f}ms"


def print_matrix(matrix, out: Console, out_dir=None) -> None:
    """The pattern x fault matrix in 120 columns: per cell, the runs whose promise held (red where it
    broke); per row, its fault-free cost. Below it: the column key, each pattern's promise, and which
    claim broke where; with `out_dir`, each broken cell's first failing schedule written there and
    the command that replays it."""
    table = Table(title=f"Does the pattern keep its promise? Runs that held, of {matrix.runs} per fault family "
                        f"(matrix seed {matrix.seed})", box=box.SIMPLE_HEAVY, show_edge=False, pad_edge=False)
    table.add_column("pattern")
    for kind in matrix.kinds:
        table.add_column(KIND_HEADERS.get(kind, kind), justify="right")
    table.add_column("drained", justify="right")
    table.add_column("p50", justify="right")
    broke: list[tuple[str, str, str]] = []
    for pattern in matrix.patterns:
        cells = []
        for kind in matrix.kinds:
            cell = matrix.cells[(pattern, kind)]
            if cell.runs == 0:
                cells.append("n/a")
            elif cell.held == cell.runs:
                cells.append(f"{cell.held}/{cell.runs}")
            else:
                cells.append(f"[bold red]{cell.held}/{cell.runs}[/]")
                claims = ", ".join(f"{c} {n}" for c, n in sorted(cell.broken.items(), key=lambda kv: (-kv[1], kv[0])))
                broke.append((pattern, kind, claims))
        cost = matrix.costs[pattern]
        latency = cost["p50_latency_us"]
        table.add_row(escape(pattern), *cells, _ms(cost["drained_at_us"]), "-" if latency is None else _ms(latency))
    out.print(table)
    key = [f"{short} = {kind}" for kind, short in KIND_HEADERS.items() if kind in matrix.kinds and short != kind]
    out.print("columns: " + ", ".join(key + ["drained = when the fault-free run drained", "p50 = its median "
                                            "end-to-end latency (event time to visible in the sink)"]),
              markup=False, highlight=False)
    out.print("promises (the claims a cell counts, with drained): " + "; ".join(
        f"{p}: {', '.join(c for c in matrix.claims[p] if c != 'drained')}" for p in matrix.patterns),
        markup=False, highlight=False)
    from weir.faults.matrix import PATTERNS
    for pattern, kind, claims in broke:
        out.print(f"  broken: {pattern} under {kind}: {claims} runs", markup=False, highlight=False)
        if out_dir is not None:
            seed, faults = matrix.cells[(pattern, kind)].first_failure
            name = PATTERNS[pattern][0]
            _path, replay = save_schedule(out_dir, f"{name}.{kind}.seed{seed}", name, seed, faults,
                                          f"the first run of weir matrix (seed {matrix.seed}) that broke {pattern} "
                                          f"under {kind}")
            out.print(f"    replay the first: {replay}", markup=False, highlight=False, soft_wrap=True)
    if broke and out_dir is None:
        out.print(OUT_HINT, markup=False, highlight=False)
    print_section8(matrix, out)


def print_section8(matrix, out: Console) -> None:
    """The seed's comparison and decision matrices (its section 8), measured from the matrix's runs."""
    from weir.faults.matrix import comparison, decisions
    table = Table(title="The seed's comparison matrix, measured", box=box.SIMPLE_HEAVY, show_edge=False,
                  pad_edge=False)
    for name, justify in (("pattern", "left"), ("lines", "right"), ("p50", "right"), ("state kept", "left"),
                          ("recovery from crashes", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for row in comparison(matrix):
        latency = row["p50_latency_us"]
        seed = f" ({row['seed_column']})" if row["seed_column"] else ""
        table.add_row(escape(row["pattern"] + seed), str(row["lines"]), "-" if latency is None else _ms(latency),
                      escape(row["state"]), escape(row["recovery"]))
    out.print()
    out.print(table)
    out.print("lines = the scenario's TOML without blanks and comments (complexity); p50 = median end-to-end latency")
    table = Table(title="The seed's decision matrix, from the runs", box=box.SIMPLE_HEAVY, show_edge=False,
                  pad_edge=False)
    for name in ("requirement", "recommended (measured)", "because"):
        table.add_column(name, overflow="fold")
    for row in decisions(matrix):
        table.add_row(row["requirement"], escape("; ".join(row["recommended"]) or "-"), row["why"])
    out.print()
    out.print(table)
