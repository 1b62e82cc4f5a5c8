"""``envlock export`` end to end: a lock made against the loopback index, exported, then installed
by the real pip (``--require-hashes --no-deps``) and the real uv (PEP 751) into fresh venvs."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from envlock.platforms import host_platform
from integration.helpers import envlock, write_spec
from support.wheels import Dist

PY = f"{sys.version_info[0]}{sys.version_info[1]}"
PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
HOST = host_platform()
HOST_TAG = f"cp{PY}-cp{PY}-manylinux_2_17_{platform.machine()}"
WIN_TAG = f"cp{PY}-cp{PY}-win_amd64"
UV = Path(sys.executable).parent / "uv"

pytestmark = pytest.mark.skipif(not HOST.startswith("linux"), reason="installs linux wheels")


def _dists() -> list[Dist]:
    return [
        Dist("app", "1.0", requires=["lib>=1", 'winonly; sys_platform == "win32"']),
        Dist("lib", "2.0", tag=HOST_TAG),
        Dist("lib", "2.0", tag=WIN_TAG),
        Dist("lib", "1.0"),
        Dist("winonly", "0.2"),
    ]


@pytest.fixture
def locked(index, project):
    """A project locked for the host and win-64; lib 3.0 is published after the lock."""
    server = index(_dists())
    write_spec(
        project,
        server.url,
        f"""
        python = "{PYTHON}"
        platforms = ["{HOST}", "win-64"]
        dependencies = ["app"]
        """,
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    server.add(Dist("lib", "3.0"))  # pip must still install exactly the locked 2.0
    return server


def _venv(where: Path, pip: bool = True) -> Path:
    args = [sys.executable, "-m", "venv", str(where)] + ([] if pip else ["--without-pip"])
    subprocess.run(args, check=True, capture_output=True)
    return where / "bin" / "python"


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "VIRTUAL_"))}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "UV_NO_CONFIG": "1"}


def _installed(python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json;"
        "print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))"
    )
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True)
    found: dict[str, str] = json.loads(out.stdout)
    return {n: v for n, v in found.items() if n not in ("pip", "setuptools")}


def _pip_install(
    python: Path, requirements: Path, index_url: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--require-hashes",
            "--no-deps",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--index-url",
            index_url,
            "-r",
            str(requirements),
        ],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=240,
    )


def test_requirements_install_exactly_the_lock_with_real_pip(locked, project, tmp_path):
    r = envlock(project, "export", "-o", "requirements.txt")
    assert r.code == 0, r.stderr
    text = (project / "requirements.txt").read_text()
    assert f"--index-url {locked.url}" in text.splitlines()
    assert "winonly" not in text  # a win-64 package: not on this platform
    python = _venv(tmp_path / "venv")
    done = _pip_install(python, project / "requirements.txt", locked.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _installed(python) == {"app": "1.0", "lib": "2.0"}


def test_a_tampered_hash_makes_pip_refuse(locked, project, tmp_path):
    r = envlock(project, "export")
    assert r.code == 0, r.stderr
    good = locked.sha256(f"lib-2.0-{HOST_TAG}.whl")
    assert f"--hash=sha256:{good}" in r.stdout
    tampered = project / "tampered.txt"
    tampered.write_text(r.stdout.replace(good, "0" * 64))
    python = _venv(tmp_path / "venv")
    done = _pip_install(python, tampered, locked.url)
    assert done.returncode != 0
    assert "DO NOT MATCH THE HASHES" in done.stdout + done.stderr
    assert "lib" not in _installed(python)


def test_foreign_platform_export_pins_its_own_files(locked, project):
    r = envlock(project, "export", "--platform", "win-64")
    assert r.code == 0, r.stderr
    assert f"for win-64 (Python {PYTHON})" in r.stdout
    assert f"--hash=sha256:{locked.sha256(f'lib-2.0-{WIN_TAG}.whl')}" in r.stdout
    assert "winonly==0.2 \\" in r.stdout


@pytest.mark.skipif(not UV.exists(), reason="uv is not in the dev venv")
@pytest.mark.parametrize("cut", [False, True])
def test_pylock_installs_the_host_platform_with_real_uv(locked, project, tmp_path, cut):
    out = project / "exported" / ("pylock.host.toml" if cut else "pylock.toml")
    args = ["export", "--format", "pylock", "-o", str(out)]
    r = envlock(project, *args, *(["--platform", HOST] if cut else []))
    assert r.code == 0, r.stderr
    if not cut:
        assert out.read_bytes() == (project / "pylock.toml").read_bytes()
    else:
        assert "win_amd64" not in out.read_text()
    python = _venv(tmp_path / "venv", pip=False)
    done = subprocess.run(
        [str(UV), "pip", "install", "--python", str(python), "--no-cache", "-r", str(out)],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert _installed(python) == {"app": "1.0", "lib": "2.0"}


def test_export_refuses_to_write_over_a_lock_or_a_non_pep751_name(locked, project):
    before = (project / "pylock.toml").read_bytes()
    r = envlock(project, "export", "-o", "pylock.toml")
    assert r.code == 2
    assert "that is a lock of this spec" in r.stderr
    r = envlock(project, "export", "--format", "pylock", "-o", "host.toml")
    assert r.code == 2
    assert "pylock.toml or pylock.<name>.toml" in r.stderr
    assert (project / "pylock.toml").read_bytes() == before
    assert not (project / "host.toml").exists()


def test_export_asks_for_a_platform_the_host_is_not_locked_for(index, project):
    server = index([Dist("lib", "1.0")])
    write_spec(
        project,
        server.url,
        f"""
        python = "{PYTHON}"
        platforms = ["osx-arm64", "win-64"]
        dependencies = ["lib"]
        """,
    )
    assert envlock(project, "lock").code == 0
    r = envlock(project, "export")
    assert r.code == 2
    assert f"locked for osx-arm64, win-64, not for this machine ({HOST})" in r.stderr
    assert "--platform" in r.stderr
    r = envlock(project, "export", "--format", "nope")
    assert r.code == 2 and "--format" in r.stderr
    missing = envlock(project, "export", "--env", "default", "--spec", "other/envlock.toml")
    assert missing.code == 2 and "Traceback" not in missing.stderr
