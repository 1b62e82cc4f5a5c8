"""``file://`` URLs answered like HTTP: only regular files, streamed, never past their size.

A lock or an index may name ``/dev/zero``, a FIFO or a directory: each is opened without
blocking (a FIFO with no writer would wait forever), checked with ``fstat`` on the open
descriptor (no race with a swapped path), and refused unless it is a regular file. The body is
read in chunks and stops at the size the file had when opened, which the response announces
as its ``Content-Length`` (so a download larger than its lock's size is refused unread).
"""

from __future__ import annotations

import mimetypes
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

import httpx

from envlock._urls import redact
from envlock.errors import InsecureTransport, NetworkError
from envlock.index.transport import is_loopback

__all__ = ["NotAFile", "file_response", "open_regular"]

_CHUNK = 1 << 20
# O_NONBLOCK: opening a FIFO must not wait for a writer (POSIX only; Windows has no FIFOs).
_NONBLOCK: int = getattr(os, "O_NONBLOCK", 0)
_FLAGS = os.O_RDONLY | _NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_FLAGS |= getattr(os, "O_BINARY", 0) | getattr(os, "O_NOCTTY", 0)


class NotAFile(OSError):
    """The path exists but is not a regular file (``kind`` says what it is)."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"{path} is {kind}, not a regular file")
        self.path = path
        self.kind = kind


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def open_regular(path: Path) -> tuple[BinaryIO, int]:
    """``path`` opened for reading and its size, if it is a regular file; otherwise
    :class:`NotAFile` (or the ``OSError`` of ``open``). Never blocks on a FIFO."""
    fd = os.open(path, _FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotAFile(path, _kind(info.st_mode))
        if _NONBLOCK:
            os.set_blocking(fd, True)  # a regular file: plain reads from here on
        return os.fdopen(fd, "rb", buffering=0), info.st_size
    except BaseException:
        os.close(fd)
        raise


class _FileBody(httpx.SyncByteStream):
    """A file's bytes in chunks, at most ``size`` of them (a file that grows is cut there)."""

    def __init__(self, file: BinaryIO, size: int) -> None:
        self._file = file
        self._size = size

    def __iter__(self) -> Iterator[bytes]:
        left = self._size
        while left > 0:
            chunk = self._file.read(min(_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk

    def close(self) -> None:
        self._file.close()


def file_response(url: str, method: str = "GET") -> httpx.Response:
    """A ``file://`` URL as a streamed response (the caller closes it): 404 when absent, 403
    when unreadable; a URL ending in ``/`` that names a directory answers with its
    ``index.html`` (a PEP 503 tree on disk). Anything else that is not a regular file is a
    :class:`NetworkError`. httpx cannot route file URLs, so the client answers them itself."""
    parts = urlsplit(url)
    if parts.hostname and not is_loopback(parts.hostname):
        raise InsecureTransport(
            f"file URLs with a host are not supported: {redact(url)}",
            hint="mount the share and use file:///path/to/simple/",
        )
    request = httpx.Request(method, url)
    path = Path(unquote(parts.path))
    try:
        try:
            file, size = open_regular(path)
        except NotAFile as exc:
            if exc.kind != "a directory" or not parts.path.endswith("/"):
                raise
            path = path / "index.html"
            file, size = open_regular(path)
    except NotAFile as exc:
        raise NetworkError(
            f"{redact(url)} is {exc.kind}, not a regular file",
            hint="a file:// URL must name a file; check the lock or index that gives it",
        ) from None
    except (FileNotFoundError, NotADirectoryError):
        return httpx.Response(404, request=request)
    except PermissionError:
        return httpx.Response(403, request=request)
    except OSError as exc:
        raise NetworkError(f"cannot read {redact(url)}: {exc.strerror or exc}") from None
    ctype = (
        "text/html"
        if path.suffix in (".html", ".htm")
        else (mimetypes.guess_type(path.name)[0] or "application/octet-stream")
    )
    headers = {"Content-Type": ctype, "Content-Length": str(size)}
    if method == "HEAD":
        file.close()
        return httpx.Response(200, headers=headers, request=request)
    return httpx.Response(200, headers=headers, stream=_FileBody(file, size), request=request)
