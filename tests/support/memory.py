"""An in-memory package index for resolver tests: the same parsing as the HTTP one, no server.

A fake of the :class:`~envlock.index.repository.Repository` interface (not a mock of envlock's
code): pages are real PEP 691 JSON run through the real parser, metadata is the real METADATA
text of each :class:`~support.wheels.Dist`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any, TypeVar

from packaging.utils import canonicalize_name

from envlock.core_metadata import CoreMetadata, MetadataError, parse_metadata
from envlock.index.simple import JSON_CONTENT_TYPE, DistFile, ProjectPage, parse_project_page
from envlock.spec_indexes import Index

from .wheels import Dist, metadata_bytes

__all__ = ["MemoryRepository"]

T = TypeVar("T")
INDEX = Index("memory", "https://memory.example/simple/")


def _done(value: T) -> Future[T]:
    fut: Future[T] = Future()
    fut.set_result(value)
    return fut


class MemoryRepository:
    """Pages and metadata of ``dists``, counting what is asked."""

    def __init__(self, dists: Iterable[Dist], metadata: dict[str, bytes] | None = None) -> None:
        by_project: dict[str, list[Dist]] = {}
        for dist in dists:
            by_project.setdefault(canonicalize_name(dist.name), []).append(dist)
        self._pages = {name: self._page(name, ds) for name, ds in by_project.items()}
        self._metadata = {d.filename: metadata_bytes(d) for ds in by_project.values() for d in ds}
        self._metadata.update(metadata or {})
        self.asked: Counter[str] = Counter()

    @property
    def indexes(self) -> tuple[Index, ...]:
        return (INDEX,)

    @staticmethod
    def _page(name: str, dists: list[Dist]) -> ProjectPage:
        files: list[dict[str, Any]] = []
        for d in dists:
            entry: dict[str, Any] = {
                "filename": d.filename,
                "url": f"https://files.memory.example/{d.filename}",
                "hashes": {"sha256": hashlib.sha256(d.filename.encode()).hexdigest()},
                "requires-python": d.requires_python,
                "yanked": d.yanked,
                "size": 1000,
                "core-metadata": d.kind == "wheel",
            }
            if d.upload_time is not None:
                entry["upload-time"] = d.upload_time
            files.append(entry)
        body = json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": files})
        page_url = INDEX.url + name + "/"
        return parse_project_page(body.encode(), JSON_CONTENT_TYPE, page_url, INDEX.url, name)

    def project(self, name: str) -> ProjectPage | None:
        self.asked["page"] += 1
        return self._pages.get(canonicalize_name(name))

    def project_future(self, name: str) -> Future[ProjectPage | None]:
        return _done(self._pages.get(canonicalize_name(name)))

    def prefetch(self, names: Iterable[str]) -> None:
        pass

    def metadata(self, file: DistFile) -> CoreMetadata:
        self.asked["metadata"] += 1
        self.asked[f"metadata:{file.name}"] += 1
        try:
            return parse_metadata(self._metadata[file.filename])
        except KeyError:
            raise MetadataError(f"no metadata for {file.filename}") from None

    def prefetch_metadata(self, file: DistFile) -> Future[CoreMetadata]:
        fut: Future[CoreMetadata] = Future()
        try:
            fut.set_result(parse_metadata(self._metadata[file.filename]))
        except (KeyError, MetadataError) as exc:
            fut.set_exception(MetadataError(str(exc)))
        return fut
