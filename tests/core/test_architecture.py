"""The structure CONTRIBUTING.md promises: layers imported in one direction, no import cycles, short functions.

The import graph is read from the source (every ``import`` statement, also those inside functions, so a
cycle cannot hide behind a late import); nothing is imported to build it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "pixelwise"

# Layer of each top-level part of the package; a module may import its own layer's part or lower layers.
# training and inference share a level but never import each other (an inference user needs no trainer).
LAYERS = {
    "core": 0,
    "data": 1,
    "models": 2,
    "training": 3,
    "inference": 3,
    "serve": 4,
    "demo": 5,
    "cli": 6,
    "testing": 7,
    "__init__": 8,
    "__main__": 8,
}
MAX_FUNCTION_LINES = 60
LONG_FUNCTION_MARK = "# long function:"  # a function over the limit says why, on a line starting so


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def part_of(module: str) -> str:
    """``pixelwise.data.formats.coco`` -> ``data``; the package's own ``__init__`` is ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """The pixelwise modules ``path`` imports (``from a.b import c`` counts as ``a.b.c`` when that is a module)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    skip = {id(n) for block in ast.walk(tree) if is_type_checking_block(block) for n in ast.walk(block)}
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in found if m in modules and m != this}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imported_modules(path, modules) for name, path in modules.items()}


def test_every_part_has_a_layer(graph):
    unknown = sorted({part_of(m) for m in graph} - set(LAYERS))
    assert not unknown, f"add these parts of the package to LAYERS (and to CONTRIBUTING.md): {unknown}"


def test_imports_follow_the_layer_order(graph):
    wrong = []
    for module, targets in graph.items():
        for target in targets:
            source_part, target_part = part_of(module), part_of(target)
            if source_part == target_part:
                continue
            if LAYERS[target_part] >= LAYERS[source_part]:
                wrong.append(f"{module} imports {target} ({source_part} may not import {target_part})")
    assert not wrong, "\n".join(sorted(wrong))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (depth-first search with colours)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycles(graph):
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def long_functions() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                body = lines[node.lineno - 1 : node.end_lineno]
                if length > MAX_FUNCTION_LINES and not any(LONG_FUNCTION_MARK in line for line in body):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_functions_are_short_or_say_why():
    too_long = long_functions()
    assert not too_long, (f"functions over {MAX_FUNCTION_LINES} lines without a '{LONG_FUNCTION_MARK} <why>' "
                          "comment:\n" + "\n".join(too_long))
