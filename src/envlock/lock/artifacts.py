"""The files a lock pins: every value checked once when the lock is read (a lock may be edited by
hand or by someone hostile, and its sha256 becomes a cache path), then what a target installs.

Rules for each ``[[packages.wheels]]`` / ``[packages.sdist]`` table:

* ``hashes.sha256`` is exactly 64 lowercase hex characters (other algorithms are not used);
* ``size``, when given, is an integer in ``0..MAX_SIZE``;
* the filename (``name``, else the URL's last segment) is one plain path component that parses
  as a wheel or sdist of the package's own name and version;
* ``url`` is ``http(s)://host/…`` without credentials, or ``file:///…`` when the package's
  ``index`` is itself a ``file://`` index; its last segment is the filename.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, unquote, urlsplit

from packaging.markers import UndefinedComparison, UndefinedEnvironmentName
from packaging.pylock import Package, PackageSdist, PackageWheel, PylockSelectError
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    parse_wheel_filename,
)
from packaging.version import Version

from envlock.errors import UsageError
from envlock.filenames import sdist_version
from envlock.lock.model import lock_error
from envlock.platforms import Target

if TYPE_CHECKING:
    from envlock.lock.lockfile import LockFile

_SHA256 = re.compile(r"[0-9a-f]{64}")

# 1 TiB. PEP 751 puts no bound on ``size``, but no index serves a distribution anywhere near
# this (PyPI's own limit is a few GiB), and a size drives reads and progress: larger is a
# corrupted or hostile lock, not a real file.
MAX_SIZE = 1 << 40

_WEB_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class Artifact:
    """One file a lock pins: where it comes from and what it must hash to."""

    name: NormalizedName
    version: str
    filename: str
    url: str
    sha256: str
    size: int | None
    is_wheel: bool
    index: str | None = None


def select(lock: LockFile, target: Target) -> list[Artifact]:
    """The artifacts ``target`` installs from ``lock``, in lock order (PEP 751 selection).

    The values were checked by :func:`check_package` when the lock was read."""
    try:
        chosen = list(lock.pylock.select(environment=target.environment, tags=target.tags))
    except PylockSelectError as exc:
        if not lock.foreign:
            raise UsageError(f"{lock.path.name}: {exc}") from None
        # Another tool's lock records no targets: say which one envlock selected for.
        hint = "pass --platform and --python for the machine the lock was made for"
        if lock.pylock.requires_python is None:
            hint = f"the lock has no requires-python, so this host's was assumed: {hint}"
        raise UsageError(
            f"{lock.path.name}: {exc} (selecting for {target.platform}, Python {target.python})",
            hint=hint,
        ) from None
    except (UndefinedComparison, UndefinedEnvironmentName) as exc:
        # Markers were evaluated for the locked targets on load; this is a target it lacks.
        raise UsageError(f"{lock.path.name}: a marker cannot be evaluated: {exc}") from None
    out = []
    for pkg, dist in chosen:
        if not isinstance(dist, (PackageWheel, PackageSdist)) or not dist.url:
            raise UsageError(f"{lock.path.name}: {pkg.name} has no downloadable file")
        out.append(
            Artifact(
                pkg.name,
                str(pkg.version),
                dist.filename,
                dist.url,
                dist.hashes["sha256"],
                dist.size,
                isinstance(dist, PackageWheel),
                pkg.index,
            )
        )
    return out


# -- checking a lock's values ---------------------------------------------------------------------


class _Invalid(Exception):
    """A value is wrong: ``location`` (relative to the value checked) and why."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(reason)
        self.location = location
        self.reason = reason


def check_package(path: Path, location: str, pkg: Package) -> None:
    """Raise a one-line UsageError naming ``<path>: <location>.<key>`` for the first value of
    ``pkg`` (a ``[[packages]]`` entry, ``location`` e.g. ``packages[3]``) envlock must not use."""
    try:
        _check_package(pkg)
    except _Invalid as exc:
        where = f"{location}.{exc.location}" if exc.location else location
        raise lock_error(path, where, exc.reason) from None


def _check_package(pkg: Package) -> None:
    if pkg.vcs or pkg.directory or pkg.archive:
        kind = "vcs" if pkg.vcs else "directory" if pkg.directory else "archive"
        raise _Invalid(kind, "envlock locks only wheels and sdists from an index")
    if pkg.version is None:
        raise _Invalid("version", "missing: envlock locks exact versions")
    file_index = False
    if pkg.index is not None:
        parts = _check_url(pkg.index, allow_file=True, where="index")
        file_index = parts.scheme == "file"
    if pkg.sdist is not None:
        _check_file(pkg, pkg.sdist, "sdist", file_index, _sdist_identity)
    for i, wheel in enumerate(pkg.wheels or ()):
        _check_file(pkg, wheel, f"wheels[{i}]", file_index, _wheel_identity)


def _wheel_identity(filename: str, project: NormalizedName) -> tuple[NormalizedName, Version]:
    name, version, _, _ = parse_wheel_filename(filename)
    return name, version


def _sdist_identity(filename: str, project: NormalizedName) -> tuple[NormalizedName, Version]:
    version = sdist_version(filename, project)
    if version is None:
        raise InvalidSdistFilename(filename)
    return project, version


def _check_file(
    pkg: Package,
    dist: PackageWheel | PackageSdist,
    where: str,
    file_index: bool,
    identity: Callable[[str, NormalizedName], tuple[NormalizedName, Version]],
) -> None:
    if dist.path is not None:
        raise _Invalid(f"{where}.path", "local paths are not supported: envlock locks URLs")
    if dist.url is None:
        raise _Invalid(f"{where}.url", "missing: envlock fetches every file by URL")
    parts = _check_url(dist.url, allow_file=file_index, where=f"{where}.url")
    from_url = unquote(parts.path.rsplit("/", 1)[-1])
    filename = dist.name if dist.name is not None else from_url
    name_key = f"{where}.name" if dist.name is not None else f"{where}.url"
    _check_filename(filename, name_key)
    if from_url != filename:
        raise _Invalid(f"{where}.url", f"names {from_url!r}, not the file {filename!r}")
    kind = "wheel" if isinstance(dist, PackageWheel) else "sdist"
    try:
        name, version = identity(filename, pkg.name)
    except (InvalidWheelFilename, InvalidSdistFilename):
        raise _Invalid(name_key, f"not a valid {kind} filename: {filename!r}") from None
    if name != pkg.name or version != pkg.version:
        raise _Invalid(name_key, f"{filename!r} is not a {kind} of {pkg.name} {pkg.version}")
    sha = dist.hashes.get("sha256")
    if sha is None:
        others = ", ".join(sorted(dist.hashes)) or "none"
        raise _Invalid(f"{where}.hashes.sha256", f"missing (the lock gives {others})")
    _check_sha256(sha, f"{where}.hashes.sha256")
    if dist.size is not None:
        _check_size(dist.size, f"{where}.size")


def _check_sha256(value: object, where: str) -> None:
    """``value`` must be exactly 64 lowercase hex characters (it becomes a cache path)."""
    if not isinstance(value, str) or _SHA256.fullmatch(value) is None:
        raise _Invalid(where, f"not a sha256 (64 lowercase hex characters): {_show(value)}")


def _check_size(value: object, where: str) -> None:
    """``value`` must be an integer byte count in ``0..MAX_SIZE`` (a bool is not one)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Invalid(where, f"not an integer: {_show(value)}")
    if not 0 <= value <= MAX_SIZE:
        raise _Invalid(where, f"not a byte count between 0 and {MAX_SIZE} (1 TiB): {value}")


def _check_filename(value: str, where: str) -> None:
    """``value`` must be one plain file name: it is joined to cache and build directories."""
    if value in ("", ".", ".."):
        raise _Invalid(where, f"not a file name: {_show(value)}")
    if "/" in value or "\\" in value:
        raise _Invalid(where, f"a file name cannot contain a path separator: {_show(value)}")
    if _has_control(value):
        raise _Invalid(where, f"a file name cannot contain control characters: {_show(value)}")


def _check_url(value: str, *, allow_file: bool, where: str) -> SplitResult:
    """``value`` split, if it is ``http(s)://host/…`` without credentials (or ``file:///…``
    when ``allow_file``: the package came from a local index)."""
    if _has_control(value) or any(c.isspace() for c in value):
        raise _Invalid(where, f"a URL cannot contain spaces or control characters: {_show(value)}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        raise _Invalid(where, f"not a URL: {_show(value)}") from None
    if "@" in parts.netloc:
        raise _Invalid(where, f"credentials in a URL are not allowed: {_shown(parts)}")
    if parts.scheme == "file":
        if not allow_file:
            raise _Invalid(
                where, f"file URLs are allowed only from a file:// index: {_show(value)}"
            )
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise _Invalid(where, f"not a local file URL (file:///path): {_show(value)}")
        return parts
    if parts.scheme not in _WEB_SCHEMES:
        allowed = "http(s) or file" if allow_file else "http(s)"
        raise _Invalid(where, f"not an {allowed} URL: {_show(value)}")
    if not parts.hostname:
        raise _Invalid(where, f"a URL needs a host: {_show(value)}")
    return parts


def _shown(parts: SplitResult) -> str:
    # Never echo a password back (error output ends up in CI logs).
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def _show(value: object) -> str:
    # A hostile value may be megabytes long: the message stays one readable line.
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _has_control(value: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value)


def check_interpreter_file(
    name: str, url: str, sha256: str, size: object
) -> tuple[str, str] | None:
    """(key, reason) of the first bad value of a locked interpreter archive, None if all are
    good: the same rules as a wheel's (a ``file://`` URL is allowed: a team's own build on a
    shared disk; the sha256 still decides what is accepted)."""
    try:
        _check_filename(name, "name")
        if not name.endswith((".tar.gz", ".tgz")):
            raise _Invalid("name", f"not a .tar.gz archive: {_show(name)}")
        _check_url(url, allow_file=True, where="url")
        _check_sha256(sha256, "sha256")
        if size is not None:
            _check_size(size, "size")
    except _Invalid as exc:
        return exc.location, exc.reason
    return None


def check_build_file(
    name: str, url: str, sha256: object, size: object, index: str | None = None
) -> tuple[str, str] | None:
    """(key, reason) of the first bad value of a build package's pinned wheel, None if all are
    good: a wheel's rules (``file://`` only from a ``file://`` index; the URL names the file)."""
    try:
        file_index = False
        if index is not None:
            file_index = _check_url(index, allow_file=True, where="index").scheme == "file"
        _check_filename(name, "name")
        parts = _check_url(url, allow_file=file_index, where="url")
        if unquote(parts.path.rsplit("/", 1)[-1]) != name:
            raise _Invalid("url", f"does not name the file {name!r}: {_show(url)}")
        _check_sha256(sha256, "hashes.sha256")
        _check_size(size, "size")
    except _Invalid as exc:
        return exc.location, exc.reason
    return None
