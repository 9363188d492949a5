"""The package's import graph keeps its layers: no circles, no upward imports, and imports of mathray's own
modules at the top of each module (a function-level one says in a comment why it must stay lazy)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mathray"
# Lower layers never import higher ones. Pure logic (core, grading) and the config model sit at the bottom.
LAYERS = [("mathray", "mathray.config"), ("mathray.core", "mathray.grading"), ("mathray.runtime",),
          ("mathray.jobs",), ("mathray.pipeline",), ("mathray.cli", "mathray.doctor")]


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _target(module: str, name: str | None) -> str | None:
    """The mathray module an import names: ``from a.b import c`` is ``a.b.c`` when that is a module."""
    for candidate in ((f"{module}.{name}" if name else None), module):
        if candidate in MODULES:
            return candidate
    return None


def _type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(module: str) -> list[tuple[str, ast.stmt, bool]]:
    """(imported mathray module, statement, at the top level) for every import in ``module`` that runs (imports
    under ``if TYPE_CHECKING:`` are for annotations only)."""
    tree = ast.parse(MODULES[module].read_text())
    typing_only = {id(k) for n in tree.body if _type_checking(n) for k in ast.walk(n)}
    top = {id(n) for n in tree.body} | {id(k) for n in tree.body if isinstance(n, ast.If) for k in ast.walk(n)}
    out = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [(node.module, a.name) for a in node.names]
        else:
            continue
        for mod, name in names:
            if mod.split(".")[0] == "mathray" and (target := _target(mod, name)) and target != module:
                out.append((target, node, id(node) in top))
    return out


GRAPH = {m: {t for t, _, _ in _imports(m)} for m in MODULES}


def _layer(module: str) -> int:
    best = None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    return best[0]


def test_the_graph_is_read_from_the_package():
    assert len(MODULES) > 50 and "mathray.runtime.storage" in GRAPH["mathray.runtime.lease"] | GRAPH[
        "mathray.runtime.models"] | GRAPH["mathray.jobs.sampling"]


def test_no_import_circles():
    seen: dict[str, int] = {}   # 1 on the current path, 2 done
    circles = []

    def visit(m: str, path: list[str]) -> None:
        seen[m] = 1
        for t in sorted(GRAPH[m]):
            if seen.get(t) == 1:
                circles.append(path[path.index(t):] + [t])
            elif t not in seen:
                visit(t, path + [t])
        seen[m] = 2

    for m in sorted(GRAPH):
        if m not in seen:
            visit(m, [m])
    assert not circles, "\n".join(" -> ".join(c) for c in circles)


def test_no_upward_imports():
    upward = [f"{m} -> {t}" for m in sorted(GRAPH) for t in sorted(GRAPH[m]) if _layer(t) > _layer(m)]
    assert not upward, "\n".join(upward)


def test_own_modules_are_imported_at_the_top_unless_a_comment_says_why():
    hidden = set()
    for m, path in MODULES.items():
        lines = path.read_text().splitlines()
        for target, node, top in _imports(m):
            if not top and "#" not in lines[node.end_lineno - 1]:
                hidden.add(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {target}")
    assert not hidden, "\n".join(sorted(hidden))


@pytest.mark.parametrize("module", ["mathray.core", "mathray.grading"])
def test_pure_logic_imports_no_ray(module):
    users = [m for m, p in MODULES.items() if m.startswith(module)
             for n in ast.walk(ast.parse(p.read_text()))
             if isinstance(n, (ast.Import, ast.ImportFrom))
             and any((getattr(n, "module", None) or a.name).split(".")[0] == "ray" for a in n.names)]
    assert not users, users
