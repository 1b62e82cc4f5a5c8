"""Artifacts from a snapshot into the local cache: concurrently, every byte checked against the
lock before it is kept (``ArtifactStore.ingest``), never a request to a package index.

An object missing from the snapshot is an error naming it and the ``envlock push`` that adds it;
there is no fallback to the index.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from envlock.cache.fetch import FetchEvents, FetchResult, missing
from envlock.cache.store import ArtifactStore, check_filename
from envlock.errors import EnvlockError, IntegrityError, MissingArtifactsError
from envlock.lock.artifacts import Artifact
from envlock.snapshot.layout import artifact_key, built_prefix
from envlock.snapshot.remote import RemoteStore

PUSH_HINT = "run `envlock push` where the cache has them (a CI job, a laptop)"


def download(
    store: ArtifactStore,
    remote: RemoteStore,
    artifacts: Sequence[Artifact],
    events: FetchEvents | None = None,
    max_workers: int = 8,
) -> FetchResult:
    """Make every artifact present in the local cache, from the snapshot only."""
    events = events or FetchEvents()
    result = FetchResult()
    store.clean_leftovers()
    todo = missing(store, artifacts, events.corrupt)
    result.cached = [a for a in artifacts if a not in todo]
    if not todo:
        return result
    sizes = {key: remote.size(key) for key in (artifact_key(a.sha256, a.filename) for a in todo)}
    absent = [a.filename for a in todo if sizes[artifact_key(a.sha256, a.filename)] is None]
    if absent:
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise MissingArtifactsError(
            f"{len(absent)} artifact(s) are not in the snapshot {remote.url}: {shown}",
            hint=PUSH_HINT,
        )
    events.start(len(todo), sum(a.size or 0 for a in todo))

    def one(art: Artifact) -> Artifact:
        with store.lock(art.sha256):
            if store.get(art.sha256, art.filename, art.size) is None:
                # Never more than the lock says (or than the snapshot listed, unsized).
                key = artifact_key(art.sha256, art.filename)
                chunks = remote.read(key, art.size if art.size is not None else sizes[key] or 0)
                if chunks is None:
                    raise MissingArtifactsError(
                        f"{art.filename} disappeared from the snapshot {remote.url}",
                        hint=PUSH_HINT,
                    )

                def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
                    for chunk in chunks:
                        events.advance(len(chunk))
                        yield chunk

                store.ingest(art.sha256, art.filename, counted(chunks), art.size)
        events.done(art)
        return art

    with ThreadPoolExecutor(max_workers, "envlock-snapshot") as pool:
        result.downloaded = list(pool.map(one, todo))
    return result


def download_built(store: ArtifactStore, remote: RemoteStore, art: Artifact) -> bool:
    """The wheels built from the locked sdist ``art`` into the cache; False if the snapshot has
    none. (No lock hash exists for a built wheel: it is as trusted as the snapshot, and its
    RECORD is still checked when it is installed.)"""
    wheels = [
        (key, size)
        for key, size in remote.list(built_prefix(art.sha256))
        if key.endswith(".whl") and "/" not in key[len(built_prefix(art.sha256)) :]
    ]
    if not wheels:
        return False
    directory = store.built_dir(art.sha256)
    directory.mkdir(parents=True, exist_ok=True)
    for key, size in wheels:
        name = key.rsplit("/", 1)[1]
        try:
            parse_wheel_filename(check_filename(name))
        except (InvalidWheelFilename, ValueError, EnvlockError):
            raise IntegrityError(f"snapshot {remote.url}: {key}: not a wheel file name") from None
        chunks = remote.read(key, size)  # no more than the listing said
        if chunks is None:
            return False
        tmp = store.scratch_file("built-" + art.sha256, ".whl")
        try:
            with open(tmp, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(tmp, directory / name)
        finally:
            if tmp.exists():
                tmp.unlink()
    return True
