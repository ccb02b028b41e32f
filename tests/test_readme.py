"""The README's examples run, and every scenario key is documented in it."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

import weir
from weir.sim.scenario.components import ComponentSpec
from weir.sim.scenario.model import (
    Checkpointing, Expect, Fault, LinkSpec, NodeSpec, OutboxSettings, PaymentSettings, Pipeline, SagaSettings, Reconcile, RetryPolicy, RunLimits, WatermarkSettings, WindowSettings, Workload,
)
from weir.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_the_scenario_example_runs_as_it_claims(tmp_path, capsys):
    example = blocks("toml")[0]
    path = tmp_path / "my_pipeline.toml"
    path.write_text(example)
    assert main(["run", str(path)]) == 0, capsys.readouterr().out


def test_every_toml_example_loads_and_matches_the_scenario_schema():
    import tomllib

    import jsonschema

    from weir import schema
    from weir.sim.scenario.loader import parse_scenario
    assert len(blocks("toml")) >= 2
    for text in blocks("toml"):
        doc = tomllib.loads(text)
        parse_scenario(doc)
        assert not list(jsonschema.Draft202012Validator(schema("scenario")).iter_errors(doc)), text


def test_the_python_examples_run():
    examples = blocks("python")
    assert len(examples) >= 2
    for example in examples:
        exec(compile(example, "README.md", "exec"), {})


@pytest.mark.parametrize("cls, heading", [
    (Workload, "### `[workload]`"), (Pipeline, "### `[pipeline]`"), (Checkpointing, "### `[checkpoint]`"),
    (WindowSettings, "### `[window]`"), (WatermarkSettings, "### `[watermarks]`"), (ComponentSpec, "### `[operator]`"),
    (NodeSpec, "### `[nodes.NAME]`"), (Fault, "### `[[faults]]`"), (Expect, "### `[expect]`"),
    (RunLimits, "### `[run]`"), (Reconcile, "### `[reconcile]`"), (RetryPolicy, "### `[retry]`"),
    (PaymentSettings, "### `[payments]`"), (OutboxSettings, "### `[outbox]`"),
    (SagaSettings, "### `[saga]`"), (LinkSpec, "### `[[links]]`"),
])
def test_every_key_is_documented(cls, heading):
    table = first_table(README.split(heading, 1)[1])
    documented = set(re.findall(r"^\| `(\w+)` \|", table, flags=re.M))
    keys = {f.name for f in fields(cls)} - {"name"}
    if cls is ComponentSpec:  # the file says class and params; the dataclass holds cls, params and kind
        keys = {"class", "params"}
    assert keys == documented, f"{heading}: undocumented {sorted(keys - documented)}, stale {sorted(documented - keys)}"


def first_table(section: str) -> str:
    """The first markdown table in `section`: its consecutive lines that start with '|'."""
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def test_the_invariants_table_names_every_checker():
    table = first_table(README.split("### Invariants", 1)[1])
    assert set(re.findall(r"^\| `(\w+)` \|", table, flags=re.M)) == set(weir.INVARIANTS)


def test_the_demo_sample_is_what_demo_prints(capsys):
    assert main(["demo", "--seed", "1"]) == 0
    printed = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    sample = [line.rstrip() for line in README.split("`make demo` runs one workload", 1)[1].split("```")[1].splitlines()[1:]]
    assert [line for line in sample if line.strip()] == [line for line in printed if line.strip()]


def test_the_run_sample_is_what_run_prints(capsys):
    assert main(["run", "exactly_once_crash"]) == 0
    printed = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    sample = README.split("$ weir run exactly_once_crash\n", 1)[1].split("```", 1)[0].rstrip("\n").splitlines()
    # the sample shortens the description (which wraps) to one line ending in "..."
    assert sample[0] == printed[0]
    assert sample[1].endswith("...") and printed[1].startswith(sample[1][:-3].rstrip())
    after_description = next(i for i, line in enumerate(printed) if line.startswith("  mode "))
    assert sample[2:] == printed[after_description:]


def test_the_builtin_scenarios_table_names_every_builtin():
    table = first_table(README.split("## Built-in scenarios", 1)[1])
    assert re.findall(r"^\| `(\w+)` \|", table, flags=re.M) and \
        set(re.findall(r"^\| `(\w+)` \|", table, flags=re.M)) == set(weir.builtin_scenarios())


def test_the_concept_map_names_only_what_exists():
    """README, 'The seed's concepts, mapped': every scenario, notebook and picture it names exists."""
    import weir.analysis.plots as plots
    from weir.sim.scenario.loader import builtin_scenarios
    section = README.split("### The seed's concepts, mapped", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| seed concept")
            and not line.startswith("| ---")]
    assert len(rows) >= 25
    pictures = ({name for name in dir(plots) if not name.startswith("_")}
                | {"sequence_diagram", "checkpoint_diagram", "heatmap", "intervals.plot"})
    seen = set()
    for row in rows:
        concept, scenarios, notebook, picture = (cell.strip() for cell in row.strip("|").split("|"))
        names = re.findall(r"`(\w+)`", scenarios)
        assert names, concept
        for name in names:
            assert name in builtin_scenarios(), f"{concept}: no built-in scenario {name}"
        seen.update(names)
        notebooks = re.findall(r"`(notebooks/\w+\.py)`", notebook)
        assert notebooks, f"{concept}: no notebook"  # every concept the seed names has its lesson
        for path in notebooks:
            assert (ROOT / path).is_file() and (ROOT / path).with_suffix(".ipynb").is_file(), path
        for name in re.findall(r"`([\w.]+)`", picture):
            assert name in pictures, f"{concept}: no picture {name}"
    for letter in "ICROWD":
        assert any(f"**{letter}**" in row for row in rows), letter
    concepts = " ".join(row.split("|")[1] for row in rows)
    for needed in ["correctness spectrum", "scenario 1", "scenario 2", "scenario 3"] + [
            f"trick question {i}" for i in (1, 2, 3)] + [f"failure mode {i}" for i in range(1, 7)] + [
            f"pattern {i}" for i in (1, 2, 3, 4)]:
        assert needed in concepts, needed


@pytest.mark.parametrize("path", ["README.md", "notebooks/README.md"])
def test_the_markdown_renders_with_every_fence_closed(path):
    """Parsed with markdown-it-py (CommonMark, as GitHub renders): every line that starts a fence is
    one fence's opening or closing, a closing fence is bare (text after it would make it the start
    of another code block, swapping code and prose to the end), and no fence runs to the end."""
    from markdown_it import MarkdownIt
    text = (ROOT / path).read_text(encoding="utf-8")
    lines = text.splitlines()
    fences = [t for t in MarkdownIt("commonmark").parse(text) if t.type == "fence"]
    marked = [i for i, line in enumerate(lines) if line.lstrip().startswith("```")]
    bounds = sorted(i for t in fences for i in (t.map[0], t.map[1] - 1))
    assert marked == bounds, f"{path}: fence lines {[i + 1 for i in marked if i not in bounds]} open or close no fence"
    for t in fences:
        closing = lines[t.map[1] - 1].strip()
        assert t.map[1] <= len(lines) and closing == "```", \
            f"{path}:{t.map[0] + 1}: the fence opened here closes at line {t.map[1]} with {closing!r}"
