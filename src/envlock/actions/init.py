"""``envlock init``: write a commented starter ``envlock.toml``, never over an existing file.

The text comes from :mod:`envlock.actions.init_template`; here the values are chosen (host
Python and platform, an import, the command line) and checked by the spec loader itself.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet

from envlock._fs import atomic_write_bytes
from envlock._toml import tomllib
from envlock.actions.init_template import SpecValues, render
from envlock.errors import EnvlockError, SpecError, UsageError
from envlock.importers import Imported, import_file
from envlock.importers.model import unique
from envlock.platforms import host_platform
from envlock.spec import parse_spec
from envlock.spec_values import parse_platforms

_PYTHON = re.compile(r"^3\.\d+(\.\d+)?$")  # as the spec's `python`
# What a requires-python may choose when it excludes the host's version (oldest first).
CANDIDATE_PYTHONS = tuple(f"3.{minor}" for minor in range(10, 15))
DEFAULT_EXTRA_PLATFORM = "linux-64"  # where most environments end up (CI, containers)


@dataclass(frozen=True)
class InitRequest:
    """What ``envlock init`` was asked for (empty values mean defaults)."""

    path: Path
    python: str | None = None
    platforms: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    source: Path | None = None
    interpreter: str | None = None


@dataclass(frozen=True)
class InitResult:
    """The file written and what it holds (for the command's summary)."""

    path: Path
    values: SpecValues
    warnings: tuple[str, ...]


def host_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def default_platforms(host: str) -> tuple[str, ...]:
    """The host's platform first, then linux-64 (once)."""
    return unique([host, DEFAULT_EXTRA_PLATFORM])


def choose_python(requires: SpecifierSet | None, host: str) -> str:
    """The host's X.Y if ``requires`` (a requires-python) allows it, else the oldest of
    :data:`CANDIDATE_PYTHONS` it allows."""
    if requires is None or _allows(requires, host):
        return host
    for candidate in CANDIDATE_PYTHONS:
        if _allows(requires, candidate):
            return candidate
    raise UsageError(
        f"requires-python {str(requires)!r} allows none of "
        f"{', '.join(CANDIDATE_PYTHONS)}; choose one with --python"
    )


def _allows(requires: SpecifierSet, minor: str) -> bool:
    """Whether some 3.X.Z release satisfies ``requires`` (``~=3.11.4`` allows "3.11")."""
    return any(requires.contains(f"{minor}.{z}", prereleases=True) for z in range(40))


def check_requirement(text: str, where: str) -> str:
    """``text`` as a PEP 508 requirement envlock can lock, or a one-line UsageError."""
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        first = str(exc).splitlines()[0]
        raise UsageError(f"{where}: invalid requirement {text!r}: {first}") from None
    if req.url:
        raise UsageError(f"{where}: direct URL requirements are not supported: {text!r}")
    return str(req)


def init_spec(request: InitRequest) -> InitResult:
    """Choose the values, render the spec, check it loads, and write it (never overwriting)."""
    _refuse_existing(request.path)
    if request.python is not None and not _PYTHON.match(request.python):
        raise UsageError(
            f'--python: must be a CPython 3 version like "3.11" or "3.11.7", got {request.python!r}'
        )
    if request.interpreter not in (None, "bundled", "system"):
        raise UsageError(
            f"--interpreter: must be 'bundled' or 'system', got {request.interpreter!r}"
        )
    try:
        platforms = parse_platforms(request.platforms, "--platform")
    except SpecError as exc:
        raise UsageError(exc.message) from None
    imported = import_file(request.source) if request.source else Imported(Path())
    warnings = list(imported.warnings)
    python = request.python or choose_python(imported.requires_python, host_python())
    requires = imported.requires_python
    if request.python and requires and not _allows(requires, ".".join(python.split(".")[:2])):
        warnings.append(f"--python {python} is outside the project's requires-python {requires}")
    extra = [check_requirement(r, "REQ") for r in request.requirements]
    values = SpecValues(
        python=python,
        platforms=platforms or default_platforms(host_platform()),
        dependencies=unique([*imported.dependencies, *extra]),
        constraints=imported.constraints,
        environments=dict(imported.environments),
        indexes=imported.indexes,
        insecure_hosts=imported.insecure_hosts,
        prerelease=imported.prerelease,
        interpreter=request.interpreter,
        source=request.source,
    )
    text = render(values)
    # What we write must be what `envlock lock` accepts: load it with the spec's own parser.
    parse_spec(tomllib.loads(text), request.path)
    _write_new(request.path, text.encode("utf-8"))
    return InitResult(request.path, values, unique(warnings))


def _refuse_existing(path: Path) -> None:
    if os.path.lexists(path):
        raise UsageError(
            f"{path}: already exists; envlock init never overwrites a spec",
            hint="edit it, remove it first, or write elsewhere with --spec PATH",
        )


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to a new ``path`` atomically, never over a file that appeared meanwhile."""
    try:
        atomic_write_bytes(path, data, exclusive=True)
    except FileExistsError:
        _refuse_existing(path)
        raise
    except OSError as exc:
        raise EnvlockError(f"{path}: cannot write: {exc.strerror}") from None
