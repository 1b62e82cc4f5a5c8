"""Fixtures shared by the integration tests: a project directory and the test's cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project directory (where envlock.toml and the locks go)."""
    d = tmp_path / "proj"
    d.mkdir()
    return d


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """The cache directory the autouse fixture points ENVLOCK_CACHE_DIR at."""
    return tmp_path / "cache"
