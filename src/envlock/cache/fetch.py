"""Download a lock's artifacts into the store: concurrently, hash-checked, resumable.

Only URLs that are in the lock are fetched; a cached, intact artifact costs no request at all
(the HTTP client is not even created when nothing is missing).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from envlock.cache.store import ArtifactStore, CorruptEntry
from envlock.errors import NetworkError
from envlock.index.client import HttpClient, redact, status_error
from envlock.lock.artifacts import Artifact


@dataclass
class FetchEvents:
    """Callbacks for progress display (called from worker threads)."""

    start: Callable[[int, int], None] = lambda files, size: None
    advance: Callable[[int], None] = lambda n: None
    done: Callable[[Artifact], None] = lambda art: None
    corrupt: Callable[[Artifact], None] = lambda art: None


@dataclass
class FetchResult:
    downloaded: list[Artifact] = field(default_factory=list)
    cached: list[Artifact] = field(default_factory=list)
    repaired: list[Artifact] = field(default_factory=list)

    @property
    def bytes_downloaded(self) -> int:
        return sum(a.size or 0 for a in self.downloaded)


def missing(
    store: ArtifactStore,
    artifacts: Sequence[Artifact],
    on_corrupt: Callable[[Artifact], None] | None = None,
) -> list[Artifact]:
    """Artifacts not (intact) in the store; corrupt entries are removed on the way."""
    out = []
    for art in artifacts:
        try:
            if store.get(art.sha256, art.filename, art.size) is not None:
                continue
        except CorruptEntry:
            if on_corrupt is not None:
                on_corrupt(art)
        out.append(art)
    return out


def fetch(
    store: ArtifactStore,
    artifacts: Sequence[Artifact],
    make_client: Callable[[], HttpClient],
    events: FetchEvents | None = None,
    max_workers: int = 8,
) -> FetchResult:
    """Make every artifact present in the store; raises on the first failure."""
    events = events or FetchEvents()
    result = FetchResult()
    repaired: list[Artifact] = []

    def corrupt(art: Artifact) -> None:
        repaired.append(art)
        events.corrupt(art)

    todo = missing(store, artifacts, corrupt)
    result.repaired = repaired
    result.cached = [a for a in artifacts if a not in todo]
    events.start(len(todo), sum(a.size or 0 for a in todo))
    if not todo:
        return result
    with make_client() as http:
        pool = ThreadPoolExecutor(max_workers, "envlock-fetch")
        try:
            for art in pool.map(lambda a: _fetch_one(store, http, a, events), todo):
                result.downloaded.append(art)
        finally:
            # On failure or Ctrl-C, queued downloads are dropped, not waited for.
            pool.shutdown(wait=True, cancel_futures=True)
    return result


def _fetch_one(
    store: ArtifactStore, http: HttpClient, art: Artifact, events: FetchEvents
) -> Artifact:
    with store.lock(art.sha256):
        # Another process may have fetched it while we waited for the lock.
        try:
            if store.get(art.sha256, art.filename, art.size) is not None:
                events.advance(art.size or 0)
                events.done(art)
                return art
        except CorruptEntry:
            pass
        budget = _Interruptions(http.settings.retries, art)
        while True:
            counted = 0

            def on_bytes(n: int) -> None:
                nonlocal counted
                counted += n
                events.advance(n)

            try:
                store.ingest(
                    art.sha256, art.filename, _download(http, art, on_bytes, budget), art.size
                )
                break
            except _Restart:
                events.advance(-counted)
        events.done(art)
        return art


class _Restart(Exception):
    """The download broke in a way that cannot be resumed: start over."""


class _Interruptions:
    """How many broken downloads (resumed or restarted) one file may have: the client's own
    retry count, so one policy bounds every file however it breaks."""

    def __init__(self, allowed: int, art: Artifact) -> None:
        self.left = allowed
        self.art = art

    def spend(self, exc: BaseException) -> None:
        if self.left <= 0:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise NetworkError(
                f"downloading {self.art.filename} from {redact(self.art.url)} kept failing: "
                f"{detail}",
                hint="check your connection; the download resumes where it stopped next time",
            ) from None
        self.left -= 1


def _download(
    http: HttpClient, art: Artifact, on_bytes: Callable[[int], None], budget: _Interruptions
) -> Iterator[bytes]:
    """The file's bytes; a broken connection resumes with a Range request where possible."""
    got = 0
    deadline = http.settings.deadline_for(art.size)
    while True:
        # identity: byte offsets of a resumed download must be offsets into the file itself.
        headers = {"Accept-Encoding": "identity"}
        if got:
            headers["Range"] = f"bytes={got}-"
        try:
            with http.stream(art.url, headers=headers, deadline=deadline) as response:
                if got and (response.status_code != 206 or not _starts_at(response, got)):
                    budget.spend(RuntimeError("the server cannot resume"))
                    raise _Restart()
                if not got and response.status_code != 200:
                    raise status_error(response, f"cannot download {art.filename}")
                for chunk in http.iter_body(response):
                    got += len(chunk)
                    on_bytes(len(chunk))
                    yield chunk
                return
        except (httpx.TransportError, httpx.StreamError) as exc:
            budget.spend(exc)


def _starts_at(response: httpx.Response, offset: int) -> bool:
    match = re.match(r"bytes (\d+)-", response.headers.get("content-range", ""))
    return bool(match) and int(match.group(1)) == offset  # type: ignore[union-attr]
