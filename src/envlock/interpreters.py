"""Which bundled interpreter a spec gets: python-build-standalone builds, from pbs-installer.

The builds are the relocatable ``install_only_stripped`` CPython archives that uv, pdm and rye
install. Their URLs and sha256 come from the ``pbs-installer`` package's version table (the one
pdm uses), never from a hand-copied list. Choosing is pure: :func:`choose` takes the builds and
the spec's wishes (``python = "3.11"`` or ``"3.11.9"``, the platforms, ``exclude-newer``), and
:func:`mirrored` rewrites a download URL for a mirror (``ENVLOCK_PYTHON_MIRROR``); only
:func:`standalone_builds` reads the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit

from packaging.version import InvalidVersion, Version

from envlock.errors import SpecError

# python-build-standalone's release downloads: a mirror replaces exactly this prefix, keeping
# "/<build>/<file name>" (the layout uv's UV_PYTHON_INSTALL_MIRROR expects too).
DEFAULT_PREFIX = "https://github.com/astral-sh/python-build-standalone/releases/download"

# envlock platform -> pbs-installer's (platform, arch)
PBS_TARGETS: Mapping[str, tuple[str, str]] = {
    "linux-64": ("linux", "x86_64"),
    "linux-aarch64": ("linux", "aarch64"),
    "osx-64": ("macos", "x86_64"),
    "osx-arm64": ("macos", "aarch64"),
    "win-64": ("windows", "x86_64"),
}
_BUILD_ID = re.compile(r"^cpython-[0-9.]+\+(?P<build>\d{8})-")
_PYTHON = re.compile(r"^3\.\d+(\.\d+)?$")


@dataclass(frozen=True)
class InterpreterBuild:
    """One relocatable CPython archive for one platform."""

    platform: str  # envlock platform name
    version: Version  # exact, e.g. 3.11.9
    build: str  # python-build-standalone release, e.g. "20261021"
    url: str
    sha256: str
    filename: str

    @property
    def released(self) -> datetime:
        """The release date (midnight UTC of the build id)."""
        return datetime.strptime(self.build, "%Y%m%d").replace(tzinfo=timezone.utc)


def standalone_builds() -> list[InterpreterBuild]:
    """Every CPython ``install_only_stripped`` build pbs-installer knows for envlock's platforms
    (free-threaded and PyPy builds left out; entries without a sha256 skipped)."""
    from pbs_installer._versions import get_python_versions  # its table, read once

    rows = []
    for version, files in get_python_versions().items():
        if version.implementation != "cpython" or version.freethreaded:
            continue
        exact = f"{version.major}.{version.minor}.{version.micro}"
        for (system, arch, install_only), (url, sha256) in files.items():
            if install_only:
                rows.append((exact, system, arch, url, sha256))
    return builds_from_table(rows)


def builds_from_table(
    rows: Iterable[tuple[str, str, str, str, str | None]],
) -> list[InterpreterBuild]:
    """Builds from ``(version, pbs platform, pbs arch, url, sha256)`` rows; rows for other
    platforms, without a sha256 or with an unexpected file name are skipped."""
    by_target = {target: name for name, target in PBS_TARGETS.items()}
    out = []
    for version, system, arch, url, sha256 in rows:
        platform = by_target.get((system, arch))
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        match = _BUILD_ID.match(filename)
        if platform is None or not sha256 or match is None:
            continue
        if not filename.endswith("-install_only_stripped.tar.gz"):
            continue
        out.append(
            InterpreterBuild(
                platform, Version(version), match["build"], url, sha256.lower(), filename
            )
        )
    return sorted(out, key=lambda b: (b.platform, b.version, b.build))


def choose(
    builds: Sequence[InterpreterBuild],
    python: str,
    platforms: Sequence[str],
    *,
    exclude_newer: datetime | None = None,
) -> dict[str, InterpreterBuild]:
    """The build each platform gets: ``python = "3.11"`` picks the newest 3.11.x that exists for
    every platform (the same version everywhere); ``"3.11.9"`` pins it. Builds released after
    ``exclude_newer`` are ignored. A :class:`SpecError` names what is missing."""
    if not _PYTHON.match(python):
        raise SpecError(f'python = "{python}": a bundled interpreter needs "3.X" or "3.X.Y"')
    try:
        wanted = Version(python)
    except InvalidVersion:  # pragma: no cover - the pattern admits only valid versions
        raise SpecError(f"python = {python!r} is not a version") from None
    pinned = len(wanted.release) == 3
    usable = [
        b
        for b in builds
        if b.platform in platforms
        and b.version.release[:2] == wanted.release[:2]
        and (not pinned or b.version == wanted)
        and (exclude_newer is None or b.released <= exclude_newer)
    ]
    versions: dict[Version, dict[str, InterpreterBuild]] = {}
    for b in usable:
        per_platform = versions.setdefault(b.version, {})
        current = per_platform.get(b.platform)
        if current is None or b.build > current.build:
            per_platform[b.platform] = b
    complete = [v for v, found in versions.items() if set(platforms) <= set(found)]
    if not complete:
        raise SpecError(_nothing_for(python, platforms, versions, exclude_newer))
    best = max(complete)
    return {p: versions[best][p] for p in platforms}


def _nothing_for(
    python: str,
    platforms: Sequence[str],
    versions: Mapping[Version, Mapping[str, InterpreterBuild]],
    exclude_newer: datetime | None,
) -> str:
    cutoff = f" released before {exclude_newer:%Y-%m-%d}" if exclude_newer else ""
    unknown = [p for p in platforms if p not in PBS_TARGETS]
    if unknown:
        return f"no bundled interpreter exists for {', '.join(unknown)}"
    if not versions:
        return f"no python-build-standalone build of CPython {python}{cutoff}"
    newest = max(versions)
    missing = [p for p in platforms if p not in versions[newest]]
    return (
        f"no python-build-standalone build of CPython {python}{cutoff} exists for every "
        f"platform ({newest} lacks {', '.join(missing)})"
    )


def mirrored(build: InterpreterBuild, mirror: str | None) -> str:
    """The download URL of ``build`` through ``mirror`` (which replaces python-build-standalone's
    release prefix, keeping ``/<build>/<file>``); the sha256 still decides what is accepted."""
    if not mirror:
        return build.url
    if not mirror.startswith(("https://", "http://", "file://")):
        raise SpecError(f"python mirror {mirror!r} must be an http(s):// or file:// URL")
    base = mirror.rstrip("/")
    if build.url.startswith(DEFAULT_PREFIX + "/"):
        return base + build.url[len(DEFAULT_PREFIX) :]
    return f"{base}/{build.build}/{urlsplit(build.url).path.rsplit('/', 1)[-1]}"
