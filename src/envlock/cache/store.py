"""The content-addressed artifact store: ``artifacts/sha256/ab/cdef…/<filename>``.

A file becomes visible only after its hash checked out (scratch file, fsync, rename); a per-key
file lock lets concurrent processes fetch the same artifact and leave one good entry. Scratch
entries made under a lock carry its key, so a killed process's leftovers are known by a free lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from envlock._fs import UMASK
from envlock.cache.locking import CacheLock, lock_timeout
from envlock.errors import IntegrityError, UsageError

if TYPE_CHECKING:
    pass

_CHUNK = 1 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TREE_KEY = re.compile(r"(?:built-)?[0-9a-f]{64}")  # a wheel's sha256, or built- and its sdist's
_KEY = re.compile(r"[A-Za-z0-9_-]{1,200}")
_SUFFIX = re.compile(r"[A-Za-z0-9._-]{0,32}")
# Scratch names are ``<key>@<random><suffix>``: "@" is in no lock key and in no wheel or sdist
# file name, so a name that splits on it names the lock its writer held.
_KEY_SEP = "@"
_FILE_MODE = 0o666 & ~UMASK  # what open() would make: a team cache shares files by group
_DIR_MODE = 0o777 & ~UMASK


@dataclass(frozen=True)
class Entry:
    """One stored artifact."""

    sha256: str
    path: Path

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def check_sha256(sha256: str) -> str:
    """``sha256`` if it is 64 lowercase hex characters (it becomes a cache path)."""
    if not _HEX64.fullmatch(sha256):
        raise IntegrityError(
            f"{sha256[:80]!r} is not a sha256 digest (64 lowercase hex characters)",
            hint="the lock is malformed or was edited; re-lock",
        )
    return sha256


def check_filename(filename: str) -> str:
    """``filename`` if it is one plain path component (it becomes a cache path)."""
    if (
        filename in ("", ".", "..")
        or "/" in filename
        or "\\" in filename
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in filename)
    ):
        raise IntegrityError(
            f"{filename[:200]!r} is not a plain file name",
            hint="the lock is malformed or was edited; re-lock",
        )
    return filename


def _check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise IntegrityError(f"{key[:80]!r} is not a valid cache lock key")
    return key


class ArtifactStore:
    """Artifacts by sha256 under a cache root, plus their unpacked and built forms.

    Making one does no I/O; a root that cannot be a cache (a file, or under one) is a
    :class:`UsageError` at first use (:meth:`check`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.artifacts = root / "artifacts" / "sha256"
        self.unpacked = root / "unpacked" / "sha256"
        self.built = root / "built" / "sha256"
        self._locks = root / "locks"
        self._tmp = root / "tmp"
        self._checked = False
        self._thread = threading.local()

    # -- the root ------------------------------------------------------------------------
    def check(self) -> None:
        """Raise a one-line :class:`UsageError` if the root is, or is under, a non-directory."""
        if self._checked:
            return
        hint = "point --cache-dir (or ENVLOCK_CACHE_DIR) at a directory"
        for path in (self.root, *self.root.parents):
            try:
                st = path.stat()
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise UsageError(
                    f"cache directory {self.root}: {exc.strerror}", hint=hint
                ) from None
            if not stat.S_ISDIR(st.st_mode):
                where = "is not a directory" if path == self.root else f"is under {path}, a file"
                raise UsageError(f"the cache directory {self.root} {where}", hint=hint)
            break
        self._checked = True

    @cached_property
    def writable(self) -> bool:
        """Whether files can be made under the root (False for a read-only image or mount)."""
        self.check()
        existing = next(p for p in (self.root, *self.root.parents) if p.is_dir())
        dirs = [existing, self._tmp, self._locks, self.artifacts.parent, self.artifacts]
        return all(os.access(d, os.W_OK | os.X_OK) for d in dirs if d == existing or d.is_dir())

    def _read_only(self) -> UsageError:
        hint = "point --cache-dir (or ENVLOCK_CACHE_DIR) at a writable directory"
        if self.root.is_dir():
            return UsageError(
                f"the cache {self.root} is read-only; envlock cannot write to it", hint=hint
            )
        existing = next(p for p in self.root.parents if p.is_dir())
        return UsageError(
            f"cannot create the cache directory {self.root}: {existing} is not writable",
            hint=hint,
        )

    def _mkdir(self, path: Path) -> Path:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create {path}: {exc.strerror or exc}") from None
        return path

    # -- paths and locks -----------------------------------------------------------------
    def path(self, sha256: str, filename: str) -> Path:
        check_sha256(sha256)
        return self.artifacts / sha256[:2] / sha256[2:] / check_filename(filename)

    def unpacked_path(self, key: str) -> Path:
        """The unpacked tree of the wheel ``key``: its sha256, or ``built-<sdist sha256>``."""
        if not _TREE_KEY.fullmatch(key):
            check_sha256(key)  # the error names the bad value
        return self.unpacked / key[:2] / key[2:]

    def built_dir(self, sdist_sha256: str) -> Path:
        check_sha256(sdist_sha256)
        return self.built / sdist_sha256[:2] / sdist_sha256[2:]

    def lock(
        self, key: str, *, timeout: float | None = None, cancel: threading.Event | None = None
    ) -> CacheLock:
        """A cross-process lock on one key (fetching, unpacking or building one hash).

        ``with`` waits at most ``timeout`` seconds (default ``ENVLOCK_LOCK_TIMEOUT``, 300),
        then raises :class:`CacheBusyError`; a set ``cancel`` stops the wait. On a read-only
        cache it is a no-op: nobody can write there, so there is nothing to coordinate."""
        _check_key(key)
        wait = lock_timeout() if timeout is None else timeout
        if not self.writable:
            return CacheLock(self, key, None, wait)
        self._mkdir(self._locks)
        return CacheLock(self, key, self._locks / f"{key}.lock", wait, cancel)

    def try_lock(self, key: str) -> CacheLock | None:
        """The lock on ``key``, taken, if it is free right now; None if someone holds it."""
        lock = self.lock(key, timeout=0)
        return lock if lock.try_acquire() else None

    def _held_keys(self) -> set[str]:
        """Keys whose lock this thread holds (a scratch name may name only such a key)."""
        held: set[str] | None = getattr(self._thread, "held", None)
        if held is None:
            held = self._thread.held = set()
        return held

    def tmpdir(self) -> Path:
        """Scratch space on the cache's filesystem (so renames are atomic)."""
        if not self.writable:
            raise self._read_only()
        return self._mkdir(self._tmp)

    def scratch_file(self, key: str, suffix: str = ".part") -> Path:
        """A new empty file in ``tmp/``; made while holding ``lock(key)``, its name carries the
        key, so once that lock is free it is known to be a dead process's leftover."""
        fd, path = self._scratch_fd(key, suffix)
        os.close(fd)
        return path

    def scratch_dir(self, key: str) -> Path:
        """A new empty directory in ``tmp/`` (named like :meth:`scratch_file`'s files)."""
        path = Path(tempfile.mkdtemp(prefix=self._scratch_prefix(key), dir=self.tmpdir()))
        os.chmod(path, _DIR_MODE)  # mkdtemp makes it 0700
        return path

    def _scratch_prefix(self, key: str) -> str:
        # Only a key this thread holds: a free lock must mean the writer is gone.
        return f"{_check_key(key)}{_KEY_SEP}" if key in self._held_keys() else "unlocked-"

    def _scratch_fd(self, key: str, suffix: str) -> tuple[int, Path]:
        if not _SUFFIX.fullmatch(suffix):
            raise ValueError(f"bad scratch suffix {suffix!r}")
        fd, name = tempfile.mkstemp(
            prefix=self._scratch_prefix(key), suffix=suffix, dir=self.tmpdir()
        )
        os.fchmod(fd, _FILE_MODE)  # mkstemp makes it 0600; the file may become a cache entry
        return fd, Path(name)

    def clean_leftovers(self, grace: float = 3600.0) -> int:
        """Remove scratch entries of writers that are gone; returns how many were removed.

        An entry named after a lock goes when that lock is free (its writer made it under the
        lock and removes or renames it before letting go); any other entry once it is older
        than ``grace`` seconds. Cheap when ``tmp/`` is empty: one listdir."""
        self.check()
        try:
            names = os.listdir(self._tmp)
        except (FileNotFoundError, NotADirectoryError):
            return 0
        if not names or not self.writable:
            return 0
        removed = 0
        now = time.time()
        for name in names:
            path = self._tmp / name
            key, sep, _ = name.partition(_KEY_SEP)
            if sep and _KEY.fullmatch(key):
                lock = self.try_lock(key)
                if lock is None:
                    continue  # its writer is alive
                try:
                    removed += _remove(path)
                finally:
                    lock.release()
                continue
            try:
                stale = now - path.lstat().st_mtime >= grace
            except FileNotFoundError:
                continue
            if stale:
                removed += _remove(path)
        return removed

    # -- reading -------------------------------------------------------------------------
    def get(self, sha256: str, filename: str, size: int | None = None) -> Path | None:
        """The stored file if present and intact; a corrupt entry is removed (None)."""
        path = self.path(sha256, filename)
        self.check()
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        stamp = path.parent / ".verified"
        current = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
        with contextlib.suppress(OSError):
            if stamp.read_text() == current and (size is None or st.st_size == size):
                return path  # verified before and untouched since (size, mtime, inode)
        if (size is not None and st.st_size != size) or file_sha256(path) != sha256:
            self.remove(sha256)
            raise CorruptEntry(sha256, filename)
        with contextlib.suppress(OSError):
            stamp.write_text(current)
        return path

    def intact(self, sha256: str, filename: str, size: int | None = None) -> Path | None:
        """:meth:`get`, with a corrupt entry (removed) reported as absent."""
        try:
            return self.get(sha256, filename, size)
        except CorruptEntry:
            return None

    def entries(self) -> Iterator[Entry]:
        self.check()
        if not self.artifacts.is_dir():
            return
        for prefix in sorted(self.artifacts.iterdir()):
            for entry_dir in sorted(prefix.iterdir()) if prefix.is_dir() else ():
                sha256 = prefix.name + entry_dir.name
                if not _HEX64.fullmatch(sha256) or not entry_dir.is_dir():
                    continue  # not ours: never turn a stray name into a path to remove
                files = [p for p in entry_dir.iterdir() if not p.name.startswith(".")]
                if files:
                    yield Entry(sha256, files[0])

    # -- writing -------------------------------------------------------------------------
    def ingest(
        self, sha256: str, filename: str, chunks: Iterable[bytes], size: int | None = None
    ) -> Path:
        """Store streamed bytes if (and only if) they hash to ``sha256``.

        Call it holding ``lock(sha256)``: its scratch file is then never taken for a leftover."""
        final = self.path(sha256, filename)
        fd, tmp = self._scratch_fd(sha256, ".part")
        try:
            h = hashlib.sha256()
            written = 0
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
                    h.update(chunk)
                    written += len(chunk)
                f.flush()
                os.fsync(f.fileno())
            if size is not None and written != size:
                raise IntegrityError(
                    f"{filename}: got {written} bytes, the lock says {size}",
                    hint="the index serves a different file than was locked; re-lock or check "
                    "for tampering",
                )
            if h.hexdigest() != sha256:
                raise IntegrityError(
                    f"{filename}: sha256 {h.hexdigest()[:16]}… does not match the lock's "
                    f"{sha256[:16]}…",
                    hint="the index serves a different file than was locked; re-lock or check "
                    "for tampering",
                )
            self._mkdir(final.parent)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return final

    def remove(self, sha256: str) -> None:
        """Drop an artifact and everything derived from it."""
        for path in (
            self.path(sha256, "x").parent,
            self.unpacked_path(sha256),
            self.built_dir(sha256),
        ):
            shutil.rmtree(path, ignore_errors=True)


def _remove(path: Path) -> int:
    """Remove a file or a whole tree (1), or nothing if it is already gone (0)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return 0
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
        return 0 if path.exists() else 1
    return 1


class CorruptEntry(Exception):
    """A cache entry failed its hash check at use; it has been removed."""

    def __init__(self, sha256: str, filename: str) -> None:
        super().__init__(f"cache entry of {filename} was corrupt and has been removed")
        self.sha256 = sha256
        self.filename = filename
