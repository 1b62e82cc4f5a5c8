"""Locked sdists built into wheels once, at fetch time, cached under the sdist's sha256.

The build is isolated and offline: a fresh environment holding only the build packages the lock
pins for the target (from the cache), ``SOURCE_DATE_EPOCH`` fixed (:mod:`envlock.builds`). A
pure-Python result serves every platform; a native one only targets whose tags it carries.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from packaging.tags import Tag, create_compatible_tags_selector
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from envlock.cache.store import ArtifactStore
from envlock.errors import BuildError, MissingArtifactsError
from envlock.lock.artifacts import Artifact
from envlock.lock.builds import BuildFile
from envlock.platforms import Target, host_platform


def built_wheel(store: ArtifactStore, sdist_sha256: str, target: Target) -> Path | None:
    """The wheel built from a locked sdist that ``target`` can install, if built already."""
    directory = store.built_dir(sdist_sha256)
    if not directory.is_dir():
        return None
    wheels = [(p, parse_wheel_filename(p.name)[3]) for p in sorted(directory.glob("*.whl"))]
    return next(create_compatible_tags_selector(built_tags(target))(wheels), None)


def built_tags(target: Target) -> list[Tag]:
    """The tags a wheel built from source may carry for ``target``: its index tags and, when
    this host is of the target's platform, the plain ``linux_<arch>`` tags a Linux build gets
    (no auditwheel runs: such a wheel is for machines like the one that built it, as pip's and
    uv's local builds are)."""
    tags = list(target.tags)
    info = target.platform_info
    if info.os == "linux" and target.platform == host_platform():
        plain = f"linux_{info.arch}"
        seen = set(tags)
        for tag in target.tags:
            if tag.platform.startswith("manylinux"):
                local = Tag(tag.interpreter, tag.abi, plain)
                if local not in seen:
                    seen.add(local)
                    tags.append(local)
    return tags


def ensure_built(
    store: ArtifactStore,
    art: Artifact,
    sdist: Path,
    target: Target,
    packages: Sequence[BuildFile] | None,
) -> Path:
    """A wheel built from ``sdist`` that ``target`` can install (building it if needed) with the
    build ``packages`` the lock pins for ``target`` (None: the lock pins none)."""
    found = built_wheel(store, art.sha256, target)
    if found is not None:
        return found
    directory = store.built_dir(art.sha256)
    if directory.is_dir() and any(directory.glob("*.whl")):
        raise foreign_native(art, target, sorted(directory.glob("*.whl"))[0].name)
    if packages is None:
        raise BuildError(
            f"{_label(art)}: the lock pins no build dependencies for {target.platform}, so it "
            "cannot be built offline",
            hint="run `envlock lock` (envlock pins each sdist's build dependencies)",
        )
    with store.lock("build-" + art.sha256):
        found = built_wheel(store, art.sha256, target)
        if found is not None:
            return found
        wheel, name = _build(store, art, sdist, target, packages)
        directory.mkdir(parents=True, exist_ok=True)
        os.replace(wheel, directory / name)
    found = built_wheel(store, art.sha256, target)
    if found is None:
        raise foreign_native(art, target, name)
    return found


def foreign_native(art: Artifact, target: Target, wheel: str) -> BuildError:
    """A platform-specific wheel built here cannot serve ``target``: say where to build it."""
    p = target.platform
    return BuildError(
        f"{_label(art)} builds a platform-specific wheel ({wheel}) on this {host_platform()} "
        f"host, which cannot serve {p}: it must be built on a {p} machine",
        hint=f"run `envlock fetch --platform {p}` on a {p} machine, then `envlock push`: the "
        "snapshot carries built wheels, so the fleet (`--from-snapshot`) never builds",
    )


def _label(art: Artifact) -> str:
    return f"{art.name} {art.version} ({art.filename})"


def cached_files(store: ArtifactStore, files: Sequence[BuildFile]) -> list[tuple[BuildFile, Path]]:
    """Each build package's wheel in the cache (intact); a missing one is an error."""
    out, missing = [], []
    for f in files:
        path = store.intact(f.sha256, f.name, f.size)
        if path is None:
            missing.append(f.name)
        else:
            out.append((f, path))
    if missing:
        raise MissingArtifactsError(
            f"build packages are not in the cache: {', '.join(missing)}",
            hint="run `envlock fetch` (builds never use the network)",
        )
    return out


def _build(
    store: ArtifactStore,
    art: Artifact,
    sdist: Path,
    target: Target,
    packages: Sequence[BuildFile],
) -> tuple[Path, str]:
    """The built wheel (a scratch file of the cache) and its file name."""
    # The build frontend is needed only here: keep it off the import path of materialize.
    from envlock.builds.environment import (
        build_environment,
        build_python,
        call_hook,
        check_installable,
        hooks,
    )
    from envlock.builds.requires import read_build_system
    from envlock.core_metadata import MetadataError
    from envlock.index.sdist import unpack_sdist

    label = _label(art)
    work = store.scratch_dir("build-" + art.sha256)  # the caller holds that lock
    try:
        source = unpack_sdist(sdist.read_bytes(), art.filename, work / "src")
        system = read_build_system(source, label)
        python = build_python(target)
        check_installable(packages, python, label)
        files = cached_files(store, packages)
        dist = work / "dist"
        dist.mkdir()
        with build_environment(store, files, python, work) as env_python:
            caller = hooks(source, system, env_python)
            built_name = call_hook(label, "build_wheel", lambda: caller.build_wheel(str(dist)))
        built = dist / built_name
        if "/" in built_name or not built.is_file() or not built_name.endswith(".whl"):
            raise BuildError(f"{label}: the backend reported {built_name!r}, not a wheel it built")
        try:
            name, version, _, _ = parse_wheel_filename(built.name)
        except InvalidWheelFilename:
            raise BuildError(f"{label}: the backend built {built.name!r}, not a wheel") from None
        if name != art.name or str(version) != str(art.version):
            raise BuildError(f"{art.filename} built {built.name}, not {art.name} {art.version}")
        final = store.scratch_file("build-" + art.sha256, ".whl")
        os.replace(built, final)
        return final, built.name
    except MetadataError as exc:
        raise BuildError(str(exc)) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
