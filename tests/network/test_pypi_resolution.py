"""Real-world resolutions against the real PyPI, checked against uv (marked ``network``).

Each case locks with a fixed ``exclude-newer`` and compares every platform's pins with
``uv pip compile --python-platform …`` for the same cutoff.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from integration.helpers import envlock, selected

pytestmark = pytest.mark.network

UV_PLATFORMS = {
    "linux-64": "x86_64-manylinux_2_28",
    "osx-arm64": "aarch64-apple-darwin",
    "win-64": "x86_64-pc-windows-msvc",
}
ML = [
    "torch",
    "torchvision",
    "tensorflow",
    "catboost",
    "xgboost",
    "lightgbm",
    "jax",
    "pandas",
    "scikit-learn",
    "jupyterlab",
]


def uv_pins(
    tmp: Path, requirements: list[str], platform: str, exclude_newer: str
) -> dict[str, str]:
    """What ``uv pip compile`` pins for one platform (its own cache, no user config)."""
    (tmp / "req.in").write_text("".join(f"{r}\n" for r in requirements))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))},
        "UV_NO_CONFIG": "1",
        "UV_CACHE_DIR": str(tmp / "uv-cache"),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "uv",
            "pip",
            "compile",
            str(tmp / "req.in"),
            "--python-version",
            "3.11",
            "--python-platform",
            UV_PLATFORMS[platform],
            "--exclude-newer",
            exclude_newer,
            "--no-header",
            "--no-annotate",
            "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    pins = {}
    for line in proc.stdout.splitlines():
        if "==" in line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name.strip())] = version.split(";")[0].strip()
    return pins


def _lock(tmp: Path, requirements: list[str], platforms: list[str], exclude_newer: str):  # type: ignore[no-untyped-def]
    quoted = ", ".join(f'"{r}"' for r in requirements)
    plats = ", ".join(f'"{p}"' for p in platforms)
    (tmp / "envlock.toml").write_text(
        f'python = "3.11"\ninterpreter = "system"\nplatforms = [{plats}]\n'
        f"dependencies = [{quoted}]\n"
        f'exclude-newer = "{exclude_newer}"\n'
    )
    return envlock(tmp, "lock")


def _assert_same_as_uv(
    tmp: Path, requirements: list[str], platforms: list[str], cutoff: str
) -> None:
    for platform in platforms:
        ours = selected(tmp / "pylock.toml", platform)
        theirs = uv_pins(tmp, requirements, platform, cutoff)
        assert ours == theirs, (
            platform,
            {
                k: (ours.get(k), theirs.get(k))
                for k in set(ours) | set(theirs)
                if ours.get(k) != theirs.get(k)
            },
        )


def test_ml_stack_locks_with_default_settings_like_uv(tmp_path: Path) -> None:
    cutoff = "2026-11-01T00:00:00Z"
    platforms = ["linux-64", "osx-arm64", "win-64"]
    r = _lock(tmp_path, ML, platforms, cutoff)
    assert r.code == 0, r.stderr
    _assert_same_as_uv(tmp_path, ML, platforms, cutoff)
    # torch has no macOS 13 wheel for its newest releases: the summary says so.
    assert "versions that differ between platforms" in r.stderr
    assert "osx-arm64: torch" in r.stderr and "need macOS 14.0 (the floor is 13.0)" in r.stderr


def test_unsatisfiable_real_spec_is_explained_within_seconds(tmp_path: Path) -> None:
    started = time.monotonic()
    r = _lock(tmp_path, ["httpx>=0.27", "h11<0.10"], ["linux-64"], "2025-06-01T00:00:00Z")
    assert time.monotonic() - started < 10
    assert r.code == 1
    lines = r.stderr.splitlines()
    assert "error: cannot resolve for linux-64 / cp311:" in lines
    assert "  the spec requires httpx>=0.27" in lines
    assert "  httpx 0.27.0 … 0.28.1 require httpcore==1.*" in lines
    assert "  but the spec requires h11<0.10" in lines
    assert any(line.startswith("  httpcore 1.0.9 requires h11>=0.16") for line in lines)
    assert "gave up" not in r.stderr and not (tmp_path / "pylock.toml").exists()


@pytest.mark.parametrize(
    "requirements",
    [["boto3", "aiobotocore"], ["boto3", "aiobotocore==2.5.0"], ["tensorflow<2.16", "numpy>=2"]],
    ids=["boto3-aiobotocore", "boto3-old-aiobotocore", "old-tensorflow-new-numpy"],
)
def test_hard_backtracking_cases_match_uv(tmp_path: Path, requirements: list[str]) -> None:
    cutoff = "2025-06-01T00:00:00Z"
    r = _lock(tmp_path, requirements, ["linux-64"], cutoff)
    assert r.code == 0, r.stderr
    _assert_same_as_uv(tmp_path, requirements, ["linux-64"], cutoff)
