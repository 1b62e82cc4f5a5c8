"""Byte-reproducible ``.tar.gz`` of an environment tree: sorted, fixed times, owners and modes.

Times are fixed, except those given (a bundled interpreter's files keep its archive's times, which
are reproducible and which the stdlib's timestamp-checked .pyc files depend on)."""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
from collections.abc import Mapping
from pathlib import Path

from envlock.cache.store import file_sha256
from envlock.progress import BuildProgress

# 1980-01-01: the zip epoch; any fixed value works, 0 upsets some tools.
FIXED_MTIME = 315532800


def _entries(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        out.extend(base / d for d in dirnames)
        out.extend(base / f for f in sorted(filenames))
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def write_archive(
    root: Path,
    dest: Path,
    progress: BuildProgress | None = None,
    mtimes: Mapping[str, int] | None = None,
) -> str:
    """Write ``dest`` (the tree's contents at the archive root); returns its sha256.

    ``mtimes``: times of some regular files (by tree-relative path), kept instead of the fixed
    one."""
    mtimes = mtimes or {}
    entries = _entries(root)
    if progress is not None:
        total = sum(p.lstat().st_size for p in entries if p.is_file() and not p.is_symlink())
        progress.enter("writing archive", total, "bytes")
    with (
        dest.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in entries:
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            info = tarfile.TarInfo(rel)
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                info.mode = 0o777
                tar.addfile(info)
            elif stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = st.st_size
                info.mtime = mtimes.get(rel, FIXED_MTIME)
                info.mode = 0o755 if st.st_mode & 0o111 else 0o644
                with path.open("rb") as f:
                    tar.addfile(info, f)
                if progress is not None:
                    progress.advance(st.st_size)
    return file_sha256(dest)
