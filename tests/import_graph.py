"""The import graph of our modules, parsed from their source: for the cycle and layering tests."""

from __future__ import annotations

import ast
import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "meshkit",
    "localmesh",
    "demo",
    "gateway",
    "user_service",
    "product_service",
    "order_service",
    "payment_service",
    "notification_service",
    "bench",
    "chaos",
)
# The scripts are run as files, with their own folder first on sys.path, so they import one
# another by bare name: each is a top-level module named after its file.
SCRIPTS = "scripts"


@dataclass(frozen=True, slots=True)
class Import:
    """Where a module imports another: the file, the line, and what the import waits for."""

    path: Path
    line: int
    # Empty for an import that runs with the module, else "in a function" or "under
    # TYPE_CHECKING". Such an import only puts off the cycle it closes: it no longer fails at
    # import time, but the two modules still cannot be read, tested or moved apart. Both
    # cycles this test was written for were held by one, so it counts deferred imports like
    # any other and only notes them in its report.
    deferred: str


# Each module, and each module of ours that it imports with where (at module level if ever).
Graph = dict[str, dict[str, Import]]


def find_modules(root: Path, packages: Iterable[str], scripts: str) -> dict[str, Path]:
    """Every module of the packages under `root` by dotted name, and each script by its own."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    for path in sorted((root / scripts).glob("*.py")):
        found[path.stem] = path
    return found


def _names_type_checking(test: ast.expr) -> bool:
    return any(
        (isinstance(node, ast.Name) and node.id == "TYPE_CHECKING")
        or (isinstance(node, ast.Attribute) and node.attr == "TYPE_CHECKING")
        for node in ast.walk(test)
    )


def _imports(
    nodes: Iterable[ast.AST], deferred: str
) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, deferred
        elif isinstance(node, ast.If) and _names_type_checking(node.test):
            yield from _imports(node.body, deferred or "under TYPE_CHECKING")
            yield from _imports(node.orelse, deferred)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _imports(ast.iter_child_nodes(node), deferred or "in a function")
        else:
            yield from _imports(ast.iter_child_nodes(node), deferred)


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: Mapping[str, Path]
) -> Iterator[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            anchor = package[: len(package) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        # `from package import name` imports the submodule `name` when there is one.
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
            for alias in node.names
        ]
    for name in names:
        # A name inside a module (`meshkit.data.db.Database`) belongs to its longest known prefix;
        # anything else is not ours and ends empty.
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            yield name


def import_graph(known: Mapping[str, Path]) -> Graph:
    """The imports between the known modules, parsed from their source without running it.

    A module gets no edge to the packages above it, though Python runs their `__init__` first:
    the package is already importing by then, so a package re-exporting its own submodules is
    no cycle. A module that imports a name from its package's `__init__` gets the edge.
    """
    graph: Graph = {}
    for module, path in known.items():
        is_package = path.name == "__init__.py"
        edges: dict[str, Import] = {}
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, deferred in _imports(tree.body, ""):
            for target in _targets(node, module, is_package, known):
                earlier = edges.get(target)
                # An import at module level is the one that matters when there are several.
                if target != module and (earlier is None or (earlier.deferred and not deferred)):
                    edges[target] = Import(path, node.lineno, deferred)
        graph[module] = edges
    return graph


def _strongly_connected(graph: Graph) -> list[set[str]]:
    """Tarjan's groups of modules that each reach every other, of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(group)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return groups


def _shortest_cycle(graph: Graph, group: set[str], start: str) -> list[str]:
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        module = queue.popleft()
        for target in sorted(graph[module]):
            if target == start:
                path = [module]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if target in group and target not in came_from:
                came_from[target] = module
                queue.append(target)
    raise AssertionError(f"{start} is in a group it cannot reach itself from")


def find_cycles(graph: Graph) -> list[list[str]]:
    """Each cycle by its path, first module again at the end: the shortest through every
    module of every group of modules that import one another round."""
    cycles: dict[tuple[str, ...], list[str]] = {}
    for group in _strongly_connected(graph):
        for start in sorted(group):
            cycle = _shortest_cycle(graph, group, start)
            # The same cycle found from another of its modules is told once, from its first.
            first = cycle.index(min(cycle[:-1]))
            rotated = [*cycle[first:-1], *cycle[:first], cycle[first]]
            cycles.setdefault(tuple(rotated), rotated)
    return sorted(cycles.values())


def describe(graph: Graph, cycle: list[str], root: Path) -> str:
    lines = [" -> ".join(cycle)]
    for module, target in itertools.pairwise(cycle):
        where = graph[module][target]
        note = f" ({where.deferred})" if where.deferred else ""
        lines.append(f"    {where.path.relative_to(root)}:{where.line} imports {target}{note}")
    return "\n".join(lines)
