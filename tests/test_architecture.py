"""The layering rules of docs/architecture.md, checked on the source so they cannot rot.

Imports are read with `ast` (module level and inside functions, where commands defer heavy
imports), leaving out `if TYPE_CHECKING:` blocks, which never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "crossgroup"
MAX_LINES = 400
# The stages privacy/ checks; it may import none of them (it is a leaf of pure checks).
STAGES = ("group", "maison", "report", "cli", "synth", "crypto", "demo", "io", "audit")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def imports_of(name: str) -> set[str]:
    """The crossgroup modules `name` imports (a `from pkg import mod` counts as pkg.mod)."""
    found = set()
    for node in _runtime_nodes(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def test_privacy_is_a_leaf_of_pure_checks():
    for name in (m for m in MODULES if m.startswith("crossgroup.privacy")):
        stages = [m for m in GRAPH[name] if m.split(".")[1] in STAGES]
        assert not stages, f"{name} imports {stages}: privacy/ may only check, not depend on"


def test_no_private_crypto_module_is_imported_outside_crypto():
    for name, deps in GRAPH.items():
        if name.startswith("crossgroup.crypto"):
            continue
        private = [m for m in deps if m.startswith("crossgroup.crypto._")]
        assert not private, f"{name} imports {private}: use the public crypto surface"


def test_only_the_engine_adapters_import_an_engine():
    """DuckDB only in `engine`, Spark and the SQL transpiler only in `engine_spark`."""
    owners = {"duckdb": "crossgroup.engine", "pyspark": "crossgroup.engine_spark",
              "sqlglot": "crossgroup.engine_spark"}  # fmt: skip
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        roots = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        for library, owner in owners.items():
            assert library not in roots or name == owner, (name, library)


def test_no_import_cycle():
    """Tarjan's strongly connected components over the module graph: none larger than one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                cycles.append(sorted([v, *component]))

    for name in GRAPH:
        if name not in index:
            visit(name)
    assert cycles == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_long_module_says_why(name):
    text = MODULES[name].read_text(encoding="utf-8")
    if len(text.splitlines()) <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert "longer than most modules because" in doc.lower(), (
        f"{name} has over {MAX_LINES} lines: split it, or say in its docstring why not"
    )
