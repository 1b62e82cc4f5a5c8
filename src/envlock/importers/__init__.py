"""Importing an existing project (pip requirement files, ``pyproject.toml``) for ``envlock init``.

Pure apart from reading the files named: nothing here touches the network or writes.
"""

from __future__ import annotations

from pathlib import Path

from envlock.importers.model import Imported, ImportedIndex
from envlock.importers.pyproject import parse_pyproject, read_pyproject
from envlock.importers.requirements import parse_requirements

__all__ = [
    "Imported",
    "ImportedIndex",
    "import_file",
    "parse_pyproject",
    "parse_requirements",
    "read_pyproject",
]


def import_file(path: Path) -> Imported:
    """``pyproject.toml`` (any ``*.toml``) by its tables, anything else as a requirements file."""
    if path.suffix.lower() == ".toml":
        return read_pyproject(path)
    return parse_requirements(path)
