"""The import graph of both packages, ``studio_nb`` and the Jupyter extension
``jupyter_ext``: no loops (but the kernel's operator/registry pair, where the registry
checks what it registers), and the data modules import no layer above them.

Every import counts, also one inside a function: a lazy import is still an arrow back up.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = (REPO / "studio_nb", REPO / "jupyter_ext")
#: the one loop allowed: Operator registers itself; the registry checks it is an Operator
ALLOWED_LOOPS = [{"studio_nb.kernel.operator", "studio_nb.kernel.registry"}]


def _modules() -> dict[str, Path]:
    mods = {}
    for path in (p for package in PACKAGES for p in package.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _graph() -> dict[str, set[str]]:
    mods = _modules()

    def owner(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [owner(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [owner(f"{node.module}.{a.name}") for a in node.names]
            else:
                continue
            graph[mod] |= {t for t in targets if t and t != mod}
    return graph


def _loops(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                loops.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return loops


def test_no_import_loops_in_the_packages():
    graph = _graph()
    assert {"jupyter_ext.rest", "jupyter_ext.uploads", "studio_nb.messages"} <= set(graph)  # both walked
    loops = [loop for loop in _loops(graph) if loop not in ALLOWED_LOOPS]
    assert not loops, f"import loops: {[sorted(loop) for loop in loops]}"


def test_the_messages_import_neither_services_nor_their_renderer():
    up = {t for t in _graph()["studio_nb.messages"] if t.startswith(("studio_nb.services", "studio_nb.present"))}
    assert not up, f"studio_nb.messages imports {sorted(up)}"


def test_the_loop_finder_finds_a_loop():
    assert _loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_the_turn_does_not_reach_up_into_the_debugger():
    up = {t for t in _graph()["studio_nb.turn"] if t.startswith("studio_nb.debug")}
    assert not up, f"studio_nb.turn imports {sorted(up)}"
