"""Build real, deterministic wheels and PEP 517 sdists at test time.

Everything here is standard library (plus ``packaging``) and byte-for-byte deterministic:
the same :class:`Dist` always yields the same archive bytes, hence the same sha256.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import re
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.tags import parse_tag
from packaging.version import InvalidVersion, Version

__all__ = [
    "Dist",
    "build",
    "build_sdist",
    "build_wheel",
    "metadata_bytes",
    "normalize_dist_name",
    "record_hash",
]

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
GENERATOR = "envlock-tests"


def normalize_dist_name(name: str) -> str:
    """Filename form of a project name: ``Foo.Bar-baz`` -> ``foo_bar_baz``."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _normalize_version(version: str) -> str:
    try:
        return str(Version(version))
    except InvalidVersion:  # tests may deliberately publish junk versions
        return version


def record_hash(data: bytes) -> str:
    """RECORD-style hash: ``sha256=<urlsafe b64, no padding>``."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


@dataclass
class Dist:
    """Description of one distribution file to build and publish."""

    name: str
    version: str
    requires: list[str] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)
    requires_python: str | None = None
    tag: str = "py3-none-any"
    kind: str = "wheel"
    files: dict[str, bytes] | None = None
    console_scripts: dict[str, str] = field(default_factory=dict)
    yanked: bool | str = False
    upload_time: str | None = "2024-01-01T00:00:00Z"
    sdist_dynamic: bool = False
    # More core-metadata lines, e.g. "License-Expression: MIT" or a classifier.
    metadata: list[str] = field(default_factory=list)
    # An sdist's own pyproject.toml (its [build-system] names a backend from the index) instead
    # of the generated in-tree backend.
    pyproject: bytes | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("wheel", "sdist"):
            raise ValueError(f"Dist.kind must be 'wheel' or 'sdist', not {self.kind!r}")

    @property
    def import_name(self) -> str:
        return normalize_dist_name(self.name)

    @property
    def stem(self) -> str:
        """``foo_bar-1.0``: the ``{name}-{version}`` prefix shared by all file names."""
        return f"{normalize_dist_name(self.name)}-{_normalize_version(self.version)}"

    @property
    def dist_info(self) -> str:
        return f"{self.stem}.dist-info"

    @property
    def filename(self) -> str:
        if self.kind == "sdist":
            return f"{self.stem}.tar.gz"
        return f"{self.stem}-{self.tag}.whl"

    def package_files(self) -> dict[str, bytes]:
        """Default package files merged with :attr:`files` (which win)."""
        merged = {f"{self.import_name}/__init__.py": f"__version__ = {self.version!r}\n".encode()}
        merged.update(self.files or {})
        return merged


def _metadata_text(dist: Dist, metadata_version: str) -> str:
    lines = [
        f"Metadata-Version: {metadata_version}",
        f"Name: {dist.name}",
        f"Version: {dist.version}",
        f"Summary: Test distribution {dist.name}",
    ]
    if dist.requires_python is not None:
        lines.append(f"Requires-Python: {dist.requires_python}")
    lines += [f"Provides-Extra: {extra}" for extra in dist.extras]
    lines += [f"Requires-Dist: {req}" for req in dist.requires]
    lines += dist.metadata
    return "\n".join(lines) + "\n"


def metadata_bytes(dist: Dist) -> bytes:
    """The core metadata (``METADATA``, Metadata-Version 2.1) put in the wheel."""
    return _metadata_text(dist, "2.1").encode("utf-8")


def _pkg_info_bytes(dist: Dist) -> bytes:
    """sdist ``PKG-INFO``: 2.2 (static, trustworthy) unless ``sdist_dynamic``."""
    return _metadata_text(dist, "2.1" if dist.sdist_dynamic else "2.2").encode("utf-8")


def _wheel_file(tag: str) -> bytes:
    tags = sorted({str(t) for t in parse_tag(tag)})
    purelib = all(t.platform == "any" for t in parse_tag(tag))
    lines = [
        "Wheel-Version: 1.0",
        f"Generator: {GENERATOR}",
        f"Root-Is-Purelib: {'true' if purelib else 'false'}",
        *(f"Tag: {t}" for t in tags),
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


def _entry_points(console_scripts: dict[str, str]) -> bytes:
    if not console_scripts:
        return b""
    lines = ["[console_scripts]", *(f"{k} = {v}" for k, v in sorted(console_scripts.items()))]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _write_wheel_zip(path: Path, files: dict[str, bytes], dist_info: str) -> None:
    """Write files plus a computed RECORD (unless one is supplied) deterministically."""
    record_path = f"{dist_info}/RECORD"
    body = {k: v for k, v in files.items() if k != record_path}
    if record_path in files:
        record = files[record_path]
    else:
        lines = [f"{p},{record_hash(d)},{len(d)}" for p, d in sorted(body.items())]
        lines.append(f"{record_path},,")
        record = ("\n".join(lines) + "\n").encode("utf-8")
    entries = [*sorted(body.items()), (record_path, record)]
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, data)


def _dist_info_files(dist: Dist, tag: str) -> dict[str, bytes]:
    files = {
        f"{dist.dist_info}/METADATA": metadata_bytes(dist),
        f"{dist.dist_info}/WHEEL": _wheel_file(tag),
    }
    if dist.console_scripts:
        files[f"{dist.dist_info}/entry_points.txt"] = _entry_points(dist.console_scripts)
    return files


def build_wheel(dist: Dist, dest: Path) -> Path:
    """Build ``dist`` as a wheel into directory ``dest``; returns the wheel path.

    Entries of ``dist.files`` under the ``.dist-info`` directory override the generated
    ones (``METADATA``, ``WHEEL``, ``entry_points.txt``, even ``RECORD``), so tests can
    publish deliberately broken wheels.
    """
    dest.mkdir(parents=True, exist_ok=True)
    files = {**_dist_info_files(dist, dist.tag), **dist.package_files()}
    path = dest / f"{dist.stem}-{dist.tag}.whl"
    _write_wheel_zip(path, files, dist.dist_info)
    return path


_BACKEND_TEMPLATE = '''\
"""Tiny in-tree PEP 517 backend (generated by envlock's test suite; stdlib only)."""

import base64
import gzip
import hashlib
import io
import os
import tarfile
import zipfile

STEM = {stem!r}
DIST_INFO = STEM + ".dist-info"
METADATA = {metadata!r}
WHEEL = {wheel!r}
ENTRY_POINTS = {entry_points!r}
PACKAGE_FILES = {package_files!r}
SDIST_FILES = ["PKG-INFO", "pyproject.toml", "tiny_backend.py", *PACKAGE_FILES]


def _dist_info():
    files = {{DIST_INFO + "/METADATA": METADATA, DIST_INFO + "/WHEEL": WHEEL}}
    if ENTRY_POINTS:
        files[DIST_INFO + "/entry_points.txt"] = ENTRY_POINTS
    return files


def _read(rel):
    with open(os.path.join(*rel.split("/")), "rb") as f:
        return f.read()


def _hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    target = os.path.join(metadata_directory, DIST_INFO)
    os.makedirs(target, exist_ok=True)
    for name, data in _dist_info().items():
        with open(os.path.join(target, name.rsplit("/", 1)[1]), "wb") as f:
            f.write(data)
    return DIST_INFO


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    body = {{rel: _read(rel) for rel in PACKAGE_FILES}}
    body.update(_dist_info())
    record_path = DIST_INFO + "/RECORD"
    lines = [f"{{p}},{{_hash(d)}},{{len(d)}}" for p, d in sorted(body.items())]
    lines.append(record_path + ",,")
    entries = [*sorted(body.items()), (record_path, ("\\n".join(lines) + "\\n").encode())]
    filename = STEM + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, data)
    return filename


def build_sdist(sdist_directory, config_settings=None):
    filename = STEM + ".tar.gz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for rel in sorted(SDIST_FILES):
            data = _read(rel)
            info = tarfile.TarInfo(STEM + "/" + rel)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    with open(os.path.join(sdist_directory, filename), "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(buf.getvalue())
    return filename
'''

_PYPROJECT = b"""\
[build-system]
requires = []
build-backend = "tiny_backend"
backend-path = ["."]
"""


def _backend_source(dist: Dist, package_files: list[str]) -> bytes:
    generated = _dist_info_files(dist, "py3-none-any")
    return _BACKEND_TEMPLATE.format(
        stem=dist.stem,
        metadata=generated[f"{dist.dist_info}/METADATA"],
        wheel=generated[f"{dist.dist_info}/WHEEL"],
        entry_points=generated.get(f"{dist.dist_info}/entry_points.txt", b""),
        package_files=package_files,
    ).encode("utf-8")


def _write_tar_gz(path: Path, files: dict[str, bytes]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tf.addfile(info, io.BytesIO(data))
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buf.getvalue())


def build_sdist(dist: Dist, dest: Path) -> Path:
    """Build ``dist`` as a PEP 517 sdist (with an in-tree stdlib-only backend) into ``dest``.

    The backend builds a ``py3-none-any`` wheel byte-identical to
    ``build_wheel(replace(dist, tag="py3-none-any", kind="wheel"), ...)`` (``.dist-info``
    overrides in ``dist.files`` are not carried into the sdist).
    """
    dest.mkdir(parents=True, exist_ok=True)
    package = {
        k: v for k, v in dist.package_files().items() if not k.startswith(f"{dist.dist_info}/")
    }
    members = {
        "PKG-INFO": _pkg_info_bytes(dist),
        "pyproject.toml": _PYPROJECT,
        "tiny_backend.py": _backend_source(dist, sorted(package)),
        **package,
    }
    if dist.pyproject is not None:
        del members["tiny_backend.py"]
        members["pyproject.toml"] = dist.pyproject
    path = dest / f"{dist.stem}.tar.gz"
    _write_tar_gz(path, {f"{dist.stem}/{k}": v for k, v in members.items()})
    return path


def build(dist: Dist, dest: Path) -> Path:
    """Build according to ``dist.kind``."""
    return build_sdist(dist, dest) if dist.kind == "sdist" else build_wheel(dist, dest)
