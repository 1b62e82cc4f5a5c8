"""What may be replaced by a build: only an environment envlock made, or an empty directory.

Nothing else is ever removed, with or without ``--force``: not a project (a spec, a lock, a
``.git``, a ``pyproject.toml``), not the spec's directory, the current or home directory or any
directory above them, not a file, not a symbolic link.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from envlock.errors import UsageError
from envlock.materialize.meta import is_environment

Action = Literal["create", "replace"]
# A directory holding any of these is somebody's work, never an environment to replace.
PROJECT_MARKERS = (
    ".git",
    ".hg",
    "envlock.toml",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "requirements.txt",
)


def check_archive(dest: Path, *, force: bool) -> Action:
    """An archive path: created, or (``--force``) replaced when it is a regular file."""
    if not os.path.lexists(dest):
        return "create"
    if dest.is_symlink() or not dest.is_file():
        raise UsageError(f"{dest} exists and is not a regular file; refusing to replace it")
    if not force:
        raise UsageError(f"{dest} already exists", hint="pass --force to replace it")
    return "replace"


def check_directory(
    dest: Path, *, force: bool, replace_own: bool, protected: Sequence[Path] = ()
) -> Action:
    """An environment directory: created, or replaced if envlock made it (with ``--force``, or
    always when ``replace_own``: ``build`` keeps its output current) or it is empty."""
    if not os.path.lexists(dest):
        return "create"
    if dest.is_symlink():
        raise UsageError(f"{dest} is a symbolic link; refusing to replace it")
    if not dest.is_dir():
        raise UsageError(f"{dest} exists and is not a directory; refusing to replace it")
    resolved = dest.resolve()
    guarded = [
        (Path("/"), "the file system root"),
        (Path.cwd(), "the current directory"),
        (Path.home(), "your home directory"),
        *((p, "the spec's directory") for p in protected),
    ]
    for path, label in guarded:
        path = path.resolve()
        if resolved == path or resolved in path.parents:
            what = label if resolved == path else f"a parent of {label} ({path})"
            raise UsageError(
                f"{dest} is {what}; refusing to replace it",
                hint="choose a new directory for the environment (--output)",
            )
    found = _project_marker(dest)
    if found is not None:
        raise UsageError(
            f"{dest} holds {found}: it is a project, not an environment; refusing to replace it",
            hint="choose a new directory for the environment (--output)",
        )
    if is_environment(dest):
        if force or replace_own:
            return "replace"
        raise UsageError(
            f"{dest} already holds an envlock environment", hint="pass --force to replace it"
        )
    if not any(dest.iterdir()):
        return "replace"
    raise UsageError(
        f"{dest} is not empty and not an envlock environment (no envlock.json); refusing to "
        "replace it",
        hint="remove it yourself, or choose another --output",
    )


def _project_marker(directory: Path) -> str | None:
    for name in PROJECT_MARKERS:
        if os.path.lexists(directory / name):
            return name
    for lock in directory.glob("pylock*.toml"):
        return lock.name
    return None
