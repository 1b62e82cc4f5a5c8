"""The HTTP client for indexes: retries with backoff, credentials, TLS, a shared thread pool.

Credentials come from index URLs, ``ENVLOCK_INDEX_<NAME>_USERNAME/PASSWORD`` or ``~/.netrc``;
they are attached per host and never appear in a URL we log, lock or print (:func:`redact`).
"""

from __future__ import annotations

import email.utils
import netrc
import os
import re
import ssl
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from envlock import __version__
from envlock.errors import NetworkError
from envlock.spec import Index

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
USER_AGENT = f"envlock/{__version__}"


def redact(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _host(url: str) -> str:
    parts = urlsplit(url)
    return (parts.hostname or "").lower() + (f":{parts.port}" if parts.port else "")


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


class Credentials:
    """Per-host basic-auth credentials gathered once from URLs, environment and netrc."""

    def __init__(self, indexes: Sequence[Index]) -> None:
        self._by_host: dict[str, tuple[str, str]] = {}
        for index in indexes:
            parts = urlsplit(index.url)
            host = _host(index.url)
            prefix = f"ENVLOCK_INDEX_{_env_name(index.name)}_"
            user = os.environ.get(prefix + "USERNAME")
            password = os.environ.get(prefix + "PASSWORD")
            if parts.username is not None:
                user = unquote(parts.username)
                password = unquote(parts.password or "")
            if user is not None:
                self._by_host[host] = (user, password or "")
        self._netrc: netrc.netrc | None = None
        try:
            path = os.environ.get("NETRC") or str(Path.home() / ".netrc")
            if os.path.exists(path):
                self._netrc = netrc.netrc(path)
        except (netrc.NetrcParseError, OSError):
            self._netrc = None

    def for_url(self, url: str) -> tuple[str, str] | None:
        host = _host(url)
        if host in self._by_host:
            return self._by_host[host]
        if self._netrc is not None:
            found = self._netrc.authenticators(urlsplit(url).hostname or "")
            if found:
                return found[0] or "", found[2] or ""
        return None


class _Auth(httpx.Auth):
    def __init__(self, creds: Credentials) -> None:
        self._creds = creds

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        found = self._creds.for_url(str(request.url))
        if found and "authorization" not in request.headers:
            request.headers["Authorization"] = httpx.BasicAuth(*found)._auth_header
        yield request


def ssl_context() -> ssl.SSLContext | bool:
    """Trust ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set (corporate proxies), else certifi."""
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile or None, capath=capath or None)
    return True


class HttpClient:
    """Thread-safe GETs with retries. One per run; ``pool`` runs prefetches concurrently."""

    def __init__(
        self,
        indexes: Sequence[Index] = (),
        *,
        max_workers: int = 16,
        retries: int = 4,
        timeout: float = 30.0,
        backoff: float = 0.5,
    ) -> None:
        self.retries = retries
        self.backoff = backoff
        self._client = httpx.Client(
            auth=_Auth(Credentials(indexes)),
            headers={"User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout, connect=15.0),
            follow_redirects=True,
            max_redirects=10,
            verify=ssl_context(),
            limits=httpx.Limits(max_connections=max_workers, max_keepalive_connections=max_workers),
            trust_env=True,
        )
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="envlock-http")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """GET with retries on connection errors, 5xx and 429; other statuses are returned."""
        with self.stream(url, headers) as response:
            response.read()
            return response

    @contextmanager
    def stream(
        self, url: str, headers: Mapping[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        """Like :meth:`get` but the caller reads the body (large files)."""
        response = self._send(url, headers)
        try:
            yield response
        finally:
            response.close()

    def _send(
        self, url: str, headers: Mapping[str, str] | None, method: str = "GET"
    ) -> httpx.Response:
        clean = redact(url)
        attempt = 0
        while True:
            attempt += 1
            try:
                request = self._client.build_request(method, clean, headers=headers)
                response = self._client.send(request, stream=True)
            except httpx.TooManyRedirects:
                raise NetworkError(f"too many redirects fetching {clean}") from None
            except httpx.TransportError as exc:
                if _is_tls_trust_error(exc):
                    # Not transient: retrying cannot make an untrusted certificate trusted.
                    raise NetworkError(
                        f"TLS certificate of {urlsplit(clean).hostname} is not trusted ({clean})",
                        hint="behind a corporate proxy or with a private CA, point "
                        "SSL_CERT_FILE (or SSL_CERT_DIR) at its certificate",
                    ) from None
                if attempt <= self.retries:
                    time.sleep(min(self.backoff * 2 ** (attempt - 1), 10.0))
                    continue
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise NetworkError(
                    f"cannot reach {clean}: {redact(detail)} (after {attempt} attempts)",
                    hint="check your connection, proxy and SSL_CERT_FILE settings",
                ) from None
            if response.status_code in RETRY_STATUS and attempt <= self.retries:
                delay = _retry_after(response) or self.backoff * 2 ** (attempt - 1)
                response.close()
                time.sleep(min(delay, 60.0))
                continue
            return response

    def head_size(self, url: str) -> int | None:
        """Content-Length of a file, for indexes that do not list sizes (PEP 700)."""
        response = self._send(url, None, "HEAD")
        response.close()
        length = response.headers.get("content-length")
        return int(length) if response.status_code == 200 and length else None


def _is_tls_trust_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(
            seen
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def status_error(response: httpx.Response, what: str) -> NetworkError:
    """A one-line error for an unexpected HTTP status."""
    code = response.status_code
    hint = None
    if code in (401, 403):
        hint = "set credentials in ~/.netrc or ENVLOCK_INDEX_<NAME>_USERNAME / _PASSWORD"
    return NetworkError(f"{what}: HTTP {code} from {redact(str(response.url))}", hint=hint)
