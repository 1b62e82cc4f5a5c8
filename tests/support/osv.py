"""An OSV-compatible API on 127.0.0.1 (``POST /v1/querybatch``, ``GET /v1/vulns/ID``) serving a
list of records, and writers for OSV databases as OSV publishes them (``all.zip``, a directory).

The server answers a query with the records whose PyPI entry for that package lists the version
in ``versions`` (as osv.dev does: it enumerates affected versions), plus any ids a test adds with
:meth:`OsvServer.list`. It records every request, pages results when ``page_size`` is set, and
can answer with injected failures or garbage.
"""

from __future__ import annotations

import json
import threading
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = ["OsvRequest", "OsvServer", "write_osv_dir", "write_osv_zip"]


@dataclass(frozen=True)
class OsvRequest:
    method: str
    path: str
    body: Any  # the parsed JSON body of a POST (None for a GET)
    status: int


@dataclass
class _Injected:
    prefix: str
    status: int
    body: bytes
    remaining: int


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.osv._handle(self, None)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.server.osv._handle(self, self.rfile.read(length))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, osv: OsvServer) -> None:
        self.osv = osv
        super().__init__(("127.0.0.1", 0), _Handler)


class OsvServer:
    """A live OSV API on ``http://127.0.0.1:<port>`` (see the module docstring)."""

    def __init__(self, records: Iterable[Mapping[str, Any]] = (), *, page_size: int = 0) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.page_size = page_size
        self.requests: list[OsvRequest] = []
        self._extra: dict[tuple[str, str], list[str]] = {}
        self._injected: list[_Injected] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        for record in records:
            self.add(record)

    def start(self) -> OsvServer:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OsvServer:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (the API base URL)."""
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- content ---------------------------------------------------------------------------

    def add(self, record: Mapping[str, Any]) -> None:
        with self._lock:
            self.records[str(record["id"])] = dict(record)

    def list(self, name: str, version: str, vid: str) -> None:
        """Also list ``vid`` for ``name==version`` (whatever its record says)."""
        with self._lock:
            self._extra.setdefault((canonicalize_name(name), version), []).append(vid)

    def inject(self, prefix: str, status: int, body: bytes = b"", times: int = 1) -> None:
        """The next ``times`` requests whose path starts with ``prefix`` get this answer."""
        with self._lock:
            self._injected.append(_Injected(prefix, status, body, times))

    def count(self, prefix: str = "") -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path.startswith(prefix))

    # -- serving ---------------------------------------------------------------------------

    def _handle(self, h: _Handler, raw: bytes | None) -> None:
        path = urlsplit(h.path).path
        body = None
        if raw is not None:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        status, answer = self._route(h.command, path, body)
        with self._lock:
            self.requests.append(OsvRequest(h.command, path, body, status))
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(answer)))
        h.end_headers()
        h.wfile.write(answer)

    def _route(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        with self._lock:
            for inj in self._injected:
                if inj.remaining > 0 and path.startswith(inj.prefix):
                    inj.remaining -= 1
                    return inj.status, inj.body
        if method == "POST" and path == "/v1/querybatch":
            queries = body.get("queries") if isinstance(body, dict) else None
            if not isinstance(queries, list) or len(queries) > 1000:
                return 400, b'{"code": 3, "message": "bad queries"}'
            return 200, json.dumps({"results": [self._answer(q) for q in queries]}).encode()
        if method == "GET" and path.startswith("/v1/vulns/"):
            with self._lock:
                record = self.records.get(unquote(path[len("/v1/vulns/") :]))
            if record is None:
                return 404, b'{"code": 5, "message": "Bug not found."}'
            return 200, json.dumps(record).encode()
        return 404, b'{"code": 5, "message": "not found"}'

    def _answer(self, query: dict[str, Any]) -> dict[str, Any]:
        name = canonicalize_name(query["package"]["name"])
        version = query["version"]
        with self._lock:
            ids = [
                rid
                for rid, rec in sorted(self.records.items())
                for entry in rec.get("affected", [])
                if entry.get("package", {}).get("ecosystem") == "PyPI"
                and canonicalize_name(entry.get("package", {}).get("name", "")) == name
                and any(_same_version(v, version) for v in entry.get("versions", []))
            ]
            ids += self._extra.get((name, version), [])
            hits = [
                {"id": rid, "modified": self.records.get(rid, {}).get("modified", "")}
                for rid in dict.fromkeys(ids)
            ]
        start = int(query.get("page_token", "0"))
        if self.page_size and len(hits) - start > self.page_size:
            end = start + self.page_size
            return {"vulns": hits[start:end], "next_page_token": str(end)}
        return {"vulns": hits[start:]} if hits[start:] else {}


# -- databases -------------------------------------------------------------------------------


def write_osv_zip(
    path: Path, records: Iterable[Mapping[str, Any]], extra: Mapping[str, bytes | str] = {}
) -> Path:
    """An ``all.zip`` as OSV publishes it: one ``<ID>.json`` per record at the top, plus
    ``extra`` members written as given (hostile names or content)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for record in records:
            zf.writestr(f"{record['id']}.json", json.dumps(record, indent=2))
        for name, data in extra.items():
            zf.writestr(name, data)
    return path


def write_osv_dir(path: Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """A directory of OSV records, nested one level as OSV's git mirrors are."""
    for record in records:
        rid = str(record["id"])
        target = path / rid.split("-")[0] / f"{rid}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(record, indent=2))
    return path
