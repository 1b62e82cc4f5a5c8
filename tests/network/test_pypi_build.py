"""Build and run real environments from the real PyPI (marked ``network``; runs in CI)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from integration.helpers import envlock

pytestmark = pytest.mark.network


def run(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=120
    )


def test_build_requests_rich_numpy_for_the_host_and_run_them(tmp_path: Path) -> None:
    (tmp_path / "envlock.toml").write_text(
        'python = "3.11"\ninterpreter = "system"\nplatforms = ["linux-64"]\n'
        'dependencies = ["requests", "rich", "numpy"]\n'
        'exclude-newer = "2025-06-01T00:00:00Z"\n'
    )
    r = envlock(tmp_path, "lock")
    assert r.code == 0, r.stderr
    r = envlock(tmp_path, "build")
    assert r.code == 0, r.stderr
    env = tmp_path / ".envlock" / "envs" / "default-linux-64"
    r = run(
        env / "bin" / "python", "-c", "import requests, rich, numpy; print(numpy.arange(3).sum())"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "3\n"
    r = envlock(tmp_path, "verify", str(env))
    assert r.code == 0, r.stdout
    # rich's and requests' own console entry points are not needed; numpy's f2py is one.
    r = run(env / "bin" / "f2py", "-v")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()


def test_real_source_only_release_is_built_at_fetch_and_installed(tmp_path: Path) -> None:
    # fancyimpute 0.7.0 and its dependency knnimpute 0.1.0 are published as sdists only: both
    # are built into wheels at fetch time, in isolated build environments fed from PyPI.
    (tmp_path / "envlock.toml").write_text(
        'python = "3.11"\ninterpreter = "system"\nplatforms = ["linux-64"]\n'
        'dependencies = ["fancyimpute==0.7.0"]\nallow-sdist = ["fancyimpute", "knnimpute"]\n'
        'exclude-newer = "2025-06-01T00:00:00Z"\n'
    )
    assert envlock(tmp_path, "lock").code == 0
    r = envlock(tmp_path, "fetch")
    assert r.code == 0, r.stderr
    cache = Path(os.environ["ENVLOCK_CACHE_DIR"])
    built = sorted(p.name for p in (cache / "built").rglob("*.whl"))
    assert [n.split("-")[0] for n in built] == ["fancyimpute", "knnimpute"]
    out = tmp_path / "env"
    r = envlock(tmp_path, "materialize", "--platform", "linux-64", "--output", str(out))
    assert r.code == 0, r.stderr
    r = run(
        out / "bin" / "python",
        "-c",
        "import fancyimpute, knnimpute; from fancyimpute import SimpleFill; print('ok')",
    )
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr
    assert envlock(tmp_path, "verify", str(out)).code == 0
