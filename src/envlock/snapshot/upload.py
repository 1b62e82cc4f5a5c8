"""``envlock push``: the local cache's copy of what the locks need, into the snapshot.

Idempotent and immutable: an object already there with the right size is skipped, nothing is
ever overwritten with other bytes (keys are content addresses), and an interrupted push leaves
no partial object under a final key (each object appears whole, or not at all). Environment
archives go up before their manifest, so a manifest always names a complete archive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from envlock.cache.store import ArtifactStore
from envlock.errors import MissingArtifactsError
from envlock.snapshot.layout import Manifest, archive_key, artifact_key, built_prefix, manifest_key
from envlock.snapshot.remote import RemoteStore


@dataclass(frozen=True)
class Upload:
    """One file to put into the snapshot."""

    key: str
    path: Path
    size: int

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass
class PushResult:
    uploaded: list[Upload] = field(default_factory=list)
    present: list[Upload] = field(default_factory=list)
    archives: list[str] = field(default_factory=list)  # keys of archives uploaded

    @property
    def bytes_uploaded(self) -> int:
        return sum(u.size for u in self.uploaded)


def uploads(store: ArtifactStore, artifacts: Sequence[tuple[str, str, int | None]]) -> list[Upload]:
    """What to upload for ``(sha256, filename, size)`` artifacts: each one, and the wheels built
    from each sdist among them; all must be in the local cache."""
    out: list[Upload] = []
    absent = []
    for sha, filename, size in artifacts:
        path = store.get(sha, filename, size)
        if path is None:
            absent.append(filename)
            continue
        out.append(Upload(artifact_key(sha, filename), path, path.stat().st_size))
        built = store.built_dir(sha)
        for wheel in sorted(built.glob("*.whl")) if built.is_dir() else ():
            out.append(Upload(built_prefix(sha) + wheel.name, wheel, wheel.stat().st_size))
    if absent:
        raise MissingArtifactsError(
            f"{len(absent)} artifact(s) are not in the local cache: {', '.join(absent[:5])}",
            hint="run `envlock fetch` first",
        )
    return out


def push(
    remote: RemoteStore,
    todo: Sequence[Upload],
    *,
    on_start: Callable[[int, int], None] = lambda files, size: None,
    on_done: Callable[[Upload], None] = lambda u: None,
    max_workers: int = 8,
) -> PushResult:
    """Upload what the snapshot does not have yet, concurrently."""
    result = PushResult()

    def present(u: Upload) -> bool:
        return remote.size(u.key) == u.size

    with ThreadPoolExecutor(max_workers, "envlock-push") as pool:
        there = list(pool.map(present, todo))
        result.present = [u for u, p in zip(todo, there, strict=True) if p]
        missing = [u for u, p in zip(todo, there, strict=True) if not p]
        on_start(len(missing), sum(u.size for u in missing))

        def put(u: Upload) -> Upload:
            remote.put_file(u.key, u.path)
            on_done(u)
            return u

        result.uploaded = list(pool.map(put, missing))
    return result


def push_archive(remote: RemoteStore, archive: Path, manifest: Manifest) -> bool:
    """Upload an environment archive and then its manifest; False if it was already there."""
    key = archive_key(manifest.lock_sha256, manifest.environment, manifest.platform)
    meta = manifest_key(manifest.lock_sha256, manifest.environment, manifest.platform)
    if remote.size(meta) is not None and remote.size(key) == manifest.size:
        return False
    remote.put_file(key, archive)
    remote.put_bytes(meta, manifest.to_json())
    return True
