"""Download a lock's artifacts into the store: concurrently, hash-checked, resumable.

Only URLs that are in the lock are fetched; a cached, intact artifact costs no request at all
(the HTTP client is not even created when nothing is missing). No download reads more than the
lock's size, and a failure or Ctrl-C stops every other download within about a second.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import httpx

from envlock.cache.store import ArtifactStore, CorruptEntry
from envlock.errors import InsecureTransport, IntegrityError, NetworkError
from envlock.index.client import HttpClient, redact, status_error
from envlock.lock.artifacts import Artifact


@dataclass
class FetchEvents:
    """Callbacks for progress display (called from worker threads)."""

    start: Callable[[int, int], None] = lambda files, size: None
    advance: Callable[[int], None] = lambda n: None
    done: Callable[[Artifact], None] = lambda art: None
    corrupt: Callable[[Artifact], None] = lambda art: None
    building: Callable[[Artifact], None] = lambda art: None  # a locked sdist, into a wheel


# A download's NetworkError, said again for what the artifact is (a bundled interpreter).
Explain = Callable[[Artifact, NetworkError], NetworkError]


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
    explain: Explain | None = None,
) -> FetchResult:
    """Make every artifact present in the store; raises on the first failure (a
    :class:`NetworkError` through ``explain``, which may say more about that artifact)."""
    events = events or FetchEvents()
    result = FetchResult()
    repaired: list[Artifact] = []

    def corrupt(art: Artifact) -> None:
        repaired.append(art)
        events.corrupt(art)

    store.clean_leftovers()  # partial downloads of killed runs
    todo = missing(store, artifacts, corrupt)
    result.repaired = repaired
    result.cached = [a for a in artifacts if a not in todo]
    events.start(len(todo), sum(a.size or 0 for a in todo))
    if not todo:
        return result
    with make_client() as http:
        cancel = Cancellation(http.cancelled)
        pool = ThreadPoolExecutor(max_workers, "envlock-fetch")
        try:
            futures = [
                pool.submit(_fetch_one, store, http, a, events, cancel, explain) for a in todo
            ]
            for future in as_completed(futures):
                future.result()
        except BaseException:
            # A failure or Ctrl-C: the other downloads stop (and drop their partial files)
            # within about a second instead of running to the end.
            cancel.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    result.downloaded = list(todo)
    return result


class Cancelled(Exception):
    """A download stopped because the run is being cancelled."""


class Cancellation:
    """Stops the downloads of a run soon after :meth:`set`: workers look at it for every chunk,
    and the sockets of bodies being read are shut down, so a stalled read returns at once."""

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event if event is not None else threading.Event()
        self._lock = threading.Lock()
        self._sockets: dict[int, socket.socket] = {}

    def set(self) -> None:
        self.event.set()
        with self._lock:
            sockets = list(self._sockets.values())
        for sock in sockets:
            _shutdown(sock)

    def check(self) -> None:
        if self.event.is_set():
            raise Cancelled()

    @contextlib.contextmanager
    def reading(self, response: httpx.Response) -> Iterator[None]:
        """While the body of ``response`` is read, :meth:`set` shuts its socket down."""
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            yield  # not a plain socket (a file: URL): chunks arrive without blocking
            return
        with self._lock:
            self._sockets[id(response)] = sock
        try:
            self.check()  # set() may have run just before the socket was listed
            yield
        finally:
            # Unlisted before the response is closed and its connection goes back to the pool.
            with self._lock:
                self._sockets.pop(id(response), None)


def _shutdown(sock: socket.socket) -> None:
    # socket.socket's own shutdown: on a TLS socket, SSLSocket.shutdown would also drop its
    # SSL object under the reading thread. Wakes a recv() blocked in another thread.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _fetch_one(
    store: ArtifactStore,
    http: HttpClient,
    art: Artifact,
    events: FetchEvents,
    cancel: Cancellation,
    explain: Explain | None = None,
) -> Artifact:
    try:
        return _fetch_locked(store, http, art, events, cancel)
    except InsecureTransport:
        raise  # the transport policy's refusal says what to do already
    except NetworkError as exc:
        if explain is None:
            raise
        raise explain(art, exc) from None


def _fetch_locked(
    store: ArtifactStore,
    http: HttpClient,
    art: Artifact,
    events: FetchEvents,
    cancel: Cancellation,
) -> Artifact:
    cancel.check()
    with store.lock(art.sha256, cancel=cancel.event):
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

            chunks = _download(http, art, on_bytes, budget, cancel)
            try:
                store.ingest(art.sha256, art.filename, chunks, art.size)
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
    http: HttpClient,
    art: Artifact,
    on_bytes: Callable[[int], None],
    budget: _Interruptions,
    cancel: Cancellation,
) -> Iterator[bytes]:
    """The file's bytes; a broken connection resumes with a Range request where possible.

    Never more than the lock's size: a longer body (a server that ignores Range or lies in its
    Content-Length) fails at the first byte too many."""
    got = 0
    deadline = http.settings.deadline_for(art.size)
    while True:
        cancel.check()
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
                _check_announced_size(response, art, got)
                with cancel.reading(response):
                    for chunk in http.iter_body(response):
                        cancel.check()
                        got += len(chunk)
                        if got > (art.size if art.size is not None else UNSIZED_LIMIT):
                            raise _oversize(art)
                        on_bytes(len(chunk))
                        yield chunk
                return
        except (httpx.TransportError, httpx.StreamError) as exc:
            cancel.check()  # a read broken by cancellation is no reason to retry
            budget.spend(exc)


_TAMPER_HINT = "the index serves a different file than was locked; re-lock or check for tampering"


# A file the lock gives no size for (an interpreter whose host could not be asked when
# locking, an index without PEP 700 sizes) still cannot fill the disk: no real one is this big.
UNSIZED_LIMIT = 4 << 30


def _oversize(art: Artifact) -> IntegrityError:
    if art.size is None:
        return IntegrityError(
            f"{art.filename}: got more than {UNSIZED_LIMIT >> 30} GiB with no size in the lock",
            hint=_TAMPER_HINT,
        )
    return IntegrityError(
        f"{art.filename}: got more than the {art.size} bytes the lock records", hint=_TAMPER_HINT
    )


def _check_announced_size(response: httpx.Response, art: Artifact, offset: int) -> None:
    length = response.headers.get("content-length", "").strip()
    if art.size is not None and length.isdigit() and offset + int(length) > art.size:
        raise IntegrityError(
            f"{art.filename}: the server announces {offset + int(length)} bytes, more than the "
            f"{art.size} bytes the lock records",
            hint=_TAMPER_HINT,
        )


def _starts_at(response: httpx.Response, offset: int) -> bool:
    match = re.match(r"bytes (\d+)-", response.headers.get("content-range", ""))
    return bool(match) and int(match.group(1)) == offset  # type: ignore[union-attr]
