"""Core metadata of a release file without downloading it when possible.

Order: PEP 658/714 ``.metadata`` file (hash-checked), then HTTP range requests into the wheel's
zip central directory, then the whole file as a last resort.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Callable

from packaging.utils import canonicalize_name

from envlock.core_metadata import MetadataError
from envlock.errors import IntegrityError
from envlock.index.client import HttpClient, redact, status_error
from envlock.index.simple import DistFile

_TAIL = 64 * 1024


# Told about every whole file downloaded on the way (already checked against the index's hash).
WholeFile = Callable[[DistFile, bytes], None]


def _ignore(file: DistFile, data: bytes) -> None:
    pass


def fetch_wheel_metadata(http: HttpClient, file: DistFile, whole: WholeFile = _ignore) -> bytes:
    """METADATA bytes of a wheel, reading as little of it as the index allows."""
    if file.has_metadata_file:
        response = http.get(file.url + ".metadata")
        if response.status_code == 200:
            data = response.content
            if file.metadata_sha256 and hashlib.sha256(data).hexdigest() != file.metadata_sha256:
                raise IntegrityError(
                    f"metadata of {file.filename} does not match its sha256 from the index"
                )
            return data
        # An advertised but missing file: fall through to the wheel itself.
    ranged = _metadata_by_range(http, file, whole)
    if ranged is not None:
        return ranged
    return _metadata_from_zip(download(http, file, whole), file)


def download(http: HttpClient, file: DistFile, whole: WholeFile = _ignore) -> bytes:
    """The whole file, checked against the index's sha256 (and size, when listed)."""
    response = http.get(file.url)
    if response.status_code != 200:
        raise status_error(response, f"cannot download {file.filename}")
    return _checked(file, response.content, whole)


def _checked(file: DistFile, data: bytes, whole: WholeFile) -> bytes:
    """Bytes in hand are checked against what the index promised before anything uses them."""
    if file.sha256 and hashlib.sha256(data).hexdigest() != file.sha256:
        raise IntegrityError(
            f"{file.filename} from {redact(file.url)} does not match its sha256 from the index",
            hint="the index serves other bytes than it lists; check for tampering",
        )
    if file.size is not None and len(data) != file.size:
        raise IntegrityError(
            f"{file.filename} from {redact(file.url)} has {len(data)} bytes, the index says "
            f"{file.size}"
        )
    whole(file, data)
    return data


def _metadata_from_zip(data: bytes | io.IOBase, file: DistFile) -> bytes:
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with zipfile.ZipFile(stream) as zf:
            path = _metadata_member(zf.namelist(), file)
            return zf.read(path)
    except zipfile.BadZipFile as exc:
        raise MetadataError(f"{file.filename} is not a valid wheel: {exc}") from None


def _metadata_member(names: list[str], file: DistFile) -> str:
    candidates = [n for n in names if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
    for n in candidates:
        if canonicalize_name(n.split("-")[0]) == file.name:
            return n
    if candidates:
        return candidates[0]
    raise MetadataError(f"{file.filename} has no .dist-info/METADATA")


class _RangeRefused(Exception):
    """The server answered a later range request with the whole file (or an error)."""


class _RangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file fetched in byte ranges."""

    def __init__(self, http: HttpClient, url: str, size: int, tail: bytes) -> None:
        self._http, self._url, self._size = http, url, size
        self._pos = 0
        self._chunks: dict[int, bytes] = {size - len(tail): tail}

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        end = self._size if n is None or n < 0 else min(self._size, self._pos + n)
        if self._pos >= end:
            return b""
        data = self._cached(self._pos, end)
        if data is None:
            # Read ahead a little: zipfile reads a local header, then the member.
            fetch_end = min(self._size, max(end, self._pos + 16 * 1024))
            response = self._http.get(
                self._url, headers={"Range": f"bytes={self._pos}-{fetch_end - 1}"}
            )
            if response.status_code != 206:
                raise _RangeRefused()
            self._chunks[self._pos] = response.content
            data = response.content[: end - self._pos]
        self._pos += len(data)
        return data

    def _cached(self, start: int, end: int) -> bytes | None:
        for cstart, chunk in self._chunks.items():
            if cstart <= start and end <= cstart + len(chunk):
                return chunk[start - cstart : end - cstart]
        return None


def _metadata_by_range(http: HttpClient, file: DistFile, whole: WholeFile) -> bytes | None:
    """Read METADATA from the zip central directory with ranges; None if unsupported."""
    response = http.get(file.url, headers={"Range": f"bytes=-{_TAIL}"})
    if response.status_code == 200:
        # The server ignored the range and sent everything: use it.
        return _metadata_from_zip(_checked(file, response.content, whole), file)
    if response.status_code != 206:
        return None
    match = re.match(r"bytes (\d+)-\d+/(\d+)", response.headers.get("content-range", ""))
    if not match:
        return None
    size = int(match.group(2))
    if int(match.group(1)) == 0 and len(response.content) == size:
        # The whole file in one answer (a small wheel): check it like a download.
        return _metadata_from_zip(_checked(file, response.content, whole), file)
    try:
        return _metadata_from_zip(_RangeFile(http, file.url, size, response.content), file)
    except _RangeRefused:
        return None
