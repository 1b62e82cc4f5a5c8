"""An sdist's metadata from a static pyproject.toml [project] table, without its backend."""

from __future__ import annotations

import io
import tarfile

from envlock.core_metadata import parse_metadata
from envlock.index.sdist import sdist_metadata
from envlock.index.static_metadata import metadata_from_pyproject

STATIC = b"""
[build-system]
requires = ["no-such-backend-anywhere"]
build-backend = "no_such_backend"

[project]
name = "Demo_Pkg"
version = "2.0.8"
requires-python = ">=3.9"
license = "Apache-2.0"
dependencies = ["attrs>=22", "tomli; python_version < '3.11'"]
classifiers = ["Programming Language :: Python :: 3"]

[project.optional-dependencies]
Fast = ["orjson", "uvloop; sys_platform != 'win32'"]
"""


def _sdist(pkg_info: bytes, pyproject: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("PKG-INFO", pkg_info), ("pyproject.toml", pyproject)):
            info = tarfile.TarInfo(f"demo_pkg-2.0.8/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_a_static_project_table_is_the_metadata() -> None:
    raw = metadata_from_pyproject(STATIC)
    assert raw is not None
    meta = parse_metadata(raw)
    assert (str(meta.name), str(meta.version)) == ("demo-pkg", "2.0.8")
    assert str(meta.requires_python) == ">=3.9"
    deps = sorted(str(r) for r in meta.requires_dist)
    assert deps == [
        "attrs>=22",
        'orjson; extra == "fast"',
        'tomli; python_version < "3.11"',
        'uvloop; sys_platform != "win32" and extra == "fast"',
    ]
    assert b"License-Expression: Apache-2.0" in raw


def test_a_dynamic_or_broken_table_leaves_it_to_the_backend() -> None:
    dynamic = STATIC.replace(b'version = "2.0.8"', b'dynamic = ["dependencies"]\nversion = "1"')
    assert metadata_from_pyproject(dynamic) is None
    assert metadata_from_pyproject(STATIC.replace(b'version = "2.0.8"', b"")) is None
    assert metadata_from_pyproject(b"[tool.other]\nx = 1\n") is None
    assert metadata_from_pyproject(b"not toml [") is None
    assert metadata_from_pyproject(STATIC.replace(b'"attrs>=22"', b'"attrs >=>= 2"')) is None
    assert metadata_from_pyproject(STATIC.replace(b'"attrs>=22"', b'"attrs\\nX: y"')) is None


def test_an_old_pkg_info_with_a_static_pyproject_needs_no_build() -> None:
    """Metadata-Version 2.1 says nothing of what is static (dbt-core-experimental-parser's
    backend downloads a wheel from GitHub): the [project] table decides, as for uv. The backend
    named here does not exist, so building would fail."""
    pkg_info = b"Metadata-Version: 2.1\nName: demo-pkg\nVersion: 2.0.8\n"
    raw = sdist_metadata(_sdist(pkg_info, STATIC), "demo_pkg-2.0.8.tar.gz", [])
    assert next(str(r) for r in parse_metadata(raw).requires_dist) == "attrs>=22"
