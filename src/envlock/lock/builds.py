"""``[tool.envlock]``'s build dependencies of locked sdists, as typed values.

* ``[[tool.envlock.builds]]``: per locked sdist (by its sha256), its build requirements
  (``[build-system] requires`` or the PEP 517 default, and what the backend's
  ``get_requires_for_build_wheel`` added) and, per target platform, the build packages' files.
* ``[[tool.envlock.build-files]]``: every such file once, pinned like a ``[[packages.wheels]]``
  entry (url, sha256, size), with the package and version it is a wheel of.

PEP 751 tools ignore ``[tool]``: ``Pylock.select`` never installs a build package. Every value read
back is checked by the rules of :mod:`envlock.lock.artifacts` (a sha256 becomes a cache path, a
file name a file name, a URL a download).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)

from envlock.lock.model import lock_error
from envlock.platforms import PLATFORMS

if TYPE_CHECKING:
    from envlock.lock.artifacts import Artifact

_SHA256 = re.compile(r"[0-9a-f]{64}")
_BUILDS = "tool.envlock.builds"
_FILES = "tool.envlock.build-files"


@dataclass(frozen=True)
class BuildFile:
    """One wheel of a build package, pinned."""

    package: NormalizedName
    version: str
    name: str  # the wheel's file name
    url: str
    sha256: str
    size: int
    index: str | None = None

    def to_dict(self) -> dict[str, Any]:
        table: dict[str, Any] = {
            "name": self.name,
            "package": self.package,
            "version": self.version,
            "url": self.url,
            "size": self.size,
            "hashes": {"sha256": self.sha256},
        }
        if self.index is not None:
            table["index"] = self.index
        return table

    @property
    def artifact(self) -> Artifact:
        """The file as an artifact to fetch, cache and snapshot like any locked wheel."""
        from envlock.lock.artifacts import Artifact

        return Artifact(
            self.package,
            self.version,
            self.name,
            self.url,
            self.sha256,
            self.size,
            True,
            self.index,
        )


@dataclass(frozen=True)
class SdistBuild:
    """What building one locked sdist into a wheel installs, per target platform."""

    name: NormalizedName
    version: str
    sdist: str  # the sdist's file name
    sdist_sha256: str
    requires: tuple[str, ...]  # [build-system] requires (or the PEP 517 default)
    backend: str
    backend_requires: tuple[str, ...]  # the backend's get_requires_for_build_wheel
    platforms: Mapping[str, tuple[str, ...]]  # platform -> file names in build-files

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sdist": self.sdist,
            "sdist-sha256": self.sdist_sha256,
            "backend": self.backend,
            "requires": list(self.requires),
            "backend-requires": list(self.backend_requires),
            "platforms": {p: sorted(self.platforms[p]) for p in sorted(self.platforms)},
        }


@dataclass(frozen=True)
class BuildTable:
    """Both tables: what every locked sdist's build installs."""

    builds: tuple[SdistBuild, ...] = ()
    files: Mapping[str, BuildFile] = field(default_factory=dict)  # by file name

    def __bool__(self) -> bool:
        return bool(self.builds)

    def of(self, sdist_sha256: str) -> SdistBuild | None:
        """The build record of the sdist with this sha256 (None: the lock has none)."""
        return next((b for b in self.builds if b.sdist_sha256 == sdist_sha256), None)

    def files_for(self, build: SdistBuild, platform: str) -> list[BuildFile] | None:
        """The build packages' files of ``build`` for ``platform``; None: not locked for it."""
        names = build.platforms.get(platform)
        return None if names is None else [self.files[n] for n in names]

    def to_dict(self) -> dict[str, Any]:
        """The two keys merged into ``[tool.envlock]`` (nothing when no sdist is locked)."""
        if not self.builds:
            return {}
        return {
            "builds": [b.to_dict() for b in sorted(self.builds, key=_build_key)],
            "build-files": [self.files[n].to_dict() for n in sorted(self.files)],
        }

    @classmethod
    def from_lock(cls, data: Mapping[str, Any], where: Path) -> BuildTable:
        """The tables of a parsed lock; any value of the wrong shape is a UsageError."""
        tool = data.get("tool")
        table = tool.get("envlock") if isinstance(tool, Mapping) else None
        if not isinstance(table, Mapping):
            return cls()
        raw_builds = table.get("builds", [])
        raw_files = table.get("build-files", [])
        if not isinstance(raw_builds, list):
            raise lock_error(where, _BUILDS, "must be an array of tables")
        if not isinstance(raw_files, list):
            raise lock_error(where, _FILES, "must be an array of tables")
        files: dict[str, BuildFile] = {}
        for i, raw in enumerate(raw_files):
            f = _file(where, f"{_FILES}[{i}]", raw)
            if f.name in files:
                raise lock_error(where, f"{_FILES}[{i}].name", f"{f.name!r} is listed twice")
            files[f.name] = f
        builds = tuple(_build(where, f"{_BUILDS}[{i}]", b, files) for i, b in enumerate(raw_builds))
        if len({b.sdist_sha256 for b in builds}) != len(builds):
            raise lock_error(where, _BUILDS, "an sdist is listed twice")
        return cls(builds, files)


def _build_key(b: SdistBuild) -> tuple[str, str, str]:
    return (b.name, b.version, b.sdist)


def _file(where: Path, location: str, raw: Any) -> BuildFile:
    from envlock.lock.artifacts import check_build_file

    if not isinstance(raw, Mapping):
        raise lock_error(where, location, "must be a table")
    name, package, version, url = (
        _text(where, location, raw, key) for key in ("name", "package", "version", "url")
    )
    hashes = raw.get("hashes")
    sha = hashes.get("sha256") if isinstance(hashes, Mapping) else None
    size = raw.get("size")
    if size is None:
        raise lock_error(where, f"{location}.size", "missing: build files are pinned by size")
    index = raw.get("index")
    if index is not None:
        index = _text(where, location, raw, "index")
    reason = check_build_file(name, url, sha, size, index)
    if reason is not None:
        raise lock_error(where, f"{location}.{reason[0]}", reason[1])
    try:
        wheel_name, wheel_version, _, _ = parse_wheel_filename(name)
    except InvalidWheelFilename:
        raise lock_error(where, f"{location}.name", f"not a wheel file name: {name!r}") from None
    if wheel_name != canonicalize_name(package) or str(wheel_version) != version:
        raise lock_error(
            where, f"{location}.name", f"{name!r} is not a wheel of {package} {version}"
        )
    return BuildFile(wheel_name, version, name, url, str(sha), int(size), index)


def _build(where: Path, location: str, raw: Any, files: Mapping[str, BuildFile]) -> SdistBuild:
    from envlock.filenames import sdist_version

    if not isinstance(raw, Mapping):
        raise lock_error(where, location, "must be a table")
    name, version, sdist, sha, backend = (
        _text(where, location, raw, key)
        for key in ("name", "version", "sdist", "sdist-sha256", "backend")
    )
    project = canonicalize_name(name)
    parsed = sdist_version(sdist, project) if "/" not in sdist and "\\" not in sdist else None
    if parsed is None or str(parsed) != version:
        raise lock_error(
            where, f"{location}.sdist", f"{sdist!r} is not an sdist of {name} {version}"
        )
    if _SHA256.fullmatch(sha) is None:
        raise lock_error(
            where, f"{location}.sdist-sha256", f"not a sha256 (64 lowercase hex): {sha!r:.80}"
        )
    requires = _strings(where, f"{location}.requires", raw.get("requires"))
    dynamic = _strings(where, f"{location}.backend-requires", raw.get("backend-requires"))
    platforms = raw.get("platforms")
    if not isinstance(platforms, Mapping):
        raise lock_error(where, f"{location}.platforms", "must be a table")
    chosen: dict[str, tuple[str, ...]] = {}
    for platform, names in platforms.items():
        here = f"{location}.platforms.{platform}"
        if platform not in PLATFORMS:
            raise lock_error(where, here, f"unknown platform {platform!r}")
        listed = _strings(where, here, names)
        for i, n in enumerate(listed):
            if n not in files:
                raise lock_error(where, f"{here}[{i}]", f"{n!r} is not in {_FILES}")
        chosen[platform] = listed
    return SdistBuild(project, version, sdist, sha, requires, backend, dynamic, chosen)


def _text(where: Path, location: str, raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        shown = "missing" if value is None else f"must be a string, not {type(value).__name__}"
        raise lock_error(where, f"{location}.{key}", shown)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value) or len(value) > 4096:
        raise lock_error(where, f"{location}.{key}", f"not a plain value: {value!r:.60}")
    return value


def _strings(where: Path, location: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise lock_error(where, location, "must be an array of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str) or any(ord(c) < 0x20 for c in item):
            raise lock_error(where, f"{location}[{i}]", f"not a plain string: {item!r:.60}")
    return tuple(value)
