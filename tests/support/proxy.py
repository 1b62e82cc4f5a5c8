"""A forward HTTP proxy on 127.0.0.1 that maps made-up host names to local servers.

With ``HTTP_PROXY`` pointing at it, envlock can be shown an index on a "remote" host
(``http://pypi.example.test/simple/``) while no traffic leaves the machine.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ForwardProxy"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._forward("GET")

    def do_HEAD(self) -> None:
        self._forward("HEAD")

    def _forward(self, method: str) -> None:
        parts = urlsplit(self.path)  # a proxy gets absolute URIs
        host = (parts.hostname or "").lower()
        self.server.proxy.seen.append(f"{method} {self.path}")
        upstream = self.server.proxy.hosts.get(host)
        if upstream is None:
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        conn = http.client.HTTPConnection(*upstream, timeout=30)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        self.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)
        conn.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: ForwardProxy


class ForwardProxy:
    """``hosts`` maps a host name to the (address, port) that answers for it."""

    def __init__(self, hosts: dict[str, tuple[str, int]]) -> None:
        self.hosts = {k.lower(): v for k, v in hosts.items()}
        self.seen: list[str] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
