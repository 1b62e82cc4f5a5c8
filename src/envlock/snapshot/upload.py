"""``envlock push``: the local cache's copy of what the locks need, into the snapshot.

Idempotent: an object already there is skipped only when its bytes are the local file's — its
size, then its checksum: the S3 ETag where it is the MD5 of the upload (single-part, or
multipart in obstore's 5 MiB parts), else the object re-read and hashed (``verify=True`` always
re-reads). An object with the right key but wrong bytes is replaced, and reported. An
interrupted push leaves no partial object under a final key (each object appears whole, or not
at all). Environment archives go up before their manifest, so a manifest always names a complete
archive.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from envlock.cache.store import ArtifactStore, file_sha256
from envlock.errors import EnvlockError, IntegrityError, MissingArtifactsError
from envlock.snapshot.layout import (
    MAX_MANIFEST,
    Manifest,
    archive_key,
    artifact_key,
    built_prefix,
    manifest_key,
)
from envlock.snapshot.remote import RemoteStore

State = Literal["absent", "intact", "wrong"]  # of an object, against the local file

_PART = 5 * 1024 * 1024  # obstore's multipart chunk size: the parts of an ETag "<md5>-<n>"
_MD5_ETAG = re.compile(r'^"?([0-9a-f]{32})(?:-(\d+))?"?$')


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
    uploaded: list[Upload] = field(default_factory=list)  # replaced ones included
    present: list[Upload] = field(default_factory=list)
    replaced: list[Upload] = field(default_factory=list)  # were there with wrong bytes
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
    verify: bool = False,
    on_start: Callable[[int, int], None] = lambda files, size: None,
    on_done: Callable[[Upload], None] = lambda u: None,
    max_workers: int = 8,
) -> PushResult:
    """Upload what the snapshot does not have yet (or has with other bytes), concurrently."""
    result = PushResult()
    with ThreadPoolExecutor(max_workers, "envlock-push") as pool:
        states = list(pool.map(lambda u: state(remote, u.key, u.path, verify=verify), todo))
        result.present = [u for u, st in zip(todo, states, strict=True) if st == "intact"]
        result.replaced = [u for u, st in zip(todo, states, strict=True) if st == "wrong"]
        missing = [u for u, st in zip(todo, states, strict=True) if st != "intact"]
        on_start(len(missing), sum(u.size for u in missing))

        def put(u: Upload) -> Upload:
            remote.put_file(u.key, u.path)
            on_done(u)
            return u

        result.uploaded = list(pool.map(put, missing))
    return result


def push_archive(
    remote: RemoteStore, archive: Path, manifest: Manifest, *, verify: bool = False
) -> State:
    """Upload an environment archive and then its manifest, unless both are there already
    (the archive's bytes checked like an artifact's); the state they were found in."""
    key = archive_key(manifest.lock_sha256, manifest.environment, manifest.platform)
    meta = manifest_key(manifest.lock_sha256, manifest.environment, manifest.platform)
    try:
        raw = remote.read_bytes(meta, MAX_MANIFEST)
    except IntegrityError:  # an oversized manifest: replaced like any wrong one
        raw = b""
    found: State = "absent" if raw is None else "wrong"
    if raw is not None:
        try:
            there = Manifest.from_json(raw, meta)
        except EnvlockError:
            there = None
        # The manifest names what the archive is; which envlock wrote it does not matter.
        if there is not None and replace(manifest, envlock=there.envlock) == there:
            found = state(remote, key, archive, verify=verify)
    if found == "intact":
        return found
    remote.put_file(key, archive)
    remote.put_bytes(meta, manifest.to_json())
    return found


def state(remote: RemoteStore, key: str, path: Path, *, verify: bool = False) -> State:
    """Whether the object at ``key`` holds the bytes of the local file ``path``: its size, then
    its MD5 ETag when it has one (an S3 upload's), else (and always with ``verify``) its bytes,
    re-read and hashed."""
    head = remote.head(key)
    size = path.stat().st_size
    if head is None:
        return "absent"
    if head.size != size:
        return "wrong"
    if not verify:
        m = _MD5_ETAG.match(head.etag)
        if m is not None and m.group(1) == _md5_etag(path, int(m.group(2) or 0)):
            return "intact"
        # An ETag that is not an MD5 (another store, server-side encryption, other part
        # sizes) proves nothing either way: the bytes decide.
    chunks = remote.read(key, size)
    if chunks is None:
        return "absent"
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return "intact" if h.hexdigest() == file_sha256(path) else "wrong"


def _md5_etag(path: Path, parts: int) -> str:
    """The MD5 an S3 ETag holds for this file uploaded in one part (``parts`` 0), or the MD5 of
    the parts' MD5s for a multipart upload in ``_PART``-byte parts."""
    whole = hashlib.md5(usedforsecurity=False)
    digests = []
    with path.open("rb") as f:
        while chunk := f.read(_PART):
            if parts:
                digests.append(hashlib.md5(chunk, usedforsecurity=False).digest())
            else:
                whole.update(chunk)
    if parts:
        if len(digests) != parts:
            return ""
        return hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
    return whole.hexdigest()
