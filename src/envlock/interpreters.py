"""Which bundled interpreter a spec gets: python-build-standalone builds, from pbs-installer.

The builds are the relocatable ``install_only_stripped`` CPython archives that uv, pdm and rye
install. Their URLs and sha256 come from the ``pbs-installer`` package's version table (the one
pdm uses), never from a hand-copied list. Choosing is pure: :func:`choose` takes the builds and
the spec's wishes (``python = "3.11"`` or ``"3.11.9"``, the platforms, ``exclude-newer``), and
:func:`mirrored` rewrites a download URL for a mirror (``ENVLOCK_PYTHON_MIRROR``); only
:func:`standalone_builds` reads the table.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from packaging.version import InvalidVersion, Version

from envlock.errors import SpecError
from envlock.lock.model import LockedInterpreter

if TYPE_CHECKING:
    from envlock.spec import EnvironmentSpec
    from envlock.spec_interpreter import InterpreterSource

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
_FILE_VERSION = re.compile(r"^cpython-(?P<version>3\.\d+\.\d+)\+")


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


def mirror_url(url: str, mirror: str | None) -> str:
    """``url`` through ``mirror``, which replaces python-build-standalone's release prefix and
    keeps ``/<build>/<file>`` (the layout of uv's ``UV_PYTHON_INSTALL_MIRROR``); other URLs (a
    team's own builds) are left alone. The sha256 still decides what is accepted."""
    if not mirror or not url.startswith(DEFAULT_PREFIX + "/"):
        return url
    if not mirror.startswith(("https://", "http://", "file://")):
        raise SpecError(f"python mirror {mirror!r} must be an http(s):// or file:// URL")
    return mirror.rstrip("/") + url[len(DEFAULT_PREFIX) :]


def mirrored(build: InterpreterBuild, mirror: str | None) -> str:
    """The download URL of ``build`` through ``mirror`` (see :func:`mirror_url`)."""
    return mirror_url(build.url, mirror)


def locked(build: InterpreterBuild, size: int | None = None) -> LockedInterpreter:
    return LockedInterpreter(
        str(build.version), build.build, build.filename, build.url, build.sha256, size
    )


def source_version(platform: str, source: InterpreterSource, python: str) -> str:
    """The exact version of a team's own build: as given, else from a python-build-standalone
    file name, else the spec's python when that is exact; it must fit the spec's python."""
    filename = unquote(urlsplit(source.url).path.rsplit("/", 1)[-1])
    match = _FILE_VERSION.match(filename)
    version = source.version or (match["version"] if match else None)
    if version is None and python.count(".") == 2:
        version = python
    where = f"interpreter-sources.{platform}"
    if version is None:
        raise SpecError(
            f"{where}: cannot tell the CPython version of {filename}",
            hint='add version = "3.X.Y" to the table',
        )
    if not (version == python or version.startswith(python + ".")) or version.count(".") != 2:
        raise SpecError(f'{where}: version {version} does not fit python = "{python}"')
    return version


def plan(
    env: EnvironmentSpec,
    previous: Mapping[str, LockedInterpreter],
    builds: Callable[[], Sequence[InterpreterBuild]],
    *,
    upgrade: bool = False,
) -> dict[str, LockedInterpreter]:
    """The interpreter each platform of a bundled ``env`` locks (sizes as far as known).

    One exact version for every platform. ``[interpreter-sources]`` decide their platforms;
    the rest come from python-build-standalone (``builds``, read only when needed). Without
    ``upgrade``, the version of ``previous`` (the current lock) is kept while it still fits."""
    platforms = list(env.platforms)
    sources = {p: env.interpreter_sources[p] for p in platforms if p in env.interpreter_sources}
    versions = {p: source_version(p, s, env.python) for p, s in sources.items()}
    if len(set(versions.values())) > 1:
        shown = ", ".join(f"{p}: {v}" for p, v in sorted(versions.items()))
        raise SpecError(f"interpreter-sources give different versions ({shown}); use one")
    out: dict[str, LockedInterpreter] = {}
    for p, source in sources.items():
        old = previous.get(p)
        size = old.size if old is not None and old.sha256 == source.sha256 else None
        name = unquote(urlsplit(source.url).path.rsplit("/", 1)[-1])
        match = _BUILD_ID.match(name)
        build = match["build"] if match else ""
        out[p] = LockedInterpreter(versions[p], build, name, source.url, source.sha256, size)
    rest = [p for p in platforms if p not in sources]
    if not rest:
        return out
    wanted = next(iter(versions.values()), env.python)
    kept = {previous[p].version for p in rest if p in previous}
    table = builds()
    if not upgrade and len(kept) == 1 and wanted.count(".") == 1:
        keep = kept.pop()
        if keep.startswith(wanted + "."):
            with contextlib.suppress(SpecError):  # no longer available: choose afresh
                return {
                    **out,
                    **_locked(choose(table, keep, rest, exclude_newer=env.exclude_newer), previous),
                }
    try:
        chosen = choose(table, wanted, rest, exclude_newer=env.exclude_newer)
    except SpecError as exc:
        if not versions:
            raise
        raise SpecError(
            f"{exc.message}: {', '.join(rest)} must use the version of [interpreter-sources] "
            f"({wanted})",
            hint=f"add [interpreter-sources.{rest[0]}] too, or use a version python-build-"
            "standalone has",
        ) from None
    return {**out, **_locked(chosen, previous)}


def _locked(
    chosen: Mapping[str, InterpreterBuild], previous: Mapping[str, LockedInterpreter]
) -> dict[str, LockedInterpreter]:
    """Chosen builds as lock entries, keeping a size the previous lock learned for the file."""
    out = {}
    for p, build in chosen.items():
        old = previous.get(p)
        out[p] = locked(build, old.size if old is not None and old.sha256 == build.sha256 else None)
    return out


def unexpected(
    env: EnvironmentSpec,
    platform: str,
    entry: LockedInterpreter,
    builds: Callable[[], Sequence[InterpreterBuild]],
) -> str | None:
    """What of a lock's interpreter entry for ``platform`` is not what the spec gives it (its
    ``[interpreter-sources]`` table, else python-build-standalone's table, read through
    ``builds`` only then), or None. A url and sha256 swapped for another archive's is caught
    here, offline, before anything downloads it."""
    source = env.interpreter_sources.get(platform)
    if source is not None:
        where = f"[interpreter-sources.{platform}]"
        expected = [("url", source.url), ("sha256", source.sha256)]
        if source.version:
            expected.append(("version", source.version))
    else:
        where = "python-build-standalone's table"
        found = next((b for b in builds() if b.platform == platform and b.url == entry.url), None)
        if found is None:
            return f"url {entry.url} is not a {platform} build in {where}"
        expected = [
            ("sha256", found.sha256),
            ("name", found.filename),
            ("version", str(found.version)),
            ("build", found.build),
        ]
    for key, want in expected:
        have = getattr(entry, key)
        if have != want:
            return f"{key} {have} in the lock, {want} in {where}"
    return None
