"""Installs that keep the lock's promise: nothing lost, strict wheels, shared and read-only caches.

Real CLI, real loopback index, real environments; hostile wheels are published as raw bytes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.helpers import envlock, write_spec
from integration.test_materialize import (
    alpha,
    assert_runs,
    beside,
    beta,
    error_lines,
    materialize,
    setup,
)
from support.evil import publish_raw, wheel_members, with_record, zip_bytes
from support.wheels import Dist, record_hash

NOBODY = 65534


def spec_for(project: Path, url: str, deps: list[str]) -> None:
    write_spec(
        project,
        url,
        f'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = {deps!r}\n'.replace("'", '"'),
    )


# -- nothing is lost -------------------------------------------------------------------------


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_output_that_is_somebodys_work_is_never_replaced(index, project, tmp_path, force):
    setup(index, project, [alpha(), beta()], ["alpha"])
    flag = ("--force",) if force else ()
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "main.py").write_text("work")
    pyproj = tmp_path / "pyproj"
    pyproj.mkdir()
    (pyproj / "pyproject.toml").write_text("[project]\n")
    locks = tmp_path / "locks"
    locks.mkdir()
    (locks / "pylock.toml").write_text("")
    cases = {
        repo: "holds .git",
        pyproj: "holds pyproject.toml",
        locks: "holds pylock.toml",
        project: "the current directory",  # also the spec's directory
        Path("."): "the current directory",
        tmp_path: "a parent of the current directory",
        Path(os.environ["HOME"]): "your home directory",
    }
    for target, reason in cases.items():
        before = sorted(p.name for p in (project / target).iterdir())
        r = materialize(project, "linux-64", "--output", str(target), *flag)
        assert r.code == 2, (target, r.stderr)
        (line,) = error_lines(r.stderr)
        assert reason in line and "refusing to replace it" in line, line
        assert "Traceback" not in r.stderr
        assert sorted(p.name for p in (project / target).iterdir()) == before
    assert (repo / "main.py").read_text() == "work"
    # build refuses the same way (its own output default is safe, --output is not).
    r = envlock(project, "build", "--output", str(repo), *flag)
    assert r.code == 2 and "holds .git" in r.stderr
    # A file is not an environment either.
    note = tmp_path / "notes.txt"
    note.write_text("notes")
    r = materialize(project, "linux-64", "--output", str(note), *flag)
    assert r.code == 2 and "not a directory" in r.stderr and note.read_text() == "notes"


def test_spec_directory_elsewhere_is_protected(index, project, tmp_path):
    setup(index, project, [alpha(), beta()], ["alpha"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = envlock(
        elsewhere,
        "materialize",
        "--platform",
        "linux-64",
        "--spec",
        str(project / "envlock.toml"),
        "--output",
        str(project),
        "--force",
    )
    assert r.code == 2 and "the spec's directory" in r.stderr, r.stderr
    assert (project / "envlock.toml").is_file() and (project / "pylock.toml").is_file()


def test_build_on_an_unchanged_lock_is_a_no_op_and_a_new_lock_replaces_it(index, project):
    server = setup(index, project, [alpha(), beta()], ["alpha"])
    out = project / ".envlock" / "envs" / "default-linux-64"
    assert envlock(project, "build").code == 0
    inode = (out / "envlock.json").stat().st_ino
    r = envlock(project, "build")
    assert r.code == 0 and "up to date" in r.stderr, r.stderr
    assert (out / "envlock.json").stat().st_ino == inode
    # A changed lock (a new version locked) replaces the environment, no --force needed.
    server.add(alpha("1.1"))
    assert envlock(project, "lock", "--upgrade").code == 0
    r = envlock(project, "build")
    assert r.code == 0, r.stderr
    assert "up to date" not in r.stderr
    assert_runs(out, version="1.1")
    assert beside(out) == []


def test_stale_lock_is_refused_unless_frozen(index, project, tmp_path):
    server = setup(index, project, [alpha(), beta()], ["alpha"])
    spec_for(project, server.url, ["alpha", "beta"])  # the spec changed; the lock did not
    out = tmp_path / "env"
    for command in (
        ("build", "--output", str(out)),
        ("materialize", "-p", "linux-64", "-o", str(out)),
    ):
        r = envlock(project, *command)
        assert r.code == 1, r.stderr
        assert len(error_lines(r.stderr)) == 1
        assert "envlock lock" in r.stderr and "--frozen" in r.stderr
        assert not out.exists()
    r = envlock(project, "build", "--output", str(out), "--frozen")
    assert r.code == 0, r.stderr
    assert "--frozen" in r.stderr  # it says it built a stale lock
    assert_runs(out)


def _run_as_nobody(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *map(str, cmd)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
        timeout=60,
    )


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory other users can reach (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="envlock-shared-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root+setpriv")
@pytest.mark.skipif(not Path("/usr/bin/python3.11").exists(), reason="needs /usr/bin/python3.11")
def test_environment_follows_the_umask_and_runs_as_another_user(index, project, shared_dir):
    setup(index, project, [alpha(), beta()], ["alpha"], fetch=False)
    out = shared_dir / "env"
    cache = shared_dir / "cache"
    old = os.umask(0o022)
    try:
        r = envlock(
            project,
            "build",
            "--output",
            str(out),
            "--base-python",
            "/usr/bin/python3.11",
            "--cache-dir",
            str(cache),
        )
    finally:
        os.umask(old)
    assert r.code == 0, r.stderr
    site = out / "lib" / "python3.11" / "site-packages"
    assert (out.stat().st_mode & 0o777) == 0o755
    assert ((site / "alpha" / "cli.py").stat().st_mode & 0o777) == 0o644
    assert ((out / "bin" / "alpha-hello").stat().st_mode & 0o777) == 0o755
    assert ((project / "pylock.toml").stat().st_mode & 0o777) == 0o644
    r = _run_as_nobody(out / "bin" / "python", "-c", "import alpha, beta; print(alpha.__version__)")
    assert r.returncode == 0 and r.stdout == "1.0\n", r.stderr
    r = _run_as_nobody(out / "bin" / "alpha-hello", "x")
    assert r.returncode == 0 and r.stdout == "hello from alpha x\n", r.stderr

    # A team cache (umask 002): group-writable entries.
    old = os.umask(0o002)
    try:
        r = envlock(
            project,
            "build",
            "--output",
            str(shared_dir / "env2"),
            "--force",
            "--cache-dir",
            str(shared_dir / "cache2"),
        )
    finally:
        os.umask(old)
    assert r.code == 0, r.stderr
    files = [p for p in (shared_dir / "cache2").rglob("*.whl")]
    assert files and all((p.stat().st_mode & 0o777) == 0o664 for p in files)


@contextlib.contextmanager
def tmpfs(mnt: Path, size: str, what: str) -> Iterator[Path]:
    """A small tmpfs at ``mnt`` (a full disk on demand); the test is skipped where it cannot be
    mounted (not root), saying what stays untested."""
    mnt.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {what} is untested")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


# -- strict wheels ---------------------------------------------------------------------------


def _publish(index, project, name: str, data: bytes) -> None:
    server = index([beta()])
    publish_raw(server, Dist(name, "1.0"), data)
    spec_for(project, server.url, ["beta", name])
    assert envlock(project, "lock").code == 0
    assert envlock(project, "fetch").code == 0


def _expect_refused(project: Path, tmp_path: Path, needle: str) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir(exist_ok=True)
    r = materialize(project, "linux-64", "--output", str(outdir / "env"))
    assert r.code == 4, r.stderr
    (line,) = error_lines(r.stderr)
    assert "evil-1.0-py3-none-any.whl" in line and needle in line, line
    assert "Traceback" not in r.stderr
    assert list(outdir.iterdir()) == []
    r = envlock(project, "verify", str(outdir / "env"))
    assert r.code != 0


def _evil(files: dict[str, bytes]) -> dict[str, bytes]:
    return wheel_members("evil", "1.0", {"evil/__init__.py": b"X = 1\n", **files})


def _defect(case: str) -> tuple[bytes, str]:
    di = "evil-1.0.dist-info"
    good = with_record(di, _evil({}))
    if case == "empty-record":
        return zip_bytes({**good, f"{di}/RECORD": b""}), "not listed in RECORD"
    if case == "no-record":
        return zip_bytes(_evil({})), f"no {di}/RECORD"
    if case == "unlisted-file":
        return zip_bytes({**good, "evil/extra.py": b"Y = 2\n"}), "evil/extra.py is not listed"
    if case == "listed-missing":
        members = dict(good)
        members[f"{di}/RECORD"] += b"evil/ghost.py,sha256=abc,3\n"
        return zip_bytes(members), "evil/ghost.py, which is not in the wheel"
    if case == "no-hash":
        record = good[f"{di}/RECORD"].replace(record_hash(b"X = 1\n").encode(), b"")
        return zip_bytes({**good, f"{di}/RECORD": record}), "no hash or no size"
    if case == "no-size":
        h = record_hash(b"X = 1\n")
        record = good[f"{di}/RECORD"].replace(f"{h},6".encode(), f"{h},".encode())
        return zip_bytes({**good, f"{di}/RECORD": record}), "no hash or no size"
    if case == "wrong-size":
        h = record_hash(b"X = 1\n")
        record = good[f"{di}/RECORD"].replace(f"{h},6".encode(), f"{h},7".encode())
        return zip_bytes({**good, f"{di}/RECORD": record}), "RECORD says 7"
    if case == "md5":
        record = good[f"{di}/RECORD"].replace(
            record_hash(b"X = 1\n").encode(), b"md5=Ze7Yqt9OyY1ljsSEXtOpNA"
        )
        return zip_bytes({**good, f"{di}/RECORD": record}), "not sha256"
    if case == "no-wheel-file":
        members = {k: v for k, v in _evil({}).items() if not k.endswith("/WHEEL")}
        return zip_bytes(with_record(di, members)), f"no {di}/WHEEL"
    if case == "wheel-version-2":
        return zip_bytes(
            with_record(di, _evil({f"{di}/WHEEL": b"Wheel-Version: 2.0\nRoot-Is-Purelib: true\n"}))
        ), "Wheel-Version 2.0 is not supported"
    if case == "bad-purelib":
        return zip_bytes(
            with_record(di, _evil({f"{di}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: maybe\n"}))
        ), "Root-Is-Purelib"
    if case == "hidden-archive-in-comment":
        hidden = zip_bytes(with_record(di, _evil({"evil/__init__.py": b"PWNED = 1\n"})))
        data = bytearray(zip_bytes(good))
        data[-2:] = len(hidden).to_bytes(2, "little")  # the comment length
        return bytes(data) + hidden, "end-of-central-directory"
    if case == "trailing-bytes":
        return zip_bytes(good) + b"\0" * 16, "after the end-of-central-directory"
    if case == "prepended-data":
        return b"MZ" + b"\0" * 64 + zip_bytes(good), "central directory"
    raise AssertionError(case)


DEFECTS = [
    "empty-record",
    "no-record",
    "unlisted-file",
    "listed-missing",
    "no-hash",
    "no-size",
    "wrong-size",
    "md5",
    "no-wheel-file",
    "wheel-version-2",
    "bad-purelib",
    "hidden-archive-in-comment",
    "trailing-bytes",
    "prepended-data",
]


@pytest.mark.parametrize("case", DEFECTS)
def test_defective_wheels_are_refused_naming_file_and_reason(index, project, tmp_path, case):
    data, needle = _defect(case)
    _publish(index, project, "evil", data)
    _expect_refused(project, tmp_path, needle)


@pytest.mark.parametrize(
    ("files", "scripts", "needle"),
    [
        ({}, {"python": "evil:main"}, "script 'python' would replace"),
        ({}, {"python3.11": "evil:main"}, "script 'python3.11' would replace"),
        ({}, {"activate": "evil:main"}, "script 'activate' would replace"),
        ({"evil-1.0.data/data/pyvenv.cfg": b"home = /evil\n"}, {}, "ships pyvenv.cfg"),
        ({"evil-1.0.data/data/envlock.json": b"{}\n"}, {}, "ships envlock.json"),
        ({"evil-1.0.data/scripts/python3": b"#!/bin/sh\n"}, {}, "script 'python3' would"),
        ({"evil-1.0.data/data/bin/activate": b"evil\n"}, {}, "ships bin/activate"),
    ],
    ids=["ep-python", "ep-python3.11", "ep-activate", "pyvenv", "envlock-json", "script", "data"],
)
def test_wheels_cannot_replace_what_envlock_writes(
    index, project, tmp_path, files, scripts, needle
):
    server = index([beta()])
    server.add(
        Dist("evil", "1.0", files={"evil/__init__.py": b"", **files}, console_scripts=scripts)
    )
    spec_for(project, server.url, ["beta", "evil"])
    assert envlock(project, "lock").code == 0
    assert envlock(project, "fetch").code == 0
    out = tmp_path / "env"
    r = materialize(project, "linux-64", "--output", str(out))
    assert r.code == 4, r.stderr
    (line,) = error_lines(r.stderr)
    assert needle in line, line
    assert not out.exists()


def test_a_decompression_bomb_never_fills_the_disk(index, project, tmp_path):
    """RECORD honestly declares 200 MB of zeros; on a cache with 32 MB free the unpack is
    refused before writing (the free-space check); nothing is left behind."""
    zeros = b"\0" * (200 << 20)
    di = "evil-1.0.dist-info"
    data = zip_bytes(with_record(di, _evil({"evil/blob.bin": zeros})))
    assert len(data) < 1 << 20  # a small wheel
    _publish(index, project, "evil", data)
    with tmpfs(tmp_path / "small", "32m", "the free-space check") as mnt:
        shutil.copytree(tmp_path / "cache", mnt / "cache")
        out = mnt / "env"
        r = envlock(
            project,
            "materialize",
            "-p",
            "linux-64",
            "-o",
            str(out),
            "--cache-dir",
            str(mnt / "cache"),
        )
        assert r.code == 1, r.stderr
        (line,) = error_lines(r.stderr)
        assert "unpacks to 209.7 MB" in line and "free" in line, line
        assert not out.exists() and beside(out) == []
        assert not list((mnt / "cache").glob("tmp/*"))


def test_a_member_larger_than_its_zip_entry_says_is_refused(index, project, tmp_path):
    """The central directory and RECORD claim 6 bytes; the deflate stream holds 50 MB."""
    di = "evil-1.0.dist-info"
    good = with_record(di, _evil({}))
    bomb = b"\0" * (50 << 20)
    data = bytearray(zip_bytes({**good, "evil/__init__.py": bomb}))
    # Patch the declared size of evil/__init__.py (local header and central directory) to 6.
    name = b"evil/__init__.py"
    for sig, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = 0
        while (pos := data.find(sig, pos)) != -1:
            name_at = pos + (30 if sig == b"PK\x03\x04" else 46)
            if data[name_at : name_at + len(name)] == name:
                data[pos + size_at : pos + size_at + 4] = (6).to_bytes(4, "little")
            pos += 4
    _publish(index, project, "evil", bytes(data))
    outdir = tmp_path / "out"
    outdir.mkdir()
    r = materialize(project, "linux-64", "--output", str(outdir / "env"))
    assert r.code == 4, r.stderr
    assert "evil-1.0-py3-none-any.whl" in r.stderr and "Traceback" not in r.stderr
    assert list(outdir.iterdir()) == []


# -- read-only and shared caches -------------------------------------------------------------


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path/cache`` re-mounted read-only (EROFS even for root); skipped where impossible."""
    cache = tmp_path / "cache"
    ro = tmp_path / "ro-cache"
    ro.mkdir()
    if subprocess.run(["mount", "--bind", str(cache), str(ro)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here (needs root): read-only caches are untested")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], check=True)
        yield ro
    finally:
        subprocess.run(["umount", str(ro)], check=True)


@pytest.mark.parametrize("unpacked", [True, False], ids=["unpacked", "wheels-only"])
def test_materialize_from_a_read_only_cache(index, project, tmp_path, unpacked, request):
    setup(index, project, [alpha(), beta()], ["alpha"])
    cache = tmp_path / "cache"
    if unpacked:
        assert materialize(project, "linux-64", "--output", str(tmp_path / "warm")).code == 0
    else:
        shutil.rmtree(cache / "unpacked", ignore_errors=True)
    ro = request.getfixturevalue("read_only")
    before = sorted(str(p.relative_to(cache)) for p in cache.rglob("*"))
    with pytest.raises(OSError):
        (ro / "probe").write_text("x")
    out = tmp_path / "env"
    r = envlock(project, "materialize", "-p", "linux-64", "-o", str(out), "--cache-dir", str(ro))
    assert r.code == 0, r.stderr
    assert_runs(out)
    archive = tmp_path / "env.tar.gz"
    r = envlock(
        project, "materialize", "-p", "linux-64", "--archive", str(archive), "--cache-dir", str(ro)
    )
    assert r.code == 0, r.stderr
    assert r.stdout.startswith("sha256:")
    assert sorted(str(p.relative_to(cache)) for p in cache.rglob("*")) == before
    assert beside(out) == [] and beside(archive) == []


def test_verify_files_catches_a_cached_file_changed_in_place(index, project, tmp_path, cache):
    setup(index, project, [alpha(), beta()], ["alpha"])
    assert materialize(project, "linux-64", "--output", str(tmp_path / "warm")).code == 0
    (cached,) = list((cache / "unpacked").rglob("alpha/cli.py"))
    st = cached.stat()
    data = cached.read_bytes()
    cached.write_bytes(data.replace(b"hello", b"HACKD"))  # same size
    os.utime(cached, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime
    r = materialize(project, "linux-64", "--output", str(tmp_path / "env"), "--verify-files")
    assert r.code == 4, r.stderr
    assert "cli.py no longer matches its RECORD hash" in r.stderr
    assert not (tmp_path / "env").exists()
    r = envlock(project, "cache", "verify")
    assert r.code == 1 and "cli.py" in r.stdout, r.stdout + r.stderr
    r = materialize(project, "linux-64", "--output", str(tmp_path / "env"), "--verify-files")
    assert r.code == 0, r.stderr  # the damaged tree was dropped and unpacked again
    assert_runs(tmp_path / "env")


def test_installed_files_are_new_files_not_writes_through_links(index, project, tmp_path, cache):
    setup(index, project, [alpha(), beta()], ["alpha"])
    out = tmp_path / "env"
    assert materialize(project, "linux-64", "--output", str(out)).code == 0
    site = out / "lib" / "python3.11" / "site-packages"
    linked = site / "alpha" / "cli.py"
    assert linked.stat().st_nlink > 1  # hard-linked from the cache
    cache_copies = {p: p.read_bytes() for p in (cache / "unpacked").rglob("*") if p.is_file()}
    assert materialize(project, "linux-64", "--output", str(out), "--force").code == 0
    assert {p: p.read_bytes() for p in cache_copies} == cache_copies
    for generated in (
        out / "pyvenv.cfg",
        out / "envlock.json",
        out / "bin" / "alpha-hello",
        site / "alpha-1.0.dist-info" / "RECORD",
    ):
        assert generated.stat().st_nlink == 1, generated


def test_disk_full_is_one_line_and_leaves_nothing(index, project, tmp_path):
    dists = [Dist("fat", "1.0", files={"fat/blob.bin": os.urandom(6 << 20)})]
    setup(index, project, dists, ["fat"])
    with tmpfs(tmp_path / "full", "4m", "disk-full handling") as mnt:
        out = mnt / "env"
        r = materialize(project, "linux-64", "--output", str(out))
        assert r.code == 1, r.stderr
        (line,) = error_lines(r.stderr)
        assert "No space left on device" in line, line
        assert "Traceback" not in r.stderr
        assert list(mnt.iterdir()) == []
        r = materialize(project, "linux-64", "--archive", str(mnt / "env.tar.gz"))
        assert r.code == 1 and "No space left" in r.stderr and list(mnt.iterdir()) == []


def test_staging_left_by_a_killed_build_is_removed_by_the_next_one(index, project, tmp_path):
    from integration.test_materialize import big_dists

    dists = big_dists(count=10)
    setup(index, project, dists, [d.name for d in dists])
    out = tmp_path / "env"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "envlock",
            "materialize",
            "-p",
            "linux-64",
            "-o",
            str(out),
            "--link-mode",
            "copy",
        ],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not beside(out):
        assert proc.poll() is None, "finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.kill()  # SIGKILL: no cleanup runs
    proc.wait()
    left = beside(out)
    assert left and all(f".tmp-{proc.pid}-" in name for name in left)
    # A live writer's staging is kept: a fake one of this (running) test process.
    live = tmp_path / f".env.tmp-{os.getpid()}-live"
    live.mkdir()
    r = materialize(project, "linux-64", "--output", str(out))
    assert r.code == 0, r.stderr
    assert beside(out) == [live.name]
    assert_runs_simple(out)


def assert_runs_simple(env: Path) -> None:
    r = subprocess.run([env / "bin" / "python", "-c", "import bulk0"], capture_output=True)
    assert r.returncode == 0, r.stderr
