"""``envlock verify``: an environment against its lock (drift detection for production).

Checks every installed file against its RECORD hash, every package against the lock (missing,
extra, other version), and files no RECORD accounts for; in a bundled environment also every file
and link of the interpreter (``envlock-interpreter.RECORD``), the interpreter against the lock's,
and the whole tree for files nothing accounts for. Pure reading; no network.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from installer.records import InvalidRecordEntry, RecordEntry, parse_record_file
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envlock.cache.records import record_hash
from envlock.lock.lockfile import LockFile
from envlock.materialize import bundled
from envlock.materialize.layout import Layout
from envlock.materialize.meta import ENV_META, INTERPRETER_RECORD, EnvMeta, read_meta
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


def verify(env_dir: Path, lock: LockFile | None) -> Report:
    """Compare ``env_dir`` with ``lock`` (or with the package list it recorded at build time)."""
    meta = read_meta(env_dir)
    report = Report()
    platform = meta.platform
    recorded = dict(meta.packages)
    if lock is not None:
        if lock.sha256 != meta.lock_sha256:
            report.problems.append(
                f"built from a different lock ({meta.lock} sha256 "
                f"{meta.lock_sha256[:12]}…), not {lock.path.name}"
            )
        target = lock.target(platform)
        expected: dict[str, str] = {a.name: a.version for a in lock.artifacts(target)}
        locked = lock.interpreter(platform)
        if locked is not None and not meta.bundled:
            report.problems.append(
                f"runs on a system interpreter ({meta.base_python}), the lock bundles "
                f"{locked.label}"
            )
    else:
        expected = recorded
    python_version = ".".join((meta.python or "3").split(".")[:2])
    windows = PLATFORMS[platform].windows if platform in PLATFORMS else False
    layout = Layout(windows, python_version, meta.bundled)
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
    if meta.bundled:
        _check_interpreter(env_dir, meta, lock, report, accounted)
    for path in _walk(env_dir if meta.bundled else site):
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
        text = record.read_text("utf-8")
    except FileNotFoundError:
        report.problems.append(f"{dist_info.name} has no RECORD")
        return
    try:
        entries = [RecordEntry.from_elements(*row) for row in parse_record_file(text.splitlines())]
    except (InvalidRecordEntry, csv.Error) as exc:
        report.problems.append(f"{dist_info.name} has a malformed RECORD ({exc})")
        return
    if not any(e.hash_ is not None for e in entries):
        report.problems.append(f"{dist_info.name}: RECORD lists no file with a hash")
    for entry in entries:
        path = Path(os.path.normpath(site / entry.path))
        accounted.add(path)
        if entry.hash_ is None:
            if path != record:
                report.problems.append(f"unhashed file {entry.path} ({dist_info.name})")
            continue
        report.files += 1
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            report.problems.append(f"missing file {entry.path} ({dist_info.name})")
            continue
        if record_hash(data) != str(entry.hash_) or (
            entry.size is not None and entry.size != len(data)
        ):
            report.problems.append(f"modified file {entry.path} ({dist_info.name})")


def _check_interpreter(
    env_dir: Path, meta: EnvMeta, lock: LockFile | None, report: Report, accounted: set[Path]
) -> None:
    """The bundled interpreter: the lock's, and every file and link of it as placed."""
    if lock is not None:
        locked = lock.interpreter(meta.platform)
        built = meta.interpreter.get("sha256", "")
        if locked is None:
            report.problems.append(
                f"has a bundled interpreter, the lock uses a system one ({lock.path.name})"
            )
        elif locked.sha256 != built:
            report.problems.append(
                f"interpreter {meta.interpreter.get('name', '?')} (sha256 {built[:12]}…), the "
                f"lock says {locked.name} (sha256 {locked.sha256[:12]}…)"
            )
    accounted.update((env_dir / ENV_META, env_dir / INTERPRETER_RECORD))
    try:
        rows = bundled.read_record(env_dir)
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        report.problems.append(f"{INTERPRETER_RECORD} is malformed ({exc})")
        return
    if rows is None:
        report.problems.append(f"missing {INTERPRETER_RECORD}")
        return
    for path, hash_, size in rows:
        full = Path(os.path.normpath(env_dir / path))
        if not full.is_relative_to(env_dir) or full == env_dir:
            report.problems.append(f"{INTERPRETER_RECORD} lists {path!r}, outside the environment")
            continue
        accounted.add(full)
        report.files += 1
        problem = bundled.check_row(env_dir, path, hash_, size)
        if problem is not None:
            report.problems.append(f"{problem} {path} (interpreter)")


def _walk(top: Path) -> list[Path]:
    """Every file and link under ``top``, byte code left out."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        links = [d for d in dirnames if (here / d).is_symlink()]  # a link is a file here
        dirnames[:] = sorted(d for d in dirnames if d not in _IGNORED_DIRS and d not in links)
        names = sorted([*filenames, *links])
        out.extend(here / f for f in names if not f.endswith(".pyc"))
    return out
