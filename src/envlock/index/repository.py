"""What the resolver asks of the indexes: project pages and core metadata, cached and prefetched.

A project is taken from the first index that has it, never merged across indexes (protection
from dependency confusion). Metadata of a file with a known sha256 is cached forever.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from envlock._fs import atomic_write_bytes
from envlock.errors import NetworkError
from envlock.events import Stats
from envlock.index.client import HttpClient, redact, status_error
from envlock.index.http_cache import CachedPage, PageCache
from envlock.index.metadata import (
    CoreMetadata,
    MetadataError,
    download,
    fetch_wheel_metadata,
    parse_metadata,
)
from envlock.index.sdist import sdist_metadata
from envlock.index.simple import ACCEPT, DistFile, ProjectPage, parse_project_page
from envlock.spec import Index


class PackageIndex:
    """Project pages and metadata for a list of indexes, memoised for one run."""

    def __init__(
        self,
        http: HttpClient,
        indexes: Sequence[Index],
        cache_dir: Path,
        stats: Stats | None = None,
    ) -> None:
        self.http = http
        self.indexes = tuple(indexes)
        self.cache_dir = cache_dir
        self.stats = stats or Stats()
        self._pages = PageCache(cache_dir)
        self._lock = threading.Lock()
        self._project_futures: dict[NormalizedName, Future[ProjectPage | None]] = {}
        self._metadata_futures: dict[str, Future[CoreMetadata]] = {}

    # -- project pages -------------------------------------------------------------------
    def prefetch(self, names: Iterable[str]) -> None:
        """Start fetching these projects' pages in the background."""
        for name in names:
            self._project_future(canonicalize_name(name))

    def project(self, name: str) -> ProjectPage | None:
        """The page of ``name`` from the first index that has it; None if no index does."""
        return self._project_future(canonicalize_name(name)).result()

    def project_future(self, name: str) -> Future[ProjectPage | None]:
        """The (possibly still running) fetch of a project's page."""
        return self._project_future(canonicalize_name(name))

    def _project_future(self, name: NormalizedName) -> Future[ProjectPage | None]:
        with self._lock:
            fut = self._project_futures.get(name)
            if fut is None:
                fut = self.http.pool.submit(self._fetch_project, name)
                self._project_futures[name] = fut
            return fut

    def _fetch_project(self, name: NormalizedName) -> ProjectPage | None:
        for index in self.indexes:
            page = self._fetch_page(index, name)
            if page is not None:
                self.stats.bump("projects")
                return page
        return None

    def _fetch_page(self, index: Index, name: NormalizedName) -> ProjectPage | None:
        url = index.url + name + "/"
        key = redact(url)
        cached = self._pages.get(key)
        headers = {"Accept": ACCEPT}
        if cached is not None:
            headers.update(cached.validators())
        response = self.http.get(url, headers=headers)
        if response.status_code == 304 and cached is not None:
            return parse_project_page(cached.body, cached.content_type, cached.url, index.url, name)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise status_error(response, f"cannot fetch the page of {name}")
        final_url = redact(str(response.url))
        page = CachedPage(
            url=final_url,
            body=response.content,
            content_type=response.headers.get("content-type", "text/html"),
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
        )
        if page.etag or page.last_modified:
            self._pages.put(key, page)
        return parse_project_page(page.body, page.content_type, final_url, index.url, name)

    # -- metadata ------------------------------------------------------------------------
    def prefetch_metadata(self, file: DistFile) -> Future[CoreMetadata]:
        """Start reading a file's metadata in the background."""
        return self._metadata_future(file)

    def metadata(self, file: DistFile) -> CoreMetadata:
        """Parsed core metadata of a wheel or sdist (raises MetadataError if unusable)."""
        return self._metadata_future(file).result()

    def _metadata_future(self, file: DistFile) -> Future[CoreMetadata]:
        key = file.sha256 or hashlib.sha256(redact(file.url).encode()).hexdigest()
        with self._lock:
            fut = self._metadata_futures.get(key)
            if fut is None:
                fut = self.http.pool.submit(self._fetch_metadata, file, key)
                self._metadata_futures[key] = fut
            return fut

    def _fetch_metadata(self, file: DistFile, key: str) -> CoreMetadata:
        # Keyed by the file's sha256: what a hash names never changes, so no revalidation.
        path = self.cache_dir / "metadata-v1" / key[:2] / f"{key}.METADATA"
        if file.sha256:
            try:
                meta = parse_metadata(path.read_bytes())
                self.stats.bump("metadata")
                return meta
            except (OSError, MetadataError):  # absent or unreadable: fetch it again
                pass
        if file.is_wheel:
            raw = fetch_wheel_metadata(self.http, file)
        else:
            raw = sdist_metadata(
                download(self.http, file), file.filename, [i.url for i in self.indexes]
            )
        meta = parse_metadata(raw)
        if file.sha256:
            atomic_write_bytes(path, raw)
        self.stats.bump("metadata")
        return meta

    def file_size(self, file: DistFile) -> int:
        """A file's size: from the index (PEP 700) or a HEAD request."""
        if file.size is not None:
            return file.size
        size = self.http.head_size(file.url)
        if size is None:
            raise NetworkError(f"cannot learn the size of {redact(file.url)}")
        return size
