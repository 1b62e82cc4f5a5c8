"""Real requirement sets that need sdists, locked against the real PyPI by default and compared
with what ``uv pip compile`` pins for the same platform (marked ``network``)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from integration.helpers import envlock, load_lock, selected

pytestmark = pytest.mark.network

CUTOFF = "2025-06-01T00:00:00Z"
UV_PLATFORM = "x86_64-manylinux_2_28"  # envlock's linux-64: glibc 2.28 floor


def _uv_pins(tmp_path: Path, requirements: list[str]) -> dict[str, str]:
    from uv import find_uv_bin

    (tmp_path / "requirements.in").write_text("\n".join(requirements) + "\n")
    proc = subprocess.run(
        [
            find_uv_bin(),
            "pip",
            "compile",
            "requirements.in",
            "--python-platform",
            UV_PLATFORM,
            "--python-version",
            "3.11",
            "--exclude-newer",
            CUTOFF,
            "--no-header",
            "--no-annotate",
            "--quiet",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_NO_CONFIG": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    pins = {}
    for line in proc.stdout.splitlines():
        m = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line.strip())
        if m:
            pins[str(canonicalize_name(m.group(1)))] = m.group(2)
    return pins


@pytest.mark.parametrize(
    ("requirements", "from_source"),
    [
        # pendulum 2.1.2 has wheels for CPython <= 3.9 only; 0.4 (2016) has a universal wheel.
        (["pendulum<3.0"], {"pendulum"}),
        # Source-only releases, as deep dependencies and at the top.
        (["promise==2.3", "htmlmin==0.1.12", "python-nvd3==0.16.0"], {"promise", "htmlmin"}),
    ],
)
def test_sdist_requirement_sets_lock_like_uv(
    tmp_path: Path, requirements: list[str], from_source: set[str]
) -> None:
    deps = ", ".join(f'"{r}"' for r in requirements)
    (tmp_path / "envlock.toml").write_text(
        'python = "3.11"\ninterpreter = "system"\nplatforms = ["linux-64"]\n'
        f'dependencies = [{deps}]\nexclude-newer = "{CUTOFF}"\n'
    )
    r = envlock(tmp_path, "lock")
    assert r.code == 0, r.stderr
    ours = selected(tmp_path / "pylock.toml", "linux-64")
    assert ours == _uv_pins(tmp_path, requirements)
    sdists = {p["name"] for p in load_lock(tmp_path / "pylock.toml")["packages"] if "sdist" in p}
    assert from_source <= sdists
    if "pendulum" in from_source:
        assert ours["pendulum"] == "2.1.2"
        assert "pendulum 2.1.2 (linux-64): its Linux x86_64 wheels are for" in r.stderr
