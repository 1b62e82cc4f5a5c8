"""The one way envlock unpacks a tar archive (an interpreter into the cache, an environment from a
snapshot): every member checked by envlock's own rules before anything is written, then written
by envlock itself, never through a link, and every path re-checked with ``realpath`` after.

tarfile's ``data`` filter is asked too where it exists, as a second opinion, never relied on:
on Pythons without the 2025 fixes (3.10 < 3.10.18, 3.11 < 3.11.13, 3.12 < 3.12.11) nested links
whose expansion exceeds PATH_MAX pass it (CVE-2025-4517). The rules, the same on every Python:

- names: no absolute path, no empty, ``.`` or ``..`` component, no control character or
  backslash, at most ``_MAX_NAME`` bytes (``_MAX_PART`` a component); optionally all under one
  top directory, which is stripped; duplicates (after Unicode NFC) refused;
- kinds: files, directories, symbolic links and hard links only (no device, fifo, sparse file);
- no member under a link or a file member; hard links only to an earlier file member;
- a relative link, followed through the other links of the archive, stays inside the tree; an
  absolute link only where the caller allows it (kept as a link, nothing is written through it);
- at most ``max_members`` members and ``max_total`` bytes of files, and the free space checked,
  before anything is written.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import stat
import tarfile
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from envlock.cache.unpack import check_space
from envlock.errors import IntegrityError

__all__ = ["Extracted", "TarRules", "unpack_tar"]

Kind = Literal["file", "hardlink", "link", "dir"]

_MAX_NAME = 1024  # bytes of a member path (PATH_MAX is 4096 on Linux, 1024 on macOS)
_MAX_PART = 255  # bytes of one path component (NAME_MAX)
_MAX_HOPS = 40  # links followed while resolving one path (Linux's limit)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class TarRules:
    """What one kind of archive may hold."""

    what: str  # "interpreter archive", "environment archive": for messages
    max_members: int
    max_total: int  # bytes of regular files
    top: str = ""  # the one top directory every member sits under (stripped), or none
    absolute_links: bool = False  # a symlink may name an absolute path (never written through)
    hidden_top: bool = True  # a top-level name may start with "." (False: reserved by envlock)
    digests: bool = False  # hash every file while writing it (Extracted.sha256)


@dataclass(frozen=True)
class Extracted:
    """One member as written (``path``: tree-relative, ``/``-separated)."""

    path: str
    kind: Kind  # a hard link is reported with its file's sha256 and size
    sha256: bytes = b""
    size: int = 0
    stamp: str = ""  # files: "<size>:<mtime_ns>" as written
    target: str = ""  # links: what the link says
    executable: bool = False


@dataclass(frozen=True)
class _Member:
    info: tarfile.TarInfo
    path: str
    kind: Kind
    link: str  # hard links: the tree path of the file; links: the target as written


def unpack_tar(
    archive: Path | BinaryIO, dest: Path, label: str, rules: TarRules
) -> list[Extracted]:
    """Unpack ``archive`` (a path, or a seekable binary file) into the empty directory ``dest``
    (which the caller removes on error).

    IntegrityError (naming ``label``) for an unsafe or broken archive; OSError for the disk."""
    try:
        with (
            tarfile.open(archive, "r:*")
            if isinstance(archive, Path)
            else tarfile.open(fileobj=archive, mode="r:*")
        ) as tar:
            members, total, outward = _check_members(tar, label, rules, str(dest))
            check_space(dest, total, label)
            written = _extract(tar, members, dest, label, rules)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as exc:
        raise IntegrityError(f"{label}: not a valid {rules.what} ({exc})") from None
    _recheck(dest, written, label, outward)
    return written


# -- checking every header before anything is written ------------------------------------------


def _shown(name: str) -> str:
    return repr(name) if len(name) <= 120 else repr(name[:117] + "...")


def _tree_path(name: str, label: str, rules: TarRules) -> str:
    """The normalised tree path of a member name (``""`` for the top directory itself)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in name):
        raise IntegrityError(
            f"{label}: member {_shown(name)} has a control character or a backslash"
        )
    parts = name.removeprefix("./").rstrip("/").split("/")
    if rules.top:
        if parts[0] != rules.top:  # an absolute name too: its first part is ""
            raise IntegrityError(f"{label}: member {_shown(name)} is not under {rules.top}/")
        parts = parts[1:]
    elif name.startswith("/"):
        raise IntegrityError(f"{label}: member {_shown(name)} is an absolute path")
    elif parts in ([""], ["."]):
        return ""  # "./" (or "." once tarfile drops the slash): the tree itself
    if any(p in ("", ".", "..") for p in parts):
        raise IntegrityError(
            f"{label}: member {_shown(name)} has an empty, '.' or '..' path component"
        )
    encoded = [p.encode("utf-8", "surrogateescape") for p in parts]
    if encoded and (
        sum(len(p) + 1 for p in encoded) > _MAX_NAME or max(len(p) for p in encoded) > _MAX_PART
    ):
        raise IntegrityError(f"{label}: member {_shown(name)} has an implausibly long name")
    return "/".join(parts)


def _kind(m: tarfile.TarInfo, label: str) -> Kind:
    if m.issparse() or not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
        raise IntegrityError(f"{label}: member {_shown(m.name)} is a device, fifo or special file")
    return "dir" if m.isdir() else "link" if m.issym() else "hardlink" if m.islnk() else "file"


def _check_members(
    tar: tarfile.TarFile, label: str, rules: TarRules, dest: str
) -> tuple[list[_Member], int, set[str]]:
    """Every member, checked, before anything is written; the bytes the files unpack to; and
    the relative links that lead to an absolute one."""
    kinds: dict[str, Kind] = {}  # explicit members, by NFC path
    implied: set[str] = set()  # directories that members sit in
    links: dict[str, str] = {}  # symbolic links: NFC path -> target
    out: list[_Member] = []
    total = 0
    for count, m in enumerate(tar, 1):
        if count > rules.max_members:
            raise IntegrityError(f"{label}: more than {rules.max_members} members")
        path = _tree_path(m.name, label, rules)
        kind = _kind(m, label)
        if path == "":
            if kind != "dir":
                raise IntegrityError(f"{label}: {_shown(m.name)} is not a directory")
            continue
        if not rules.hidden_top and path.startswith("."):
            raise IntegrityError(f"{label}: member {_shown(m.name)} is a hidden top-level name")
        key = unicodedata.normalize("NFC", path)
        if key in kinds:
            raise IntegrityError(f"{label}: member {_shown(m.name)} appears twice")
        if kind != "dir" and key in implied:
            raise IntegrityError(f"{label}: {_shown(m.name)} is both a directory and a file")
        parts = key.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if kinds.get(parent, "dir") != "dir":
                raise IntegrityError(
                    f"{label}: member {_shown(m.name)} is under {parent}, not a directory"
                )
            implied.add(parent)
        link = ""
        if kind == "hardlink":
            try:
                link = _tree_path(m.linkname, label, rules)
            except IntegrityError:
                raise IntegrityError(
                    f"{label}: hard link {_shown(m.name)} -> {_shown(m.linkname)} points outside "
                    f"{rules.top + '/' if rules.top else 'the tree'}"
                ) from None
            if kinds.get(unicodedata.normalize("NFC", link)) not in ("file", "hardlink"):
                raise IntegrityError(
                    f"{label}: hard link {_shown(m.name)} -> {_shown(m.linkname)} does not point "
                    "at an earlier file of the archive"
                )
        elif kind == "link":
            link = m.linkname
            if not link or any(ord(c) < 0x20 for c in link):
                raise IntegrityError(f"{label}: link {_shown(m.name)} has an invalid target")
            if link.startswith("/") and not rules.absolute_links:
                raise IntegrityError(
                    f"{label}: link {_shown(m.name)} -> {_shown(link)} points outside the tree"
                )
            links[key] = link
        kinds[key] = kind
        if kind == "file":
            total += m.size
            if total > rules.max_total:
                raise IntegrityError(
                    f"{label}: unpacks to more than {rules.max_total / (1 << 30):g} GiB"
                )
        out.append(_Member(m, path, kind, link))
    outward: set[str] = set()  # links that lead to an absolute link (allowed: absolute_links)
    for path, target in links.items():
        leads = _resolve(path, links)
        if leads is None or (leads.startswith("/") and not rules.absolute_links):
            raise IntegrityError(
                f"{label}: link {_shown(path)} -> {_shown(target)} points outside the tree"
            )
        if leads.startswith("/"):
            outward.add(path)
    second = _second_opinion(label)
    if second is not None:  # after ours, so that our messages are the ones users see
        for member in out:
            linkname = member.link if member.kind == "hardlink" else member.info.linkname
            second(member.info.replace(name=member.path, linkname=linkname), dest)
    return out, total, outward


def _resolve(path: str, links: dict[str, str]) -> str | None:
    """Where the link ``path`` leads, following the archive's links as the kernel would (but
    with no PATH_MAX to give up at): a tree path, or the target of the absolute link it meets;
    None if it leaves the tree or loops. Pure: nothing is on disk yet."""
    parent = path.rpartition("/")[0]
    done = parent.split("/") if parent else []
    todo = [*reversed(links[path].split("/"))]
    hops = 1
    while todo:
        part = todo.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                return None
            done.pop()
            continue
        here = "/".join([*done, part])
        target = links.get(here)
        if target is None:
            done.append(part)
            continue
        hops += 1
        if hops > _MAX_HOPS:
            return None
        if target.startswith("/"):
            return target
        todo.extend(reversed(target.split("/")))
    return "/".join(done)


def _second_opinion(label: str) -> Callable[[tarfile.TarInfo, str], object] | None:
    """tarfile's ``data`` filter (``tar`` for absolute links), where this Python has it."""
    data = getattr(tarfile, "data_filter", None)
    tar = getattr(tarfile, "tar_filter", None)
    if data is None or tar is None:  # before 3.10.12 / 3.11.4: our rules stand alone
        return None

    def check(member: tarfile.TarInfo, dest: str) -> object:
        filt = tar if member.issym() and member.linkname.startswith("/") else data
        try:
            return filt(member, dest)
        except tarfile.FilterError as exc:
            raise IntegrityError(f"{label}: unsafe member {_shown(member.name)} ({exc})") from None

    return check


# -- writing, never through a link -------------------------------------------------------------


def _extract(
    tar: tarfile.TarFile, members: list[_Member], dest: Path, label: str, rules: TarRules
) -> list[Extracted]:
    root = str(dest)
    made: set[str] = {""}  # tree directories known to be real directories we made
    files: dict[str, Extracted] = {}
    out: list[Extracted] = []
    for m in members:
        parent = m.path.rpartition("/")[0]
        _directory(root, parent, made, label)
        path = f"{root}/{m.path}"
        try:
            if m.kind == "dir":
                _directory(root, m.path, made, label)
                out.append(Extracted(m.path, "dir"))
            elif m.kind == "link":
                os.symlink(m.link, path)
                out.append(Extracted(m.path, "link", target=m.link))
            elif m.kind == "hardlink":
                source = files[m.link]
                if not stat.S_ISREG(os.lstat(f"{root}/{m.link}").st_mode):
                    raise IntegrityError(f"{label}: hard link {_shown(m.path)}: not a file")
                os.link(f"{root}/{m.link}", path, follow_symlinks=False)
                entry = Extracted(
                    m.path, "hardlink", source.sha256, source.size, source.stamp, "",
                    source.executable,
                )  # fmt: skip
                files[m.path] = entry
                out.append(entry)
            else:
                entry = _file(tar, m, path, label, rules.digests)
                files[m.path] = entry
                out.append(entry)
        except FileExistsError:
            # Two names the file system takes for one (case, Unicode): never write into it.
            raise IntegrityError(
                f"{label}: member {_shown(m.path)} collides with another member on this file system"
            ) from None
    return out


def _directory(root: str, path: str, made: set[str], label: str) -> None:
    """Make the tree directory ``path`` and its parents, each a real directory (not a link)."""
    if path in made:
        return
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        if sub in made:
            continue
        full = f"{root}/{sub}"
        try:
            os.mkdir(full)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(full).st_mode):
                raise IntegrityError(
                    f"{label}: {_shown(sub)} would be written through a link or a file"
                ) from None
        made.add(sub)


def _file(tar: tarfile.TarFile, m: _Member, path: str, label: str, digests: bool) -> Extracted:
    executable = bool(m.info.mode & 0o100)
    h = hashlib.sha256() if digests else None
    written = 0
    src = tar.extractfile(m.info)
    if src is None:
        raise IntegrityError(f"{label}: member {_shown(m.info.name)} has no data")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o777 if executable else 0o666)
    with os.fdopen(fd, "wb") as dst, src:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > m.info.size:
                break
            if h is not None:
                h.update(chunk)
            dst.write(chunk)
    if written != m.info.size:
        raise IntegrityError(
            f"{label}: member {_shown(m.info.name)} is {written} bytes, its header says "
            f"{m.info.size}"
        )
    # The archive's times are kept: the stdlib's .pyc files record their source's mtime and
    # stay valid only if it is the one they were compiled against.
    mtime = min(max(int(m.info.mtime), 0), (1 << 32) - 1)  # a hostile header may say 1e30
    os.utime(path, (mtime, mtime), follow_symlinks=False)
    st = os.lstat(path)
    return Extracted(
        m.path,
        "file",
        h.digest() if h is not None else b"",
        written,
        f"{st.st_size}:{st.st_mtime_ns}",
        "",
        executable,
    )


# -- and again, on disk ------------------------------------------------------------------------


def _recheck(dest: Path, written: list[Extracted], label: str, outward: set[str]) -> None:
    """With everything in place, ``realpath`` agrees: every written path is where it was
    meant to be (no link on the way), every relative link resolves inside the tree (but those
    in ``outward``, which lead to an allowed absolute link)."""
    top = os.path.realpath(dest)
    for e in written:
        full = f"{top}/{e.path}"
        if e.kind == "link":
            if e.target.startswith("/") or unicodedata.normalize("NFC", e.path) in outward:
                continue  # absolute links survive _check_members only where allowed
            real = os.path.realpath(full)
            if real != top and not real.startswith(top + os.sep):
                raise IntegrityError(
                    f"{label}: link {_shown(e.path)} -> {_shown(e.target)} points outside the tree"
                )
        elif os.path.realpath(full) != full:
            raise IntegrityError(f"{label}: {_shown(e.path)} was written through a link")
