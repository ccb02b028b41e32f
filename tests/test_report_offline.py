"""A report opens with no network: Mermaid is shipped with weir and copied beside the page, the
HTML is the Markdown rendered by markdown-it-py, and in a browser with the network off the
sequence diagram is drawn (an svg)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

import weir
from weir.analysis.report import MERMAID_JS, MERMAID_VERSION, write_report

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "r"
    write_report(weir.execute(weir.load_scenario("at_least_once_crash")), out)
    return out


def test_the_page_names_nothing_on_the_network_and_carries_mermaid_beside_it(report):
    page = (report / "report.html").read_text()
    assert not re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", page)  # no script, style or image from afar
    assert '<script src="mermaid.min.js"></script>' in page and '<pre class="mermaid">sequenceDiagram' in page
    assert (report / "mermaid.min.js").read_bytes() == MERMAID_JS.read_bytes()
    licence = MERMAID_JS.with_name("mermaid.LICENSE").read_text()
    assert "MIT License" in licence and MERMAID_VERSION in MERMAID_JS.with_name("README.md").read_text()


def test_the_page_is_the_markdown_rendered_and_shows_text_as_text(report):
    page = (report / "report.html").read_text()
    assert "<h2>Verdicts</h2>" in page and "<td>VIOLATED</td>" in page and '<img src="plots/timeline.png"' in page
    assert "&lt;" not in (report / "report.md").read_text()  # escaping is the page's business, not the Markdown's


def test_a_report_without_a_diagram_has_no_script(tmp_path):
    """Every verdict of exactly_once_crash holds: no counterexample, so no diagram and no Mermaid."""
    write_report(weir.execute(weir.load_scenario("exactly_once_crash")), tmp_path / "r")
    page = (tmp_path / "r" / "report.html").read_text()
    assert '<pre class="mermaid">' not in page and "<script" not in page
    assert not (tmp_path / "r" / "mermaid.min.js").exists()


@pytest.mark.skipif(BROWSER is None, reason="no Chromium on this machine (apt install chromium)")
def test_the_diagram_renders_in_a_browser_with_the_network_off(report):
    """Chromium, headless, every host unresolvable and every request sent to a dead proxy: the
    page's own files are all it has."""
    done = subprocess.run(
        [BROWSER, "--headless=new", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=15000", "--dump-dom",
         (report / "report.html").as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r'<svg[^>]*aria-roledescription="sequence"', done.stdout), done.stdout[-2000:]
