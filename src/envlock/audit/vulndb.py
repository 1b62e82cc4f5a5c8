"""An offline OSV database: a directory of OSV JSON records or a zip of them (OSV's per-ecosystem
``all.zip``), read for the records of the packages asked about.

Only records naming one of those packages are parsed: a regular expression finds every
``"name": "..."`` string in the raw bytes first, which is exact for any name JSON writes
without ``\\u`` escapes (records with escapes are always parsed). Nothing is extracted, so
member paths do not matter; sizes are capped against zip bombs.
"""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from envlock.audit.osv import InvalidRecord, package_names, record_id
from envlock.errors import UsageError

__all__ = ["Records", "load"]

MAX_RECORD_BYTES = 10 * 1024 * 1024
MAX_TOTAL_BYTES = 4 * 1024 * 1024 * 1024
MAX_MEMBERS = 2_000_000
_NAME = re.compile(rb'"name"\s*:\s*"([^"\\]*)"')


@dataclass(frozen=True)
class Records:
    """The records of the packages asked about, by canonical name, and what was skipped."""

    by_name: dict[str, tuple[dict[str, Any], ...]]
    warnings: tuple[str, ...]
    scanned: int  # record files looked at


class _Skipped:
    def __init__(self) -> None:
        self.count = 0
        self.first = ""

    def add(self, where: str, reason: str) -> None:
        self.count += 1
        self.first = self.first or f"{where}: {reason}"


def load(path: Path, names: Iterable[str]) -> Records:
    """Records of ``path`` (a directory or zip) that affect any of ``names`` on PyPI.

    A database that cannot be read is a :class:`UsageError` naming it; a bad record inside is
    skipped and counted in a warning."""
    wanted = frozenset(canonicalize_name(n) for n in names)
    found: dict[str, list[dict[str, Any]]] = {}
    skipped = _Skipped()
    scanned = 0
    for where, data in _members(path, skipped):
        scanned += 1
        if not _mentions(data, wanted):
            continue
        try:
            record = json.loads(data.decode("utf-8"))
            record_id(record)
            hits = package_names(record) & wanted
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, InvalidRecord) else f"not JSON ({_first(exc)})"
            skipped.add(where, reason)
            continue
        for name in sorted(hits):
            found.setdefault(name, []).append(record)
    if scanned == 0:
        raise UsageError(
            f"vulnerability database {path} holds no OSV records (*.json)",
            hint="pass OSV's PyPI all.zip (https://osv-vulnerabilities.storage.googleapis.com/"
            "PyPI/all.zip) or a directory of its JSON records",
        )
    warnings = []
    if skipped.count:
        warnings.append(
            f"{path}: skipped {skipped.count} unreadable OSV record(s) (first: {skipped.first})"
        )
    return Records({n: tuple(r) for n, r in found.items()}, tuple(warnings), scanned)


def _mentions(data: bytes, wanted: frozenset[str]) -> bool:
    """Whether the record may name a wanted package (never False for one that does)."""
    if b"\\u" in data:
        return True
    return any(_canonical(m.group(1)) in wanted for m in _NAME.finditer(data))


@lru_cache(maxsize=65536)
def _canonical(raw: bytes) -> str:
    try:
        return canonicalize_name(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return ""  # not UTF-8: json.loads of the record would fail as well


def _members(path: Path, skipped: _Skipped) -> Iterator[tuple[str, bytes]]:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UsageError(f"vulnerability database {path} does not exist") from None
    except OSError as exc:
        raise UsageError(f"cannot read vulnerability database {path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        yield from _directory(path, skipped)
    elif stat.S_ISREG(mode):
        yield from _zip(path, skipped)
    else:
        raise UsageError(f"vulnerability database {path} is neither a directory nor a zip file")


def _zip(path: Path, skipped: _Skipped) -> Iterator[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise UsageError(
            f"vulnerability database {path} is not a valid zip file ({_first(exc)})",
            hint="pass a directory of OSV JSON records or OSV's all.zip, downloaded completely",
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read vulnerability database {path}: {exc.strerror}") from None
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_MEMBERS:
            raise UsageError(f"vulnerability database {path} has more than {MAX_MEMBERS} files")
        total = 0
        for info in infos:
            name = info.filename
            if not name.lower().endswith(".json"):
                continue
            where = _quote(name)
            if info.file_size > MAX_RECORD_BYTES:
                skipped.add(where, f"larger than {MAX_RECORD_BYTES // 2**20} MiB")
                continue
            try:
                with archive.open(info) as member:
                    data = member.read(MAX_RECORD_BYTES + 1)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                raise UsageError(
                    f"vulnerability database {path} is corrupt: member {where}: {_first(exc)}",
                    hint="download the database again",
                ) from None
            except (RuntimeError, ValueError, OSError) as exc:  # encrypted, unsupported, I/O
                raise UsageError(
                    f"cannot read member {where} of vulnerability database {path}: {_first(exc)}"
                ) from None
            total = _count(path, total, len(data))
            if len(data) > MAX_RECORD_BYTES:
                skipped.add(where, f"larger than {MAX_RECORD_BYTES // 2**20} MiB")
                continue
            yield where, data


def _directory(path: Path, skipped: _Skipped) -> Iterator[tuple[str, bytes]]:
    total = 0
    errors: list[OSError] = []
    for root, dirs, files in os.walk(path, onerror=errors.append):  # symlinked dirs not followed
        dirs.sort()
        for file in sorted(files):
            if not file.lower().endswith(".json"):
                continue
            full = Path(root, file)
            where = _quote(str(full.relative_to(path)))
            try:
                st = full.stat()
                if not stat.S_ISREG(st.st_mode):  # a FIFO would block, a device never end
                    skipped.add(where, "not a regular file")
                    continue
                if st.st_size > MAX_RECORD_BYTES:
                    skipped.add(where, f"larger than {MAX_RECORD_BYTES // 2**20} MiB")
                    continue
                with full.open("rb") as f:
                    data = f.read(MAX_RECORD_BYTES + 1)
            except OSError as exc:
                skipped.add(where, exc.strerror or type(exc).__name__)
                continue
            total = _count(path, total, len(data))
            if len(data) > MAX_RECORD_BYTES:
                skipped.add(where, f"larger than {MAX_RECORD_BYTES // 2**20} MiB")
                continue
            yield where, data
    for error in errors:
        if Path(error.filename or "") == path:
            raise UsageError(f"cannot read vulnerability database {path}: {error.strerror}")
        skipped.add(_quote(str(error.filename)), f"cannot list: {error.strerror}")


def _count(path: Path, total: int, size: int) -> int:
    total += size
    if total > MAX_TOTAL_BYTES:
        raise UsageError(
            f"vulnerability database {path} unpacks to more than "
            f"{MAX_TOTAL_BYTES // 2**30} GiB of records; refusing to read it (a zip bomb?)"
        )
    return total


def _quote(name: str) -> str:
    text = repr(name)
    return text if len(text) <= 80 else text[:77] + "..."


def _first(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return lines[0][:200] if lines else type(exc).__name__
