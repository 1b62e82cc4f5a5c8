"""What a lock installs, as rows: one per package version with the platforms that install it,
its files, index, license and dependencies (pure: read from the lock, nothing fetched).

The rows feed ``envlock audit``'s table and JSON and the CycloneDX SBOM.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from packaging.pylock import PackageSdist, PackageWheel
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from envlock.lock.artifacts import Artifact
from envlock.lock.lockfile import LockFile
from envlock.lock.model import LockedInterpreter
from envlock.platforms import Target

# packaging prints markers in one normal form: `extra == "socks"` (the extra name normalized).
_EXTRA = re.compile(r'\bextra\s*==\s*"([^"]*)"')


@dataclass(frozen=True)
class PackageRow:
    """One package version of a lock and what the asked platforms install of it."""

    name: NormalizedName
    version: str
    platforms: tuple[str, ...]  # sorted
    index: str | None  # the index URL it was locked from
    kinds: tuple[str, ...]  # "sdist" and/or "wheel", sorted
    files: tuple[Artifact, ...]  # the files those platforms install, sorted by filename
    license: str | None  # as recorded at lock time (SPDX expression or raw text)
    upload_time: datetime | None  # the newest upload time among ``files``
    requires: tuple[NormalizedName, ...]  # dependencies installed alongside it, sorted
    # (platform, its requires) for each of ``platforms``: a dependency may hold on one only
    requires_on: tuple[tuple[str, tuple[NormalizedName, ...]], ...] = ()


@dataclass(frozen=True)
class InterpreterRow:
    """A bundled interpreter archive and the platforms that carry it."""

    interpreter: LockedInterpreter
    platforms: tuple[str, ...]  # sorted


def _platforms(lock: LockFile, platforms: Sequence[str]) -> list[str]:
    # lock.target() raises the usual one-line error for a platform the lock lacks.
    chosen = sorted(set(platforms)) if platforms else sorted(lock.targets)
    for platform in chosen:
        lock.target(platform)
    return chosen


def rows(lock: LockFile, platforms: Sequence[str] = ()) -> list[PackageRow]:
    """One row per (name, version) installed on any of ``platforms`` (default: every locked
    one), in (name, version) order."""
    installs = {p: lock.artifacts(lock.target(p)) for p in _platforms(lock, platforms)}
    files: dict[tuple[str, str], dict[str, Artifact]] = {}
    where: dict[tuple[str, str], set[str]] = {}
    requires: dict[tuple[str, str], dict[str, tuple[NormalizedName, ...]]] = {}
    for platform, installed in installs.items():
        target = lock.target(platform)
        present = {a.name for a in installed}
        for art in installed:
            key: tuple[str, str] = (art.name, art.version)
            files.setdefault(key, {})[art.filename] = art
            where.setdefault(key, set()).add(platform)
            deps = sorted(_requires(lock, art, target, present))
            requires.setdefault(key, {})[platform] = tuple(deps)
    uploaded = _upload_times(lock)
    out = []
    for name, version in sorted(files, key=lambda k: (k[0], Version(k[1]))):
        key = (name, version)
        arts = tuple(sorted(files[key].values(), key=lambda a: a.filename))
        times = [t for a in arts if (t := uploaded.get((name, version, a.filename))) is not None]
        out.append(
            PackageRow(
                name=arts[0].name,
                version=version,
                platforms=tuple(sorted(where[key])),
                index=next((a.index for a in arts if a.index), None),
                kinds=tuple(sorted({"wheel" if a.is_wheel else "sdist" for a in arts})),
                files=arts,
                license=lock.license(name, version),
                upload_time=max(times, default=None),
                requires=tuple(sorted({n for deps in requires[key].values() for n in deps})),
                requires_on=tuple(sorted(requires[key].items())),
            )
        )
    return out


def interpreter_rows(lock: LockFile, platforms: Sequence[str] = ()) -> list[InterpreterRow]:
    """The bundled interpreters of ``platforms`` (default: every locked one), each archive once,
    in (version, archive name) order; empty for a system-interpreter lock."""
    found: dict[str, tuple[LockedInterpreter, set[str]]] = {}
    for platform in _platforms(lock, platforms):
        interpreter = lock.interpreter(platform)
        if interpreter is not None:
            found.setdefault(interpreter.sha256, (interpreter, set()))[1].add(platform)
    return [
        InterpreterRow(interpreter, tuple(sorted(where)))
        for interpreter, where in sorted(
            found.values(), key=lambda item: (Version(item[0].version), item[0].name)
        )
    ]


def _requires(
    lock: LockFile, art: Artifact, target: Target, present: Iterable[NormalizedName]
) -> set[NormalizedName]:
    """Names of ``art``'s declared dependencies that ``target`` installs with it.

    The lock does not record which extras were asked for, so a requirement that only holds for
    an extra counts when its package is installed on the target anyway (the extra was used)."""
    declared = lock.requires_dist(art.name, art.version, art.filename) or ()
    installed = set(present)
    out: set[NormalizedName] = set()
    for text in declared:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue  # recorded by envlock from parsed metadata: cannot happen in a sound lock
        name = canonicalize_name(req.name)
        if name == art.name or name not in installed:
            continue
        extras = frozenset(_EXTRA.findall(str(req.marker))) if req.marker else frozenset()
        if target.marker_matches(req.marker) or (
            extras and target.marker_matches(req.marker, extras)
        ):
            out.add(name)
    return out


def _upload_times(lock: LockFile) -> Mapping[tuple[str, str, str], datetime]:
    """(name, version, filename) -> the upload time the lock records for that file."""
    out: dict[tuple[str, str, str], datetime] = {}
    for pkg in lock.pylock.packages:
        dists: list[PackageWheel | PackageSdist] = [*(pkg.wheels or ())]
        if pkg.sdist is not None:
            dists.append(pkg.sdist)
        for dist in dists:
            if dist.upload_time is not None:
                out[(str(pkg.name), str(pkg.version), dist.filename)] = dist.upload_time
    return out


@dataclass(frozen=True)
class BuildRow:
    """A build package: installed only while a locked sdist is built into a wheel, never into
    the environment itself."""

    name: NormalizedName
    version: str
    platforms: tuple[str, ...]  # sorted: the platforms whose builds install it
    index: str | None
    files: tuple[Artifact, ...]  # sorted by filename
    needed_by: tuple[str, ...]  # "name version" of the sdists whose builds install it, sorted


def build_rows(lock: LockFile, platforms: Sequence[str] = ()) -> list[BuildRow]:
    """One row per build package version that building the sdists ``platforms`` install needs
    (default: every locked platform), in (name, version) order."""
    files: dict[tuple[str, str], dict[str, Artifact]] = {}
    where: dict[tuple[str, str], set[str]] = {}
    needed: dict[tuple[str, str], set[str]] = {}
    for platform in _platforms(lock, platforms):
        for art in lock.artifacts(lock.target(platform)):
            if art.is_wheel:
                continue
            for f in lock.build_packages(art.sha256, platform) or ():
                key: tuple[str, str] = (f.package, f.version)
                files.setdefault(key, {})[f.name] = f.artifact
                where.setdefault(key, set()).add(platform)
                needed.setdefault(key, set()).add(f"{art.name} {art.version}")
    out = []
    for found in sorted(files, key=lambda k: (k[0], Version(k[1]))):
        arts = tuple(sorted(files[found].values(), key=lambda a: a.filename))
        out.append(
            BuildRow(
                arts[0].name,
                found[1],
                tuple(sorted(where[found])),
                next((a.index for a in arts if a.index), None),
                arts,
                tuple(sorted(needed[found])),
            )
        )
    return out
