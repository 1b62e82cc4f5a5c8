"""Resolutions for several targets -> one PEP 751 document (a plain dict, TOML at the edge).

A package needed on only some targets carries a marker; one that resolves to different versions
on different targets gets one entry per version; ``wheels`` lists exactly the files the locked
targets install. Everything is sorted: same input, same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.markers import Marker
from packaging.utils import NormalizedName
from packaging.version import Version

from envlock import __version__
from envlock.index.client import redact
from envlock.index.simple import DistFile
from envlock.platforms import Target
from envlock.resolve import Resolution
from envlock.spec import EnvironmentSpec

LOCK_VERSION = "1.0"
CREATED_BY = "envlock"


@dataclass
class _Entry:
    name: NormalizedName
    version: Version
    targets: list[Target] = field(default_factory=list)
    files: dict[str, DistFile] = field(default_factory=dict)
    requires_python: str | None = None


def requires_python(python: str) -> str:
    """The lock's Requires-Python: ``==3.11.*`` for "3.11", ``==3.11.7`` for "3.11.7"."""
    return f"=={python}" if python.count(".") == 2 else f"=={python}.*"


def target_marker(targets: Sequence[Target], all_targets: Sequence[Target]) -> str | None:
    """The shortest marker true for exactly ``targets`` among ``all_targets`` (None: all)."""
    chosen = {t.platform for t in targets}
    if chosen >= {t.platform for t in all_targets}:
        return None
    clauses: list[str] = []
    for sys_platform in sorted({t.sys_platform for t in targets}):
        same_os = [t for t in all_targets if t.sys_platform == sys_platform]
        if all(t.platform in chosen for t in same_os):
            clauses.append(f"sys_platform == '{sys_platform}'")
        else:
            clauses.extend(
                f"({t.marker})" if len(chosen) > 1 else t.marker
                for t in sorted(same_os, key=lambda t: t.platform)
                if t.platform in chosen
            )
    return " or ".join(clauses)


def build_lock(
    env: EnvironmentSpec, resolutions: Sequence[Resolution], sizes: Mapping[str, int]
) -> dict[str, Any]:
    """The lock document; ``sizes`` maps a file's URL to its size for indexes without PEP 700."""
    targets = [r.target for r in resolutions]
    entries: dict[tuple[NormalizedName, Version], _Entry] = {}
    for res in resolutions:
        for pkg in res.packages.values():
            entry = entries.setdefault((pkg.name, pkg.version), _Entry(pkg.name, pkg.version))
            entry.targets.append(res.target)
            entry.files[pkg.file.filename] = pkg.file
            if pkg.requires_python is not None:
                entry.requires_python = str(pkg.requires_python)
    packages = [
        _package(entries[key], targets, sizes)
        for key in sorted(entries, key=lambda k: (k[0], k[1]))
    ]
    return {
        "lock-version": LOCK_VERSION,
        "environments": [t.marker for t in sorted(targets, key=lambda t: t.platform)],
        "requires-python": requires_python(env.python),
        "created-by": CREATED_BY,
        "packages": packages,
        "tool": {"envlock": envlock_table(env, targets)},
    }


def envlock_table(env: EnvironmentSpec, targets: Sequence[Target]) -> dict[str, Any]:
    """envlock's own data: what the lock was made from, for ``lock --check``."""
    return {
        "version": __version__,
        "environment": env.label,
        "spec-hash": env.content_hash(),
        "platform-tags": env.platform_options.as_dict(),
        "targets": [
            {
                "platform": t.platform,
                "python": t.python_full_version,
                "marker": t.marker,
                "tag-floor": t.options.floor_for(t.platform),
                "best-tag": str(t.tags[0]),
            }
            for t in sorted(targets, key=lambda t: t.platform)
        ],
    }


def _file_table(f: DistFile, sizes: Mapping[str, int]) -> dict[str, Any]:
    table: dict[str, Any] = {"name": f.filename, "url": redact(f.url)}
    if f.upload_time is not None:
        table["upload-time"] = f.upload_time
    table["size"] = f.size if f.size is not None else sizes[f.url]
    if not f.sha256:
        raise ValueError(f"{f.filename} has no sha256 on the index")
    table["hashes"] = {"sha256": f.sha256}
    return table


def _package(entry: _Entry, targets: Sequence[Target], sizes: Mapping[str, int]) -> dict[str, Any]:
    pkg: dict[str, Any] = {"name": entry.name, "version": str(entry.version)}
    marker = target_marker(entry.targets, targets)
    if marker is not None:
        pkg["marker"] = str(Marker(marker))
    if entry.requires_python:
        pkg["requires-python"] = entry.requires_python
    files = sorted(entry.files.values(), key=lambda f: f.filename)
    index = {_index_of(f) for f in files}
    if len(index) == 1:
        pkg["index"] = index.pop()
    sdists = [f for f in files if not f.is_wheel]
    if sdists:
        pkg["sdist"] = _file_table(sdists[0], sizes)
    wheels = [f for f in files if f.is_wheel]
    if wheels:
        pkg["wheels"] = [_file_table(f, sizes) for f in wheels]
    return pkg


def _index_of(f: DistFile) -> str:
    return redact(f.index)


def locked_versions(lock: Mapping[str, Any], target: Target) -> dict[str, Version]:
    """Versions an existing lock pins for ``target`` (its preferences on re-lock)."""
    env: dict[str, Any] = {
        **target.environment,
        "extras": frozenset(),
        "dependency_groups": frozenset(),
    }
    out: dict[str, Version] = {}
    for pkg in lock.get("packages", []):
        try:
            marker = pkg.get("marker")
            if marker and not Marker(marker).evaluate(env, context="lock_file"):
                continue
            out[pkg["name"]] = Version(pkg["version"])
        except (KeyError, ValueError, TypeError):
            continue
    return out
