"""Locks other tools wrote (``uv export``, ``uv pip compile``, ``pip lock``): PEP 751 files
without envlock's ``[tool.envlock]`` table, read for the platforms and Python a command names.

Such a lock records no targets: it may be universal (markers) or for the machine it was made
on. :class:`ForeignScope` says what to select it for; :func:`foreign_table` stands in for the
table envlock would have written (system interpreter, default tag floors). What envlock needs
and such a lock may lack (a file with a URL and a sha256) is one error naming the package.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.pylock import Package, PackageSdist, PackageWheel, Pylock
from packaging.specifiers import SpecifierSet

from envlock.errors import UsageError
from envlock.lock.model import EnvlockTable, LockedTarget, is_python_version
from envlock.platforms import Target

# What an index file needs in a lock envlock installs.
NEEDS = "envlock installs wheels and sdists from an index, each with a url and a sha256"
# requires-python naming one minor version: "==3.11.*", "==3.11", "==3.11.7", "~=3.11.0"
_ONE_MINOR = re.compile(r"(?:==|~=)\s*(3\.\d+)(?:\.\*|\.\d+)?")
_MINORS = range(8, 20)  # CPython 3.8 .. 3.19: the versions a suggestion may name


@dataclass(frozen=True)
class ForeignScope:
    """What to select a foreign lock for: ``platforms`` (none: only its files are listed, for
    ``cache prune``) and ``python`` (None: from ``requires-python``, else this host's, which
    ``host_python`` names when it is not the one envlock runs on: a ``--base-python``'s)."""

    platforms: tuple[str, ...] = ()
    python: str | None = None
    host_python: str | None = None


def is_foreign(data: Mapping[str, Any]) -> bool:
    """Whether another tool wrote a parsed lock: it lacks ``[tool.envlock]`` (a lock that says
    envlock created it but lacks the table was edited, not written elsewhere)."""
    tool = data.get("tool")
    lacks = not isinstance(tool, Mapping) or "envlock" not in tool
    return lacks and data.get("created-by") != "envlock"


def written_by(data: Mapping[str, Any]) -> str:
    """The lock's ``created-by`` for messages ("uv", "pip"), or "another tool"."""
    value = data.get("created-by")
    if isinstance(value, str) and re.fullmatch(r"[\w.+-]{1,40}", value):
        return value
    return "another tool"


def check_foreign(path: Path, pylock: Pylock) -> None:
    """A one-line UsageError for the first package envlock cannot install, naming it and what
    it lacks (checked before the value rules every lock follows)."""
    for i, pkg in enumerate(pylock.packages):
        where = f"{path}: packages[{i}] ({pkg.name}{f' {pkg.version}' if pkg.version else ''})"
        kind = _local_source(pkg)
        if kind is not None:
            hint = "lock it with `envlock lock`, or publish it to an index"
            if pkg.directory is not None:
                hint = (
                    "leave the local project out of the lock (`uv export --no-emit-project`) "
                    "and install it on its own"
                )
            raise UsageError(f"{where}: only {kind}; {NEEDS}", hint=hint)
        if pkg.version is None:
            raise UsageError(f"{where}: no version; envlock installs exact versions")
        files: list[tuple[str, PackageWheel | PackageSdist]] = [
            (f"wheels[{j}]", w) for j, w in enumerate(pkg.wheels or ())
        ]
        if pkg.sdist is not None:
            files.append(("sdist", pkg.sdist))
        for key, dist in files:
            name = dist.filename
            if dist.url is None:
                raise UsageError(
                    f"{where}: {key} ({name}) has no url, only the local path {dist.path!r}; "
                    "envlock fetches every file by URL",
                    hint="make the lock from an index (uv and pip record each file's url)",
                )
            if "sha256" not in dist.hashes:
                others = ", ".join(sorted(dist.hashes)) or "none"
                raise UsageError(
                    f"{where}: {key} ({name}) has no sha256 hash (the lock gives: {others}); "
                    "envlock checks every file against its sha256",
                    hint="make the lock again from an index that serves sha256 hashes",
                )


def _local_source(pkg: Package) -> str | None:
    """What a package offers instead of index files, for the message; None: index files."""
    if pkg.vcs is not None:
        return f"a {pkg.vcs.type} source ({pkg.vcs.url or pkg.vcs.path})"
    if pkg.directory is not None:
        editable = " (editable)" if pkg.directory.editable else ""
        return f"a local directory {pkg.directory.path!r}{editable}"
    if pkg.archive is not None:
        return f"an archive ({pkg.archive.url or pkg.archive.path})"
    return None


def choose_python(
    path: Path, pylock: Pylock, option: str | None, host_python: str | None = None
) -> str:
    """The Python a foreign lock is selected for: ``option`` (``--python``), else the one minor
    version ``requires-python`` names, else this host's Python, which ``requires-python``
    must then allow."""
    allowed = pylock.requires_python
    if option is not None:
        if not is_python_version(option):
            raise UsageError(f"--python: not a Python version (3.X or 3.X.Y): {option!r}")
        if allowed is not None and not allowed.contains(_full(option)):
            raise UsageError(
                f"--python {option}: {path.name} has requires-python {str(allowed)!r}",
                hint=_suggest(allowed),
            )
        return option
    if allowed is not None:
        one = _ONE_MINOR.fullmatch(str(allowed).strip())
        if one is not None:
            return one.group(1)
    # "3.11" stands for 3.11.0 in markers (as for envlock's own locks); this host's exact
    # version when only a later 3.11.x is allowed (">=3.11.4").
    exact = host_python or ".".join(map(str, sys.version_info[:3]))
    host = ".".join(exact.split(".")[:2])
    if allowed is None:
        return host
    for python in (host, exact):
        if allowed.contains(_full(python)):
            return python
    raise UsageError(
        f"{path}: requires-python {str(allowed)!r} does not include "
        f"{'the --base-python' if host_python else 'this host'}'s Python {exact}, and the lock "
        "names no other",
        hint=_suggest(allowed),
    )


def _full(python: str) -> str:
    return python if python.count(".") == 2 else f"{python}.0"


def _suggest(allowed: SpecifierSet) -> str:
    fits = [f"3.{m}" for m in _MINORS if allowed.contains(f"3.{m}.0")]
    if fits:
        return f"pass --python {fits[0]} (or another version it allows)"
    return "pass --python X.Y: the version the lock was made for"


def foreign_table(path: Path, pylock: Pylock, scope: ForeignScope) -> EnvlockTable:
    """The ``[tool.envlock]`` a foreign lock stands for: the scope's platforms, one Python,
    the system interpreter, default tag floors."""
    python = ""
    if scope.platforms:
        python = choose_python(path, pylock, scope.python, scope.host_python)
    targets = tuple(
        LockedTarget(p, python, Target(p, python).marker, "", "") for p in scope.platforms
    )
    return EnvlockTable("", "default", "", {}, targets)
