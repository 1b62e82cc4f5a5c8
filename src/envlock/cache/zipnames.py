"""The member rules of a wheel ZIP: safe, normalised names and plain files only.

A name without flag bit 11 must be ASCII (cp437 and UTF-8 readers would decode it differently);
absolute paths, backslashes, drive letters, control characters and empty, ``.`` or ``..``
components are refused on every host OS, as are links, special files and a path that is both a
file and a directory.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable

FLAG_UTF8 = 1 << 11
UNICODE_PATH_TAG = 0x7075  # Info-ZIP Unicode Path: Python >= 3.13 prefers it to the header name
STORED, DEFLATED = 0, 8
_DOS_DIRECTORY = 0x10
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"[A-Za-z]:")


class Reject(Exception):
    """A reason the archive is refused; the caller adds the archive's label."""


def decode_name(raw: bytes, flags: int) -> str:
    if flags & FLAG_UTF8:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Reject(f"name {raw!r} is not valid UTF-8 although flag bit 11 says so") from None
    if not raw.isascii():
        # Without bit 11 the name is cp437 by the spec but UTF-8 to many tools.
        raise Reject(f"non-ASCII name {raw!r} without the UTF-8 flag (bit 11)")
    return raw.decode("ascii")


def name_problem(name: str, is_dir: bool) -> str | None:
    """Why ``name`` is not a safe, normalised relative path, or None."""
    if not name:
        return "empty member name"
    if name.startswith("/"):
        return f"absolute member name {name!r}"
    if "\\" in name:
        return f"backslash in member name {name!r}"
    if _DRIVE.match(name):
        return f"drive letter in member name {name!r}"
    if _CONTROL.search(name):
        return f"control character in member name {name!r}"
    path = name[:-1] if is_dir else name
    # Substring tests rather than a split: wheels have up to tens of thousands of members.
    if (
        "//" in path
        or "/./" in path
        or "/../" in path
        or path.startswith(("./", "../"))
        or path.endswith(("/", "/.", "/.."))
        or path in ("", ".", "..")
    ):
        return f"member name {name!r} is not a normalised path (empty, '.' or '..' component)"
    return None


def check_unicode_path(extra: dict[int, bytes], name: str) -> None:
    """Python >= 3.13 takes the name from an Info-ZIP Unicode Path field: it must agree."""
    field = extra.get(UNICODE_PATH_TAG)
    if field is None:
        return
    if len(field) < 5 or field[5:].decode("utf-8", "replace") != name:
        raise Reject(f"Unicode Path extra field of {name!r} names another file")


def check_member(name: str, method: int, csize: int, usize: int, external: int) -> tuple[int, bool]:
    """Refuse unsafe names and file types; the member's unix mode and whether it is a directory."""
    is_dir = name.endswith("/")
    problem = name_problem(name, is_dir)
    if problem:
        raise Reject(problem)
    mode = external >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        raise Reject(f"{name!r} is a symbolic link")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise Reject(f"{name!r} is not a regular file or directory (mode 0o{mode:o})")
    if is_dir:
        if kind == stat.S_IFREG:
            raise Reject(f"{name!r} ends with '/' but has a regular file's mode")
        if usize != 0:
            raise Reject(f"directory entry {name!r} declares {usize} bytes of content")
    elif kind == stat.S_IFDIR or external & _DOS_DIRECTORY:
        raise Reject(f"{name!r} is marked as a directory but its name lacks a trailing '/'")
    if method == STORED and csize != usize:
        raise Reject(f"stored member {name!r} has compressed size {csize} != size {usize}")
    return mode, is_dir


def check_file_dir_clash(names: Iterable[str]) -> None:
    """A path may not be both a file and a directory ("a" and "a/b", or "a" and "a/")."""
    files: set[str] = set()
    dirs: set[str] = set()
    for name in names:
        if name.endswith("/"):
            name = name[:-1]
            dirs.add(name)
        else:
            files.add(name)
        cut = name.rfind("/")
        while cut != -1 and name[:cut] not in dirs:  # parents of a known directory are known
            dirs.add(name[:cut])
            cut = name.rfind("/", 0, cut)
    clash = files & dirs
    if clash:
        raise Reject(f"{min(clash)!r} is both a file and a directory")
