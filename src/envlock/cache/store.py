"""The content-addressed artifact store: ``artifacts/sha256/ab/cdef…/<filename>``.

A file becomes visible only after its hash checked out (temporary file, fsync, rename); a
per-hash file lock lets concurrent processes fetch the same artifact and leave one good entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from envlock.errors import IntegrityError

if TYPE_CHECKING:
    from filelock import FileLock

_CHUNK = 1 << 20


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


class ArtifactStore:
    """Artifacts by sha256 under a cache root, plus their unpacked and built forms."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.artifacts = root / "artifacts" / "sha256"
        self.unpacked = root / "unpacked" / "sha256"
        self.built = root / "built" / "sha256"
        self._locks = root / "locks"
        self._tmp = root / "tmp"

    # -- paths and locks -----------------------------------------------------------------
    def path(self, sha256: str, filename: str) -> Path:
        return self.artifacts / sha256[:2] / sha256[2:] / filename

    def unpacked_path(self, sha256: str) -> Path:
        return self.unpacked / sha256[:2] / sha256[2:]

    def built_dir(self, sdist_sha256: str) -> Path:
        return self.built / sdist_sha256[:2] / sdist_sha256[2:]

    def lock(self, key: str) -> FileLock:
        """A cross-process lock for one hash (fetching, unpacking or building it)."""
        from filelock import FileLock

        self._locks.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self._locks / f"{key}.lock"))

    def tmpdir(self) -> Path:
        """Scratch space on the cache's filesystem (so renames are atomic)."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        return self._tmp

    # -- reading -------------------------------------------------------------------------
    def get(self, sha256: str, filename: str, size: int | None = None) -> Path | None:
        """The stored file if present and intact; a corrupt entry is removed (None)."""
        path = self.path(sha256, filename)
        try:
            st = path.stat()
        except FileNotFoundError:
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

    def entries(self) -> Iterator[Entry]:
        if not self.artifacts.is_dir():
            return
        for prefix in sorted(self.artifacts.iterdir()):
            for entry_dir in sorted(prefix.iterdir()) if prefix.is_dir() else ():
                files = [p for p in entry_dir.iterdir() if not p.name.startswith(".")]
                if files:
                    yield Entry(prefix.name + entry_dir.name, files[0])

    # -- writing -------------------------------------------------------------------------
    def ingest(
        self, sha256: str, filename: str, chunks: Iterable[bytes], size: int | None = None
    ) -> Path:
        """Store streamed bytes if (and only if) they hash to ``sha256``."""
        final = self.path(sha256, filename)
        fd, tmp = tempfile.mkstemp(prefix=f"{sha256[:12]}-", suffix=".part", dir=self.tmpdir())
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
            final.parent.mkdir(parents=True, exist_ok=True)
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


class CorruptEntry(Exception):
    """A cache entry failed its hash check at use; it has been removed."""

    def __init__(self, sha256: str, filename: str) -> None:
        super().__init__(f"cache entry of {filename} was corrupt and has been removed")
        self.sha256 = sha256
        self.filename = filename
