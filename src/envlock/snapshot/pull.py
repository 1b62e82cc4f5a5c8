"""``envlock pull``: a prebuilt environment archive from the snapshot, in one GET.

The manifest names the archive's sha256 and size; the archive is streamed to a temporary file
beside the output (never more than the manifest's size), hash-checked, then unpacked by
:mod:`envlock.cache.tarsafe` (whoever controls the bucket can forge an archive and a manifest that
agree) into a staging directory that is renamed into place. The output is replaced only under the
same rules as ``materialize`` (an envlock environment, with ``--force``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from envlock._fs import UMASK
from envlock.cache.tarsafe import TarRules, unpack_tar
from envlock.errors import EnvlockError, IntegrityError, MissingArtifactsError
from envlock.materialize.destination import check_directory
from envlock.materialize.staging import remove_leftovers, replace_dir
from envlock.snapshot.layout import MAX_MANIFEST, Manifest, archive_key, manifest_key
from envlock.snapshot.remote import RemoteStore

PUSH_ARCHIVES_HINT = "run `envlock push --archives` for this lock and platform"
# A system-interpreter environment's bin/python links to its base interpreter by absolute path:
# kept as a link, and nothing is ever written through it. The caps are far above any real
# environment (a CUDA stack is ~10 GB in ~100 000 files) and far below a decompression bomb.
ENVIRONMENT_ARCHIVE = TarRules(
    "environment archive", max_members=2_000_000, max_total=256 << 30, absolute_links=True
)


def manifest_of(remote: RemoteStore, lock_sha256: str, environment: str, platform: str) -> Manifest:
    key = manifest_key(lock_sha256, environment, platform)
    raw = remote.read_bytes(key, MAX_MANIFEST)
    if raw is None:
        raise MissingArtifactsError(
            f"no {environment} environment for {platform} of this lock in the snapshot "
            f"{remote.url} ({key})",
            hint=PUSH_ARCHIVES_HINT,
        )
    manifest = Manifest.from_json(raw, f"snapshot {remote.url}: {key}")
    if (manifest.lock_sha256, manifest.environment, manifest.platform) != (
        lock_sha256,
        environment,
        platform,
    ):
        raise IntegrityError(f"snapshot {remote.url}: {key} describes another environment")
    return manifest


def pull(
    remote: RemoteStore,
    lock_sha256: str,
    environment: str,
    platform: str,
    output: Path,
    *,
    force: bool = False,
    protected: tuple[Path, ...] = (),
) -> Manifest:
    """Download, check and unpack the environment; returns its manifest."""
    check_directory(output, force=force, replace_own=False, protected=protected)
    manifest = manifest_of(remote, lock_sha256, environment, platform)
    key = archive_key(lock_sha256, environment, platform)
    output.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(output)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-{os.getpid()}-", dir=output.parent))
    archive = staging.with_name(staging.name + "-archive.tar.gz")
    try:
        _download(remote, key, archive, manifest)
        os.chmod(staging, 0o777 & ~UMASK)
        try:
            unpack_tar(archive, staging, f"snapshot {remote.url}: {key}", ENVIRONMENT_ARCHIVE)
        except OSError as exc:  # a full disk, a permission: not the archive's fault
            where = exc.filename or staging
            raise EnvlockError(
                f"snapshot {remote.url}: {key}: cannot unpack into {where}: {exc.strerror or exc}"
            ) from None
        check_directory(output, force=True, replace_own=True, protected=protected)
        replace_dir(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        archive.unlink(missing_ok=True)
    return manifest


def _download(remote: RemoteStore, key: str, dest: Path, manifest: Manifest) -> None:
    chunks = remote.read(key, manifest.size)
    if chunks is None:
        raise MissingArtifactsError(
            f"the snapshot {remote.url} has the manifest of {key} but not the archive",
            hint=PUSH_ARCHIVES_HINT,
        )
    h = hashlib.sha256()
    got = 0
    with open(dest, "wb") as f:
        for chunk in chunks:
            got += len(chunk)
            h.update(chunk)
            f.write(chunk)
    if got != manifest.size or h.hexdigest() != manifest.sha256:
        raise IntegrityError(
            f"snapshot {remote.url}: {key} does not match its manifest (sha256 "
            f"{h.hexdigest()[:16]}…, expected {manifest.sha256[:16]}…)",
            hint="the object was changed or corrupted: run `envlock push --archives` again",
        )
