"""A real package index (PEP 503 / PEP 691 / PEP 658 / PEP 700) served on 127.0.0.1.

Files are built at test time from :class:`~support.wheels.Dist` descriptions and read from
disk on every request, so a test may corrupt :meth:`IndexServer.file_path` after publishing
to simulate a hash mismatch (hashes advertised by the index are computed at publish time).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .wheels import Dist, build, metadata_bytes

__all__ = ["JSON_CONTENT_TYPE", "IndexServer", "Request"]

JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
_JSON_ACCEPT = (JSON_CONTENT_TYPE, "application/vnd.pypi.simple.latest+json")
HTML_CONTENT_TYPE = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Request:
    """One request as seen by the server (recorded before the response is sent)."""

    method: str
    path: str  # raw request target, including any query string
    headers: dict[str, str]  # lowercase keys
    status: int


@dataclass
class _File:
    dist: Dist
    filename: str
    path: Path
    sha256: str
    size: int
    metadata: bytes | None  # PEP 658 core metadata (wheels only)
    metadata_sha256: str | None
    yanked: bool | str


@dataclass
class _Failure:
    prefix: str
    status: int
    remaining: int
    retry_after: int | None


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def _wheel_metadata(path: Path, dist: Dist) -> bytes:
    """The METADATA actually inside the wheel (falls back to the generated one)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.read(f"{dist.dist_info}/METADATA")
    except (KeyError, zipfile.BadZipFile):
        return metadata_bytes(dist)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    index: IndexServer

    def __init__(self, index: IndexServer) -> None:
        self.index = index
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            conns, self.connections = list(self.connections), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "envlock-test-index/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.index._handle(self, head=False)

    def do_HEAD(self) -> None:
        self.server.index._handle(self, head=True)


class IndexServer:
    """A live simple-repository index on ``http://127.0.0.1:<port>/simple/``."""

    def __init__(
        self,
        dists: Iterable[Dist] = (),
        *,
        mode: str = "json",
        pep658: bool = True,
        range_requests: bool = True,
        auth: tuple[str, str] | None = None,
        relative_urls: bool = True,
        workdir: Path | None = None,
        tls: ssl.SSLContext | None = None,
        api_version: str = "1.1",
        hashes: bool = True,
    ) -> None:
        if mode not in ("json", "html"):
            raise ValueError(f"mode must be 'json' or 'html', not {mode!r}")
        self.mode = mode
        self.pep658 = pep658
        self.range_requests = range_requests
        self.auth = auth
        self.relative_urls = relative_urls
        self.tls = tls  # serve HTTPS with this server-side context
        self.api_version = api_version  # meta.api-version / pypi:repository-version
        self.hashes = hashes  # False: list files without any hash (an index that lists none)
        self.host: str | None = None  # when set, absolute URLs use this host (behind a proxy)
        self._own_workdir = workdir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix="envlock-index-")) if workdir is None else workdir
        )
        self.files_dir = self.workdir / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.requests: list[Request] = []
        self._lock = threading.RLock()
        self._files: dict[str, _File] = {}
        self._display_names: dict[str, str] = {}
        self._modified: dict[str, float] = {}
        self._failures: list[_Failure] = []
        self._cuts: list[list[Any]] = []
        self._overrides: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self._trickles: list[tuple[str, float]] = []
        self._metadata_overrides: dict[str, bytes] = {}
        self._moved: dict[str, str] = {}
        self._raw_files: dict[str, Path] = {}  # publish_file(): served, never listed
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        for dist in dists:
            self.add(dist)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> IndexServer:
        if self._server is not None:
            return self
        self._server = _Server(self)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"envlock-index-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> IndexServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("IndexServer is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash, no credentials)."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host or '127.0.0.1'}:{self.port}"

    @property
    def url(self) -> str:
        """The simple index root, ``http://127.0.0.1:PORT/simple/`` (no credentials)."""
        return f"{self.base_url}/simple/"

    # -- publishing ------------------------------------------------------------------------

    def add(self, dist: Dist) -> Path:
        """Build ``dist`` and publish it immediately (safe while the server runs)."""
        path = build(dist, self.files_dir)
        data = path.read_bytes()
        metadata = _wheel_metadata(path, dist) if dist.kind == "wheel" else None
        entry = _File(
            dist=dist,
            filename=path.name,
            path=path,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            metadata=metadata,
            metadata_sha256=hashlib.sha256(metadata).hexdigest() if metadata is not None else None,
            yanked=dist.yanked,
        )
        if metadata is not None:
            Path(f"{path}.metadata").write_bytes(metadata)
        project = canonicalize_name(dist.name)
        with self._lock:
            self._files[entry.filename] = entry
            self._display_names.setdefault(project, dist.name)
            self._touch(project)
        return path

    def publish_file(self, name: str, data: bytes) -> str:
        """Serve ``data`` at ``/files/NAME`` (not listed on any project page, e.g. an
        interpreter archive); returns its absolute URL. Publishing the same name replaces it."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"publish_file needs a plain file name, not {name!r}")
        path = self.workdir / "raw-files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        with self._lock:
            self._raw_files[name] = path
        return self.file_url(name)

    def yank(self, filename: str, reason: str = "") -> None:
        """Mark a published file yanked (PEP 592); empty reason -> ``yanked: true``."""
        with self._lock:
            entry = self._files[filename]
            entry.yanked = reason or True
            self._touch(canonicalize_name(entry.dist.name))

    def fail(
        self, path_prefix: str, status: int, times: int, retry_after: int | None = None
    ) -> None:
        """The next ``times`` requests whose path starts with ``path_prefix`` get ``status``."""
        with self._lock:
            self._failures.append(_Failure(path_prefix, status, times, retry_after))

    def clear_failures(self) -> None:
        """Forget every pending :meth:`fail`."""
        with self._lock:
            self._failures.clear()

    def cut(self, path_prefix: str, after_bytes: int, times: int = 1) -> None:
        """The next ``times`` GETs of a matching path send only ``after_bytes`` of the body
        (with the full Content-Length) and then drop the connection: a broken download."""
        with self._lock:
            self._cuts.append([path_prefix, after_bytes, times])

    def override(
        self, path: str, status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        """Answer GETs of exactly ``path`` with this raw response (a lying or broken index)."""
        with self._lock:
            self._overrides[path] = (status, dict(headers or {}), body)

    def trickle(self, path_prefix: str, seconds_per_byte: float) -> None:
        """Send the bodies of matching paths one byte at a time (a stalled-but-alive server)."""
        with self._lock:
            self._trickles.append((path_prefix, seconds_per_byte))

    def serve_metadata(self, filename: str, metadata: bytes) -> None:
        """Advertise and serve this PEP 658 metadata for ``filename`` instead of the wheel's
        own METADATA (an index whose sidecar disagrees with the wheel it describes)."""
        with self._lock:
            entry = self._files[filename]
            entry.metadata = metadata
            entry.metadata_sha256 = hashlib.sha256(metadata).hexdigest()
            Path(f"{entry.path}.metadata").write_bytes(metadata)
            self._touch(canonicalize_name(entry.dist.name))

    def list_at(self, filename: str, url: str) -> None:
        """List ``filename`` with another (absolute) URL, e.g. on another host."""
        with self._lock:
            self._moved[filename] = url
            self._touch(canonicalize_name(self._files[filename].dist.name))

    def file_path(self, filename: str) -> Path:
        """On-disk file served for ``filename`` (tests may overwrite it)."""
        with self._lock:
            return self._files[filename].path

    def file_url(self, filename: str) -> str:
        """Absolute URL of a published file (no credentials)."""
        return f"{self.base_url}/files/{quote(filename)}"

    def sha256(self, filename: str) -> str:
        """The sha256 hex digest advertised for ``filename``."""
        with self._lock:
            return self._files[filename].sha256

    def count(self, path_prefix: str = "") -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path.startswith(path_prefix))

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    def _touch(self, project: str) -> None:
        self._modified[project] = time.time()

    # -- HTTP ------------------------------------------------------------------------------

    def _handle(self, h: _Handler, *, head: bool) -> None:
        target = h.path
        path = urlsplit(target).path
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self._lock:
            override = self._overrides.get(path)
            trickle = next((s for prefix, s in self._trickles if path.startswith(prefix)), None)
        try:
            if override is not None:
                status, resp_headers, body = override[0], dict(override[1]), override[2]
            else:
                status, resp_headers, body = self._route(path, headers, h.command)
        except Exception as exc:  # pragma: no cover - a bug in the fixture itself
            status, resp_headers, body = 500, {}, f"test index error: {exc!r}\n".encode()
        with self._lock:
            self.requests.append(Request(h.command, target, headers, status))
        h.send_response(status)
        if status != HTTPStatus.NOT_MODIFIED:
            resp_headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            resp_headers.setdefault("Content-Length", str(len(body)))
        for key, value in resp_headers.items():
            h.send_header(key, value)
        h.end_headers()
        if not head and status != HTTPStatus.NOT_MODIFIED:
            with self._lock:
                cut = next(
                    (
                        c
                        for c in self._cuts
                        if c[2] > 0 and path.startswith(c[0]) and status in (200, 206)
                    ),
                    None,
                )
                if cut is not None:
                    cut[2] -= 1
            try:
                if trickle is not None:
                    for i in range(len(body)):
                        h.wfile.write(body[i : i + 1])
                        h.wfile.flush()
                        time.sleep(trickle)
                    return
                h.wfile.write(body if cut is None else body[: cut[1]])
                if cut is not None:
                    h.wfile.flush()
                    h.close_connection = True
                    h.connection.shutdown(socket.SHUT_RDWR)
            except (BrokenPipeError, ConnectionResetError, OSError):
                h.close_connection = True

    def _route(
        self, path: str, headers: dict[str, str], method: str
    ) -> tuple[int, dict[str, str], bytes]:
        if self.auth is not None and not self._authorized(headers.get("authorization", "")):
            return 401, {"WWW-Authenticate": 'Basic realm="envlock-test-index"'}, b"unauthorized\n"
        with self._lock:
            for failure in self._failures:
                if failure.remaining > 0 and path.startswith(failure.prefix):
                    failure.remaining -= 1
                    extra: dict[str, str] = {}
                    if failure.retry_after is not None:
                        extra["Retry-After"] = str(failure.retry_after)
                    return failure.status, extra, b"injected failure\n"
        if path in ("/simple", "/simple/"):
            if path == "/simple":
                return _redirect("/simple/")
            return self._page(headers, *self._root_page())
        if path.startswith("/simple/"):
            raw = unquote(path[len("/simple/") :])
            name = raw.rstrip("/")
            if not name or "/" in name:
                return 404, {}, b"not found\n"
            project = canonicalize_name(name)
            if name != project or not raw.endswith("/"):
                return _redirect(f"/simple/{quote(project)}/")
            with self._lock:
                known = project in self._display_names
            if not known:
                return 404, {}, b"not found\n"
            return self._page(headers, *self._project_page(project))
        if path.startswith("/files/"):
            return self._file(unquote(path[len("/files/") :]), headers)
        return 404, {}, b"not found\n"

    def _authorized(self, header: str) -> bool:
        assert self.auth is not None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        return decoded == f"{self.auth[0]}:{self.auth[1]}"

    def _wants_json(self, headers: dict[str, str]) -> bool:
        if self.mode != "json":
            return False
        for part in headers.get("accept", "").split(","):
            media, *params = (p.strip() for p in part.split(";"))
            if media.lower() in _JSON_ACCEPT and not any(
                re.fullmatch(r"q\s*=\s*0(\.0*)?", p) for p in params
            ):
                return True
        return False

    def _page(
        self, headers: dict[str, str], json_body: dict[str, Any], html_body: str, modified: float
    ) -> tuple[int, dict[str, str], bytes]:
        if self._wants_json(headers):
            body = json.dumps(json_body, indent=1, sort_keys=True).encode("utf-8")
            ctype = JSON_CONTENT_TYPE
        else:
            body = html_body.encode("utf-8")
            ctype = HTML_CONTENT_TYPE
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        resp = {
            "Content-Type": ctype,
            "ETag": etag,
            "Last-Modified": formatdate(modified, usegmt=True),
            "Vary": "Accept",
        }
        if _etag_matches(headers.get("if-none-match", ""), etag):
            return 304, resp, b""
        return 200, resp, body

    def _root_page(self) -> tuple[dict[str, Any], str, float]:
        with self._lock:
            projects = sorted(self._display_names.items())
            modified = max(self._modified.values(), default=0.0)
        data = {
            "meta": {"api-version": self.api_version},
            "projects": [{"name": n} for _, n in projects],
        }
        links = "\n".join(
            f'    <a href="{html.escape(quote(p) + "/")}">{html.escape(n)}</a><br/>'
            for p, n in projects
        )
        page = _html_doc("Simple index", links, api_version=self.api_version)
        return data, page, modified

    def _file_href(self, filename: str) -> str:
        moved = self._moved.get(filename)
        if moved is not None:
            return moved
        if self.relative_urls:
            return f"../../files/{quote(filename)}"
        return self.file_url(filename)

    def _project_page(self, project: str) -> tuple[dict[str, Any], str, float]:
        with self._lock:
            entries = [
                replace(e)
                for e in self._files.values()
                if canonicalize_name(e.dist.name) == project
            ]
            modified = self._modified[project]
        entries.sort(key=lambda e: (_version_key(e.dist.version), e.filename))
        versions = sorted({e.dist.version for e in entries}, key=_version_key)
        files: list[dict[str, Any]] = []
        anchors: list[str] = []
        for e in entries:
            url = self._file_href(e.filename)
            core: dict[str, str] | bool = False
            if self.pep658 and e.metadata_sha256 is not None:
                core = {"sha256": e.metadata_sha256}
            info: dict[str, Any] = {
                "filename": e.filename,
                "url": url,
                "hashes": {"sha256": e.sha256} if self.hashes else {},
                "requires-python": e.dist.requires_python,
                "yanked": e.yanked,
                "core-metadata": core,
                "dist-info-metadata": core,
                "size": e.size,
            }
            if e.dist.upload_time is not None:
                info["upload-time"] = e.dist.upload_time
            files.append(info)
            fragment = f"#sha256={e.sha256}" if self.hashes else ""
            attrs = [f'href="{html.escape(url)}{fragment}"']
            if e.dist.requires_python is not None:
                attrs.append(f'data-requires-python="{html.escape(e.dist.requires_python)}"')
            if e.yanked is not False:
                reason = "" if e.yanked is True else str(e.yanked)
                attrs.append(f'data-yanked="{html.escape(reason)}"')
            if isinstance(core, dict):
                attrs.append(f'data-core-metadata="sha256={core["sha256"]}"')
                attrs.append(f'data-dist-info-metadata="sha256={core["sha256"]}"')
            anchors.append(f"    <a {' '.join(attrs)}>{html.escape(e.filename)}</a><br/>")
        data = {
            "meta": {"api-version": self.api_version},
            "name": project,
            "files": files,
            "versions": versions,
        }
        page = _html_doc(
            f"Links for {project}", "\n".join(anchors), heading=True, api_version=self.api_version
        )
        return data, page, modified

    def _file(self, name: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            entry = self._files.get(name)
            meta_entry = None
            if entry is None and name.endswith(".metadata"):
                meta_entry = self._files.get(name[: -len(".metadata")])
        if meta_entry is not None:
            if not self.pep658 or meta_entry.metadata is None:
                return 404, {}, b"not found\n"
            data = Path(f"{meta_entry.path}.metadata").read_bytes()
            return 200, {"Content-Type": "text/plain; charset=utf-8"}, data
        if entry is None:
            with self._lock:
                raw = self._raw_files.get(name)
            if raw is None:
                return 404, {}, b"not found\n"
            data = raw.read_bytes()
        else:
            data = entry.path.read_bytes()
        resp = {"Content-Type": "application/octet-stream"}
        if not self.range_requests:
            return 200, resp, data
        resp["Accept-Ranges"] = "bytes"
        span = _parse_range(headers.get("range"), len(data))
        if span is None:
            return 200, resp, data
        if isinstance(span, str):  # "unsatisfiable"
            resp["Content-Range"] = f"bytes */{len(data)}"
            return 416, resp, b""
        start, end = span
        resp["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return 206, resp, data[start : end + 1]


def _redirect(location: str) -> tuple[int, dict[str, str], bytes]:
    return 301, {"Location": location}, b""


def _etag_matches(header: str, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = [c.strip() for c in header.split(",")]
    return any(c.removeprefix("W/") == etag for c in candidates)


def _parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """``(start, end)`` inclusive, ``"unsatisfiable"``, or None to serve the whole file."""
    if not header:
        return None
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if m is None:
        return None  # malformed or multiple ranges: ignore, serve 200
    first, last = m.groups()
    if first:
        start = int(first)
        end = int(last) if last else size - 1
        if last and end < start:
            return None
        if start >= size:
            return "unsatisfiable"
        return start, min(end, size - 1)
    if not last:
        return None
    suffix = int(last)
    if suffix == 0 or size == 0:
        return "unsatisfiable"
    return max(0, size - suffix), size - 1


def _html_doc(title: str, body: str, *, heading: bool = False, api_version: str = "1.1") -> str:
    h1 = f"    <h1>{html.escape(title)}</h1>\n" if heading else ""
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{api_version}">\n'
        f"    <title>{html.escape(title)}</title>\n  </head>\n  <body>\n"
        f"{h1}{body}\n  </body>\n</html>\n"
    )
