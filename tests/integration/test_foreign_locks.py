"""PEP 751 locks other tools wrote, used with ``--lock FILE`` and no envlock.toml.

The locks are written at test time by the real tools against the loopback index: ``uv pip
compile --format pylock.toml`` (one platform), ``uv export --format pylock.toml`` from a small uv
project (universal: markers, a dependency group) and ``pip lock`` (pip >= 25.1, installed into a
venv of its own). Each is fetched, built (the environment's python imports the packages),
verified, audited, exported and diffed. Locks lacking what envlock needs (a file's url or sha256,
index files at all, a Python the host has) are one error line naming the package, never "edited
or corrupted".
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from packaging.version import Version

from envlock._toml import tomllib
from envlock.platforms import host_platform
from integration.helpers import Result, envlock, write_spec
from support.index import IndexServer
from support.wheels import Dist

MINOR = sys.version_info[1]
PYTHON = f"3.{MINOR}"
OTHER = f"3.{MINOR + 1}"  # a Python this host does not run envlock on
HOST = host_platform()
MACHINE = platform.machine()
HOST_TAG = f"cp3{MINOR}-cp3{MINOR}-manylinux_2_17_{MACHINE}"
WIN_TAG = f"cp3{MINOR}-cp3{MINOR}-win_amd64"
OTHER_TAG = f"cp3{MINOR + 1}-cp3{MINOR + 1}-manylinux_2_17_{MACHINE}"
UV = Path(sys.executable).parent / "uv"

pytestmark = pytest.mark.skipif(not HOST.startswith("linux"), reason="installs linux wheels")


def _dists() -> list[Dist]:
    return [
        Dist("app", "1.0", requires=["lib>=1", 'winonly; sys_platform == "win32"']),
        Dist("lib", "2.0", tag=HOST_TAG),
        Dist("lib", "2.0", tag=WIN_TAG),
        Dist("lib", "1.0"),
        Dist("winonly", "0.2"),
        Dist("devtool", "1.0"),
        Dist("newpy", "1.0", tag=OTHER_TAG),  # wheels only for a Python newer than the host's
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    index = IndexServer(_dists(), workdir=tmp_path_factory.mktemp("index")).start()
    yield index
    index.stop()


def _tool_env(home: Path) -> dict[str, str]:
    """uv and pip see only the loopback index: no config, caches of their own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "VIRTUAL_"))}
    return {
        **env,
        "HOME": str(home),
        "UV_NO_CONFIG": "1",
        "UV_CACHE_DIR": str(home / "uv-cache"),
        "UV_PYTHON_DOWNLOADS": "never",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


def _run(args: list[str], cwd: Path, home: Path) -> None:
    proc = subprocess.run(
        args, cwd=cwd, env=_tool_env(home), capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, f"{args[:3]}: {proc.stdout}\n{proc.stderr}"


def uv_pip_compile(server: IndexServer, where: Path, requirement: str, python: str) -> Path:
    """``uv pip compile --format pylock.toml`` for one platform (this host's kind of Linux)."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "requirements.in").write_text(requirement + "\n")
    out = where / "pylock.toml"
    _run(
        [
            str(UV),
            "pip",
            "compile",
            "requirements.in",
            "--format",
            "pylock.toml",
            "--index-url",
            server.url,
            "--python-version",
            python,
            "--python-platform",
            f"{MACHINE}-manylinux_2_28",
            "-o",
            str(out),
            "-q",
        ],
        where,
        where,
    )
    return out


def uv_export(server: IndexServer, where: Path, *options: str) -> Path:
    """``uv lock`` + ``uv export --format pylock.toml`` of a project: universal, with markers."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "pyproject.toml").write_text(
        f"""
[project]
name = "demo"
version = "0.1.0"
requires-python = ">={PYTHON}"
dependencies = ["app"]

[dependency-groups]
dev = ["devtool"]
"""
    )
    index = ["--default-index", server.url, "--python", sys.executable, "-q"]
    _run([str(UV), "lock", *index], where, where)
    out = where / "pylock.toml"
    export = [str(UV), "export", "--format", "pylock.toml", "-o", str(out), *options, *index]
    _run(export, where, where)
    return out


@pytest.fixture(scope="session")
def modern_pip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A python whose pip has ``pip lock`` (pip >= 25.1): this one's, or a venv's with pip
    upgraded from PyPI (pip itself is the only thing these tests take from the internet)."""
    if _pip_version(Path(sys.executable)) >= Version("25.1"):
        return Path(sys.executable)
    venv = tmp_path_factory.mktemp("pip-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    got = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "pip>=25.1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert got.returncode == 0, f"installing pip>=25.1 failed: {got.stderr[-2000:]}"
    assert _pip_version(python) >= Version("25.1")
    return python


def _pip_version(python: Path) -> Version:
    out = subprocess.run(
        [str(python), "-m", "pip", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    return Version(out[1]) if len(out) > 1 else Version("0")


def pip_lock(python: Path, server: IndexServer, where: Path, requirement: str) -> Path:
    """``pip lock`` (PEP 751, pip >= 25.1) for this host."""
    where.mkdir(parents=True, exist_ok=True)
    out = where / "pylock.toml"
    _run(
        [
            str(python),
            "-m",
            "pip",
            "--isolated",
            "lock",
            requirement,
            "--index-url",
            server.url,
            "-o",
            str(out),
        ],
        where,
        where,
    )
    return out


def _ok(r: Result) -> Result:
    assert r.code == 0, r.stdout + r.stderr
    return r


def _imports(env: Path, *modules: str) -> list[str]:
    code = "import json, sys, " + ", ".join(modules) + "; "
    code += "print(json.dumps([m.__file__ for m in (" + ", ".join(modules) + ",)]))"
    out = subprocess.run(
        [str(env / "bin" / "python"), "-c", code], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    files: list[str] = json.loads(out.stdout)
    return files


def _exercise(lock: Path, work: Path, *, offline_build: bool) -> None:
    """Everything a user does with a lock, from a directory with no envlock.toml: fetch and
    materialize (or build), import, verify, audit (table, json, SBOM), export."""
    assert not (work / "envlock.toml").exists()
    env = work / "env"
    if offline_build:
        _ok(envlock(work, "fetch", "--lock", str(lock)))
        r = _ok(envlock(work, "materialize", "--lock", str(lock), "-p", HOST, "-o", str(env)))
    else:
        r = _ok(envlock(work, "build", "--lock", str(lock), "--output", str(env)))
    assert "2 packages" in r.stderr
    files = _imports(env, "app", "lib")
    assert all(f.startswith(str(env)) for f in files)

    r = _ok(envlock(work, "verify", str(env), "--lock", str(lock)))
    assert "match pylock.toml" in r.stderr

    r = _ok(envlock(work, "audit", "--lock", str(lock)))
    assert "app" in r.stdout and "lib" in r.stdout and "2.0" in r.stdout
    data = json.loads(_ok(envlock(work, "audit", "--lock", str(lock), "-f", "json")).stdout)
    rows = {p["name"]: p for p in data["environments"][0]["packages"]}
    assert {n: p["version"] for n, p in rows.items()} == {"app": "1.0", "lib": "2.0"}
    assert rows["lib"]["files"][0]["name"] == f"lib-2.0-{HOST_TAG}.whl"
    sbom = json.loads(_ok(envlock(work, "audit", "--lock", str(lock), "-f", "cyclonedx")).stdout)
    assert {c["name"] for c in sbom["components"]} >= {"app", "lib"}

    text = _ok(envlock(work, "export", "--lock", str(lock))).stdout
    hashes = {p["name"]: p["files"][0]["sha256"] for p in rows.values()}
    assert f"lib==2.0 \\\n    --hash=sha256:{hashes['lib']}" in text
    assert f"app==1.0 \\\n    --hash=sha256:{hashes['app']}" in text


def test_uv_pip_compile_lock_is_fetched_materialized_verified_audited_and_exported(
    server: IndexServer, tmp_path: Path
) -> None:
    lock = uv_pip_compile(server, tmp_path / "uv", "app", PYTHON)
    _exercise(lock, tmp_path, offline_build=True)


def test_pip_lock_is_built_verified_audited_and_exported(
    server: IndexServer, modern_pip: Path, tmp_path: Path
) -> None:
    lock = pip_lock(modern_pip, server, tmp_path / "pip", "app")
    assert "requires-python" not in lock.read_text()  # pip's lock is for this host only
    _exercise(lock, tmp_path, offline_build=False)


def test_universal_uv_export_lock_selects_packages_by_markers_per_platform(
    server: IndexServer, tmp_path: Path
) -> None:
    lock = uv_export(server, tmp_path / "project")
    assert "sys_platform == 'win32'" in lock.read_text()  # universal: markers, not one platform
    _exercise_universal(lock, tmp_path)


def _exercise_universal(lock: Path, work: Path) -> None:
    linux = work / "linux"
    _ok(envlock(work, "build", "--lock", str(lock), "--output", str(linux)))
    _imports(linux, "app", "lib", "devtool")  # the default dependency group is installed
    assert not list((linux / "lib").glob("python3*/site-packages/winonly"))

    # win-64 from this Linux host: the marker holds there, the win_amd64 wheel is chosen.
    win = work / "win"
    r = envlock(
        work,
        "build",
        "--lock",
        str(lock),
        "--platform",
        "win-64",
        "--base-python",
        rf"C:\Python3{MINOR}\python.exe",
        "--output",
        str(win),
    )
    _ok(r)
    site = win / "Lib" / "site-packages"
    assert (site / "winonly").is_dir()
    assert (site / "lib-2.0.dist-info").is_dir()
    data = json.loads(
        _ok(
            envlock(work, "audit", "--lock", str(lock), "-p", HOST, "-p", "win-64", "-f", "json")
        ).stdout
    )
    rows = {p["name"]: p for p in data["environments"][0]["packages"]}
    assert rows["winonly"]["platforms"] == ["win-64"]
    assert rows["app"]["platforms"] == sorted([HOST, "win-64"])
    assert {f["name"] for f in rows["lib"]["files"]} == {
        f"lib-2.0-{HOST_TAG}.whl",
        f"lib-2.0-{WIN_TAG}.whl",
    }
    _ok(envlock(work, "verify", str(win), "--lock", str(lock)))
    text = _ok(envlock(work, "export", "--lock", str(lock), "-p", "win-64")).stdout
    assert "winonly==0.2" in text and f"lib-2.0-{WIN_TAG}" not in text  # pins, not names


def test_diff_of_two_foreign_locks_lists_what_changed_per_platform(
    server: IndexServer, tmp_path: Path
) -> None:
    compiled = uv_pip_compile(server, tmp_path / "uv", "app", PYTHON)
    exported = uv_export(server, tmp_path / "project")
    r = _ok(envlock(tmp_path, "diff", str(compiled), str(exported)))
    assert "+ devtool 1.0" in r.stdout
    assert "winonly" not in r.stdout  # not installed on this host's platform
    # Universal locks compare on every platform asked; a change on all of them names none.
    without_dev = uv_export(server, tmp_path / "project-nodev", "--no-dev")
    r = _ok(envlock(tmp_path, "diff", str(without_dev), str(exported), "-p", HOST, "-p", "win-64"))
    assert r.stdout.splitlines()[1:] == ["  + devtool 1.0"]
    # A lock made for one platform has nothing to install on another: that is said.
    r = envlock(tmp_path, "diff", str(compiled), str(exported), "-p", "win-64")
    assert r.code == 2
    assert "No wheel found matching the provided tags for package 'lib'" in r.stderr
    assert "(selecting for win-64, Python" in r.stderr
    r = envlock(tmp_path, "diff", str(compiled), str(compiled), "--exit-code")
    assert r.code == 0 and "no changes" in r.stdout


def test_verify_against_another_foreign_lock_lists_the_differences(
    server: IndexServer, tmp_path: Path
) -> None:
    compiled = uv_pip_compile(server, tmp_path / "uv", "app", PYTHON)
    exported = uv_export(server, tmp_path / "project")
    _ok(envlock(tmp_path, "build", "--lock", str(compiled), "--output", str(tmp_path / "env")))
    r = envlock(tmp_path, "verify", str(tmp_path / "env"), "--lock", str(exported))
    assert r.code == 1
    assert "missing package devtool 1.0" in r.stdout


def test_a_spec_lock_written_by_another_tool_is_named_not_called_corrupted(
    server: IndexServer, tmp_path: Path, project: Path
) -> None:
    write_spec(project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\n')
    lock = uv_pip_compile(server, tmp_path / "uv", "app", PYTHON)
    (project / "pylock.toml").write_bytes(lock.read_bytes())
    r = envlock(project, "build")
    assert r.code == 2
    assert "written by uv, not by envlock" in r.stderr
    assert "--lock pylock.toml" in r.stderr
    assert "corrupted" not in r.stderr


# -- what a foreign lock may lack ----------------------------------------------------------------


def _edit(lock: Path, change: Any) -> Path:
    data = tomllib.loads(lock.read_text())
    change(data)
    lock.write_text(tomli_w.dumps(data))
    return lock


def _app(data: dict[str, Any]) -> dict[str, Any]:
    pkg: dict[str, Any] = next(p for p in data["packages"] if p["name"] == "app")
    return pkg


def _only(source: str, table: dict[str, Any]) -> Any:
    def change(data: dict[str, Any]) -> None:
        pkg = _app(data)
        del pkg["wheels"]
        pkg[source] = table

    return change


def _wheel(**values: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        wheel = _app(data)["wheels"][0]
        for key, value in values.items():
            if value is None:
                del wheel[key]
            else:
                wheel[key] = value

    return change


def _requires_python(value: str) -> Any:
    def change(data: dict[str, Any]) -> None:
        data["requires-python"] = value

    return change


SHA = "a" * 64
INCOMPLETE = [
    pytest.param(
        _only("vcs", {"type": "git", "url": "https://example.com/app.git", "commit-id": SHA[:40]}),
        "(app 1.0): only a git source (https://example.com/app.git); envlock installs wheels "
        "and sdists from an index, each with a url and a sha256",
        id="vcs",
    ),
    pytest.param(
        _only("directory", {"path": ".", "editable": True}),
        "(app 1.0): only a local directory '.' (editable)",
        id="directory",
    ),
    pytest.param(
        _only("archive", {"url": "https://example.com/app.tar.gz", "hashes": {"sha256": SHA}}),
        "(app 1.0): only an archive (https://example.com/app.tar.gz)",
        id="archive",
    ),
    pytest.param(
        _wheel(hashes={"sha512": "b" * 128}),
        "(app 1.0): wheels[0] (app-1.0-py3-none-any.whl) has no sha256 hash (the lock gives: "
        "sha512); envlock checks every file against its sha256",
        id="no sha256",
    ),
    pytest.param(
        _wheel(url=None, path="dist/app-1.0-py3-none-any.whl"),
        "(app 1.0): wheels[0] (app-1.0-py3-none-any.whl) has no url, only the local path "
        "'dist/app-1.0-py3-none-any.whl'; envlock fetches every file by URL",
        id="no url",
    ),
]


@pytest.mark.parametrize(("change", "expected"), INCOMPLETE)
def test_what_a_foreign_lock_lacks_is_one_line_naming_the_package(
    server: IndexServer, tmp_path: Path, change: Any, expected: str
) -> None:
    lock = _edit(uv_pip_compile(server, tmp_path / "uv", "app", PYTHON), change)
    for command in (
        ["build", "--lock", str(lock), "--output", str(tmp_path / "env")],
        ["audit", "--lock", str(lock)],
    ):
        r = envlock(tmp_path, *command)
        assert r.code == 2, r.stderr
        first = r.stderr.splitlines()[0]
        assert first.startswith(f"error: {lock}: packages[0] "), first
        assert expected in first
        assert "corrupted" not in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "env").exists()


def test_a_lock_whose_requires_python_excludes_the_host_asks_for_python(
    server: IndexServer, tmp_path: Path
) -> None:
    lock = _edit(
        uv_pip_compile(server, tmp_path / "uv", "devtool", PYTHON), _requires_python(f">={OTHER}")
    )
    r = envlock(tmp_path, "fetch", "--lock", str(lock))
    assert r.code == 2
    assert (
        f"error: {lock}: requires-python '>={OTHER}' does not include this host's Python "
        f"{PYTHON}" in r.stderr
    )
    assert f"pass --python {OTHER}" in r.stderr
    # For a Python it allows, the lock is selected (devtool's wheel is pure).
    r = envlock(tmp_path, "audit", "--lock", str(lock), "--python", OTHER, "-f", "json")
    assert r.code == 0, r.stderr


def test_a_lock_without_requires_python_for_another_python_names_the_package(
    server: IndexServer, tmp_path: Path
) -> None:
    # uv locked newpy for a newer Python; without its requires-python line nothing says which.
    lock = _edit(
        uv_pip_compile(server, tmp_path / "uv", "newpy", OTHER),
        lambda data: data.pop("requires-python"),
    )
    r = envlock(tmp_path, "build", "--lock", str(lock), "--output", str(tmp_path / "env"))
    assert r.code == 2
    first = r.stderr.splitlines()[0]
    assert "'newpy' at packages[0]" in first
    assert f"(selecting for {HOST}, Python {PYTHON})" in first
    assert "no requires-python, so this host's was assumed" in r.stderr
    assert "corrupted" not in r.stderr
    # Named, the Python it was made for selects it.
    r = envlock(tmp_path, "export", "--lock", str(lock), "--python", OTHER)
    assert r.code == 0, r.stderr
    assert "newpy==1.0" in r.stdout


def test_python_option_is_only_for_a_named_lock(server: IndexServer, project: Path) -> None:
    write_spec(project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\n')
    r = envlock(project, "fetch", "--python", "3.12")
    assert r.code == 2
    assert "--python is for a lock another tool wrote" in r.stderr
