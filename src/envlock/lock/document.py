"""Resolutions for several targets -> one PEP 751 document (a plain dict, TOML at the edge).

A package needed on only some targets carries a marker; one that resolves to different versions
on different targets gets one entry per version; ``wheels`` lists exactly the files the locked
targets install; ``index`` is where they came from; ``[packages.tool.envlock]`` records the
dependencies each file's metadata declared. Everything is sorted: same input, same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.markers import Marker
from packaging.utils import NormalizedName
from packaging.version import Version

from envlock import __version__
from envlock.index.auth import redact
from envlock.index.simple import DistFile
from envlock.lock.model import EnvlockTable, LockedInterpreter, LockedTarget, PackageRecord
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
    requires_dist: dict[str, tuple[str, ...]] = field(default_factory=dict)  # by filename
    license: str | None = None


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


# A file's sha256 and size, for files whose index lists neither (hashed from the bytes).
Digests = Mapping[str, tuple[str, int]]


def build_lock(
    env: EnvironmentSpec,
    resolutions: Sequence[Resolution],
    digests: Digests,
    interpreters: Mapping[str, LockedInterpreter] | None = None,
) -> dict[str, Any]:
    """The lock document; ``digests`` maps a file's URL to (sha256, size) where the index does
    not list them (PEP 700 sizes, hashes); ``interpreters`` (platform -> bundled interpreter)
    makes a bundled lock, whose requires-python is the interpreter's exact version."""
    targets = [r.target for r in resolutions]
    entries: dict[tuple[NormalizedName, Version], _Entry] = {}
    for res in resolutions:
        for pkg in res.packages.values():
            entry = entries.setdefault((pkg.name, pkg.version), _Entry(pkg.name, pkg.version))
            entry.targets.append(res.target)
            entry.files[pkg.file.filename] = pkg.file
            entry.requires_dist[pkg.file.filename] = pkg.requires_dist
            if pkg.license is not None:
                entry.license = min(entry.license or pkg.license, pkg.license)  # deterministic
            if pkg.requires_python is not None:
                entry.requires_python = str(pkg.requires_python)
    packages = [
        _package(entries[key], targets, digests)
        for key in sorted(entries, key=lambda k: (k[0], k[1]))
    ]
    return {
        "lock-version": LOCK_VERSION,
        "environments": [t.marker for t in sorted(targets, key=lambda t: t.platform)],
        "requires-python": requires_python(targets[0].python if interpreters else env.python),
        "created-by": CREATED_BY,
        "packages": packages,
        "tool": {"envlock": envlock_table(env, targets, interpreters)},
    }


def envlock_table(
    env: EnvironmentSpec,
    targets: Sequence[Target],
    interpreters: Mapping[str, LockedInterpreter] | None = None,
) -> dict[str, Any]:
    """envlock's own data: what the lock was made from, for ``lock --check``."""
    return EnvlockTable(
        version=__version__,
        environment=env.label,
        spec_hash=env.content_hash(),
        platform_tags=env.platform_options.as_dict(),
        targets=tuple(
            LockedTarget(
                platform=t.platform,
                python=t.python_full_version,
                marker=t.marker,
                tag_floor=t.options.floor_for(t.platform_info),
                best_tag=str(t.tags[0]),
                interpreter=interpreters[t.platform] if interpreters else None,
            )
            for t in sorted(targets, key=lambda t: t.platform)
        ),
        interpreter="bundled" if interpreters else "system",
    ).to_dict()


def _file_table(f: DistFile, digests: Digests) -> dict[str, Any]:
    table: dict[str, Any] = {"name": f.filename, "url": redact(f.url)}
    if f.upload_time is not None:
        table["upload-time"] = f.upload_time
    sha, size = f.sha256 or None, f.size
    if sha is None or size is None:
        try:
            learned_sha, learned_size = digests[f.url]
        except KeyError:
            raise ValueError(f"{f.filename}: no sha256/size known (index lists none)") from None
        if sha is not None and sha != learned_sha:
            raise ValueError(f"{f.filename}: the bytes do not match the index's sha256")
        sha, size = learned_sha, (size if size is not None else learned_size)
    table["size"] = size
    table["hashes"] = {"sha256": sha}
    return table


def _package(entry: _Entry, targets: Sequence[Target], digests: Digests) -> dict[str, Any]:
    pkg: dict[str, Any] = {"name": entry.name, "version": str(entry.version)}
    marker = target_marker(entry.targets, targets)
    if marker is not None:
        pkg["marker"] = str(Marker(marker))
    if entry.requires_python:
        pkg["requires-python"] = entry.requires_python
    files = sorted(entry.files.values(), key=lambda f: f.filename)
    index = {redact(f.index) for f in files}
    if len(index) == 1:
        pkg["index"] = index.pop()
    sdists = [f for f in files if not f.is_wheel]
    if sdists:
        pkg["sdist"] = _file_table(sdists[0], digests)
    wheels = [f for f in files if f.is_wheel]
    if wheels:
        pkg["wheels"] = [_file_table(f, digests) for f in wheels]
    pkg["tool"] = {"envlock": PackageRecord.build(entry.requires_dist, entry.license).to_dict()}
    return pkg
