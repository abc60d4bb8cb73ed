"""Layers that only look down, and no import circles (DESIGN.md "Layers", docs/architecture.md).

Walks the AST of every module under ``nuwa/`` and collects its imports of ``nuwa`` modules,
at module level and inside functions. ``LAYERS`` below is THE layer order of the project
(docs/architecture.md points here): a module may import its own layer and the ones below it,
never one above. Module-level imports must not form a cycle (strongly connected components of
the import graph); a function-level import must not close one either (hiding a circle inside
a function is still a circle), and every function-level import outside ``nuwa/script`` carries
a comment saying why it is made late (start-up speed of a heavy optional path).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, "nuwa")

#: the layers, bottom up; a module belongs to the layer of its longest matching prefix.
#: ``nuwa`` itself (the package ``__init__``, which re-exports the API) is the top layer.
LAYERS: list[tuple[str, ...]] = [
    ("nuwa.errors", "nuwa.host"),
    ("nuwa.formats",),
    ("nuwa.fs",),
    ("nuwa.image",),
    ("nuwa.deb",),
    ("nuwa.script",),
    ("nuwa.apt",),
    ("nuwa.patch",),
    ("nuwa.api",),
    ("nuwa.fleet",),
    ("nuwa", "nuwa.cmd", "nuwa.cli", "nuwa.__main__"),
]

@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``line`` (``toplevel``: executed when the module loads)."""

    source: str
    target: str
    line: int
    toplevel: bool
    commented: bool


def _modules() -> dict[str, str]:
    """Every module under nuwa/: dotted name -> file."""
    out = {}
    for d, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(d, f), ROOT)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                out[".".join(rel)] = os.path.join(d, f)
    return out


MODULES = _modules()


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of ``module`` (longest prefix wins)."""
    best, index = -1, None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, index = len(p), i
    assert index is not None, f"{module} is in no layer: add it to LAYERS"
    return index


def _is_package(module: str) -> bool:
    return MODULES[module].endswith("__init__.py")


def _resolve(module: str, node: ast.ImportFrom) -> str:
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        if not _is_package(module):
            parts = parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([base] if base else []))
    return base


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _edges_of(module: str) -> list[Edge]:
    path = MODULES[module]
    src = open(path, encoding="utf-8").read()
    lines = src.splitlines()
    out: list[Edge] = []

    def commented(lineno: int) -> bool:
        return "#" in lines[lineno - 1] or (lineno >= 2 and lines[lineno - 2].strip().startswith("#"))

    def add(target: str, node, toplevel: bool) -> None:
        if target == "nuwa" or target.startswith("nuwa."):
            out.append(Edge(module, target, node.lineno, toplevel, commented(node.lineno)))

    def visit(node, toplevel: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for a in child.names:
                    target = a.name
                    while target not in MODULES and "." in target:
                        target = target.rsplit(".", 1)[0]
                    add(target, child, toplevel)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(module, child)
                for a in child.names:
                    full = f"{base}.{a.name}"
                    add(full if full in MODULES else base, child, toplevel)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            elif isinstance(child, ast.If) and _type_checking(child):
                continue  # never executed: annotations only
            else:
                visit(child, toplevel)

    visit(ast.parse(src, path), True)
    return out


EDGES = [e for m in sorted(MODULES) for e in _edges_of(m)]


def strongly_connected(edges) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (or a self-import)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:  # recursion depth is bounded by the number of modules (~200)
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _describe(comps) -> str:
    return "\n".join(" <-> ".join(c) for c in comps)


def test_every_module_is_in_a_layer():
    for m in MODULES:
        layer_of(m)


def test_imports_only_look_down():
    bad = [f"{e.source}:{e.line} imports {e.target} (layer {layer_of(e.source)} -> {layer_of(e.target)})"
           for e in EDGES if layer_of(e.target) > layer_of(e.source)]
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_module_level_cycle():
    comps = strongly_connected(e for e in EDGES if e.toplevel)
    assert not comps, "module-level import cycles:\n" + _describe(comps)


def test_no_cycle_hidden_in_a_function():
    comps = strongly_connected(EDGES)
    assert not comps, "import cycles closed by function-level imports:\n" + _describe(comps)


def test_function_level_imports_say_why():
    bad = [f"{e.source}:{e.line} imports {e.target} inside a function without a comment"
           for e in EDGES if not e.toplevel and not e.commented]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The checks above can fail: a made-up cycle and a made-up upward edge are caught."""
    fake = [Edge("nuwa.fs.a", "nuwa.fs.b", 1, True, False), Edge("nuwa.fs.b", "nuwa.fs.a", 1, True, False)]
    assert strongly_connected(fake) == [["nuwa.fs.a", "nuwa.fs.b"]]
    assert layer_of("nuwa.deb.x") > layer_of("nuwa.fs.x") > layer_of("nuwa.formats.x")
    assert layer_of("nuwa.patch.staging") > layer_of("nuwa.script.interp")
    assert layer_of("nuwa.cmd.patch") > layer_of("nuwa.fleet.job") > layer_of("nuwa.api") > layer_of("nuwa.patch")
    assert layer_of("nuwa") == layer_of("nuwa.cmd.patch") == len(LAYERS) - 1
