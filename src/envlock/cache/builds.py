"""Locked sdists built into wheels once, at fetch time, cached under the sdist's sha256.

The build runs in an isolated environment whose build requirements come from the spec's indexes
(PyPA ``build``). A pure-Python result serves every platform; a native one only the host.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from packaging.tags import create_compatible_tags_selector
from packaging.utils import parse_wheel_filename

from envlock.cache.store import ArtifactStore
from envlock.errors import BuildError
from envlock.lock.artifacts import Artifact
from envlock.platforms import Target, host_platform


def built_wheel(store: ArtifactStore, sdist_sha256: str, target: Target) -> Path | None:
    """The wheel built from a locked sdist that ``target`` can install, if built already."""
    directory = store.built_dir(sdist_sha256)
    if not directory.is_dir():
        return None
    wheels = [(p, parse_wheel_filename(p.name)[3]) for p in sorted(directory.glob("*.whl"))]
    return next(create_compatible_tags_selector(target.tags)(wheels), None)


def ensure_built(
    store: ArtifactStore, art: Artifact, sdist: Path, target: Target, index_urls: Sequence[str]
) -> Path:
    """A wheel built from ``sdist`` that ``target`` can install (building it if needed)."""
    found = built_wheel(store, art.sha256, target)
    if found is not None:
        return found
    directory = store.built_dir(art.sha256)
    if directory.is_dir() and any(directory.glob("*.whl")):
        raise _foreign_native(art, target)
    with store.lock("build-" + art.sha256):
        found = built_wheel(store, art.sha256, target)
        if found is not None:
            return found
        wheel, name = _build(store, art, sdist, index_urls)
        directory.mkdir(parents=True, exist_ok=True)
        os.replace(wheel, directory / name)
    found = built_wheel(store, art.sha256, target)
    if found is None:
        raise _foreign_native(art, target)
    return found


def _foreign_native(art: Artifact, target: Target) -> BuildError:
    return BuildError(
        f"{art.filename} builds a platform-specific wheel on {host_platform()}, which cannot "
        f"serve {target.platform}",
        hint=f"build on a {target.platform} machine, or lock a version with {target.platform} "
        "wheels",
    )


def _build(
    store: ArtifactStore, art: Artifact, sdist: Path, index_urls: Sequence[str]
) -> tuple[Path, str]:
    """The built wheel (a scratch file of the cache) and its file name."""
    # The build frontend and the network stack are needed only here: keep them off the
    # import path of materialize.
    from envlock.core_metadata import MetadataError
    from envlock.index.sdist import isolated_builder, unpack_sdist

    work = store.scratch_dir("build-" + art.sha256)  # the caller holds that lock
    try:
        source = unpack_sdist(sdist.read_bytes(), art.filename, work / "src")
        with isolated_builder(source, index_urls, art.filename) as builder:
            try:
                built = Path(builder.build("wheel", work / "dist"))
            except Exception as exc:  # the backend is foreign code
                raise BuildError(f"building {art.filename} failed: {str(exc)[:300]}") from None
        name, version, _, _ = parse_wheel_filename(built.name)
        if name != art.name or str(version) != str(art.version):
            raise BuildError(f"{art.filename} built {built.name}, not {art.name} {art.version}")
        final = store.scratch_file("build-" + art.sha256, ".whl")
        os.replace(built, final)
        return final, built.name
    except MetadataError as exc:
        raise BuildError(str(exc)) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
