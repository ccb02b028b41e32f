"""weir's modules import one way: no import cycles, and no layer imports a layer above it.

The layers, lowest first, are declared once here (the README's architecture section shows the same
picture). A module may import its own layer and the layers below it. What is imported only for
type annotations (under `if TYPE_CHECKING:`) is not a dependency at run time and is left out: a
lower layer may name a higher layer's type in a hint (the job's `scenario: Scenario`), never use it.
Imports inside functions count like any other: a late import hides a cycle, it does not break it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "weir"

#: The layers, lowest first: (name, the packages or modules that make it up).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kernel", ("weir.sim.kernel",)),
    ("kafka", ("weir.sim.kafka",)),
    ("stream", ("weir.sim.stream",)),
    ("patterns", ("weir.sim.patterns",)),
    ("scenario", ("weir.sim.scenario", "weir.sim", "weir.scenarios")),
    ("analysis", ("weir.analysis",)),
    ("faults", ("weir.faults",)),
    ("api", ("weir",)),  # the public API, the command line, sweeps, the pytest plugin
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("weir",) + path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def layer_of(module: str) -> int:
    """The index in LAYERS of the longest declared prefix of `module`."""
    best, depth = None, -1
    for i, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = i, prefix.count(".")
    assert best is not None, f"{module} is in no layer: add it to LAYERS in {__file__}"
    return best


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str) -> list[tuple[str, int]]:
    """The weir modules `module` imports at run time, with the line of each import."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    def target(name: str) -> str | None:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for stmt in child.orelse:
                    visit(stmt)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "weir":
                        found.append((target(alias.name), child.lineno))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    name = ".".join(base + ([child.module] if child.module else []))
                else:
                    name = child.module or ""
                if name.split(".")[0] != "weir":
                    continue
                for alias in child.names:  # `from weir.sim import kernel` imports the module weir.sim.kernel
                    sub = f"{name}.{alias.name}"
                    found.append((sub if sub in MODULES else target(name), child.lineno))
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return [(m, line) for m, line in found if m is not None and m != module]


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer_of(module)


def test_no_layer_imports_a_layer_above_it():
    upward = []
    for module, imports in GRAPH.items():
        for imported, line in imports:
            if layer_of(imported) > layer_of(module):
                upward.append(f"{MODULES[module].relative_to(ROOT.parent)}:{line}: {module} "
                              f"({LAYERS[layer_of(module)][0]}) imports {imported} ({LAYERS[layer_of(imported)][0]})")
    assert not upward, "imports from a lower layer into a higher one:\n" + "\n".join(upward)


def _cycles() -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan's algorithm), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, _line in GRAPH[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            connect(v)
    return sorted(found)


def test_no_import_cycles():
    cycles = _cycles()
    assert not cycles, "import cycles among weir's modules:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("source, cyclic, upward", [
    ("from weir.sim.scenario.model import Scenario\n", False, True),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from weir.sim.scenario.model import Scenario\n",
     False, False),
    ("def late():\n    from weir.faults import explore\n", False, True),
])
def test_the_checks_see_what_they_should(tmp_path, monkeypatch, source, cyclic, upward):
    """The scanner on a made-up kernel module: a plain import, a type-only one, a late one."""
    fake = tmp_path / "weir" / "sim" / "kernel" / "fake.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(source)
    monkeypatch.setitem(MODULES, "weir.sim.kernel.fake", fake)
    imports = imports_of("weir.sim.kernel.fake")
    assert any(layer_of(m) > layer_of("weir.sim.kernel.fake") for m, _ in imports) is upward, imports
    assert (bool(imports) and "weir.sim.kernel.fake" in [m for m, _ in imports]) is cyclic


def test_the_cycle_finder_finds_a_cycle(monkeypatch):
    monkeypatch.setitem(GRAPH, "weir.sim.kernel.trace", GRAPH["weir.sim.kernel.trace"] + [("weir.sim.kernel.world", 1)])
    cycles = _cycles()
    assert any({"weir.sim.kernel.trace", "weir.sim.kernel.world"} <= set(c) for c in cycles), cycles
