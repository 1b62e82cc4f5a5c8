"""``envlock fetch``: snapshot every artifact some locks need into the store (and build sdists)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from envlock.cache.builds import ensure_built
from envlock.cache.fetch import FetchEvents, FetchResult, fetch
from envlock.cache.store import ArtifactStore
from envlock.index.client import HttpClient
from envlock.lock.artifacts import Artifact
from envlock.lock.lockfile import LockFile
from envlock.platforms import Target
from envlock.spec import EnvironmentSpec


@dataclass(frozen=True)
class Snapshot:
    """A lock and the platforms of it to snapshot."""

    env: EnvironmentSpec
    lock: LockFile
    platforms: tuple[str, ...]


def snapshot(
    store: ArtifactStore, snapshots: Sequence[Snapshot], events: FetchEvents | None = None
) -> FetchResult:
    """Fetch what is missing (no request at all when nothing is), then build locked sdists."""
    artifacts: dict[str, Artifact] = {}
    to_build: list[tuple[Snapshot, Target, Artifact]] = []
    for snap in snapshots:
        for platform in snap.platforms or tuple(sorted(snap.lock.targets)):
            target = snap.lock.target(platform)
            for art in snap.lock.artifacts(target):
                artifacts.setdefault(art.sha256, art)
                if not art.is_wheel:
                    to_build.append((snap, target, art))
    indexes = {i.url: i for snap in snapshots for i in snap.env.indexes}
    insecure = frozenset().union(*(snap.env.insecure_hosts for snap in snapshots))
    result = fetch(
        store,
        list(artifacts.values()),
        lambda: HttpClient(list(indexes.values()), insecure_hosts=insecure),
        events,
    )
    for snap, target, art in to_build:
        sdist = store.get(art.sha256, art.filename, art.size)
        assert sdist is not None  # fetched just above
        ensure_built(store, art, sdist, target, [i.url for i in snap.env.indexes])
    return result
