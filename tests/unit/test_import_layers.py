"""Dependencies point inward, as shared/DESIGN.md's layout says: given every import
statement of the product's packages, no edge goes where the table forbids, and no two
packages import each other, directly or around a cycle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "write_model",
    "read_model",
    "commands",
    "queries",
    "projections",
    "processes",
    "adapters",
    "api",
    "ui",
    "modelledger",
)
# What each package may import of ours: a package, or one module of it.
ALLOWED: dict[str, set[str]] = {
    "write_model": set(),
    "read_model": {"write_model"},
    "projections": {"read_model", "write_model", "queries.ports"},
    "commands": {"write_model"},
    "queries": {"read_model", "write_model"},
    "processes": {"commands", "queries", "read_model", "write_model"},
    "adapters": {"write_model", "commands.ports", "queries.ports"},
    "api": {"commands", "queries", "write_model"},
    # api's authentication, error table and the services every way in reads through
    "ui": {"commands", "queries", "write_model", "api.auth", "api.errors", "api.services"},
    "modelledger": set(PACKAGES) - {"modelledger"},
}


def imports_of(package: str) -> list[tuple[str, str]]:
    """(importing module, imported module) for every import of ours in ``package``."""
    edges = []
    for path in sorted((ROOT / package).rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [_module_named(f"{node.module}.{a.name}") for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            edges += [(module, name) for name in names if name.split(".")[0] in PACKAGES]
    return edges


def allowed(package: str, imported: str) -> bool:
    if imported.split(".")[0] == package:
        return True
    return any(imported == rule or imported.startswith(rule + ".") for rule in ALLOWED[package])


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_what_the_layout_allows(package: str) -> None:
    forbidden = sorted(
        f"{module} -> {imported}"
        for module, imported in imports_of(package)
        if not allowed(package, imported)
    )
    assert forbidden == [], "\n".join(forbidden)


def test_no_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        for _, imported in imports_of(package):
            if (top := imported.split(".")[0]) != package:
                graph[package].add(top)
    cycles = [
        f"{a} -> {b} -> ... -> {a}" for a in PACKAGES for b in graph[a] if a in _reachable(graph, b)
    ]
    assert cycles == [], "\n".join(cycles)


def test_imports_name_their_package() -> None:
    # A relative import would slip past the rules above: there are none.
    relative = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]
    assert relative == []


def test_the_rules_catch_a_forbidden_edge() -> None:
    # The checks above can fail: the edges this layout forbids most are caught.
    assert not allowed("queries", "commands.registry")
    assert not allowed("adapters", "queries.models")
    assert not allowed("projections", "queries.reading")
    assert not allowed("api", "modelledger.bootstrap")
    assert allowed("adapters", "queries.ports")
    assert allowed("projections", "queries.ports")
    assert imports_of("queries"), "the walk finds imports"


def _module_named(name: str) -> str:
    """The module a `from X import y` reaches: X.y when y is a module (``from queries
    import ports``), else X (``from queries.ports import EventLog``)."""
    path = ROOT.joinpath(*name.split("."))
    return name if path.with_suffix(".py").exists() or path.is_dir() else name.rsplit(".", 1)[0]


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen
