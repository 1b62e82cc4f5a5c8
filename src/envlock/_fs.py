"""Filesystem helpers: atomic writes (temporary file beside the target, fsync, rename)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once, at import (single-threaded): files we create follow the user's umask, as files
# written with open() would, not mkstemp's private 0600.
UMASK = _read_umask()


def atomic_write_bytes(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a mix.

    ``exclusive``: ``path`` must not exist, even if it appears while writing (a hard link of the
    finished file, which fails then: FileExistsError; a rename where the filesystem has no hard
    links). A failure (full disk, read-only directory, ``path`` being a directory) leaves
    ``path`` as it was and raises ``OSError`` naming ``path``, not the temporary file."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~UMASK)
        if exclusive:
            _link_new(tmp, path)  # the temporary name is removed below
        else:
            os.replace(tmp, path)
            tmp = None
    except FileExistsError:
        raise
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write: {exc.strerror}", str(path)) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _link_new(tmp: str, path: Path) -> None:
    """``tmp`` becomes ``path`` only if ``path`` does not exist (FileExistsError otherwise)."""
    try:
        os.link(tmp, path)  # atomic and exclusive: fails if path appeared meanwhile
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network and FUSE filesystems)
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(tmp, path)


def read_regular(path: Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the regular file ``path`` (the caller compares with
    ``limit``). Opened without blocking and checked with ``fstat``: a FIFO, a device or a
    directory put where a spec or lock belongs raises ``OSError`` (EINVAL) instead of hanging or
    reading forever."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
