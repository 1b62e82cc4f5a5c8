"""Where ``envlock.toml`` is: ``--spec FILE``, ``--spec DIR`` (its ``envlock.toml``), or found by
walking up from the current directory, as uv, pixi and cargo find theirs. Stdlib only: the fast
paths of ``lock --check`` and ``run`` use it too."""

from __future__ import annotations

import os
from pathlib import Path

from envlock.errors import SpecError

SPEC_FILENAME = "envlock.toml"
INIT_HINT = "run `envlock init` to start one here, or pass --spec PATH"


def locate_spec(option: str | os.PathLike[str] | None, cwd: Path | None = None) -> Path:
    """The spec file a command reads: ``option`` as given (a directory means its
    ``envlock.toml``), else the nearest ``envlock.toml`` in the current directory or a parent."""
    if option is not None:
        path = Path(option)
        return path / SPEC_FILENAME if path.is_dir() else path
    here = Path.cwd() if cwd is None else cwd
    if (here / SPEC_FILENAME).is_file():
        return Path(SPEC_FILENAME) if cwd is None else here / SPEC_FILENAME
    for parent in here.resolve().parents:
        candidate = parent / SPEC_FILENAME
        if candidate.is_file():
            return candidate
    raise SpecError(f"no {SPEC_FILENAME} in {here} or any parent directory", hint=INIT_HINT)


def init_target(option: str | os.PathLike[str] | None) -> Path:
    """Where ``envlock init`` writes: ``option`` (a directory means its ``envlock.toml``), else
    ``envlock.toml`` in the current directory (never a parent's)."""
    if option is None:
        return Path(SPEC_FILENAME)
    path = Path(option)
    return path / SPEC_FILENAME if path.is_dir() else path
