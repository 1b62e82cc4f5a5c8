"""Shared fixtures: a live local package index and an isolated environment per test."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:  # make `from support.wheels import Dist` work in any import mode
    sys.path.insert(0, _TESTS)

from support.index import IndexServer  # noqa: E402
from support.wheels import Dist  # noqa: E402

IndexFactory = Callable[..., IndexServer]


@pytest.fixture
def index(tmp_path: Path) -> Iterator[IndexFactory]:
    """Factory: ``index(dists, **opts) -> IndexServer`` (started; stopped at teardown)."""
    servers: list[IndexServer] = []

    def make(dists: Iterable[Dist] = (), **opts: Any) -> IndexServer:
        opts.setdefault("workdir", tmp_path / f"index-{len(servers)}")
        server = IndexServer(dists, **opts)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's cache, index settings, ~/.netrc and XDG dirs out of tests."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "cache"))
    # No periodic status lines in a slow CI run: tests compare stderr line by line.
    monkeypatch.setenv("ENVLOCK_PROGRESS_INTERVAL", "0")
    monkeypatch.delenv("ENVLOCK_INDEX_URL", raising=False)
    monkeypatch.delenv("ENVLOCK_PYTHON_MIRROR", raising=False)
    monkeypatch.delenv("ENVLOCK_OSV_URL", raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    for var in ("NETRC", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(var, raising=False)
    # Object storage: only what a test gives (support.s3's bucket.env). A developer's AWS_*,
    # GOOGLE_* or AZURE_* credentials stay out, and no test can walk the AWS credential chain
    # to the cloud's instance metadata service (envlock refuses with this set).
    for var in list(os.environ):
        if var.startswith(("AWS_", "GOOGLE_", "AZURE_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
