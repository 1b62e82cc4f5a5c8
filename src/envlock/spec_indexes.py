"""The spec's ``[[index]]`` tables and ``insecure-hosts``: where packages may come from."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from packaging.utils import NormalizedName, canonicalize_name

from envlock._urls import strip_userinfo
from envlock.errors import SpecError
from envlock.spec_values import Where, check_keys

DEFAULT_INDEX_URL = "https://pypi.org/simple/"
_INDEX_KEYS = {"name", "url", "packages", "files"}


@dataclass(frozen=True)
class Index:
    """A package index: a name, its simple-API base URL, and the packages pinned to it.

    An index with ``packages`` serves exactly those packages and nothing else; they are never
    taken from another index.
    """

    name: str
    url: str
    packages: frozenset[NormalizedName] = frozenset()
    # URL prefixes, besides the index's own host, where it serves its files (a CDN, an object
    # store): what [policy] allowed-indexes admits for a package from this index.
    files: tuple[str, ...] = ()
    # ENVLOCK_INDEX_URL: a mirror of this index that pages and files are fetched from instead.
    # `url` stays the index's identity (the spec hash, the lock's `index`, the policy).
    mirror: str | None = None

    @property
    def explicit(self) -> bool:
        return bool(self.packages)

    @property
    def fetch_url(self) -> str:
        """Where this index's pages are requested: its mirror, if one is set."""
        return self.mirror or self.url


def parse_indexes(ctx: Where, value: Any) -> tuple[Index, ...]:
    override = os.environ.get("ENVLOCK_INDEX_URL")
    if value is None:
        indexes = [Index("pypi", DEFAULT_INDEX_URL)]
    else:
        if not isinstance(value, list) or not value:
            raise ctx.fail("index", "must be one or more [[index]] tables")
        indexes = []
        seen: set[str] = set()
        for i, table in enumerate(value):
            key = f"index[{i}]"
            if not isinstance(table, Mapping):
                raise ctx.fail(key, "must be a table with 'name' and 'url'")
            check_keys(ctx, table, _INDEX_KEYS, key + ".")
            name, url = table.get("name"), table.get("url")
            if not isinstance(name, str) or not name:
                raise ctx.fail(f"{key}.name", "is required (a short name for the index)")
            if name in seen:
                raise ctx.fail(f"{key}.name", f"duplicate index name {name!r}")
            seen.add(name)
            if not isinstance(url, str) or not re.match(r"^(https?|file)://[^\s]*$", url):
                raise ctx.fail(
                    f"{key}.url", "must be an http(s):// or file:// URL of a simple index"
                )
            packages = _names(ctx, table.get("packages", []), f"{key}.packages")
            files = _file_prefixes(ctx, table.get("files", []), f"{key}.files")
            for other in indexes:
                for name_ in sorted(other.packages & packages):
                    raise ctx.fail(
                        f"{key}.packages",
                        f"{name_!r} is already pinned to index {other.name!r}",
                    )
            indexes.append(Index(name, url, packages, files))
    indexes = [replace(i, url=_slash(i.url)) for i in indexes]
    if override:
        # A mirror serves the same index: what is locked is unchanged, only where it is fetched.
        if not re.match(r"^(https?|file)://[^\s]*$", override):
            shown = strip_userinfo(override)[0]
            raise SpecError(f"ENVLOCK_INDEX_URL: not an http(s):// or file:// URL: {shown!r}")
        mirror = _slash(override)
        indexes[0] = replace(indexes[0], mirror=None if mirror == indexes[0].url else mirror)
    return tuple(indexes)


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _file_prefixes(ctx: Where, value: Any, key: str) -> tuple[str, ...]:
    example = '["https://cdn.example.com/packages/"]'
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ctx.fail(key, f"must be a list of URL prefixes, e.g. {example}")
    out = []
    for text in value:
        shown, secret = strip_userinfo(text)
        if not re.match(r"^(https?|file)://[^\s]*$", text):
            raise ctx.fail(key, f"not an http(s):// or file:// URL: {shown!r}")
        if secret:
            raise ctx.fail(key, f"credentials in {shown!r}: use netrc or env instead")
        parts = urlsplit(text)
        if parts.query or parts.fragment or (parts.scheme != "file" and not parts.hostname):
            raise ctx.fail(key, f"not a URL prefix (a host and a path): {text!r}")
        # A prefix ends at a path boundary: ".../packages" must not admit ".../packages-evil/".
        out.append(text if text.endswith("/") else text + "/")
    return tuple(out)


def _names(ctx: Where, value: Any, key: str) -> frozenset[NormalizedName]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ctx.fail(key, "must be a list of package names")
    for v in value:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", v):
            raise ctx.fail(key, f"not a package name: {v!r}")
    return frozenset(canonicalize_name(v) for v in value)


def insecure_hosts(ctx: Where, value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ctx.fail("insecure-hosts", 'must be a list of host names, e.g. ["mirror.lan"]')
    for v in value:
        if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", v):
            raise ctx.fail("insecure-hosts", f"not a host name (or host:port): {v!r}")
    return frozenset(v.lower() for v in value)
