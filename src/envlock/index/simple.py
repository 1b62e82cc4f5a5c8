"""PEP 691 (JSON) and PEP 503 (HTML) project pages -> :class:`ProjectPage`. Pure: no I/O.

Understands PEP 592 yanking, PEP 658/714 metadata files, PEP 700 size and upload-time.
"""

from __future__ import annotations

import json
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
    InvalidSdistFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
)
from packaging.version import InvalidVersion, Version

JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
ACCEPT = f"{JSON_CONTENT_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"


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


# The arguments of _make_file for one listed file, kept raw until its version is looked at.
_Raw = tuple[str, str, Mapping[str, str], Any, bool, Any, Any, Any]


class ProjectPage:
    """All files of one project on one index.

    Popular projects list tens of thousands of files; a resolver looks at a handful of versions.
    So files are grouped by version when the page is read and turned into :class:`DistFile`
    objects only for the versions asked for.
    """

    def __init__(
        self, name: NormalizedName, index_url: str, raw: Mapping[Version, list[_Raw]]
    ) -> None:
        self.name = name
        self.index_url = index_url
        self._raw = raw
        self._built: dict[Version, tuple[DistFile, ...]] = {}
        self.versions: tuple[Version, ...] = tuple(sorted(raw, reverse=True))

    def files_of(self, version: Version) -> tuple[DistFile, ...]:
        """The files of one version (built on first use)."""
        built = self._built.get(version)
        if built is None:
            made = (_make_file(*args, self.index_url) for args in self._raw.get(version, ()))
            built = self._built[version] = tuple(
                f for f in made if f is not None and f.name == self.name
            )
        return built

    @property
    def files(self) -> tuple[DistFile, ...]:
        """Every file, newest version first."""
        return tuple(f for v in self.versions for f in self.files_of(v))


def parse_project_page(
    body: bytes, content_type: str, page_url: str, index_url: str, name: str
) -> ProjectPage:
    """Parse a project page in whichever format the server chose."""
    if content_type.split(";")[0].strip() == JSON_CONTENT_TYPE:
        entries = _parse_json(body, page_url)
    else:
        entries = _parse_html(body.decode("utf-8", errors="replace"), page_url)
    raw: dict[Version, list[_Raw]] = {}
    for entry in entries:
        version = _filename_version(entry[0])
        if version is not None:
            raw.setdefault(version, []).append(entry)
    return ProjectPage(canonicalize_name(name), index_url, raw)


def _filename_version(filename: str) -> Version | None:
    """The version part of a wheel or sdist filename, cheaply (validated later)."""
    if filename.endswith(".whl"):
        parts = filename.split("-")
        return _version(parts[1]) if len(parts) in (5, 6) else None
    if filename.endswith((".tar.gz", ".zip")):
        try:
            return parse_sdist_filename(filename)[1]
        except InvalidSdistFilename:
            return None
    return None


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


def _metadata_info(value: Any) -> tuple[bool, str | None]:
    """(has a PEP 658 file, its sha256) from a core-metadata value: bool or {algo: hex}."""
    if isinstance(value, Mapping):
        return True, value.get("sha256")
    return bool(value), None


def _make_file(
    filename: str,
    url: str,
    hashes: Mapping[str, str],
    requires_python: str | None,
    yanked: bool,
    core_metadata: Any,
    size: Any,
    upload_time: Any,
    index: str,
) -> DistFile | None:
    tags: frozenset[Tag]
    if filename.endswith(".whl"):
        parsed = _wheel_parts(filename)
        if parsed is None:
            return None
        name, version, tags = parsed
        is_wheel = True
    elif filename.endswith((".tar.gz", ".zip")):
        try:
            name, version = parse_sdist_filename(filename)
        except InvalidSdistFilename:
            return None
        tags, is_wheel = frozenset(), False
    else:
        return None
    spec = _specifier(requires_python) if requires_python else None
    has_metadata, metadata_sha = _metadata_info(core_metadata)
    return DistFile(
        filename=filename,
        url=url,
        name=name,
        version=version,
        is_wheel=is_wheel,
        tags=frozenset(tags),
        sha256=(hashes.get("sha256") or None),
        requires_python=spec,
        yanked=yanked,
        metadata_sha256=metadata_sha,
        has_metadata_file=has_metadata,
        size=size if isinstance(size, int) else None,
        upload_time=_parse_time(upload_time),
        index=index,
    )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc)


def _join(base: str, url: str) -> str:
    return url if url.startswith(("https://", "http://")) else urljoin(base, url)


def _parse_json(body: bytes, page_url: str) -> list[_Raw]:
    data = json.loads(body)
    return [
        (
            entry["filename"],
            _join(page_url, entry["url"]),
            entry.get("hashes", {}),
            entry.get("requires-python"),
            entry.get("yanked") not in (False, None),
            entry.get("core-metadata", entry.get("dist-info-metadata", False)),
            entry.get("size"),
            entry.get("upload-time"),
        )
        for entry in data.get("files", [])
    ]


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self.anchors.append(dict(attrs))


def _parse_html(text: str, page_url: str) -> list[_Raw]:
    parser = _AnchorParser()
    parser.feed(text)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    out: list[_Raw] = []
    for attrs in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, fragment = urldefrag(urljoin(base, href))
        filename = unquote(url.rsplit("/", 1)[-1])
        hashes = {}
        if "=" in fragment:
            algo, _, value = fragment.partition("=")
            hashes[algo] = value
        meta_attr = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        meta: Any = meta_attr is not None and meta_attr.lower() != "false"
        if meta and meta_attr and "=" in meta_attr:
            algo, _, value = meta_attr.partition("=")
            meta = {algo: value}
        out.append(
            (
                filename,
                url,
                hashes,
                attrs.get("data-requires-python"),
                "data-yanked" in attrs,
                meta,
                None,
                None,
            )
        )
    return out
