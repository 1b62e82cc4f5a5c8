"""The OSV API (https://google.github.io/osv.dev/api/): the ids it lists for pinned PyPI versions
(``POST /v1/querybatch``) and their full records (``GET /v1/vulns/ID``), cached for an hour.

Cache layout, under ``<cache>/osv/<hash of the base URL>/``: ``batch/<hash>.json`` (the ids and
``modified`` times listed for one sorted set of (name, version)) and ``vulns/<ID>.json`` (a
record, reused past the hour while the service reports the same ``modified``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from envlock._fs import atomic_write_bytes
from envlock.audit.osv import ECOSYSTEM, InvalidRecord, is_valid_id, record_id
from envlock.errors import NetworkError, UsageError
from envlock.index.auth import redact
from envlock.index.client import HttpClient
from envlock.index.transport import HttpSettings, is_loopback

__all__ = ["CACHE_TTL", "DEFAULT_URL", "ENV_VAR", "Answer", "base_url", "query"]

DEFAULT_URL = "https://api.osv.dev"
ENV_VAR = "ENVLOCK_OSV_URL"
CACHE_TTL = 3600.0
BATCH_SIZE = 1000  # the API's limit of queries per querybatch
MAX_PAGES = 100
MAX_BODY = 64 * 1024 * 1024
WORKERS = 8
# A server that lists more is broken or hostile: each id costs one GET. The busiest real PyPI
# versions (old tensorflow) list under a thousand ids, GHSA and PYSEC aliases together.
MAX_IDS_PER_PACKAGE = 2_000
MAX_REQUESTS = 5_000  # per run, querybatch pages and record GETs together

Pair = tuple[str, str]
Listed = list[tuple[str, str | None]]  # (id, modified) the service lists for one pair


@dataclass(frozen=True)
class Answer:
    """Full records of what the service lists, per (name, version) asked."""

    records: dict[Pair, tuple[dict[str, Any], ...]]
    warnings: tuple[str, ...]


def base_url(override: str | None = None) -> str:
    """The API's base URL: ``override``, else ``ENVLOCK_OSV_URL``, else api.osv.dev; checked
    (HTTPS, or plain HTTP to this machine only; no credentials, query or fragment)."""
    raw, origin = override, "OSV API URL"
    if raw is None:
        raw, origin = os.environ.get(ENV_VAR) or None, ENV_VAR
    if raw is None:
        return DEFAULT_URL
    raw = raw.strip()
    try:
        parts = urlsplit(raw)
        host, _ = parts.hostname, parts.port
    except ValueError:
        host, parts = None, urlsplit("")
    scheme = parts.scheme.lower()
    problem = None
    if scheme not in ("http", "https") or not host:
        problem = "not an http(s) URL"
    elif "@" in parts.netloc:
        problem = "credentials in the URL are not supported"
    elif parts.query or parts.fragment:
        problem = "a query or fragment is not supported"
    elif scheme == "http" and not is_loopback(host):
        problem = "plain http is only allowed to this machine; use https"
    if problem is not None:
        raise UsageError(f"{origin} {redact(raw)!r}: {problem}")
    return raw.rstrip("/")


def query(
    packages: Sequence[Pair], *, base: str, cache_dir: Path, ttl: float = CACHE_TTL
) -> Answer:
    """Ask the service at ``base`` about every (canonical name, version) in ``packages``."""
    pairs = sorted(set(packages))
    cache = _Cache(cache_dir / "osv" / _digest(base)[:16], ttl)
    listed: dict[Pair, Listed] = {}
    warnings: list[str] = []
    with _Client(base) as client:
        for start in range(0, len(pairs), BATCH_SIZE):
            chunk = pairs[start : start + BATCH_SIZE]
            key = f"batch/{_digest(json.dumps(chunk))}"
            results = _listed(cache.read(key), len(chunk))
            if results is None:
                results = client.querybatch(chunk)
                cache.write(key, results)
            for pair, hits in zip(chunk, results, strict=True):
                if len(hits) > MAX_IDS_PER_PACKAGE:  # also a cache an older envlock wrote
                    raise client.too_many(pair)
            listed.update(zip(chunk, results, strict=True))
        modified = {vid: mod for hits in listed.values() for vid, mod in hits}
        records: dict[str, dict[str, Any]] = {}
        missing = []
        for vid in sorted(modified):
            record = _record(cache.read(f"vulns/{vid.replace(':', '_')}", modified[vid]), vid)
            if record is None:
                missing.append(vid)
            else:
                records[vid] = record
        client.reserve(len(missing))  # refuse before sending the first GET, not midway
        for vid, fetched in zip(missing, client.pool.map(client.vuln, missing), strict=True):
            if fetched is None:
                warnings.append(f"{base} lists {vid} but has no record of it (HTTP 404); skipped")
                continue
            records[vid] = fetched
            cache.write(f"vulns/{vid.replace(':', '_')}", fetched)
    out = {p: tuple(records[v] for v, _ in hits if v in records) for p, hits in listed.items()}
    return Answer(out, tuple(warnings))


class _Client:
    """JSON over envlock's HTTP client (its one retry loop, TLS, deadlines, transport policy),
    at most two retries; one-line errors that name the OSV API."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.sent = 0  # requests this run, counted (in this thread) before they are sent
        settings = HttpSettings.from_env()
        self.http = HttpClient(
            max_workers=WORKERS, settings=replace(settings, retries=min(settings.retries, 2))
        )
        self.pool = self.http.pool

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def reserve(self, requests: int) -> None:
        """Count ``requests`` about to be sent; more than MAX_REQUESTS in one run is refused."""
        if self.sent + requests > MAX_REQUESTS:
            raise NetworkError(
                f"OSV API at {redact(self.base)} would take more than {MAX_REQUESTS} requests "
                f"({self.sent} sent, {requests} more needed); refusing (a broken or hostile "
                "server?)",
                hint=f"check {ENV_VAR}, or audit offline with --vulnerability-db",
            )
        self.sent += requests

    def querybatch(self, chunk: Sequence[Pair]) -> list[Listed]:
        """The (id, modified) listed for each pair, following ``next_page_token``s."""
        results: list[Listed] = [[] for _ in chunk]
        pending: dict[int, str | None] = dict.fromkeys(range(len(chunk)))
        for _ in range(MAX_PAGES):
            self.reserve(1)
            order = list(pending)
            queries = [_query(chunk[i], pending[i]) for i in order]
            answer = self._json("POST", "/v1/querybatch", {"queries": queries})
            found = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(found, list) or len(found) != len(order):
                raise self._malformed("/v1/querybatch", "not one result per query")
            pending = {}
            for i, result in zip(order, found, strict=True):
                vulns = result.get("vulns", []) if isinstance(result, dict) else None
                if not isinstance(vulns, list):
                    raise self._malformed("/v1/querybatch", "a result without a vulns list")
                for vuln in vulns:
                    vid = vuln.get("id") if isinstance(vuln, dict) else None
                    if not isinstance(vid, str) or not is_valid_id(vid):
                        raise self._malformed("/v1/querybatch", "an invalid vulnerability id")
                    mod = vuln.get("modified")
                    results[i].append((vid, mod if isinstance(mod, str) else None))
                if len(results[i]) > MAX_IDS_PER_PACKAGE:
                    raise self.too_many(chunk[i])
                token = result.get("next_page_token")
                if isinstance(token, str) and token:
                    pending[i] = token
            if not pending:
                return results
        raise self._malformed("/v1/querybatch", f"still paging after {MAX_PAGES} pages")

    def vuln(self, vid: str) -> dict[str, Any] | None:
        """The full record of ``vid``; None when the service has none (404)."""
        path = f"/v1/vulns/{quote(vid, safe=':')}"
        record = self._json("GET", path, None, missing_ok=True)
        if record is None:
            return None
        try:
            if record_id(record) != vid:
                raise InvalidRecord(f"the record of {record_id(record)}")
        except InvalidRecord as exc:
            raise self._malformed(path, f"not the record of {vid} ({exc})") from None
        assert isinstance(record, dict)
        return record

    def _json(self, method: str, path: str, payload: Any, *, missing_ok: bool = False) -> Any:
        url = self.base + path
        status, body = self._send(method, url, payload)
        if status == 404 and missing_ok:
            return None
        if status != 200:
            raise NetworkError(
                f"OSV API {method} {url}: HTTP {status}",
                hint=f"check {ENV_VAR}, or audit offline with --vulnerability-db",
            )
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise self._malformed(path, "not JSON") from None

    def _send(self, method: str, url: str, payload: Any) -> tuple[int, bytes]:
        try:
            with self.http.stream(url, method=method, json=payload) as response:
                return response.status_code, _read(self.http, response, url)
        except httpx.TransportError as exc:  # cut in the middle of the answer
            reason = f"{url}: {(str(exc).splitlines() or [type(exc).__name__])[0][:200]}"
        except NetworkError as exc:
            if not exc.message.startswith("cannot reach "):
                raise
            reason = exc.message.removeprefix("cannot reach ")
        raise NetworkError(
            f"cannot reach the OSV API at {reason}",
            hint="check your connection and proxy settings, or audit offline "
            "with --vulnerability-db",
        )

    def too_many(self, pair: Pair) -> NetworkError:
        return NetworkError(
            f"OSV API at {redact(self.base)} lists more than {MAX_IDS_PER_PACKAGE} "
            f"vulnerabilities for {pair[0]} {pair[1]}; refusing to fetch them (a broken or "
            "hostile server?)",
            hint=f"check {ENV_VAR}, or audit offline with --vulnerability-db",
        )

    def _malformed(self, path: str, what: str) -> NetworkError:
        return NetworkError(f"OSV API at {self.base} answered {path} with {what}")


def _query(pair: Pair, token: str | None) -> dict[str, Any]:
    q: dict[str, Any] = {"package": {"name": pair[0], "ecosystem": ECOSYSTEM}, "version": pair[1]}
    if token is not None:
        q["page_token"] = token
    return q


def _read(http: HttpClient, response: httpx.Response, url: str) -> bytes:
    body = bytearray()
    for part in http.iter_body(response):
        body += part
        if len(body) > MAX_BODY:
            raise NetworkError(f"OSV API answer from {url} is larger than {MAX_BODY >> 20} MiB")
    return bytes(body)


def _listed(data: Any, size: int) -> list[Listed] | None:
    """A cached querybatch answer, or None if it does not have the expected shape."""
    if not isinstance(data, list) or len(data) != size:
        return None
    out: list[Listed] = []
    for hits in data:
        if not isinstance(hits, list):
            return None
        row: Listed = []
        for hit in hits:
            if not (isinstance(hit, list) and len(hit) == 2 and is_valid_id(hit[0])):
                return None
            row.append((hit[0], hit[1] if isinstance(hit[1], str) else None))
        out.append(row)
    return out


def _record(data: Any, vid: str) -> dict[str, Any] | None:
    try:
        return data if data is not None and record_id(data) == vid else None
    except InvalidRecord:
        return None


class _Cache:
    """JSON files written atomically; unreadable or expired ones count as missing."""

    def __init__(self, root: Path, ttl: float) -> None:
        self.root, self.ttl = root, ttl

    def read(self, key: str, modified: str | None = None) -> Any:
        try:
            entry = json.loads((self.root / f"{key}.json").read_bytes())
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            return None
        if not isinstance(entry, dict) or not isinstance(entry.get("fetched"), (int, float)):
            return None
        data = entry.get("data")
        age = time.time() - entry["fetched"]
        if -60 <= age < self.ttl:
            return data
        same = modified is not None and isinstance(data, dict) and data.get("modified") == modified
        return data if same else None

    def write(self, key: str, data: Any) -> None:
        path = self.root / f"{key}.json"
        raw = json.dumps({"fetched": time.time(), "data": data}).encode()
        with contextlib.suppress(OSError):  # a read-only cache only costs a later request
            atomic_write_bytes(path, raw)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
