"""Every shell example in the README is run (issue 18, item 7): each `$ weir ...` line of a code
block is executed in a fresh folder, its exit code checked, and the lines the README shows after
it must appear in what it printed, in order. In a shown line, `...` stands for anything (a line of
its own: any lines), and a time the machine decides (a number of seconds, runs per second) may be
any number; every other number must be what weir prints. A `| jq '{...}'` filter of the README's
form (keys, and `name: .path`) is applied in Python."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from weir.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")

#: The files the README's examples name, as the text around them describes them.
FILES = {
    "broken.toml": '[[faults]]\nkind = "crash"\nnode = "database"\n',
    "typo.toml": "[workload]\nrecods = 1000\n",
}
#: Sessions that cannot run here, and why (the test below checks this list is exactly those).
_CLUSTER = "a Dask scheduler and workers on several machines; tests/test_dask.py runs a sweep on a local cluster"
NOT_RUN = {"dask scheduler": _CLUSTER, "dask worker ": _CLUSTER, "weir sweep my_pipeline.toml --seeds 2000 --scheduler tcp://": _CLUSTER}
#: Exit codes other than 0: bad input is 2, a claim broken (explore found a counterexample) 1.
EXIT = {"weir run broken.toml": 2, "weir run typo.toml": 2, "weir explore commit_before_ack --budget 60": 1,
        "weir explore examples/two_phase_sink_flawed.toml --runs 40": 1}


def sessions() -> list[tuple[int, str, list[str]]]:
    """(line in the README, command, the lines shown after it) for every `$ ` line of a code block."""
    out = []
    for token in MarkdownIt("commonmark").parse(README):
        if token.type != "fence":
            continue
        lines = token.content.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("$ "):
                shown = []
                for after in lines[i + 1:]:
                    if after.startswith("$ "):
                        break
                    shown.append(after)
                out.append((token.map[0] + 2 + i, line[2:].split("  #")[0].strip(), shown))
    return out


SESSIONS = [s for s in sessions() if not any(s[1].startswith(p) for p in NOT_RUN)]


def test_every_shell_example_is_run_or_says_why_not():
    commands = [command for _line, command, _shown in sessions()]
    skipped = {p for p in NOT_RUN for c in commands if c.startswith(p)}
    assert skipped == set(NOT_RUN), f"NOT_RUN names sessions the README no longer has: {set(NOT_RUN) - skipped}"
    assert all(c.startswith("weir ") for _l, c, _s in SESSIONS), "a shell example that is not weir: run it here"
    assert set(EXIT) <= {c for _l, c, _s in SESSIONS}, f"EXIT names commands the README no longer has: {set(EXIT)}"
    assert len(SESSIONS) >= 8


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


_SECONDS = re.compile(r"\d+(?:\\\.\d+)?(?=s\b|\\ runs/s)")  # in an escaped line: "1\.2s", "8\.8 runs/s"


def _pattern(shown: str) -> re.Pattern:
    parts = re.split(r"(\.\.\.|…)", _flat(shown))
    return re.compile("".join(".*" if p in ("...", "…") else _SECONDS.sub(r"[0-9.]+", re.escape(p)) for p in parts))


def assert_shows(shown: list[str], printed: str, where: str) -> None:
    """Each shown line matches a printed line, in order; a line of its own `...` skips any lines."""
    lines = [_flat(line) for line in printed.splitlines()]
    at = 0
    for want in shown:
        if not want.strip() or want.strip() in ("...", "…"):
            continue
        pattern = _pattern(want)
        while at < len(lines) and not pattern.fullmatch(lines[at]):
            at += 1
        assert at < len(lines), f"{where}: the README shows {want.strip()!r}, which weir did not print " \
                                f"(in order) here:\n{printed}"
        at += 1


def _jq(data: dict, program: str) -> dict:
    """The README's jq form: `{a, b, name: .path.to}`."""
    body = program.strip().strip("'").strip()
    assert body.startswith("{") and body.endswith("}"), program
    out = {}
    for part in body[1:-1].split(","):
        name, _, path = (p.strip() for p in part.partition(":"))
        value = data
        for step in (path or "." + name).strip(".").split("."):
            value = value[step]
        out[name] = value
    return out


@pytest.mark.parametrize("line, command, shown", SESSIONS, ids=[s[1][:60] for s in SESSIONS])
def test_the_readme_shell_example_prints_what_it_shows(line, command, shown, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    weir, _, jq = command.partition(" | jq ")
    code = main(shlex.split(weir)[1:])
    captured = capsys.readouterr()
    where = f"README.md:{line} `{command}`"
    assert code == EXIT.get(command, 0), f"{where} exited {code}:\n{captured.out}{captured.err}"
    printed = json.dumps(_jq(json.loads(captured.out), jq), indent=2) if jq else captured.out + captured.err
    assert_shows(shown, printed, where)
    if command.startswith("weir schema --out "):
        assert (tmp_path / shlex.split(command)[-1] / "scenario.schema.json").is_file()


def test_a_shown_line_that_weir_does_not_print_fails():
    with pytest.raises(AssertionError, match="which weir did not print"):
        assert_shows(["outcome: 6 of 6 seeds as expected"], "outcome: 5 of 6 seeds as expected\n", "here")
    assert_shows(["found in 1.2s (8.8 runs/s)", "...", "last"], "found in 0.7s (11.0 runs/s)\nx\nlast\n", "here")
    with pytest.raises(AssertionError):  # a count is not a time: it must be what weir prints
        assert_shows(["after 4 runs"], "after 5 runs\n", "here")
