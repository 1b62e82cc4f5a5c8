"""``envlock verify``: an environment against its lock (drift detection for production).

Checks every installed file against its RECORD hash, every package against the lock (missing,
extra, other version), and files no RECORD accounts for. Pure reading; no network.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envlock.cache.unpack import record_hash
from envlock.errors import UsageError
from envlock.lock.lockfile import LockFile
from envlock.materialize.environment import ENV_META
from envlock.materialize.layout import Layout
from envlock.platforms import PLATFORMS

_IGNORED_DIRS = {"__pycache__"}


@dataclass
class Report:
    """What differs between an environment and its lock."""

    problems: list[str] = field(default_factory=list)
    packages: int = 0
    files: int = 0

    @property
    def clean(self) -> bool:
        return not self.problems


def read_meta(env_dir: Path) -> dict[str, object]:
    try:
        meta: dict[str, object] = json.loads((env_dir / ENV_META).read_text())
    except FileNotFoundError:
        raise UsageError(f"{env_dir} is not an envlock environment (no {ENV_META})") from None
    except ValueError:
        raise UsageError(f"{env_dir / ENV_META} is not valid JSON") from None
    return meta


def verify(env_dir: Path, lock: LockFile | None) -> Report:
    """Compare ``env_dir`` with ``lock`` (or with the package list it recorded at build time)."""
    meta = read_meta(env_dir)
    report = Report()
    platform = str(meta.get("platform"))
    recorded = {str(k): str(v) for k, v in dict(meta.get("packages", {})).items()}  # type: ignore[call-overload]
    if lock is not None:
        if lock.sha256 != meta.get("lock-sha256"):
            report.problems.append(
                f"built from a different lock ({meta.get('lock')} sha256 "
                f"{str(meta.get('lock-sha256'))[:12]}…), not {lock.path.name}"
            )
        target = lock.target(platform)
        expected: dict[str, str] = {a.name: a.version for a in lock.artifacts(target)}
    else:
        expected = recorded
    python_version = ".".join(str(meta.get("python", "3")).split(".")[:2])
    layout = Layout(PLATFORMS[platform].windows if platform in PLATFORMS else False, python_version)
    site = env_dir / layout.site_packages
    if not site.is_dir():
        report.problems.append(f"missing {layout.site_packages}")
        return report
    installed: dict[str, tuple[str, Path]] = {}
    for dist_info in sorted(site.glob("*.dist-info")):
        stem = dist_info.name[: -len(".dist-info")]
        name, _, version = stem.rpartition("-")
        installed[canonicalize_name(name)] = (version, dist_info)
    for name, version in sorted(expected.items()):
        if name not in installed:
            report.problems.append(f"missing package {name} {version}")
        elif not _same_version(installed[name][0], version):
            report.problems.append(f"{name} is {installed[name][0]}, the lock says {version}")
    for name in sorted(set(installed) - set(expected)):
        report.problems.append(f"extra package {name} {installed[name][0]}")
    report.packages = len(installed)
    accounted: set[Path] = set()
    for _, dist_info in sorted(installed.values()):
        _check_record(dist_info, site, report, accounted)
    for path in _walk(site):
        if path not in accounted:
            report.problems.append(f"unrecorded file {path.relative_to(env_dir).as_posix()}")
    return report


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _check_record(dist_info: Path, site: Path, report: Report, accounted: set[Path]) -> None:
    record = dist_info / "RECORD"
    try:
        rows = list(csv.reader(record.read_text("utf-8").splitlines()))
    except FileNotFoundError:
        report.problems.append(f"{dist_info.name} has no RECORD")
        return
    env_root = site
    for row in rows:
        if not row:
            continue
        rel = row[0]
        path = Path(os.path.normpath(env_root / rel))
        accounted.add(path)
        if len(row) < 2 or not row[1]:
            continue
        report.files += 1
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            report.problems.append(f"missing file {rel} ({dist_info.name})")
            continue
        if record_hash(data) != row[1]:
            report.problems.append(f"modified file {rel} ({dist_info.name})")


def _walk(site: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(site):
        dirnames[:] = sorted(d for d in dirnames if d not in _IGNORED_DIRS)
        out.extend(Path(dirpath) / f for f in sorted(filenames) if not f.endswith(".pyc"))
    return out
