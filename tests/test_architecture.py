"""The package structure stays a DAG: every module imports on its own, and no package imports one
that imports it back (directly or through others)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import demvae

SRC = Path(demvae.__file__).parent
MODULES = sorted(m.name for m in pkgutil.walk_packages([str(SRC)], prefix="demvae."))


def _package(module: str) -> str:
    """demvae.training.trainer -> demvae.training; a top-level module is its own package."""
    parts = module.split(".")
    path = SRC.joinpath(*parts[1:])
    return ".".join(parts[:2]) if (path.is_dir() or len(parts) > 2) else module


def _imports(module: str) -> set[str]:
    """demvae modules a module imports (any import statement, at any depth in the file)."""
    path = SRC.joinpath(*module.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("demvae"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("demvae"))
    return found


def test_no_import_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        here = _package(module)
        graph.setdefault(here, set()).update(_package(m) for m in _imports(module) if _package(m) != here)
    graph.pop("demvae", None)  # the top-level __init__ only re-exports
    for deps in graph.values():
        deps.discard("demvae")
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, node, dep]))
            if dep not in state:
                visit(dep, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


_ALONE = r"""
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "demvae" or m.startswith("demvae.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=2))
print("\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_alone():
    """Each module imported with no other demvae module loaded before it (one interpreter, the
    demvae modules dropped between imports): a module that only works after another fails here."""
    result = subprocess.run([sys.executable, "-c", _ALONE, *MODULES], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_modules_are_all_found():
    assert "demvae.training.trainer" in MODULES and "demvae.expfam.mixture" in MODULES
    importlib.import_module("demvae.cli")
