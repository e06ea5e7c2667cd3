"""The layering stated in docs/architecture.md holds in the real import graph of hear_dual/.

The table there (| layer | modules | may import |) puts every module in one layer; a module may import modules of
its own layer or of lower ones, and the graph has no cycle. Imports are read with `ast`, without importing
anything: module-level and function-level `import` and `from ... import`, relative imports resolved, and a
submodule import counted as an import of each parent package Python executes for it (`import hear_dual.a.b`
runs hear_dual.a first). A module's own parent packages are not counted for it: Python has run them before it.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "hear_dual"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
HEADER = ["layer", "modules", "may import"]


def table_rows() -> list[tuple[int, str, list[str]]]:
    """(layer number, layer name, full module names) for each row of the layer table."""
    lines = ARCHITECTURE.read_text(encoding="utf-8").splitlines()
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else None
             for line in lines]
    start = next((i for i, row in enumerate(cells) if row == HEADER), None)
    assert start is not None, f"{ARCHITECTURE} has no table with the columns | {' | '.join(HEADER)} |"
    rows = []
    for row in cells[start + 2:]:
        if row is None:
            break
        number, _, name = row[0].partition(" ")
        assert number.isdigit(), f"layer cell {row[0]!r} does not start with the layer's number"
        modules = [PACKAGE if m == PACKAGE else f"{PACKAGE}.{m}" for m in re.findall(r"`([^`]+)`", row[1])]
        rows.append((int(number), name, modules))
    assert rows, "the layer table has no rows"
    return rows


@functools.cache
def package_modules() -> dict[str, Path]:
    """Every module under hear_dual/ by dotted name (a package by its own name)."""
    modules = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The hear_dual modules that importing `name` makes Python execute (itself and its own parents aside)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    explicit, implied = set(), set()          # named by the statement; parents run on the way to them

    def target(dotted: str) -> None:
        chain = [p for p in prefixes(dotted) if p in modules]
        if chain and chain[-1] == dotted:
            explicit.add(dotted)
            implied.update(chain[:-1])
        else:
            implied.update(chain)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            for submodule in submodules:
                target(submodule)
            if len(submodules) < len(node.names):     # some names are attributes of `base`: it is used itself
                target(base)
            else:                                     # only submodules: `base` runs as their parent
                implied.update(p for p in prefixes(base) if p in modules)
    own_parents = set(prefixes(name)[:-1])
    return {m for m in explicit | (implied - own_parents) if m != name and m.split(".")[0] == PACKAGE}


@functools.cache
def import_graph() -> dict[str, frozenset[str]]:
    modules = package_modules()
    return {name: frozenset(imports_of(name, path, modules)) for name, path in modules.items()}


def layer_of() -> dict[str, int]:
    return {m: number for number, _, modules in table_rows() for m in modules}


def test_every_module_is_in_exactly_one_layer():
    listed: dict[str, list[int]] = {}
    for number, _, modules in table_rows():
        for m in modules:
            listed.setdefault(m, []).append(number)
    twice = {m: layers for m, layers in listed.items() if len(layers) > 1}
    assert not twice, f"modules listed in more than one layer of {ARCHITECTURE.name}: {twice}"
    # a module the table lists that does not exist yet (say hear_dual.figures before it is written) is skipped
    unlisted = sorted(set(package_modules()) - set(listed))
    assert not unlisted, f"modules in no layer of {ARCHITECTURE.name} (add each to its layer's row): {unlisted}"


def test_imports_go_to_the_same_or_a_lower_layer():
    layers = layer_of()
    graph = import_graph()
    upward = sorted(f"{m} (layer {layers[m]}) imports {t} (layer {layers[t]})"
                    for m, targets in graph.items() if m in layers
                    for t in targets if t in layers and layers[t] > layers[m])
    assert not upward, "imports that reach up a layer:\n" + "\n".join(upward)


def find_cycle(graph: dict[str, frozenset[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}            # 1: on the current path, 2: done
    for root in sorted(graph):
        if root in state:
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_the_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_walk_sees_what_it_must():
    """The graph reader itself: function-level, relative and parent-package imports are all counted."""
    graph = import_graph()
    assert f"{PACKAGE}.checkpoints" in graph[f"{PACKAGE}.weights"]
    # cli imports its subcommands inside build_parser
    assert {f"{PACKAGE}.compare", f"{PACKAGE}.embed", f"{PACKAGE}.evaluate"} <= graph[f"{PACKAGE}.cli"]
    cycle = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}
    assert find_cycle(cycle) in (["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"])
    assert find_cycle({"a": frozenset({"b"}), "b": frozenset()}) is None


def test_relative_function_level_and_parent_imports(tmp_path):
    modules = {m: tmp_path / "x.py" for m in ("hear_dual", "hear_dual.a", "hear_dual.a.b", "hear_dual.c",
                                               "hear_dual.c.d", "hear_dual.c.e")}
    source = tmp_path / "d.py"
    source.write_text("from . import e, helper\n"
                      "def f():\n"
                      "    import hear_dual.a.b\n"
                      "import numpy\n")
    # hear_dual.a runs as hear_dual.a.b's parent; hear_dual.c is used itself (helper is its attribute);
    # hear_dual, the module's own parent package, has run before it
    assert imports_of("hear_dual.c.d", source, modules) == {"hear_dual.a.b", "hear_dual.a", "hear_dual.c",
                                                             "hear_dual.c.e"}
    source.write_text("from hear_dual.c import e\n")
    assert imports_of("hear_dual.a.b", source, modules) == {"hear_dual.c.e", "hear_dual.c"}
