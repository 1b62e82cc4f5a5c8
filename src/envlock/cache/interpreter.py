"""Interpreter archives unpacked once into the cache (``unpacked/sha256/…``), checked on the way in.

A python-build-standalone ``install_only`` archive (a tar whose members all sit under one
``python/`` directory) becomes a tree keyed by the archive's sha256, beside the unpacked wheels,
with an index (``.interpreter-v1``) of every file's sha256 and size, every link and directory.

The archive is refused, and nothing is kept, unless every member is safe: tarfile's ``data``
filter (no absolute paths, no traversal, no device or fifo, links inside the tree), plus, on top,
no ``.``/``..`` name components, no duplicate members, no member under a link or a file, hard
links only to earlier regular files, every link resolving inside the finished tree, and at most
``MAX_MEMBERS`` members and ``MAX_TOTAL`` bytes. All headers are checked, and the free space,
before anything is written. The archive's own sha256 was checked by the store before this runs.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import lzma
import os
import shutil
import sys
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from envlock._fs import UMASK
from envlock.cache.records import b64_digest, file_record_hash
from envlock.cache.store import ArtifactStore
from envlock.cache.unpack import TamperedTree, check_space, unpack_once
from envlock.errors import EnvlockError, IntegrityError

__all__ = [
    "MAX_MEMBERS",
    "MAX_TOTAL",
    "TreeEntry",
    "UnpackedInterpreter",
    "cached_interpreters",
    "unpacked_interpreter",
    "verify_interpreter",
]

INDEX = ".interpreter-v1"  # bump when the cached tree layout or its index format changes
TOP = "python"  # python-build-standalone's single top directory, stripped
MAX_TOTAL = 4 << 30  # bytes: a CPython install is ~100 MB; anything near this is hostile
MAX_MEMBERS = 200_000  # a CPython install has ~5 000
_MAX_NAME = 1024  # bytes of a member path (PATH_MAX is 4096 on Linux, 1024 on macOS)
_MAX_PART = 255  # bytes of one path component (NAME_MAX)
_CHUNK = 1 << 20

Kind = Literal["file", "link", "dir"]


@dataclass(frozen=True)
class TreeEntry:
    """One member of an unpacked interpreter tree (``path``: relative, ``/``-separated)."""

    path: str
    kind: Kind
    hash: str = ""  # files: RECORD form, "sha256=<urlsafe b64>"
    size: int = 0
    stamp: str = ""  # files: "<size>:<mtime_ns>" of the cached copy, to notice edits via links
    target: str = ""  # links: what the link says
    executable: bool = False


@dataclass(frozen=True)
class UnpackedInterpreter:
    """A verified interpreter tree in the cache (or in a caller's scratch directory)."""

    root: Path
    entries: tuple[TreeEntry, ...]  # sorted by path: a directory before what it holds

    def check_stamp(self, entry: TreeEntry) -> None:
        """Raise TamperedTree if the cached copy of a file changed since it was unpacked."""
        st = os.stat(f"{self.root}/{entry.path}")
        if f"{st.st_size}:{st.st_mtime_ns}" != entry.stamp:
            raise TamperedTree(entry.path)


def unpacked_interpreter(
    store: ArtifactStore, archive: Path, sha256: str, *, scratch: Path | None = None
) -> UnpackedInterpreter:
    """The verified tree of an interpreter archive, unpacking it (once, atomically) if needed.

    On a read-only cache the tree is unpacked under ``scratch`` instead (required then)."""
    if not (store.unpacked_path(sha256) / INDEX).is_file():
        _data_filter()  # refuse before any scratch directory is made

    def unpack(dest: Path, tmp: Path) -> None:
        _unpack(archive, dest, tmp)

    return _load(unpack_once(store, sha256, INDEX, archive.name, unpack, scratch))


def cached_interpreters(store: ArtifactStore) -> Iterator[UnpackedInterpreter]:
    """Every complete unpacked interpreter tree in the cache."""
    if not store.unpacked.is_dir():
        return
    for marker in sorted(store.unpacked.glob(f"*/*/{INDEX}")):
        try:
            yield _load(marker.parent)
        except (OSError, ValueError, csv.Error):
            continue


def verify_interpreter(tree: UnpackedInterpreter) -> list[str]:
    """Re-hash every file and re-read every link; the paths that differ from the index."""
    bad = []
    for entry in tree.entries:
        path = tree.root / entry.path
        try:
            if entry.kind == "file":
                if file_record_hash(path) != entry.hash:
                    bad.append(entry.path)
            elif entry.kind == "link":
                if os.readlink(path) != entry.target:
                    bad.append(entry.path)
            elif not path.is_dir() or path.is_symlink():
                bad.append(entry.path)
        except OSError:
            bad.append(entry.path)
    return bad


# -- the index --------------------------------------------------------------------------------


def _load(root: Path) -> UnpackedInterpreter:
    rows = csv.reader((root / INDEX).read_text("utf-8").splitlines())
    entries = []
    for kind, path, hash_, size, stamp, target, executable in rows:
        if kind not in ("file", "link", "dir"):
            raise ValueError(f"unknown entry kind {kind!r}")
        entries.append(
            TreeEntry(path, kind, hash_, int(size), stamp, target, executable == "x")  # type: ignore[arg-type]
        )
    return UnpackedInterpreter(root, tuple(entries))


def _write_index(where: Path, entries: list[TreeEntry]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(
        (e.kind, e.path, e.hash, e.size, e.stamp, e.target, "x" if e.executable else "")
        for e in sorted(entries, key=lambda e: e.path)
    )
    (where / INDEX).write_text(out.getvalue(), "utf-8")


# -- unpacking ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    original: tarfile.TarInfo  # what tarfile reads the data of
    rel: str  # path in the tree (``python/`` stripped)
    kind: Literal["file", "hardlink", "link", "dir"]
    mode: int  # as the data filter left it
    link: str  # hard links: the tree path of the file; links: the target as written


def _data_filter() -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo | None]:
    filt = getattr(tarfile, "data_filter", None)
    if filt is None:  # added in 3.10.12 / 3.11.4
        raise EnvlockError(
            "unpacking an interpreter archive safely needs tarfile's data filter "
            f"(Python 3.10.12+ or 3.11.4+); envlock runs on {sys.version.split()[0]}",
            hint="run envlock on a newer Python",
        )
    return filt  # type: ignore[no-any-return]


def _unpack(archive: Path, root: Path, tmp: Path) -> None:
    """Unpack into the empty scratch directory ``tmp`` and rename it to ``root``."""
    label = archive.name
    try:
        filt = _data_filter()
        with tarfile.open(archive, "r:*") as tar:
            members, total = _check_members(tar, label, filt, str(tmp))
            check_space(tmp, total, label)
            entries = _extract(tar, members, tmp, label)
        _check_links(tmp, entries, label)
        _write_index(tmp, entries)
        os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp makes 0700: the tree is shared by links
        root.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(root, ignore_errors=True)
        os.replace(tmp, root)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as exc:
        raise IntegrityError(f"{label}: not a valid interpreter archive ({exc})") from None
    except OSError as exc:  # a full disk, a permission: not the archive's fault
        where = exc.filename or tmp
        raise EnvlockError(f"{label}: cannot unpack into {where}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _strip(name: str, label: str) -> str:
    """The tree path of a member name: ``python/bin/x`` -> ``bin/x``, ``python`` -> ``""``."""
    shown = repr(name) if len(name) <= 120 else repr(name[:117] + "...")
    if any(ord(c) < 0x20 or c == "\\" for c in name):
        raise IntegrityError(f"{label}: member {shown} has a control character or a backslash")
    parts = name.removeprefix("./").rstrip("/").split("/")
    if parts[0] != TOP:
        raise IntegrityError(
            f"{label}: member {shown} is not under {TOP}/ (not a python-build-standalone "
            "install_only archive)"
        )
    if any(p in ("", ".", "..") for p in parts[1:]):
        raise IntegrityError(f"{label}: member {shown} has an empty, '.' or '..' path component")
    encoded = [p.encode("utf-8", "surrogateescape") for p in parts]
    if sum(len(p) + 1 for p in encoded) > _MAX_NAME or max(len(p) for p in encoded) > _MAX_PART:
        raise IntegrityError(f"{label}: member {shown} has an implausibly long name")
    return "/".join(parts[1:])


def _check_members(
    tar: tarfile.TarFile,
    label: str,
    filt: Callable[[tarfile.TarInfo, str], tarfile.TarInfo | None],
    dest: str,
) -> tuple[list[_Member], int]:
    """Every member, checked, before anything is written; and the bytes they unpack to."""
    kinds: dict[str, str] = {}  # explicit members
    implied: set[str] = set()  # directories that members sit in
    out: list[_Member] = []
    total = 0
    count = 0
    for m in tar:
        count += 1
        if count > MAX_MEMBERS:
            raise IntegrityError(f"{label}: more than {MAX_MEMBERS} members")
        rel = _strip(m.name, label)
        if (
            m.ischr()
            or m.isblk()
            or m.isfifo()
            or m.issparse()
            or not (m.isreg() or m.isdir() or m.issym() or m.islnk())
        ):
            raise IntegrityError(f"{label}: member {m.name} is a device, fifo or special file")
        if rel == "":
            if not m.isdir():
                raise IntegrityError(f"{label}: {m.name} is not a directory")
            continue
        if rel.split("/")[0].startswith("."):
            raise IntegrityError(f"{label}: member {m.name} is a hidden top-level name")
        kind: Literal["file", "hardlink", "link", "dir"] = (
            "dir" if m.isdir() else "link" if m.issym() else "hardlink" if m.islnk() else "file"
        )
        if rel in kinds:
            raise IntegrityError(f"{label}: member {m.name} appears twice")
        if kind != "dir" and rel in implied:
            raise IntegrityError(f"{label}: {m.name} is both a directory and a file")
        parts = rel.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if kinds.get(parent, "dir") != "dir":
                raise IntegrityError(f"{label}: member {m.name} is under {parent}, not a directory")
            implied.add(parent)
        link = ""
        if kind == "hardlink":
            try:
                link = _strip(m.linkname, label)
            except IntegrityError:
                raise IntegrityError(
                    f"{label}: hard link {m.name} -> {m.linkname} points outside {TOP}/"
                ) from None
            if kinds.get(link) not in ("file", "hardlink"):
                raise IntegrityError(
                    f"{label}: hard link {m.name} -> {m.linkname} does not point at an earlier "
                    "file of the archive"
                )
        elif kind == "link":
            link = m.linkname
            resolved = os.path.normpath(os.path.join(os.path.dirname(rel), link))
            if link.startswith("/") or resolved == ".." or resolved.startswith("../"):
                raise IntegrityError(
                    f"{label}: link {m.name} -> {m.linkname} points outside the tree"
                )
        renamed = m.replace(name=rel, linkname=link if kind == "hardlink" else m.linkname)
        try:
            filtered = filt(renamed, dest)
        except tarfile.FilterError as exc:
            raise IntegrityError(f"{label}: unsafe member {m.name} ({exc})") from None
        if filtered is None:  # the filter drops nothing today; never extract half an archive
            raise IntegrityError(f"{label}: unsafe member {m.name}")
        kinds[rel] = kind
        if kind == "file":
            total += m.size
            if total > MAX_TOTAL:
                raise IntegrityError(f"{label}: unpacks to more than {MAX_TOTAL >> 30} GiB")
        out.append(_Member(m, rel, kind, filtered.mode or 0, link))
    return out, total


def _extract(
    tar: tarfile.TarFile, members: list[_Member], tmp: Path, label: str
) -> list[TreeEntry]:
    entries: list[TreeEntry] = []
    files: dict[str, TreeEntry] = {}
    for m in members:
        path = f"{tmp}/{m.rel}"
        parent = os.path.dirname(path)
        os.makedirs(parent, exist_ok=True)
        if m.kind == "dir":
            os.makedirs(path, exist_ok=True)
            entries.append(TreeEntry(m.rel, "dir"))
        elif m.kind == "link":
            os.symlink(m.link, path)
            entries.append(TreeEntry(m.rel, "link", target=m.link))
        elif m.kind == "hardlink":
            source = files[m.link]
            os.link(f"{tmp}/{m.link}", path, follow_symlinks=False)
            entry = TreeEntry(
                m.rel, "file", source.hash, source.size, source.stamp, "", source.executable
            )
            files[m.rel] = entry
            entries.append(entry)
        else:
            entry = _extract_file(tar, m, path, label)
            files[m.rel] = entry
            entries.append(entry)
    return entries


def _extract_file(tar: tarfile.TarFile, m: _Member, path: str, label: str) -> TreeEntry:
    executable = bool(m.mode & 0o100)
    h = hashlib.sha256()
    written = 0
    src = tar.extractfile(m.original)
    if src is None:
        raise IntegrityError(f"{label}: member {m.original.name} has no data")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o777 if executable else 0o666)
    with os.fdopen(fd, "wb") as dst, src:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > m.original.size:
                break
            h.update(chunk)
            dst.write(chunk)
    if written != m.original.size:
        raise IntegrityError(
            f"{label}: member {m.original.name} is {written} bytes, its header says "
            f"{m.original.size}"
        )
    # The archive's times are kept: the stdlib's .pyc files record their source's mtime and
    # stay valid only if it is the one they were compiled against.
    mtime = min(max(int(m.original.mtime), 0), (1 << 32) - 1)  # a hostile header may say 1e30
    os.utime(path, (mtime, mtime))
    st = os.stat(path)
    return TreeEntry(
        m.rel,
        "file",
        "sha256=" + b64_digest(h.digest()),
        written,
        f"{st.st_size}:{st.st_mtime_ns}",
        "",
        executable,
    )


def _check_links(tmp: Path, entries: list[TreeEntry], label: str) -> None:
    """Every link, with all the others in place, resolves inside the tree (one link may lead
    through another: ``a -> .`` then ``b -> a/..``)."""
    top = os.path.realpath(tmp)
    for entry in entries:
        if entry.kind != "link":
            continue
        real = os.path.realpath(f"{tmp}/{entry.path}")
        if real != top and not real.startswith(top + os.sep):
            raise IntegrityError(
                f"{label}: link {TOP}/{entry.path} -> {entry.target} points outside the tree"
            )
