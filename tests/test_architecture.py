"""The shape of the code: dependencies point one way and no two files import each other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("exchange", "core", "server", "client")
#: Which top-level packages each may import (besides itself).
ALLOWED = {"exchange": set(), "core": {"exchange"}, "server": {"core", "exchange"}, "client": {"exchange"}}
FORBIDDEN_IN_CORE = ("bpy", "zmq")


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["strata", *parts])


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every import in the file; TYPE_CHECKING blocks are skipped."""
    tree = ast.parse(path.read_text())
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rsplit(".", 1)[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                found.append((target, top))
                for alias in child.names:  # `from . import x` may name a submodule
                    found.append((f"{target}.{alias.name}", top))
            in_function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit(child, top and not in_function)

    visit(tree, True)
    return found


def _files() -> dict[str, Path]:
    return {_module_name(p): p for top in PACKAGES for p in (REPO / top).rglob("*.py") if "__pycache__" not in p.parts}


def test_dependencies_point_one_way():
    bad = []
    for name, path in _files().items():
        top = name.split(".")[1]
        for target, _ in _imports(path):
            parts = target.split(".")
            if parts[0] == "strata" and len(parts) > 1 and parts[1] != top and parts[1] not in ALLOWED[top]:
                bad.append(f"{name} imports {target}")
            if top == "core" and parts[0] in FORBIDDEN_IN_CORE:
                bad.append(f"{name} imports {target}")
    assert not bad, "\n".join(bad)


def test_no_import_circles_between_files():
    """Module-level imports form no cycle (a function-level import is how a lower layer names a builder)."""
    files = _files()
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = set()
        for target, top in _imports(path):
            if not top:
                continue
            while target and target not in files:  # `from .x import y` names module x (or package x)
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):  # a package's own __init__
                targets.add(target)
        graph[name] = targets
    assert "strata.core.cache" in graph["strata.core.pipelines.reconstruct"]  # the graph is really built
    assert "strata.core.backends" not in graph["strata.core.registry"]  # function-level imports do not count
    cycles = []
    state: dict[str, int] = {}

    def dfs(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                dfs(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            dfs(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


#: core's layers, lowest first: a module may import its own layer and those below, never above (not even
#: inside a function). backends.py is the table of builders named by dotted path: it imports only registry.
CORE_LAYERS = {
    "errors": 0, "compute": 0, "cache": 0, "registry": 0, "views": 0, "progress": 0, "backends": 0,
    "imaging": 1, "render": 2, "body": 3, "pose": 3, "segmentation": 3, "multiview": 3, "carve": 3, "reconstruct": 4,
    "garments": 4,
    "pipelines": 5,
}


def test_no_core_module_imports_from_a_layer_above_it():
    bad = []
    for name, path in _files().items():
        parts = name.split(".")
        if parts[1] != "core" or len(parts) < 3:
            continue
        level = CORE_LAYERS[parts[2]]
        for target, _ in _imports(path):
            t = target.split(".")
            if t[:2] == ["strata", "core"] and len(t) > 2 and t[2] in CORE_LAYERS and CORE_LAYERS[t[2]] > level:
                bad.append(f"{name} (layer {level}) imports {target} (layer {CORE_LAYERS[t[2]]})")
    assert not bad, "\n".join(bad)
