"""Interpreter archives unpacked once into the cache (``unpacked/sha256/…``), checked on the way in.

A python-build-standalone ``install_only`` archive (a tar whose members all sit under one
``python/`` directory) becomes a tree keyed by the archive's sha256, beside the unpacked wheels,
with an index (``.interpreter-v1``) of every file's sha256 and size, every link and directory.

The archive is refused, and nothing is kept, unless every member passes
:mod:`envlock.cache.tarsafe` (the rules every tar envlock unpacks is held to), with every member
under ``python/``, no hidden top-level name, every link relative and inside the tree, and at most
``MAX_MEMBERS`` members and ``MAX_TOTAL`` bytes. The archive's own sha256 was checked by the
store before this runs.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from envlock._fs import UMASK
from envlock.cache.records import b64_digest, file_record_hash
from envlock.cache.store import ArtifactStore
from envlock.cache.tarsafe import Extracted, TarRules, unpack_tar
from envlock.cache.unpack import TamperedTree, unpack_once
from envlock.errors import EnvlockError

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


def _unpack(archive: Path, root: Path, tmp: Path) -> None:
    """Unpack into the empty scratch directory ``tmp`` and rename it to ``root``."""
    label = archive.name
    rules = TarRules(
        "interpreter archive",
        MAX_MEMBERS,
        MAX_TOTAL,
        top=TOP,
        hidden_top=False,  # the index lives there
        digests=True,
    )
    try:
        entries = [_entry(e) for e in unpack_tar(archive, tmp, label, rules)]
        _write_index(tmp, entries)
        os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp makes 0700: the tree is shared by links
        root.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(root, ignore_errors=True)
        os.replace(tmp, root)
    except OSError as exc:  # a full disk, a permission: not the archive's fault
        where = exc.filename or tmp
        raise EnvlockError(f"{label}: cannot unpack into {where}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _entry(e: Extracted) -> TreeEntry:
    if e.kind == "dir":
        return TreeEntry(e.path, "dir")
    if e.kind == "link":
        return TreeEntry(e.path, "link", target=e.target)
    # a hard link is a file with its source's content (and inode: the same stamp)
    hash_ = "sha256=" + b64_digest(e.sha256)
    return TreeEntry(e.path, "file", hash_, e.size, e.stamp, "", e.executable)
