"""PEP 691 (JSON) and PEP 503 (HTML) project pages -> :class:`ProjectPage`. Pure: no I/O.

Understands PEP 592 yanking (with reasons), PEP 629/691 API versions, PEP 658/714 metadata
files and PEP 700 sizes and upload times. A page that is not what the specs promise (bad JSON,
missing keys, wrong types, a sha256 that is not 64 hex digits, an API major version other than
1) is an :class:`~envlock.errors.IndexPageError` naming the URL: never a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache, lru_cache
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, parse_tag
from packaging.utils import (
    NormalizedName,
    canonicalize_name,
)
from packaging.version import InvalidVersion, Version

from envlock.errors import IndexPageError
from envlock.filenames import sdist_version

JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
ACCEPT = f"{JSON_CONTENT_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
# The newest API version whose features envlock knows (PEP 700). A newer minor version only
# adds optional keys, so it is read with a warning (PEP 691 asks clients to warn).
SUPPORTED_API = (1, 1)
_HTML_TYPES = (
    "text/html",
    "application/vnd.pypi.simple.v1+html",
    "application/vnd.pypi.simple.latest+html",
)
_JSON_TYPES = (JSON_CONTENT_TYPE, "application/vnd.pypi.simple.latest+json")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_API = re.compile(r"(\d+)\.(\d+)")


@dataclass(frozen=True)
class DistFile:
    """One release file as an index lists it."""

    filename: str
    url: str
    name: NormalizedName
    version: Version
    is_wheel: bool
    tags: frozenset[Tag]
    sha256: str | None = None
    requires_python: SpecifierSet | None = None
    yanked: bool = False
    metadata_sha256: str | None = None
    has_metadata_file: bool = False
    size: int | None = None
    upload_time: datetime | None = None
    index: str = ""  # base URL of the index that listed it
    yank_reason: str | None = None


# The arguments of _make_file for one listed file, validated but kept raw until its version is
# looked at: filename, url, sha256, requires-python, yanked reason (None: not yanked),
# core-metadata (has file, sha256), size, upload-time.
_Raw = tuple[str, str, str | None, Any, str | None, tuple[bool, str | None], Any, Any]


class ProjectPage:
    """All files of one project on one index.

    Popular projects list tens of thousands of files; a resolver looks at a handful of versions.
    So files are grouped by version when the page is read and turned into :class:`DistFile`
    objects only for the versions asked for.
    """

    def __init__(
        self,
        name: NormalizedName,
        index_url: str,
        raw: Mapping[Version, list[_Raw]],
        api_version: tuple[int, int] = (1, 0),
        url: str = "",
    ) -> None:
        self.name = name
        self.index_url = index_url
        self.api_version = api_version
        self.url = url
        self._raw = raw
        self._built: dict[Version, tuple[DistFile, ...]] = {}
        self.versions: tuple[Version, ...] = tuple(sorted(raw, reverse=True))

    def files_of(self, version: Version) -> tuple[DistFile, ...]:
        """The files of one version (built on first use)."""
        built = self._built.get(version)
        if built is None:
            made = (
                _make_file(*args, self.index_url, self.url, self.name)
                for args in self._raw.get(version, ())
            )
            built = self._built[version] = tuple(
                f for f in made if f is not None and f.name == self.name
            )
        return built

    @property
    def files(self) -> tuple[DistFile, ...]:
        """Every file, newest version first."""
        return tuple(f for v in self.versions for f in self.files_of(v))

    @property
    def newer_api(self) -> bool:
        """Whether the index speaks a newer minor API version than envlock knows."""
        return self.api_version > SUPPORTED_API


def parse_project_page(
    body: bytes, content_type: str, page_url: str, index_url: str, name: str
) -> ProjectPage:
    """Parse a project page in whichever format the server chose."""
    media = content_type.split(";")[0].strip().lower()
    if media in _JSON_TYPES:
        api, entries = _parse_json(body, page_url, canonicalize_name(name))
    elif media in _HTML_TYPES or not media:
        api, entries = _parse_html(body.decode("utf-8", errors="replace"), page_url)
    else:
        other = re.fullmatch(r"application/vnd\.pypi\.simple\.v(\d+)\+(json|html)", media)
        if other:
            raise _unsupported(page_url, f"{other.group(1)}.x")
        raise IndexPageError(
            f"{page_url}: not a simple-index page (Content-Type {media!r})",
            hint="check the index URL in the spec: it should end in /simple/",
        )
    project = canonicalize_name(name)
    raw: dict[Version, list[_Raw]] = {}
    for entry in entries:
        version = _filename_version(entry[0], project)
        if version is not None:
            raw.setdefault(version, []).append(entry)
    return ProjectPage(project, index_url, raw, api, page_url)


def _unsupported(page_url: str, version: str) -> IndexPageError:
    return IndexPageError(
        f"{page_url}: the index speaks simple API {version}; envlock understands 1.x",
        hint="use an index (or envlock version) that speaks the PEP 691 API version 1",
    )


def _api_version(value: Any, page_url: str) -> tuple[int, int]:
    match = _API.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise IndexPageError(f"{page_url}: invalid api-version {value!r} (expected e.g. '1.1')")
    major, minor = int(match.group(1)), int(match.group(2))
    if major != 1:
        raise _unsupported(page_url, f"{major}.{minor}")
    return major, minor


def _filename_version(filename: str, project: NormalizedName) -> Version | None:
    """The version part of a wheel or sdist filename, cheaply (validated later)."""
    if filename.endswith(".whl"):
        parts = filename.split("-")
        return _version(parts[1]) if len(parts) in (5, 6) else None
    return sdist_version(filename, project)


# Pages of popular projects list tens of thousands of files that share a few hundred version
# strings, tag strings and Requires-Python strings: parse each distinct string once.
@cache
def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


@cache
def _specifier(text: str) -> SpecifierSet | None:
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None  # pip does the same: an unparseable Requires-Python is ignored


@cache
def _tags(text: str) -> frozenset[Tag] | None:
    try:
        return frozenset(parse_tag(text))
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _name(text: str) -> NormalizedName:
    return canonicalize_name(text)


def _wheel_parts(filename: str) -> tuple[NormalizedName, Version, frozenset[Tag]] | None:
    """Name, version and tags of a wheel filename (PEP 427), or None if it is not one."""
    parts = filename[:-4].split("-")
    if len(parts) not in (5, 6):
        return None
    version = _version(parts[1])
    tags = _tags("-".join(parts[-3:]))
    if version is None or tags is None or (len(parts) == 6 and not parts[2][:1].isdigit()):
        return None
    return _name(parts[0]), version, tags


def _make_file(
    filename: str,
    url: str,
    sha256: str | None,
    requires_python: Any,
    yanked: str | None,
    core_metadata: tuple[bool, str | None],
    size: Any,
    upload_time: Any,
    index: str,
    page_url: str,
    project: NormalizedName,
) -> DistFile | None:
    tags: frozenset[Tag]
    if filename.endswith(".whl"):
        parsed = _wheel_parts(filename)
        if parsed is None:
            return None
        name, version, tags = parsed
        is_wheel = True
    else:
        sdist = sdist_version(filename, project)
        if sdist is None:
            return None
        name, version = project, sdist
        tags, is_wheel = frozenset(), False
    spec = _specifier(requires_python) if requires_python else None
    has_metadata, metadata_sha = core_metadata
    return DistFile(
        filename=filename,
        url=url,
        name=name,
        version=version,
        is_wheel=is_wheel,
        tags=frozenset(tags),
        sha256=sha256,
        requires_python=spec,
        yanked=yanked is not None,
        yank_reason=yanked or None,
        metadata_sha256=metadata_sha,
        has_metadata_file=has_metadata,
        size=size,
        upload_time=_parse_time(upload_time, page_url, filename),
        index=index,
    )


def _parse_time(value: Any, page_url: str, filename: str) -> datetime | None:
    if value is None:
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise IndexPageError(
            f"{page_url}: {filename}: upload-time {value!r} is not an ISO 8601 timestamp"
        ) from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc)


def _join(base: str, url: str) -> str:
    return url if url.startswith(("https://", "http://")) else urljoin(base, url)


def _sha256(value: Any, page_url: str, where: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise IndexPageError(f"{page_url}: {where}: sha256 {value!r} is not 64 hex digits")
    return value.lower()


def _parse_json(
    body: bytes, page_url: str, name: NormalizedName
) -> tuple[tuple[int, int], list[_Raw]]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise IndexPageError(f"{page_url}: not valid JSON ({detail})") from None
    if not isinstance(data, dict):
        raise IndexPageError(f"{page_url}: a JSON page must be an object")
    meta = data.get("meta")
    if not isinstance(meta, dict) or "api-version" not in meta:
        raise IndexPageError(f"{page_url}: missing meta.api-version")
    api = _api_version(meta["api-version"], page_url)
    page_name = data.get("name")
    if not isinstance(page_name, str):
        raise IndexPageError(f"{page_url}: missing or invalid 'name'")
    if canonicalize_name(page_name) != name:
        raise IndexPageError(f"{page_url}: the page is for {page_name!r}, not {name!r}")
    files = data.get("files")
    if not isinstance(files, list):
        raise IndexPageError(f"{page_url}: missing or invalid 'files' (must be a list)")
    return api, [_json_entry(entry, i, page_url) for i, entry in enumerate(files)]


def _json_entry(entry: Any, i: int, page_url: str) -> _Raw:
    where = f"files[{i}]"
    if not isinstance(entry, dict):
        raise IndexPageError(f"{page_url}: {where} must be an object")
    filename, url, hashes = entry.get("filename"), entry.get("url"), entry.get("hashes")
    if not isinstance(filename, str) or not filename or "/" in filename:
        raise IndexPageError(f"{page_url}: {where}: missing or invalid 'filename'")
    where = f"{where} ({filename})"
    if not isinstance(url, str) or not url:
        raise IndexPageError(f"{page_url}: {where}: missing or invalid 'url'")
    if not isinstance(hashes, dict) or not all(isinstance(v, str) for v in hashes.values()):
        raise IndexPageError(f"{page_url}: {where}: missing or invalid 'hashes'")
    sha = _sha256(hashes["sha256"], page_url, where) if "sha256" in hashes else None
    requires_python = entry.get("requires-python")
    if requires_python is not None and not isinstance(requires_python, str):
        raise IndexPageError(f"{page_url}: {where}: 'requires-python' must be a string")
    yanked = entry.get("yanked", False)
    if not isinstance(yanked, (bool, str)):
        raise IndexPageError(f"{page_url}: {where}: 'yanked' must be a boolean or a string")
    reason = (yanked if isinstance(yanked, str) else "") if yanked is not False else None
    core = entry.get("core-metadata", entry.get("dist-info-metadata", False))
    size = entry.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise IndexPageError(f"{page_url}: {where}: 'size' must be a non-negative integer")
    upload = entry.get("upload-time")
    if upload is not None and not isinstance(upload, str):
        raise IndexPageError(f"{page_url}: {where}: 'upload-time' must be a string")
    return (
        filename,
        _join(page_url, url),
        sha,
        requires_python,
        reason,
        _core_metadata(core, page_url, where),
        size,
        upload,
    )


def _core_metadata(value: Any, page_url: str, where: str) -> tuple[bool, str | None]:
    """(has a PEP 658 file, its sha256) from a core-metadata value: bool or {algo: hex}."""
    if isinstance(value, bool):
        return value, None
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        sha = value.get("sha256")
        return True, _sha256(sha, page_url, f"{where} core-metadata") if sha else None
    raise IndexPageError(f"{page_url}: {where}: 'core-metadata' must be a boolean or hashes")


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.api: str | None = None
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "meta":
            values = dict(attrs)
            if values.get("name") == "pypi:repository-version":
                self.api = values.get("content")
        elif tag == "a":
            self.anchors.append(dict(attrs))


def _parse_html(text: str, page_url: str) -> tuple[tuple[int, int], list[_Raw]]:
    parser = _AnchorParser()
    parser.feed(text)
    api = _api_version(parser.api, page_url) if parser.api is not None else (1, 0)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    out: list[_Raw] = []
    for attrs in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, fragment = urldefrag(urljoin(base, href))
        filename = unquote(url.rsplit("/", 1)[-1])
        sha = None
        algo, _, value = fragment.partition("=")
        if algo == "sha256":
            sha = _sha256(value, page_url, filename)
        meta_attr = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        meta: tuple[bool, str | None] = (
            meta_attr is not None and meta_attr.lower() != "false",
            None,
        )
        if meta_attr and meta_attr.startswith("sha256="):
            meta = (True, _sha256(meta_attr[7:], page_url, f"{filename} core-metadata"))
        yank = attrs["data-yanked"] or "" if "data-yanked" in attrs else None
        out.append((filename, url, sha, attrs.get("data-requires-python"), yank, meta, None, None))
    return api, out
