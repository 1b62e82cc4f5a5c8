"""Metadata of a source distribution: static PKG-INFO (PEP 643) or the package's own backend.

The backend runs in an isolated build environment (PyPA ``build``) whose build requirements
come from the same indexes as the lock.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import threading
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pyproject_hooks
from build import ProjectBuilder
from build.env import DefaultIsolatedEnv
from packaging.version import Version

from envlock.cache.tarsafe import TarRules
from envlock.core_metadata import CoreMetadata, MetadataError, parse_metadata
from envlock.index.static_metadata import metadata_from_pyproject

# Fields a resolver needs; if the backend may compute them, PKG-INFO cannot be trusted.
_NEEDED = {"requires-dist", "requires-python", "provides-extra"}
_ENV_LOCK = threading.Lock()
# What an sdist may hold: a source tree, never more than the biggest real ones (a few hundred
# MiB, tens of thousands of files) by far.
SDIST_RULES = TarRules("source distribution", max_members=500_000, max_total=8 << 30)


# The largest top-level file of an sdist read into memory (PKG-INFO, pyproject.toml).
_MAX_TOP_FILE = 16 << 20


def read_top_file(data: bytes, filename: str, name: str) -> bytes | None:
    """The file ``name`` in the top directory of an sdist archive, None when absent."""
    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for info in zf.infolist():
                    if info.filename.count("/") == 1 and info.filename.endswith("/" + name):
                        if info.file_size > _MAX_TOP_FILE:
                            break
                        return zf.read(info)
        else:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
                for member in tf:
                    if member.name.count("/") == 1 and member.name.endswith("/" + name):
                        extracted = tf.extractfile(member) if member.isfile() else None
                        if extracted is None or member.size > _MAX_TOP_FILE:
                            break
                        return extracted.read()
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise MetadataError(f"{filename} is not a readable sdist: {exc}") from None
    return None


def read_pkg_info(data: bytes, filename: str) -> bytes:
    """The top-level PKG-INFO of an sdist archive."""
    found = read_top_file(data, filename, "PKG-INFO")
    if found is None:
        raise MetadataError(f"{filename} has no PKG-INFO")
    return found


def is_static(meta: CoreMetadata) -> bool:
    """PEP 643: metadata 2.2+ whose dependency fields are not marked Dynamic."""
    try:
        version = Version(meta.metadata_version)
    except ValueError:
        return False
    return version >= Version("2.2") and not (meta.dynamic & _NEEDED)


def sdist_metadata(data: bytes, filename: str, index_urls: Sequence[str]) -> bytes:
    """METADATA bytes for an sdist: PKG-INFO when static (PEP 643), else a static
    ``[project]`` table of its pyproject.toml (as uv reads it), else built by its backend."""
    pkg_info = read_pkg_info(data, filename)
    try:
        if is_static(parse_metadata(pkg_info)):
            return pkg_info
    except MetadataError:
        pass
    pyproject = read_top_file(data, filename, "pyproject.toml")
    static = metadata_from_pyproject(pyproject) if pyproject is not None else None
    if static is not None:
        return static
    return build_metadata(data, filename, index_urls)


def build_metadata(data: bytes, filename: str, index_urls: Sequence[str]) -> bytes:
    """Ask the sdist's own PEP 517 backend for its metadata, in an isolated environment."""
    with tempfile.TemporaryDirectory(prefix="envlock-sdist-") as tmp:
        source = unpack_sdist(data, filename, Path(tmp))
        with isolated_builder(source, index_urls, filename) as builder:
            try:
                path = Path(builder.metadata_path(Path(tmp) / "metadata"))
            except Exception as exc:  # foreign code: any failure is the backend's
                raise MetadataError(
                    f"building metadata of {filename} failed: {_last_line(exc)}"
                ) from None
            return (path / "METADATA").read_bytes()


def unpack_sdist(data: bytes, filename: str, dest: Path) -> Path:
    """Unpack an sdist safely into ``dest`` (made if absent); returns its single top-level
    directory."""
    dest.mkdir(parents=True, exist_ok=True)
    _extract(data, filename, dest)
    dirs = [p for p in dest.iterdir() if p.is_dir()]
    if len(dirs) != 1:
        raise MetadataError(f"{filename} does not unpack to one directory")
    return dirs[0]


@contextmanager
def isolated_builder(
    source: Path, index_urls: Sequence[str], filename: str
) -> Iterator[ProjectBuilder]:
    """A PEP 517 builder in a fresh isolated environment with its build requirements."""
    # Backends' warnings (deprecations and the like) are the package's business, not our output.
    with _index_env(index_urls), warnings.catch_warnings(), DefaultIsolatedEnv() as env:
        warnings.simplefilter("ignore")
        try:
            builder = ProjectBuilder.from_isolated_env(
                env, source, runner=pyproject_hooks.quiet_subprocess_runner
            )
            env.install(builder.build_system_requires)
            env.install(builder.get_requires_for_build("wheel"))
        except Exception as exc:  # pip or the backend failed: report, don't crash
            raise MetadataError(
                f"setting up the build of {filename} failed: {_last_line(exc)}"
            ) from None
        yield builder


def _last_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # build's BuildBackendException wraps the runner's CalledProcessError, whose output holds
    # the backend's own last words.
    for source in (exc, getattr(exc, "exception", None)):
        for attr in ("stderr", "output"):
            extra = getattr(source, attr, None)
            if isinstance(extra, bytes):
                extra = extra.decode(errors="replace")
            if isinstance(extra, str) and extra.strip():
                text = extra.strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


def _extract(data: bytes, filename: str, dest: Path) -> None:
    if filename.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in zf.namelist():
                target = (dest / name).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise MetadataError(f"{filename} has an unsafe path {name!r}")
            zf.extractall(dest)
        return
    # The one tar unpacker, whose rules hold on every Python (tarfile's data filter alone lets
    # the CVE-2025-4517 layout through on 3.10-3.12 before their 2025 fixes).
    from envlock.cache.tarsafe import unpack_tar

    unpack_tar(io.BytesIO(data), dest, filename, SDIST_RULES)


class _index_env:
    """Point pip (used by ``build`` for build requirements) at the lock's indexes."""

    def __init__(self, index_urls: Sequence[str]) -> None:
        self._urls = list(index_urls)
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        _ENV_LOCK.acquire()
        for key, value in (
            ("PIP_INDEX_URL", self._urls[0] if self._urls else None),
            ("PIP_EXTRA_INDEX_URL", " ".join(self._urls[1:]) or None),
            ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
        ):
            self._saved[key] = os.environ.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def __exit__(self, *exc: object) -> None:
        try:
            for key, value in self._saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        finally:
            _ENV_LOCK.release()
