"""PEP 691 (JSON) and PEP 503 (HTML) project pages -> :class:`ProjectPage`. Pure: no I/O.

Understands PEP 592 yanking, PEP 658/714 metadata files, PEP 700 size and upload-time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

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


@dataclass(frozen=True)
class ProjectPage:
    """All files of one project on one index."""

    name: NormalizedName
    index_url: str
    files: tuple[DistFile, ...]


def parse_project_page(body: bytes, content_type: str, page_url: str, index_url: str,
                       name: str) -> ProjectPage:
    """Parse a project page in whichever format the server chose."""
    if content_type.split(";")[0].strip() == JSON_CONTENT_TYPE:
        files = _parse_json(body, page_url)
    else:
        files = _parse_html(body.decode("utf-8", errors="replace"), page_url)
    wanted = canonicalize_name(name)
    return ProjectPage(
        name=wanted,
        index_url=index_url,
        files=tuple(replace(f, index=index_url) for f in files if f.name == wanted),
    )


def _metadata_info(value: Any) -> tuple[bool, str | None]:
    """(has a PEP 658 file, its sha256) from a core-metadata value: bool or {algo: hex}."""
    if isinstance(value, Mapping):
        return True, value.get("sha256")
    return bool(value), None


def _make_file(filename: str, url: str, hashes: Mapping[str, str], requires_python: str | None,
               yanked: bool, core_metadata: Any, size: Any, upload_time: Any) -> DistFile | None:
    try:
        if filename.endswith(".whl"):
            name, version, _, tags = parse_wheel_filename(filename)
            is_wheel = True
        elif filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            tags, is_wheel = frozenset(), False
        else:
            return None
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    spec: SpecifierSet | None = None
    if requires_python:
        try:
            spec = SpecifierSet(requires_python)
        except InvalidSpecifier:
            spec = None  # pip does the same: an unparseable Requires-Python is ignored
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


def _parse_json(body: bytes, page_url: str) -> list[DistFile]:
    data = json.loads(body)
    out = []
    for entry in data.get("files", []):
        f = _make_file(
            entry["filename"],
            urljoin(page_url, entry["url"]),
            entry.get("hashes", {}),
            entry.get("requires-python"),
            entry.get("yanked") not in (False, None),
            entry.get("core-metadata", entry.get("dist-info-metadata", False)),
            entry.get("size"),
            entry.get("upload-time"),
        )
        if f is not None:
            out.append(f)
    return out


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


def _parse_html(text: str, page_url: str) -> list[DistFile]:
    parser = _AnchorParser()
    parser.feed(text)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    out = []
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
        f = _make_file(filename, url, hashes, attrs.get("data-requires-python"),
                       "data-yanked" in attrs, meta, None, None)
        if f is not None:
            out.append(f)
    return out
