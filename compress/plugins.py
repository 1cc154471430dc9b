"""Plugins: a user's modules that register architectures, losses, stages, data sources, tasks and
targets, imported before the recipe schema is built so they validate like the built-in ones.

Two ways in: ``plugins: [my_pkg.compress_ext]`` in a recipe, and the entry-point group
``edge_compress.plugins`` of installed packages. The recipe's own folder is importable, so a
builder module next to the recipe needs no PYTHONPATH.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path

ENTRY_POINT_GROUP = "edge_compress.plugins"
_loaded: set[str] = set()


def add_recipe_folder(folder: Path) -> None:
    """Let ``python: my_models:build`` find ``my_models.py`` beside the recipe."""
    path = str(folder.resolve())
    if path not in sys.path:
        sys.path.insert(0, path)


def load_entry_points() -> None:
    """Import every installed package's plugin (once per process)."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.value not in _loaded:
            ep.load()
            _loaded.add(ep.value)


def import_plugin(name: str) -> None:
    """Import one plugin module; any failure is the user's to fix, so it is raised as is."""
    if name not in _loaded:
        importlib.import_module(name)
        _loaded.add(name)


def module_file(name: str) -> Path | None:
    """The source file of a user's module (hashed into cache keys), None for built-in ones."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)
