"""The shape of the tree: no import circles, no oversized modules or functions.

Walks the source with ``ast`` (nothing is imported). Every import counts: one inside a function
or under ``if TYPE_CHECKING:`` still ties the two modules together for a reader (and for the
type checker), so a circle held apart by either is still a circle; a module that needs only the
shape of another takes a ``Protocol`` of its own. ``python tests/test_structure.py`` prints
every finding.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# package name → the folder it is imported from
PACKAGES = {"jobs_bridge": REPO / "jobs_bridge", "floyd": REPO / "extensions" / "floyd",
            "floyd_hub": REPO / "hub_config" / "floyd_hub"}
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
# Alembic revisions are data written once; their length says nothing about design.
SKIP_PARTS = {"alembic"}


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder)
            if SKIP_PARTS & set(rel.parts) or "node_modules" in rel.parts:
                continue
            parts = [package, *rel.with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = set()
        for target in _imports(tree, name, path.name == "__init__.py"):
            # the longest known module the import names (a.b.c may be a module or a name in a.b)
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
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
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _package_edges(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    members = set(component)
    return [f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in members]


def long_modules() -> list[str]:
    out = []
    for _name, path in modules().items():
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            out.append(f"{path.relative_to(REPO)}: {lines} lines (most {MAX_MODULE_LINES})")
    return out


def long_functions() -> list[str]:
    out = []
    for _name, path in modules().items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
                first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
                length = node.end_lineno - first + 1
                if length > MAX_FUNCTION_LINES:
                    out.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {length} lines "
                               f"(most {MAX_FUNCTION_LINES})")
    return out


def test_no_import_circles() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import circles:\n" + "\n\n".join("\n".join(_package_edges(graph, c)) for c in found)


def test_the_graph_sees_function_local_imports() -> None:
    """The walk must find imports inside functions and under TYPE_CHECKING, or circles could hide."""
    tree = ast.parse("def f():\n    from jobs_bridge.app import BridgeApp\n")
    assert "jobs_bridge.app" in set(_imports(tree, "jobs_bridge.x", False))
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import jobs_bridge.app\n")
    assert "jobs_bridge.app" in set(_imports(tree, "jobs_bridge.x", False))
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_modules_fit_in_a_head() -> None:
    assert not long_modules(), "\n".join(long_modules())


def test_functions_fit_on_a_screen() -> None:
    assert not long_functions(), "\n".join(long_functions())


if __name__ == "__main__":
    g = import_graph()
    for c in cycles(g):
        print("circle:\n  " + "\n  ".join(_package_edges(g, c)))
    for line in long_modules() + long_functions():
        print(line)
