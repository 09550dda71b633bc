"""The package structure stays a DAG that follows ARCHITECTURE.md's layer table: every module imports on its
own, every import (at module level or inside a function: a lazy import is still a dependency) points to a
package of the same layer or below, and no package imports one that imports it back (directly or through
others). The package root (``demvae/__init__.py``) is a node like the others: the top of the graph."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import demvae

SRC = Path(demvae.__file__).parent
# every .py file, found by path: pkgutil would skip a folder without __init__.py (a namespace package, like nn/)
MODULES = sorted(".".join(p.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
                 for p in SRC.rglob("*.py"))
ARCHITECTURE = SRC.parents[1] / "ARCHITECTURE.md"


def _package(module: str) -> str:
    """demvae.training.trainer -> demvae.training; a top-level module (and the root) is its own package."""
    return ".".join(module.split(".")[:2])


def _imports(module: str) -> set[str]:
    """demvae modules a module imports: any import statement, at any depth in the file (function bodies
    included). ``from demvae import x`` is an import of the module ``demvae.x`` where x is one, else of the root."""
    path = SRC.joinpath(*module.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{module}: relative import (use demvae.<module>, which this test follows)")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "demvae":
            submodules = {f"{node.module}.{a.name}" for a in node.names} & set(MODULES)
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "demvae")
    return found


def _graph() -> dict[str, set[str]]:
    """Package -> the packages it imports (itself left out)."""
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        here = _package(module)
        graph.setdefault(here, set()).update(_package(m) for m in _imports(module) if _package(m) != here)
    return graph


def _layers() -> dict[str, int]:
    """ARCHITECTURE.md's layer table: package -> layer (rows ``| N | `cli.py`, `reproduce/` | ... |``)."""
    layers: dict[str, int] = {}
    for number, cell in re.findall(r"^\| (\d+) \| ([^|]*) \|", ARCHITECTURE.read_text(), re.MULTILINE):
        for name in re.findall(r"`([^`]+)`", cell):
            package = "demvae" if name == "__init__.py" else "demvae." + name.removesuffix("/").removesuffix(".py")
            assert package not in layers, f"{name} is in two rows of the layer table"
            layers[package] = int(number)
    return layers


def test_no_import_cycle_between_packages():
    graph = _graph()
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


def test_layer_table_lists_every_package_once():
    layers, packages = set(_layers()), set(_graph())
    assert not packages - layers, f"missing from ARCHITECTURE.md's layer table: {sorted(packages - layers)}"
    assert not layers - packages, f"in the layer table but not in the package: {sorted(layers - packages)}"


def test_imports_go_down_the_layers():
    layers = _layers()
    upward = [f"{a} (layer {layers[a]}) imports {b} (layer {layers[b]})"
              for a, deps in sorted(_graph().items()) for b in sorted(deps)
              if a in layers and b in layers and layers[b] > layers[a]]  # (a package not in the table: above)
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("source, expected", [
    ("from demvae import __version__", {"demvae"}),
    ("from demvae import runs, __version__", {"demvae", "demvae.runs"}),
    ("from demvae import runs", {"demvae.runs"}),
    ("def f():\n    from demvae.training.run_folder import load_run", {"demvae.training.run_folder"}),
    ("import demvae.config as c", {"demvae.config"}),
])
def test_imports_are_all_seen(tmp_path, monkeypatch, source, expected):
    """The import scan sees the root, lazy imports and aliases (an import it missed would hide a cycle)."""
    (tmp_path / "probe.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    assert _imports("demvae.probe") == expected


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
