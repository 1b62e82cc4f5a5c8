"""Wheels unpacked once into the cache (``unpacked/sha256/…``), checked on the way in.

A wheel is refused, and nothing is kept, when a member path escapes the tree (absolute, ``..``,
drive letters, symlinks), a file does not match its RECORD hash, or its ``.dist-info`` does not
name the locked project and version.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envlock.cache.store import ArtifactStore
from envlock.errors import IntegrityError

RECORD_NAME = "RECORD"
_FORMAT = ".records-v2"  # bump when the cached tree layout or .records format changes


@dataclass(frozen=True)
class RecordRow:
    path: str
    hash: str  # "sha256=<urlsafe b64>" or ""
    size: str
    stamp: str = ""  # "<size>:<mtime_ns>" of the cached copy, to notice edits through links


@dataclass(frozen=True)
class UnpackedWheel:
    """A verified wheel tree in the cache."""

    root: Path
    dist_info: str  # e.g. "foo-1.0.dist-info"
    records: tuple[RecordRow, ...]  # every file of the tree, RECORD itself excluded

    @property
    def data_dir(self) -> str:
        return self.dist_info[: -len(".dist-info")] + ".data"


def record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def unpacked(
    store: ArtifactStore, wheel: Path, sha256: str, name: str, version: str
) -> UnpackedWheel:
    """The cached tree of a verified wheel, unpacking it (once, atomically) if needed."""
    root = store.unpacked_path(sha256)
    if not (root / _FORMAT).is_file():
        with store.lock("unpack-" + sha256):
            if not (root / _FORMAT).is_file():
                _unpack(store, wheel, root, name, version)
    return _load(root)


def _load(root: Path) -> UnpackedWheel:
    lines = (root / _FORMAT).read_text("utf-8").splitlines()
    dist_info = lines[0]
    rows = tuple(RecordRow(*row) for row in csv.reader(lines[1:]))
    return UnpackedWheel(root, dist_info, rows)


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


def _safe_member(name: str, wheel: str) -> str:
    path = PurePosixPath(name)
    if (
        name.startswith(("/", "\\"))
        or "\\" in name
        or ":" in path.parts[0]
        or any(part in ("..", "") for part in name.rstrip("/").split("/"))
    ):
        raise IntegrityError(f"{wheel}: unsafe path {name!r} in the wheel (escapes the target)")
    return name


def _unpack(store: ArtifactStore, wheel: Path, root: Path, name: str, version: str) -> None:
    label = wheel.name
    tmp = Path(tempfile.mkdtemp(prefix="unpack-", dir=store.tmpdir()))
    try:
        with zipfile.ZipFile(wheel) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            for info in infos:
                _safe_member(info.filename, label)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise IntegrityError(f"{label}: symlink {info.filename!r} in the wheel")
            dist_info = _dist_info(infos, label, name, version)
            record_path = f"{dist_info}/{RECORD_NAME}"
            try:
                record = list(csv.reader(io.StringIO(zf.read(record_path).decode("utf-8"))))
            except KeyError:
                raise IntegrityError(f"{label}: no {record_path}") from None
            expected = {row[0]: row[1] if len(row) > 1 else "" for row in record if row}
            rows: list[RecordRow] = []
            for info in infos:
                data = zf.read(info)
                member = info.filename
                if member == record_path or member.startswith(f"{dist_info}/RECORD."):
                    continue
                actual = record_hash(data)
                want = expected.get(member)
                if want and want != actual:
                    raise IntegrityError(
                        f"{label}: {member} does not match its RECORD hash (corrupt or tampered)"
                    )
                target = tmp / member
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                mode = (info.external_attr >> 16) & 0o777
                if mode & 0o111:
                    os.chmod(target, 0o755)
                st = target.stat()
                rows.append(
                    RecordRow(member, actual, str(len(data)), f"{st.st_size}:{st.st_mtime_ns}")
                )
        out = io.StringIO()
        out.write(dist_info + "\n")
        csv.writer(out, lineterminator="\n").writerows(
            (r.path, r.hash, r.size, r.stamp) for r in sorted(rows, key=lambda r: r.path)
        )
        (tmp / _FORMAT).write_text(out.getvalue(), "utf-8")
        root.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(root, ignore_errors=True)
        os.replace(tmp, root)
    except zipfile.BadZipFile as exc:
        raise IntegrityError(f"{label}: not a valid wheel ({exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _dist_info(infos: list[zipfile.ZipInfo], label: str, name: str, version: str) -> str:
    dirs = {
        i.filename.split("/")[0] for i in infos if i.filename.split("/")[0].endswith(".dist-info")
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
    return dist_info
