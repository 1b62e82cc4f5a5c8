"""Index credentials: from URLs, ``ENVLOCK_INDEX_<NAME>_USERNAME/PASSWORD`` or ``~/.netrc``.

They are attached per host and never appear in a URL we log, lock or print (:func:`redact`).
"""

from __future__ import annotations

import netrc
import os
import re
from collections.abc import Generator, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from envlock._urls import host_of, redact
from envlock.spec_indexes import Index

__all__ = ["BasicAuth", "Credentials", "host_of", "redact"]


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


class Credentials:
    """Per-host basic-auth credentials gathered once from URLs, environment and netrc."""

    def __init__(self, indexes: Sequence[Index]) -> None:
        self._by_host: dict[str, tuple[str, str]] = {}
        for index in indexes:
            # Credentials go where the requests go: a mirror's host when one is set.
            parts = urlsplit(index.fetch_url)
            host = host_of(index.fetch_url)
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
        host = host_of(url)
        if host in self._by_host:
            return self._by_host[host]
        if self._netrc is not None:
            found = self._netrc.authenticators(urlsplit(url).hostname or "")
            if found:
                return found[0] or "", found[2] or ""
        return None


class BasicAuth(httpx.Auth):
    """Adds the credentials of a request's host (and only its host)."""

    def __init__(self, creds: Credentials) -> None:
        self._creds = creds

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        found = self._creds.for_url(str(request.url))
        if found and "authorization" not in request.headers:
            request.headers["Authorization"] = httpx.BasicAuth(*found)._auth_header
        yield request
