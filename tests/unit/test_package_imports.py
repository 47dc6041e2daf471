"""No two top-level parts of the code import each other, directly or through others.

A part is a package or module directly under `latam_dagster` (ingest, quality, transform, cli,
settings, ...), plus `api_service`. Every import statement counts, including the ones inside
functions that keep start-up fast: a cycle hidden in a function is still a cycle in the design.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("latam_dagster", "api_service")


def _part(module: str) -> str | None:
    """`latam_dagster.quality.audit` -> `quality`; `api_service.x` -> `api_service`."""
    top, _, rest = module.partition(".")
    if top == "api_service":
        return "api_service"
    if top != "latam_dagster" or not rest:
        return None
    return rest.split(".")[0]


def import_graph() -> dict[str, dict[str, set[str]]]:
    """part -> imported part -> the files that import it."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT)
            source = _part(".".join(rel.with_suffix("").parts))
            if source in (None, "__init__"):
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(rel))):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                for name in names:
                    target = _part(name)
                    if target and target != source and _exists(target):
                        graph[source][target].add(str(rel))
    return graph


def _exists(part: str) -> bool:
    if part == "api_service":
        return True
    base = ROOT / "latam_dagster"
    return (base / part).is_dir() or (base / f"{part}.py").exists()


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """The strongly connected components with more than one part (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
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
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_top_level_parts():
    graph = import_graph()
    assert {"quality", "transform", "ingest", "cli"} <= set(graph)  # the scan sees the code
    found = cycles(graph)
    detail = [
        f"{a} -> {b}: {sorted(graph[a][b])}" for c in found for a in c for b in c if b in graph[a]
    ]
    assert not found, "import cycles:\n" + "\n".join(detail)


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b": {"a.py"}}, "b": {"c": {"b.py"}}, "c": {"a": {"c.py"}}, "d": {"a": set()}}
    assert cycles(graph) == [["a", "b", "c"]]
