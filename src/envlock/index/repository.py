"""What the resolver asks of the indexes: project pages and core metadata, cached and prefetched.

Which index a project may come from is decided by :class:`Routing`, never by who answers first:
a package pinned to an index (``[[index]] packages``) comes from that index alone; a package an
existing lock took from an index stays on it (a 404 there is an error, not a reason to look
elsewhere); anything else comes from the first general index that has it, never merged across
indexes (protection from dependency confusion). Metadata of a file with a known sha256 is cached
forever.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from packaging.utils import NormalizedName, canonicalize_name

from envlock._fs import atomic_write_bytes
from envlock.core_metadata import CoreMetadata, MetadataError, check_identity, parse_metadata
from envlock.errors import EnvlockError, NetworkError, ResolutionError
from envlock.index.client import HttpClient, redact, status_error
from envlock.index.http_cache import CachedPage, PageCache
from envlock.index.metadata import download, fetch_wheel_metadata
from envlock.index.sdist import sdist_metadata
from envlock.index.simple import ACCEPT, SUPPORTED_API, DistFile, ProjectPage, parse_project_page
from envlock.progress import LockProgress
from envlock.spec_indexes import Index


class Repository(Protocol):
    """What the resolver needs from package indexes (the HTTP one, or an in-memory fake)."""

    @property
    def indexes(self) -> tuple[Index, ...]: ...

    def project(self, name: str) -> ProjectPage | None: ...

    def project_future(self, name: str) -> Future[ProjectPage | None]: ...

    def prefetch(self, names: Iterable[str]) -> None: ...

    def metadata(self, file: DistFile) -> CoreMetadata: ...

    def prefetch_metadata(self, file: DistFile) -> Future[CoreMetadata]: ...


@dataclass(frozen=True)
class Routing:
    """Which indexes may serve which project."""

    indexes: tuple[Index, ...]
    locked: Mapping[NormalizedName, str] = field(default_factory=dict)  # name -> index URL

    def route(self, name: NormalizedName) -> tuple[tuple[Index, ...], str | None]:
        """The indexes to ask, in order, and why only one (None: the general search)."""
        for index in self.indexes:
            if name in index.packages:
                return (index,), f"pinned to index {index.name!r} in the spec"
        url = self.locked.get(name)
        if url is not None:
            for index in self.indexes:
                if redact(index.url) == url:
                    return (index,), f"locked from {url}"
        return tuple(i for i in self.indexes if not i.explicit), None


class IndexSession:
    """Pages and metadata over HTTP, memoised for one run and shared by every environment."""

    def __init__(
        self,
        http: HttpClient,
        cache_dir: Path,
        progress: LockProgress | None = None,
    ) -> None:
        self.http = http
        self.cache_dir = cache_dir
        self.progress = progress or LockProgress()
        self.warnings: list[str] = []
        self.learned: dict[str, tuple[str, int]] = {}  # url -> (sha256, size) of unhashed files
        self._pages = PageCache(cache_dir)
        self._lock = threading.Lock()
        self._page_futures: dict[tuple[str, NormalizedName], Future[ProjectPage | None]] = {}
        self._metadata_futures: dict[str, Future[CoreMetadata]] = {}
        self._warned: set[str] = set()
        self._fetch_urls: dict[str, str] = {}  # index URL -> where it was fetched (a mirror)

    def repository(self, routing: Routing) -> HttpRepository:
        """The view of these indexes that one environment's routing allows."""
        return HttpRepository(self, routing)

    # -- project pages -------------------------------------------------------------------
    def page(self, index: Index, name: NormalizedName) -> ProjectPage | None:
        """One index's page of a project, fetched once per run.

        The first caller fetches it in its own thread and the others wait for that: a fetch is
        never queued behind the very pool threads that wait for it."""
        key = (index.fetch_url, name)
        with self._lock:
            self._fetch_urls[index.url] = index.fetch_url
            fut = self._page_futures.get(key)
            owner = fut is None
            if fut is None:
                fut = self._page_futures[key] = Future()
        if owner:
            try:
                fut.set_result(self.fetch_page(index, name))
            except BaseException as exc:
                fut.set_exception(exc)
        return fut.result()

    def fetch_page(self, index: Index, name: NormalizedName) -> ProjectPage | None:
        """One index's page of a project (None on 404), revalidated against the disk cache.

        Fetched from the index's mirror if it has one; its files still name the index itself
        (``DistFile.index``), which is what a lock records."""
        url = index.fetch_url + name + "/"
        key = redact(url)
        cached = self._pages.get(key)
        headers = {"Accept": ACCEPT}
        if cached is not None:
            headers.update(cached.validators())
        response = self.http.get(url, headers=headers)
        if response.status_code == 304 and cached is not None:
            page = parse_project_page(cached.body, cached.content_type, cached.url, index.url, name)
        elif response.status_code == 404:
            return None
        elif response.status_code != 200:
            raise status_error(response, f"cannot fetch the page of {name}")
        else:
            # Relative file URLs resolve against where the page really was (after redirects).
            final_url = key if key.startswith("file:") else redact(str(response.url))
            fresh = CachedPage(
                url=final_url,
                body=response.content,
                content_type=response.headers.get("content-type", "text/html"),
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )
            # Parsed before it is cached: a malformed page never reaches the disk cache.
            page = parse_project_page(fresh.body, fresh.content_type, final_url, index.url, name)
            if fresh.etag or fresh.last_modified:
                self._pages.put(key, fresh)
        self._note_api(index, page)
        self.progress.project_read()
        return page

    def _note_api(self, index: Index, page: ProjectPage) -> None:
        with self._lock:
            if not page.newer_api or index.fetch_url in self._warned:
                return
            self._warned.add(index.fetch_url)
        major, minor = page.api_version
        self.warnings.append(
            f"{redact(index.fetch_url)} speaks simple API {major}.{minor}, newer than the "
            f"{SUPPORTED_API[0]}.{SUPPORTED_API[1]} envlock knows; reading what it understands"
        )

    # -- metadata ------------------------------------------------------------------------
    def prefetch_metadata(self, file: DistFile) -> Future[CoreMetadata]:
        """Start reading a file's metadata in the background."""
        return self._metadata_future(file)

    def metadata(self, file: DistFile) -> CoreMetadata:
        """Parsed core metadata of a wheel or sdist (raises MetadataError if unusable)."""
        meta = self._metadata_future(file).result()
        # Again here: files with the same sha256 share one fetch, and so one check.
        check_identity(meta, file.name, file.version, file.filename)
        return meta

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
            except (OSError, MetadataError):  # absent or unreadable: fetch it again
                pass
            else:
                check_identity(meta, file.name, file.version, file.filename)
                self.progress.metadata_read()
                return meta
        if file.is_wheel:
            raw = fetch_wheel_metadata(self.http, file, self._learn)
        else:
            # Build requirements come from the index that served the sdist (its mirror, if set).
            with self._lock:
                where = self._fetch_urls.get(file.index, file.index)
            data = download(self.http, file, self._learn)
            self._keep_sdist(file, data)
            raw = sdist_metadata(data, file.filename, [where])
        meta = parse_metadata(raw)
        check_identity(meta, file.name, file.version, file.filename)
        if file.sha256:
            atomic_write_bytes(path, raw)
        self.progress.metadata_read()
        return meta

    def _keep_sdist(self, file: DistFile, data: bytes) -> None:
        """Put a downloaded sdist into the artifact store: locking its build dependencies, and
        fetching it, then read it from there instead of downloading it again (pyspark's sdist
        is 455 MB). Only an optimisation: a store that cannot take it is left alone."""
        if not file.sha256:
            return
        from envlock.cache.store import ArtifactStore

        try:
            store = ArtifactStore(self.cache_dir)
            with store.lock(file.sha256):
                if store.intact(file.sha256, file.filename, len(data)) is None:
                    store.ingest(file.sha256, file.filename, [data], len(data))
        except (OSError, EnvlockError):
            pass

    def _learn(self, file: DistFile, data: bytes) -> None:
        """A whole file passed through our hands: remember its digest for the lock."""
        with self._lock:
            self.learned[file.url] = (hashlib.sha256(data).hexdigest(), len(data))

    # -- what the lock needs of each file ------------------------------------------------
    def digest(self, file: DistFile) -> tuple[str, int]:
        """A file's sha256 and size: from the index (PEP 700 size, else HEAD) or, for an index
        that lists no hash, from the bytes themselves (downloaded and hashed, never guessed)."""
        if file.sha256:
            size = file.size if file.size is not None else self._head_size(file)
            return file.sha256, size
        with self._lock:
            known = self.learned.get(file.url)
        if known is not None:
            return known
        hasher = hashlib.sha256()
        size = 0
        with self.http.stream(
            file.url,
            {"Accept-Encoding": "identity"},
            deadline=self.http.settings.deadline_for(file.size),
        ) as response:
            if response.status_code != 200:
                raise status_error(response, f"cannot download {file.filename} to hash it")
            for chunk in self.http.iter_body(response):
                hasher.update(chunk)
                size += len(chunk)
        result = (hasher.hexdigest(), size)
        with self._lock:
            self.learned[file.url] = result
        return result

    def _head_size(self, file: DistFile) -> int:
        size = self.http.head_size(file.url)
        if size is None:
            raise NetworkError(f"cannot learn the size of {redact(file.url)}")
        return size


class HttpRepository:
    """One environment's view of an :class:`IndexSession`: pages by its :class:`Routing`."""

    def __init__(self, session: IndexSession, routing: Routing) -> None:
        self.session = session
        self.routing = routing
        self._lock = threading.Lock()
        self._futures: dict[NormalizedName, Future[ProjectPage | None]] = {}

    @property
    def indexes(self) -> tuple[Index, ...]:
        return self.routing.indexes

    def prefetch(self, names: Iterable[str]) -> None:
        """Start fetching these projects' pages in the background."""
        for name in names:
            self.project_future(name)

    def project(self, name: str) -> ProjectPage | None:
        """The page of ``name`` from the index it may come from; None if none has it."""
        return self.project_future(name).result()

    def project_future(self, name: str) -> Future[ProjectPage | None]:
        """The (possibly still running) fetch of a project's page."""
        key = canonicalize_name(name)
        with self._lock:
            fut = self._futures.get(key)
            if fut is None:
                fut = self.session.http.pool.submit(self._find, key)
                self._futures[key] = fut
            return fut

    def _find(self, name: NormalizedName) -> ProjectPage | None:
        indexes, only = self.routing.route(name)
        for index in indexes:
            page = self.session.page(index, name)
            if page is not None:
                return page
        if only is not None:
            where = indexes[0]
            raise ResolutionError(
                f"{name} is {only}, but {redact(where.fetch_url)} does not list it (HTTP 404)",
                hint=(
                    f"envlock never takes it from another index; if it moved, run "
                    f"`envlock lock --upgrade-package {name}`"
                    if only.startswith("locked")
                    else "publish it there, or remove it from that index's packages"
                ),
            )
        return None

    def metadata(self, file: DistFile) -> CoreMetadata:
        return self.session.metadata(file)

    def prefetch_metadata(self, file: DistFile) -> Future[CoreMetadata]:
        return self.session.prefetch_metadata(file)
