"""The package layout: no import cycle between any two packages, at any depth of nesting.

A package is a folder. Every import statement of every ``.py`` file counts, the ones inside a
function (an import hidden there is still a dependency) and relative ones included. At depth 1 the
packages are the top-level folders (``worker``, ``schemas``...); at depth 2 their sub-folders
(``worker.model``, ``worker.batch_api``...), a module directly in ``worker/`` standing for
``worker``; and so on. A folder and its own sub-folders count as one (``worker/llm.py`` may compose
``worker.model`` and ``worker.batch_api``, which may use ``worker/snippets.py``), so only imports
between packages neither of which contains the other are edges. The harness counts too:
``tests/`` may import ``bench/`` and ``fakes/``, ``bench/`` may import ``fakes/``, never the
reverse; ``samples/`` (data and the script that makes it) is left out. Read with ``ast``: nothing
is imported.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {"build", "dist", "__pycache__", "node_modules"}
#: top-level folders that hold no code of the project or its harness
HARNESS = {"samples"}


@dataclass(frozen=True, slots=True)
class Edge:
    """One import of a module of package ``target`` by a module of package ``source``."""

    source: str
    target: str
    where: str  # "path:line imports name"


def python_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if any(p.startswith(".") or p in SKIP_DIRS for p in parts[:-1]) or parts[0] in HARNESS:
            continue
        yield path


def dotted(root: Path, path: Path) -> tuple[str, str]:
    """``(module, package)`` of a file: ``worker/model/engine.py`` is ``worker.model.engine`` in
    ``worker.model``; ``worker/model/__init__.py`` is ``worker.model`` in ``worker.model``."""
    parts = path.relative_to(root).with_suffix("").parts
    package = ".".join(parts[:-1])
    if parts[-1] == "__init__":
        return package, package
    return ".".join(parts), package


def imported_names(tree: ast.AST, module: str, package: str) -> Iterator[tuple[int, str]]:
    """``(line, dotted name)`` of every import anywhere in ``tree``; for ``from a import b`` both
    ``a.b`` (b may be a module) and ``a``; relative imports resolved against ``package``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}" if base else alias.name


def import_edges(root: Path) -> list[Edge]:
    """Every import from one of the project's packages into another (or the same) one."""
    files = {path: dotted(root, path) for path in python_files(root)}
    modules = {module: package for module, package in files.values()}
    edges = []
    for path, (module, package) in files.items():
        if not package:
            continue  # a script at the root belongs to no package
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, name in imported_names(tree, module, package):
            target = target_package(name, modules)
            if target:
                where = f"{path.relative_to(root)}:{line} imports {name}"
                edges.append(Edge(package, target, where))
    return edges


def target_package(name: str, modules: Mapping[str, str]) -> str | None:
    """The package of the longest prefix of ``name`` that is one of the project's modules; None
    for anything else (the standard library, outside libraries)."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        package = modules.get(".".join(parts[:k]))
        if package is not None:
            return package or None
    return None


def at_depth(package: str, depth: int) -> str:
    return ".".join(package.split(".")[:depth])


def nested(a: str, b: str) -> bool:
    """One of the two packages is the other or contains it."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def package_graph(edges: list[Edge], depth: int) -> dict[str, dict[str, list[str]]]:
    """``graph[a][b]``: the imports that make package ``a`` depend on package ``b``, packages cut
    to ``depth`` parts."""
    graph: dict[str, dict[str, list[str]]] = {}
    for edge in edges:
        a, b = at_depth(edge.source, depth), at_depth(edge.target, depth)
        if not nested(a, b):
            graph.setdefault(a, {}).setdefault(b, []).append(edge.where)
    return graph


def find_cycle(graph: Mapping[str, Mapping[str, object]]) -> list[str] | None:
    """A cycle of ``graph`` as its packages, the first repeated at the end; None when acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def describe(cycle: list[str], graph: Mapping[str, Mapping[str, list[str]]]) -> str:
    lines = [" -> ".join(cycle)]
    for a, b in itertools.pairwise(cycle):
        lines.extend(f"  {a} -> {b}: {where}" for where in graph[a][b][:5])
    return "\n".join(lines)


EDGES = import_edges(ROOT)
MAX_DEPTH = max((e.source.count(".") + 1 for e in EDGES), default=1)


@pytest.mark.parametrize("depth", range(1, MAX_DEPTH + 1))
def test_no_import_cycle_between_packages_at_this_depth(depth: int) -> None:
    graph = package_graph(EDGES, depth)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between packages:\n" + describe(cycle, graph)


def test_the_walk_sees_the_packages_it_checks() -> None:
    packages = {e.source for e in EDGES} | {e.target for e in EDGES}
    assert {"worker", "worker.model", "worker.batch_api", "schemas"} <= packages
    assert {"tests.unit", "tests.integration", "bench", "bench.scenarios", "fakes"} <= packages


# -- the checker itself, on a small tree written for the test


def write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def cycle_in(root: Path, depth: int) -> list[str] | None:
    return find_cycle(package_graph(import_edges(root), depth))


def test_a_cycle_through_a_function_local_import_is_found(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/a/__init__.py": "",
            "app/a/one.py": "def f():\n    from app.b.two import g\n    return g\n",
            "app/b/__init__.py": "",
            "app/b/two.py": "from app.a import one\n",
        },
    )
    assert cycle_in(tmp_path, 1) is None  # app and app: one package at depth 1
    assert cycle_in(tmp_path, 2) == ["app.a", "app.b", "app.a"]


def test_a_cycle_through_relative_imports_and_a_third_package_is_found(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "p/__init__.py": "",
            "p/x/__init__.py": "",
            "p/x/m.py": "from ..y import n\n",
            "p/y/__init__.py": "",
            "p/y/n.py": "from ..z.k import thing\n",
            "p/z/__init__.py": "",
            "p/z/k.py": "import p.x.m\nthing = 1\n",
        },
    )
    assert cycle_in(tmp_path, 2) == ["p.x", "p.y", "p.z", "p.x"]


def test_a_parent_composing_its_subpackages_is_no_cycle(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "w/__init__.py": "",
            "w/text.py": "",
            "w/facade.py": "from w.model import engine\nfrom w.api import runner\n",
            "w/model/__init__.py": "",
            "w/model/engine.py": "from w import text\n",
            "w/api/__init__.py": "",
            "w/api/runner.py": "from w.model.engine import *\nimport json\n",
        },
    )
    assert cycle_in(tmp_path, 1) is None
    assert cycle_in(tmp_path, 2) is None
