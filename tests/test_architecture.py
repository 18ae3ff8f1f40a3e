"""The layering, checked: the import-linter contracts of pyproject.toml, and no cycle between the
folders. docs/architecture.md draws the layers and their rules."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The folders whose imports must not form a cycle (the layers, and their parts).
FOLDERS = (
    "monitor.app", "monitor.core", "monitor.alerting", "monitor.simulator", "producers",
    "consumers",
)  # fmt: skip


def folder_of(module: str) -> str:
    for f in FOLDERS:
        if module == f or module.startswith(f + "."):
            return f
    return module.split(".", maxsplit=1)[0]


def test_import_linter_contracts_are_kept() -> None:
    res = subprocess.run(
        [str(BIN / "lint-imports")], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


def folder_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph("monitor", "producers", "consumers")
    edges: dict[str, set[str]] = defaultdict(set)
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = folder_of(module), folder_of(imported)
            if a != b:
                edges[a].add(b)
    return edges


def test_the_folder_level_import_graph_has_no_cycle() -> None:
    edges = folder_graph()
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            assert state.get(nxt) != 1, f"import cycle between folders: {[*path, node, nxt]}"
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    # the contracts layer imports no other folder of the project
    assert not edges.get("monitor.core", set()) & set(FOLDERS)
