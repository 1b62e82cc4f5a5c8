"""The HTTP client for indexes and file hosts: the one retry loop, credentials, TLS, deadlines.

Retries (connection errors, 5xx, 429) happen here and nowhere else, with exponential backoff
and ``Retry-After`` honoured up to a cap; a longer wait fails at once naming the server. What
may be spoken to, and for how long, is :mod:`envlock.index.transport`'s business.
"""

from __future__ import annotations

import email.utils
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from urllib.parse import urlsplit

import httpx

from envlock import __version__
from envlock.errors import EnvlockError, NetworkError
from envlock.index.auth import BasicAuth, Credentials, host_of, redact
from envlock.index.local import file_response
from envlock.index.transport import (
    HttpSettings,
    SecurityPolicy,
    deadline_passed,
    enforce_deadlines,
    insecure_hosts_from_env,
    set_deadline,
    ssl_context,
)
from envlock.spec import EnvironmentSpec
from envlock.spec_indexes import Index

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
USER_AGENT = f"envlock/{__version__}"

__all__ = ["HttpClient", "redact", "status_error"]


class RequestCancelled(Exception):
    """A retry was abandoned because the run is being cancelled (see ``HttpClient.cancelled``)."""


class HttpClient:
    """Thread-safe requests with retries. One per run; ``pool`` runs prefetches concurrently."""

    def __init__(
        self,
        indexes: Sequence[Index] = (),
        *,
        max_workers: int = 16,
        insecure_hosts: frozenset[str] = frozenset(),
        settings: HttpSettings | None = None,
    ) -> None:
        self.settings = settings or HttpSettings.from_env()
        self.policy = SecurityPolicy(insecure_hosts | insecure_hosts_from_env())
        verify = ssl_context()
        self._client = httpx.Client(
            auth=BasicAuth(Credentials(indexes)),
            headers={"User-Agent": USER_AGENT},
            timeout=httpx.Timeout(self.settings.timeout, connect=min(15.0, self.settings.timeout)),
            follow_redirects=True,
            max_redirects=10,
            verify=verify,
            limits=httpx.Limits(max_connections=max_workers, max_keepalive_connections=max_workers),
            trust_env=True,
            event_hooks={
                "request": [self.policy.on_request],
                "response": [self.policy.on_response],
            },
        )
        enforce_deadlines(self._client)
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="envlock-http")
        # Set to stop a run (Ctrl-C, a failed download): back-off waits end at once.
        self.cancelled = threading.Event()

    @classmethod
    def for_environments(
        cls, envs: Sequence[EnvironmentSpec], *, check_indexes: bool = True
    ) -> HttpClient:
        """The client for these environments' indexes and insecure hosts; with
        ``check_indexes``, an index the transport policy refuses fails before any request."""
        indexes = list({i.fetch_url: i for env in envs for i in env.indexes}.values())
        client = cls(indexes, insecure_hosts=frozenset().union(*(e.insecure_hosts for e in envs)))
        if check_indexes:
            try:
                for index in indexes:
                    client.policy.check(index.fetch_url)
            except BaseException:
                client.close()
                raise
        return client

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
            self.read_body(response)
            return response

    @contextmanager
    def stream(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        deadline: float | None = None,
        method: str = "GET",
        json: object = None,
    ) -> Iterator[httpx.Response]:
        """Like :meth:`get` but the caller reads the body (large files) within ``deadline``
        seconds (default: ``ENVLOCK_HTTP_DEADLINE``) from the start of the request; ``method``
        and a ``json`` body for APIs (OSV's POST /v1/querybatch)."""
        response = self._send(url, headers, method, deadline, json)
        try:
            yield response
        finally:
            response.close()
            set_deadline(None)

    def read_body(self, response: httpx.Response) -> bytes:
        """The whole body, or a :class:`NetworkError` naming the host if it cannot be had."""
        try:
            return response.read()
        except httpx.TransportError as exc:
            raise self._transport_error(str(response.url), exc, 1) from None

    def iter_body(self, response: httpx.Response) -> Iterator[bytes]:
        """The body as it arrives (for resumable downloads: a cut loses nothing received).

        A passed deadline is a :class:`NetworkError`; other transport errors are raised as they
        are, for the caller to resume."""
        url = redact(str(response.url))
        try:
            for chunk in response.iter_bytes():
                yield chunk
                if deadline_passed():
                    raise self._transport_error(url, TimeoutError("deadline"), 1)
        except httpx.TransportError as exc:
            if deadline_passed():
                raise self._transport_error(url, exc, 1) from None
            raise

    def _send(
        self,
        url: str,
        headers: Mapping[str, str] | None,
        method: str = "GET",
        deadline: float | None = None,
        json: object = None,
    ) -> httpx.Response:
        clean = redact(url)
        self.policy.check(clean)
        if clean.startswith("file:"):
            return file_response(clean, method)
        attempt = 0
        while True:
            attempt += 1
            set_deadline(deadline or self.settings.deadline)
            try:
                request = self._client.build_request(method, clean, headers=headers, json=json)
                response = self._client.send(request, stream=True)
            except EnvlockError:
                raise  # refused by the transport policy
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
                if deadline_passed() or attempt > self.settings.retries:
                    raise self._transport_error(clean, exc, attempt) from None
                self._pause(min(self.settings.backoff * 2 ** (attempt - 1), 10.0))
                continue
            if response.status_code in RETRY_STATUS and attempt <= self.settings.retries:
                wait = _retry_after(response)
                if wait is not None and wait > self.settings.retry_after_max:
                    response.close()
                    raise NetworkError(
                        f"{host_of(clean)} asks to retry after {wait:.0f} s (HTTP "
                        f"{response.status_code} for {clean}); envlock waits at most "
                        f"{self.settings.retry_after_max:.0f} s",
                        hint="try again later, or raise ENVLOCK_RETRY_AFTER_MAX",
                    )
                delay = wait if wait is not None else self.settings.backoff * 2 ** (attempt - 1)
                response.close()
                self._pause(delay)
                continue
            return response

    def _pause(self, seconds: float) -> None:
        """Wait before a retry, unless the run is cancelled meanwhile."""
        if self.cancelled.wait(seconds):
            raise RequestCancelled()

    def _transport_error(self, url: str, exc: Exception, attempt: int) -> NetworkError:
        if deadline_passed():
            return NetworkError(
                f"{host_of(url)} did not answer {url} within the "
                f"{self.settings.deadline:.0f} s deadline",
                hint="a slow or stalled server; raise ENVLOCK_HTTP_DEADLINE to wait longer",
            )
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        tries = f" (after {attempt} attempts)" if attempt > 1 else ""
        return NetworkError(
            f"cannot reach {url}: {redact(detail)}{tries}",
            hint="check your connection, proxy and SSL_CERT_FILE settings",
        )

    def head_size(self, url: str) -> int | None:
        """Content-Length of a file, for indexes that do not list sizes (PEP 700)."""
        response = self._send(url, None, "HEAD")
        response.close()
        set_deadline(None)
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
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def status_error(response: httpx.Response, what: str) -> NetworkError:
    """A one-line error for an unexpected HTTP status."""
    code = response.status_code
    hint = None
    if code in (401, 403):
        hint = "set credentials in ~/.netrc or ENVLOCK_INDEX_<NAME>_USERNAME / _PASSWORD"
    return NetworkError(f"{what}: HTTP {code} from {redact(str(response.url))}", hint=hint)
