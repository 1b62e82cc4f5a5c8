"""What may go over the wire, and for how long: secure hosts, TLS trust, deadlines.

* Plain ``http://`` (and ``file://`` with a host) is refused for any host but loopback
  (127.0.0.0/8, ``::1``, ``localhost``, which pip also treats as secure) unless the spec's
  ``insecure-hosts`` or ``ENVLOCK_INSECURE_HOSTS`` names it; a redirect from HTTPS to HTTP is
  always refused.
* Every request has an overall deadline, enforced at the socket: each read or write may take
  only what is left of it, so a server that trickles a byte a second cannot hold a run.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import ssl
import threading
import time
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx

from envlock.errors import InsecureTransport, UsageError
from envlock.index.auth import host_of, redact

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
# Bytes per second a download may not fall below on average before its deadline passes.
MIN_RATE = 64 * 1024


@dataclass(frozen=True)
class HttpSettings:
    """Network knobs, from the environment (documented in the README)."""

    timeout: float = 30.0  # seconds without a byte before a read fails
    deadline: float = 300.0  # seconds a whole request (headers and body) may take
    retry_after_max: float = 60.0  # the longest Retry-After envlock waits for
    retries: int = 4
    backoff: float = 0.5

    def deadline_for(self, size: int | None) -> float:
        """A download's deadline: a slow link still gets a big file through (64 KiB/s)."""
        return self.deadline + (size or 0) / MIN_RATE

    @classmethod
    def from_env(cls) -> HttpSettings:
        d = cls()
        return cls(
            timeout=_seconds("ENVLOCK_HTTP_TIMEOUT", d.timeout),
            deadline=_seconds("ENVLOCK_HTTP_DEADLINE", d.deadline),
            retry_after_max=_seconds("ENVLOCK_RETRY_AFTER_MAX", d.retry_after_max, zero=True),
            retries=int(_seconds("ENVLOCK_HTTP_RETRIES", d.retries, zero=True, whole=True)),
        )


def _seconds(var: str, default: float, *, zero: bool = False, whole: bool = False) -> float:
    raw = os.environ.get(var)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = -1
    if value < 0 or (value == 0 and not zero) or value != value or value == float("inf"):
        kind = "a whole number" if whole else "a number of seconds"
        raise UsageError(f"{var} must be {kind}{'' if zero else ' above 0'}, got {raw!r}")
    return value


# -- which hosts may be spoken to in the clear ---------------------------------------------------


def insecure_hosts_from_env() -> frozenset[str]:
    raw = os.environ.get("ENVLOCK_INSECURE_HOSTS", "")
    return frozenset(h.lower() for h in re.split(r"[\s,]+", raw) if h)


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SecurityPolicy:
    """Refuses plain-text transport to hosts not trusted for it."""

    def __init__(self, insecure_hosts: Iterable[str] = ()) -> None:
        self.insecure_hosts = frozenset(h.lower() for h in insecure_hosts)

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "https":
            return True
        if scheme not in ("http", "file"):
            return False
        host = (parts.hostname or "").lower()
        if scheme == "file" and not host:
            return True  # a local path
        return (
            is_loopback(host)
            or host in self.insecure_hosts
            or host_of(url) in (self.insecure_hosts)
        )

    def check(self, url: str) -> None:
        """Raise :class:`InsecureTransport` for a URL that may not be used."""
        if self.allows(url):
            return
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "file"):
            raise InsecureTransport(f"unsupported URL scheme {parts.scheme!r}: {redact(url)}")
        raise InsecureTransport(
            f"refusing plain {parts.scheme}:// to {host} ({redact(url)}): not HTTPS and not "
            "this machine",
            hint=f'if {host} is trusted, add it to the spec: insecure-hosts = ["{host}"] '
            f"(or set ENVLOCK_INSECURE_HOSTS={host})",
        )

    def on_request(self, request: httpx.Request) -> None:
        self.check(str(request.url))

    def on_response(self, response: httpx.Response) -> None:
        if not response.has_redirect_location:
            return
        target = response.url.join(response.headers["location"])
        if response.url.scheme == "https" and target.scheme != "https":
            raise InsecureTransport(
                f"refusing a redirect from HTTPS to {target.scheme}: "
                f"{redact(str(response.url))} -> {redact(str(target))}",
                hint="the server downgrades the connection; use an index that stays on HTTPS",
            )


# -- TLS -----------------------------------------------------------------------------------------


def ssl_context() -> ssl.SSLContext | bool:
    """Trust ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set (corporate proxies), else certifi."""
    cafile, capath = os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR")
    capath = capath or None
    if cafile is None and capath is None:
        return True
    if cafile is not None and not (os.path.isfile(cafile) and os.access(cafile, os.R_OK)):
        raise UsageError(
            f"SSL_CERT_FILE={cafile} is not a readable file",
            hint="point it at a PEM bundle of trusted certificates, or unset it",
        )
    if capath is not None and not (os.path.isdir(capath) and os.access(capath, os.R_OK)):
        raise UsageError(
            f"SSL_CERT_DIR={capath} is not a readable directory",
            hint="point it at a directory of hashed certificates, or unset it",
        )
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (ssl.SSLError, OSError) as exc:
        var = f"SSL_CERT_FILE={cafile}" if cafile else f"SSL_CERT_DIR={capath}"
        raise UsageError(
            f"{var} holds no usable certificates ({exc.__class__.__name__})",
            hint="it should be a PEM bundle of trusted CA certificates",
        ) from None


# -- deadlines -----------------------------------------------------------------------------------

_deadline = threading.local()


class DeadlineExceeded(httpcore.ReadTimeout):
    """The request's overall deadline passed."""


def set_deadline(seconds: float | None) -> None:
    """Every socket operation of this thread must finish within ``seconds`` from now."""
    _deadline.end = None if seconds is None else time.monotonic() + seconds


def deadline_passed() -> bool:
    end = getattr(_deadline, "end", None)
    return end is not None and time.monotonic() >= end


def _budget(timeout: float | None) -> float | None:
    end: float | None = getattr(_deadline, "end", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _budget(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _budget(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, _budget(timeout))
        )

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """Deadlines at the socket, and each host name looked up once per run.

    Many threads opening connections at once each ask the system resolver; some DNS servers
    drop part of such a burst and the C library waits its 5 s timeout before retrying. One
    lookup per host (the others wait for it) avoids that."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._addresses: dict[tuple[str, int], list[str]] = {}
        self._lookups: dict[tuple[str, int], threading.Lock] = {}

    def _resolve(self, host: str, port: int) -> list[str]:
        key = (host, port)
        with self._lock:
            found = self._addresses.get(key)
            if found is not None:
                return found
            lookup = self._lookups.setdefault(key, threading.Lock())
        with lookup:
            with self._lock:
                found = self._addresses.get(key)
            if found is None:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                found = list(dict.fromkeys(str(info[4][0]) for info in infos))
                with self._lock:
                    self._addresses[key] = found
            return found

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        error: Exception | None = None
        for address in addresses:
            try:
                stream = self._inner.connect_tcp(
                    address, port, _budget(timeout), local_address, socket_options
                )
                return _DeadlineStream(stream)
            except httpcore.ConnectError as exc:  # the next address, as create_connection does
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._inner.connect_unix_socket(path, _budget(timeout), socket_options)
        )

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def enforce_deadlines(client: httpx.Client) -> None:
    """Make every connection of ``client`` honour :func:`set_deadline` at the socket.

    httpx has no public hook for its network backend, so this reaches into each transport's
    connection pool (``_pool._network_backend``, stable since httpx 0.18); where that is not
    there, the body-level check in the client still bounds the download.
    """
    transports = [client._transport, *client._mounts.values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None and not isinstance(backend, _DeadlineBackend):
            pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
