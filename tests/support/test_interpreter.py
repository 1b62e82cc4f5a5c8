"""Self-tests of the interpreter-archive fixtures: the built CPython really runs after a move,
only from its own tree, in a bare chroot; the fakes and hostile archives are what they claim."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from envlock._toml import tomllib
from support.index import IndexServer
from support.interpreter import (
    EVIL_ABSOLUTE,
    EVIL_KINDS,
    BuiltInterpreter,
    bundled_python,
    evil_interpreter_archive,
    fake_interpreter_archive,
    interpreter_sources_toml,
    make_interpreter_archive,
    minimal_root,
    run_in_root,
)

__all__ = ["bundled_python"]  # the session fixture, used by the tests below

IndexFactory = Callable[..., IndexServer]
PROBE = (
    "import sys, site, sysconfig, json, ssl, sqlite3, decimal, hashlib, ctypes; "
    "print(sys.prefix); print(sysconfig.get_paths()['purelib']); print(*sys.path, sep='\\n')"
)


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack with the stdlib's strict ``data`` filter (refuses anything unsafe)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tf:
        tf.extractall(dest, filter="data")
    return dest / "python"


def members(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as tf:
        return {m.name: m for m in tf.getmembers()}


def test_built_archive_is_pbs_layout_deterministic_and_small(
    bundled_python: BuiltInterpreter, tmp_path: Path
) -> None:
    b = bundled_python
    assert b.sha256 == hashlib.sha256(b.path.read_bytes()).hexdigest()
    assert b.version.startswith("3.11.") and b.platform == "linux-64"
    assert b.size < 40 * 1024 * 1024
    again = make_interpreter_archive(tmp_path / "again")
    assert again.sha256 == b.sha256 and again.version == b.version
    m = members(b.path)
    assert {n.split("/")[0] for n in m} == {"python"}
    assert m["python/bin/python3.11"].isfile() and m["python/bin/python3.11"].mode == 0o755
    assert m["python/bin/python3"].issym() and m["python/bin/python3"].linkname == "python3.11"
    assert m["python/lib/python3.11/site-packages"].isdir()
    assert "python/lib/python3.11/json/__init__.py" in m
    assert any(n.startswith("python/lib/python3.11/lib-dynload/_ssl.") for n in m)
    # pbs ships pip: so does the fixture (envlock must leave it out of environments).
    assert "python/lib/python3.11/site-packages/pip/__init__.py" in m
    assert m["python/bin/pip3"].isfile()
    assert not any("__pycache__" in n or "dist-packages" in n for n in m)
    assert not any(n.startswith("python/lib/python3.11/test/") for n in m)
    assert {i.mtime for i in m.values()} == {315532800}
    assert {(i.uid, i.gid, i.uname, i.gname) for i in m.values()} == {(0, 0, "", "")}
    names = list(m)
    assert names == sorted(names)


def test_built_interpreter_runs_moved_from_its_own_tree_only(
    bundled_python: BuiltInterpreter, tmp_path: Path
) -> None:
    tree = unpack(bundled_python.path, tmp_path / "a")
    moved = tmp_path / "somewhere else" / "py"
    moved.parent.mkdir()
    os.rename(tree, moved)
    r = subprocess.run(
        [str(moved / "bin" / "python3"), "-c", PROBE],
        capture_output=True,
        text=True,
        env={"PATH": "/nonexistent"},
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    prefix, purelib, *path = r.stdout.splitlines()
    assert Path(prefix) == moved
    assert Path(purelib) == moved / "lib" / "python3.11" / "site-packages"
    assert str(moved / "lib" / "python3.11" / "site-packages") in path
    assert [p for p in path if p and not p.startswith(str(moved))] == []
    r = subprocess.run(
        [
            str(moved / "bin" / "python3.11"),
            "-c",
            "import platform; print(platform.python_version())",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.stdout.strip() == bundled_python.version


def test_built_interpreter_runs_in_a_bare_chroot_without_network(
    bundled_python: BuiltInterpreter, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    unpack(bundled_python.path, root / "opt")
    libs = minimal_root(root, root / "opt" / "python")
    assert Path("/lib64/ld-linux-x86-64.so.2") in libs or any("ld-linux" in str(p) for p in libs)
    pythons = sorted(p.relative_to(root).as_posix() for p in root.rglob("python3*"))
    assert all(p.startswith("opt/python/") for p in pythons), pythons
    r = run_in_root(root, "/opt/python/bin/python3", "-c", PROBE)
    assert r.returncode == 0, r.stderr
    prefix, _, *path = r.stdout.splitlines()
    assert prefix == "/opt/python"
    assert "/opt/python/lib/python3.11/site-packages" in path
    r = run_in_root(
        root,
        "/opt/python/bin/python3",
        "-c",
        "import socket; socket.create_connection(('1.1.1.1', 80), timeout=2)",
    )
    assert r.returncode != 0 and "unreachable" in r.stderr
    r = run_in_root(
        root, "/bin/sh", "-c", 'dirname -- "$(realpath -- /opt/python/bin/python3 2>/dev/null)"'
    )
    assert r.stdout == "/opt/python/bin\n", r.stderr


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("osx-arm64", ["bin/python3.11", "lib/python3.11/os.py", "lib/libpython3.11.dylib"]),
        ("osx-64", ["bin/python3.11", "lib/python3.11/os.py", "lib/libpython3.11.dylib"]),
        ("linux-aarch64", ["bin/python3.11", "lib/python3.11/os.py"]),
        ("win-64", ["python.exe", "pythonw.exe", "python311.dll", "Lib/os.py", "DLLs/_ssl.pyd"]),
    ],
)
def test_fake_foreign_archives(platform: str, expected: list[str], tmp_path: Path) -> None:
    fake = fake_interpreter_archive(tmp_path / "a", platform)
    assert fake.filename.startswith("cpython-3.11.9+20250101-")
    assert fake.filename.endswith("-install_only_stripped.tar.gz")
    assert fake.sha256 == fake_interpreter_archive(tmp_path / "b", platform).sha256
    tree = unpack(fake.path, tmp_path / "x")
    for rel in expected:
        assert (tree / rel).is_file(), rel
    site = tree / ("Lib/site-packages" if platform == "win-64" else "lib/python3.11/site-packages")
    assert site.is_dir()
    if platform != "win-64":
        assert os.readlink(tree / "bin" / "python3") == "python3.11"
    head = (tree / ("python.exe" if platform == "win-64" else "bin/python3.11")).read_bytes()
    magic = {"win-64": b"MZ", "linux-aarch64": b"\x7fELF"}.get(platform, b"\xcf\xfa\xed\xfe")
    assert head.startswith(magic)


@pytest.mark.parametrize("kind", EVIL_KINDS)
def test_evil_archives_are_refused_by_a_strict_unpacker(kind: str, tmp_path: Path) -> None:
    path = evil_interpreter_archive(tmp_path / "a", kind)
    assert path.read_bytes() == evil_interpreter_archive(tmp_path / "b", kind).read_bytes()
    m = members(path)
    if kind == "no-top":
        assert not any(n == "python" or n.startswith("python/") for n in m)
        return
    if kind.startswith("absolute"):  # the data filter strips the "/" instead of refusing
        assert any(n.startswith("/") and i.isfile() for n, i in m.items())
        return
    with pytest.raises(tarfile.FilterError):
        unpack(path, tmp_path / "x")
    assert not Path(EVIL_ABSOLUTE).exists()


def test_interpreter_sources_toml_parses(tmp_path: Path) -> None:
    text = interpreter_sources_toml(
        "linux-64", "http://127.0.0.1:1/files/a.tar.gz", "ab" * 32, "3.11.2"
    )
    assert tomllib.loads(text) == {
        "interpreter-sources": {
            "linux-64": {
                "url": "http://127.0.0.1:1/files/a.tar.gz",
                "sha256": "ab" * 32,
                "version": "3.11.2",
            }
        }
    }
    assert "version" not in interpreter_sources_toml("win-64", "u", "s", None)


def test_publish_file_serves_bytes_with_ranges(index: IndexFactory) -> None:
    srv = index()
    data = bytes(range(256)) * 10
    url = srv.publish_file("cpython-3.11.2-linux-64.tar.gz", data)
    assert url == f"{srv.base_url}/files/cpython-3.11.2-linux-64.tar.gz"
    assert httpx.get(url).content == data
    r = httpx.get(url, headers={"Range": "bytes=10-"})
    assert r.status_code == 206 and r.content == data[10:]
    assert httpx.get(srv.url + "cpython/").status_code == 404
    with pytest.raises(ValueError):
        srv.publish_file("../x", b"")


def test_missing_debian_python_fails_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import support.interpreter as interpreter

    monkeypatch.setattr(interpreter, "DEBIAN_STDLIB", tmp_path / "no-stdlib")
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install python3\.11"):
        make_interpreter_archive(tmp_path / "out")
