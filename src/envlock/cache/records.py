"""RECORD files (PEP 376 / the wheel spec), read with pypa/installer's model.

``installer.records`` parses rows and validates their elements; this module adds what envlock
demands on top: a sha256 and a size for every file, and unique paths.
"""

from __future__ import annotations

import base64
import csv
import hashlib
from pathlib import Path

from installer.records import InvalidRecordEntry, RecordEntry, parse_record_file

from envlock.cache.store import file_sha256
from envlock.errors import IntegrityError

SIGNATURES = ("RECORD.jws", "RECORD.p7s")  # may sit beside RECORD without being listed in it


def record_hash(data: bytes) -> str:
    """The RECORD form of a sha256: ``sha256=<urlsafe base64, unpadded>``."""
    return "sha256=" + b64_digest(hashlib.sha256(data).digest())


def file_record_hash(path: Path | str) -> str:
    """The RECORD form of a file's sha256, read in chunks (files may be large)."""
    return "sha256=" + b64_digest(bytes.fromhex(file_sha256(Path(path))))


def b64_digest(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def parse_record(text: str, label: str, record_path: str) -> dict[str, RecordEntry]:
    """Every entry of a wheel's RECORD by path; RECORD's own row (no hash, no size) included.

    Raises IntegrityError naming the wheel for a malformed row, a duplicate path, or a file row
    without a sha256 hash and a size."""
    entries: dict[str, RecordEntry] = {}
    try:
        for elements in parse_record_file(text.splitlines()):
            entry = RecordEntry.from_elements(*elements)
            if entry.path in entries:
                raise IntegrityError(f"{label}: RECORD lists {entry.path!r} twice")
            entries[entry.path] = entry
    except (InvalidRecordEntry, csv.Error) as exc:
        raise IntegrityError(f"{label}: malformed RECORD ({exc})") from None
    for path, entry in entries.items():
        if path == record_path:
            if entry.hash_ is not None or entry.size is not None:
                raise IntegrityError(f"{label}: RECORD lists a hash or size for itself")
            continue
        if entry.hash_ is None or entry.size is None:
            raise IntegrityError(f"{label}: RECORD has no hash or no size for {path!r}")
        if entry.hash_.name != "sha256":
            raise IntegrityError(
                f"{label}: RECORD hashes {path!r} with {entry.hash_.name}, not sha256"
            )
        if entry.size < 0:
            raise IntegrityError(f"{label}: RECORD gives {path!r} a negative size")
    return entries
