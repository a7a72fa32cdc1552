"""Layering of matlib/, checked on the source with `ast` (nothing is imported).

- matlib/ never imports Prefect, `flows` or `tasks` (anywhere, also inside functions): those sit above it.
- No import cycle between matlib modules: module-level imports (the ones that run when a module loads; imports
  inside functions and under `if TYPE_CHECKING:` do not) form a graph with no cycle. `from a.b import c` is an
  edge to `a.b.c` when that is a module, else to `a.b`. Nor with the imports inside functions added: an import
  deferred into a function to dodge a cycle is still a cycle.
- No function in matlib/ is longer than 60 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

MATLIB = Path(__file__).resolve().parents[1] / "matlib"
FORBIDDEN = ("prefect", "flows", "tasks")
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    """Every module of matlib/ by dotted name (a package by its own name)."""
    out = {}
    for path in sorted(MATLIB.rglob("*.py")):
        parts = list(path.relative_to(MATLIB.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    """The absolute module name an ImportFrom reads from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The module names one import statement loads."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    source = _absolute(module, node, MODULES[module].name == "__init__.py")
    for alias in node.names:
        full = f"{source}.{alias.name}"
        yield full if full in MODULES else source


def _is_type_checking(node: ast.If) -> bool:
    """True for `if TYPE_CHECKING:` (imports only for the type checker)."""
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module loads (not in functions or classes' methods)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            yield from _module_level(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            yield from _module_level(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                yield from _module_level(handler.body)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _module_level(node.body)


def _tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))


def _anywhere(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, also inside functions (imports deferred to call time), except `if TYPE_CHECKING:`."""
    for node in body:
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from _anywhere(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                yield from _anywhere([child])
            elif isinstance(child, ast.excepthandler):
                yield from _anywhere(child.body)


def import_graph(deferred: bool = False) -> dict[str, set[str]]:
    """matlib module -> the matlib modules it imports at module level (and inside functions when deferred)."""
    graph: dict[str, set[str]] = {}
    walk = _anywhere if deferred else _module_level
    for module in MODULES:
        targets = {t for node in walk(_tree(module).body) for t in _imported(module, node)}
        graph[module] = {t for t in targets if t in MODULES and t != module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_matlib_never_imports_prefect_flows_or_tasks():
    offenders = []
    for module, path in MODULES.items():
        for node in ast.walk(_tree(module)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for name in _imported(module, node):
                    if name.split(".")[0] in FORBIDDEN:
                        offenders.append(f"{path.relative_to(MATLIB.parent)}:{node.lineno} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_no_import_cycle_between_matlib_modules():
    graph = import_graph()
    assert sum(map(len, graph.values())) > 100  # the walker sees the package's imports at all
    assert "matlib.descriptors.spec" in graph["matlib.descriptors.base"]
    assert not find_cycles(graph), find_cycles(graph)


def test_no_cycle_even_through_imports_inside_functions():
    """An import moved into a function to dodge a cycle still makes one: none is left."""
    graph = import_graph(deferred=True)
    assert sum(map(len, graph.values())) > sum(map(len, import_graph().values()))  # deferred imports are seen
    assert not find_cycles(graph), find_cycles(graph)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def long_functions() -> list[str]:
    """'path:line name (n lines)' for every function of matlib/ over MAX_FUNCTION_LINES."""
    out = []
    for module, path in MODULES.items():
        for node in ast.walk(_tree(module)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out.append(f"{path.relative_to(MATLIB.parent)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_over_60_lines():
    offenders = long_functions()
    assert not offenders, "functions over 60 lines:\n" + "\n".join(offenders)
