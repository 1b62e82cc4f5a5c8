"""Wheels unpacked once into the cache (``unpacked/sha256/…``), checked on the way in.

A wheel is refused, and nothing is kept, unless it is unambiguous and complete:

- its ZIP structure passes :func:`envlock.cache.zipsafe.check_zip` (no hidden archives, local
  headers agree with the central directory, safe member names, no links, stored/deflated only);
- it has exactly one ``.dist-info`` naming the locked project and version, a ``WHEEL`` with
  ``Wheel-Version`` 1.x and a valid ``Root-Is-Purelib``, and a ``RECORD`` (installer's model)
  listing every file with a sha256 and size that match, and no file that is not there;
- it fits: each member stops at its RECORD size while being decompressed (so a bomb costs at
  most what RECORD declares, streamed, never held in memory), and the free space is checked
  against the declared total before anything is written.

A read-only cache (a fleet's baked-in or mounted cache) is never written: a wheel not unpacked
there yet is unpacked into a scratch directory the caller owns.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envlock._fs import UMASK
from envlock.cache.records import (
    SIGNATURES,
    b64_digest,
    file_record_hash,
    parse_record,
    record_hash,
)
from envlock.cache.store import ArtifactStore
from envlock.cache.zipsafe import ZipMember, check_zip
from envlock.errors import EnvlockError, IntegrityError

__all__ = ["RecordRow", "UnpackedWheel", "record_hash", "unpacked"]

RECORD_NAME = "RECORD"
_FORMAT = ".records-v3"  # bump when the cached tree layout or its index format changes
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RecordRow:
    path: str
    hash: str  # "sha256=<urlsafe b64>"
    size: str
    stamp: str = ""  # "<size>:<mtime_ns>" of the cached copy, to notice edits through links


@dataclass(frozen=True)
class UnpackedWheel:
    """A verified wheel tree in the cache (or in a caller's scratch directory)."""

    root: Path
    dist_info: str  # e.g. "foo-1.0.dist-info"
    root_is_purelib: bool
    records: tuple[RecordRow, ...]  # every file of the tree, RECORD itself excluded

    @property
    def data_dir(self) -> str:
        return self.dist_info[: -len(".dist-info")] + ".data"


def unpacked(
    store: ArtifactStore,
    wheel: Path,
    key: str,
    name: str,
    version: str,
    *,
    scratch: Path | None = None,
) -> UnpackedWheel:
    """The verified tree of a wheel, unpacking it (once, atomically) if needed.

    On a read-only cache the tree is unpacked under ``scratch`` instead (required then)."""

    def unpack(dest: Path, tmp: Path) -> None:
        _unpack(wheel, dest, name, version, tmp)

    return _load(unpack_once(store, key, _FORMAT, wheel.name, unpack, scratch))


def unpack_once(
    store: ArtifactStore,
    key: str,
    marker: str,
    label: str,
    unpack: Callable[[Path, Path], None],
    scratch: Path | None,
) -> Path:
    """Where the tree of ``key`` is complete (``marker`` written last), after running
    ``unpack(destination, temporary directory)`` if it is not yet: once, under the cache lock,
    in the cache; or, in a read-only cache, under the caller's ``scratch``."""
    root = store.unpacked_path(key)
    if (root / marker).is_file():
        return root
    if not store.writable:
        if scratch is None:
            raise EnvlockError(
                f"the cache {store.root} is read-only and {label} is not unpacked in it"
            )
        own = scratch / key
        if not (own / marker).is_file():
            scratch.mkdir(exist_ok=True)
            unpack(own, Path(tempfile.mkdtemp(prefix="unpack-", dir=scratch)))
        return own
    with store.lock("unpack-" + key):
        if not (root / marker).is_file():
            unpack(root, store.scratch_dir("unpack-" + key))
    return root


def _load(root: Path) -> UnpackedWheel:
    lines = (root / _FORMAT).read_text("utf-8").splitlines()
    dist_info, purelib = lines[0], lines[1] == "purelib"
    rows = tuple(RecordRow(*row) for row in csv.reader(lines[2:]))
    return UnpackedWheel(root, dist_info, purelib, rows)


class TamperedTree(Exception):
    """A cached unpacked file changed since it was verified (edited through a hard link)."""


def check_stamp(path: str, row: RecordRow) -> None:
    """Raise TamperedTree if ``path`` is not the file verified at unpack time (one stat)."""
    st = os.stat(path)
    if row.stamp and f"{st.st_size}:{st.st_mtime_ns}" != row.stamp:
        raise TamperedTree(path)


def discard(store: ArtifactStore, key: str) -> None:
    """Forget an unpacked tree (it is unpacked again from the verified wheel on next use)."""
    shutil.rmtree(store.unpacked_path(key), ignore_errors=True)


def cached_trees(store: ArtifactStore) -> Iterator[UnpackedWheel]:
    """Every complete unpacked tree in the cache."""
    if not store.unpacked.is_dir():
        return
    for marker in sorted(store.unpacked.glob(f"*/*/{_FORMAT}")):
        with contextlib.suppress(OSError, ValueError, IndexError, TypeError):
            yield _load(marker.parent)


def verify_tree(tree: UnpackedWheel) -> list[str]:
    """Re-hash every file of an unpacked tree; the paths that differ from their RECORD."""
    bad = []
    for row in tree.records:
        try:
            if file_record_hash(tree.root / row.path) != row.hash:
                bad.append(row.path)
        except OSError:
            bad.append(row.path)
    return bad


def _unpack(wheel: Path, root: Path, name: str, version: str, tmp: Path) -> None:
    """Unpack into the empty scratch directory ``tmp`` and rename it to ``root``."""
    label = wheel.name
    try:
        members = [m for m in check_zip(wheel, label) if not m.is_dir]
        dist_info = _dist_info(members, label, name, version)
        record_path = f"{dist_info}/{RECORD_NAME}"
        with zipfile.ZipFile(wheel) as zf:
            by_name = {m.name: m for m in members}
            if record_path not in by_name:
                raise IntegrityError(f"{label}: no {record_path}")
            purelib = _read_wheel_file(zf, by_name, f"{dist_info}/WHEEL", label)
            entries = parse_record(
                _read_small(zf, by_name[record_path], label).decode("utf-8", "replace"),
                label,
                record_path,
            )
            unlisted = [
                m.name
                for m in members
                if m.name not in entries and m.name not in {f"{dist_info}/{s}" for s in SIGNATURES}
            ]
            if unlisted:
                raise IntegrityError(
                    f"{label}: {unlisted[0]} is not listed in RECORD"
                    + (f" (and {len(unlisted) - 1} more)" if len(unlisted) > 1 else "")
                )
            absent = sorted(p for p in entries if p not in by_name)
            if absent:
                raise IntegrityError(
                    f"{label}: RECORD lists {absent[0]}, which is not in the wheel"
                    + (f" (and {len(absent) - 1} more)" if len(absent) > 1 else "")
                )
            declared = 0
            for m in members:
                entry = entries.get(m.name)
                if entry is not None and entry.size is not None:
                    if m.file_size != entry.size:
                        raise IntegrityError(
                            f"{label}: {m.name} is {m.file_size} bytes in the ZIP, RECORD says "
                            f"{entry.size}"
                        )
                    declared += entry.size
            check_space(tmp, declared, label)
            rows: list[RecordRow] = []
            for m in members:
                entry = entries.get(m.name)
                if m.name == record_path or entry is None:
                    continue  # RECORD and signature files are not installed
                assert entry.hash_ is not None and entry.size is not None
                digest = _extract(zf, m, tmp / m.name, entry.size, label)
                if "sha256=" + b64_digest(digest) != str(entry.hash_):
                    raise IntegrityError(
                        f"{label}: {m.name} does not match its RECORD hash (corrupt or tampered)"
                    )
                st = os.stat(tmp / m.name)
                stamp = f"{st.st_size}:{st.st_mtime_ns}"
                rows.append(RecordRow(m.name, str(entry.hash_), str(entry.size), stamp))
        out = io.StringIO()
        out.write(f"{dist_info}\n{'purelib' if purelib else 'platlib'}\n")
        csv.writer(out, lineterminator="\n").writerows(
            (r.path, r.hash, r.size, r.stamp) for r in sorted(rows, key=lambda r: r.path)
        )
        (tmp / _FORMAT).write_text(out.getvalue(), "utf-8")
        os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp makes 0700: the tree is shared by links
        root.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(root, ignore_errors=True)
        os.replace(tmp, root)
    except zipfile.BadZipFile as exc:
        raise IntegrityError(f"{label}: not a valid wheel ({exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extract(zf: zipfile.ZipFile, m: ZipMember, target: Path, limit: int, label: str) -> bytes:
    """Stream one member to ``target``, stopping at ``limit`` bytes; its sha256 digest."""
    target.parent.mkdir(parents=True, exist_ok=True)
    executable = bool(m.mode & 0o111)
    h = hashlib.sha256()
    written = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o777 if executable else 0o666)
    with os.fdopen(fd, "wb") as dst, zf.open(m.name) as src:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > limit:
                raise IntegrityError(
                    f"{label}: {m.name} expands past the {limit} bytes RECORD declares"
                )
            h.update(chunk)
            dst.write(chunk)
    if written != limit:
        raise IntegrityError(f"{label}: {m.name} is {written} bytes, RECORD declares {limit}")
    return h.digest()


def _read_small(zf: zipfile.ZipFile, m: ZipMember, label: str, limit: int = 16 << 20) -> bytes:
    if m.file_size > limit:
        raise IntegrityError(f"{label}: {m.name} is implausibly large ({m.file_size} bytes)")
    with zf.open(m.name) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise IntegrityError(f"{label}: {m.name} is implausibly large")
    return data


def _read_wheel_file(
    zf: zipfile.ZipFile, by_name: dict[str, ZipMember], path: str, label: str
) -> bool:
    """Check ``WHEEL``; whether the root of the wheel is purelib."""
    member = by_name.get(path)
    if member is None:
        raise IntegrityError(f"{label}: no {path}")
    headers = BytesHeaderParser().parsebytes(_read_small(zf, member, label, 1 << 20))
    wheel_version = headers.get("Wheel-Version", "").strip()
    major = wheel_version.split(".")[0]
    if not major.isdigit():
        raise IntegrityError(f"{label}: WHEEL has no valid Wheel-Version ({wheel_version!r})")
    if int(major) != 1:
        raise IntegrityError(
            f"{label}: Wheel-Version {wheel_version} is not supported (only 1.x)",
            hint="a newer wheel format than envlock understands: upgrade envlock",
        )
    purelib = headers.get("Root-Is-Purelib", "").strip().lower()
    if purelib not in ("true", "false"):
        raise IntegrityError(f"{label}: WHEEL has no valid Root-Is-Purelib ({purelib!r})")
    return purelib == "true"


def check_space(where: Path, needed: int, label: str) -> None:
    """Refuse to unpack ``needed`` bytes (plus 10 %) where fewer are free."""
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return
    if needed + needed // 10 > free:  # 10 %: file system overhead
        raise EnvlockError(
            f"{label} unpacks to {needed / 1e6:.1f} MB, but only {free / 1e6:.1f} MB are free "
            f"on {where}",
            hint="free some space (envlock cache prune) or point ENVLOCK_CACHE_DIR elsewhere",
        )


def _dist_info(members: list[ZipMember], label: str, name: str, version: str) -> str:
    dirs = {
        m.name.split("/")[0]
        for m in members
        if "/" in m.name and m.name.split("/")[0].endswith(".dist-info")
    }
    if len(dirs) != 1:
        raise IntegrityError(f"{label}: expected one .dist-info directory, found {len(dirs)}")
    dist_info = dirs.pop()
    stem = dist_info[: -len(".dist-info")]
    dist_name, _, dist_version = stem.rpartition("-")
    try:
        same_version = Version(dist_version) == Version(version)
    except InvalidVersion:
        same_version = False
    if canonicalize_name(dist_name) != canonicalize_name(name) or not same_version:
        raise IntegrityError(
            f"{label}: contains {dist_name} {dist_version}, but the lock says {name} {version}"
        )
    tops = {m.name.split("/")[0] for m in members if "/" in m.name}
    data_dirs = {top for top in tops if top.endswith(".data")}
    if data_dirs - {stem + ".data"}:
        raise IntegrityError(
            f"{label}: unexpected data directory {sorted(data_dirs - {stem + '.data'})[0]}"
        )
    return dist_info
