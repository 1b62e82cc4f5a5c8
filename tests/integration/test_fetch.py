"""``envlock fetch`` end to end: the real CLI, a real index on 127.0.0.1, a real cache."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from integration.helpers import envlock, load_lock, write_spec
from support.wheels import Dist

LINUX = "cp311-cp311-manylinux_2_17_x86_64"
MAC = "cp311-cp311-macosx_11_0_arm64"
WIN = "cp311-cp311-win_amd64"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def blob(seed: int, size: int) -> bytes:
    """Incompressible, deterministic bytes (so wheels have a real size on the wire)."""
    return random.Random(seed).randbytes(size)


def lock_files(lock_path: Path) -> dict[str, dict[str, object]]:
    """filename -> {sha256, size, url} of every file (wheels and sdists) in a lock."""
    out: dict[str, dict[str, object]] = {}
    for pkg in load_lock(lock_path)["packages"]:
        files = list(pkg.get("wheels", []))
        if "sdist" in pkg:
            files.append(pkg["sdist"])
        for f in files:
            out[f["name"]] = {"sha256": f["hashes"]["sha256"], "size": f["size"], "url": f["url"]}
    return out


def cached(cache: Path, sha256: str, filename: str) -> Path:
    return cache / "artifacts" / "sha256" / sha256[:2] / sha256[2:] / filename


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def leftovers(cache: Path) -> list[Path]:
    """Partial downloads and scratch trees left in the cache's tmp/."""
    tmp = cache / "tmp"
    return sorted(tmp.iterdir()) if tmp.is_dir() else []


def lock_project(
    server, project: Path, deps: list[str], platforms: list[str], extra: str = ""
) -> Path:
    write_spec(
        project,
        server.url,
        f'python = "3.11"\nplatforms = {platforms!r}\ndependencies = {deps!r}\n{extra}'.replace(
            "'", '"'
        ),
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    return project / "pylock.toml"


def test_fetch_stores_every_locked_artifact_by_hash_and_second_fetch_is_free(index, project, cache):
    server = index(
        [
            Dist("app", "1.0", requires=["lib", 'winonly; sys_platform == "win32"']),
            *[Dist("lib", "2.0", tag=t) for t in (LINUX, MAC, WIN)],
            Dist("winonly", "0.1"),
        ]
    )
    lock = lock_project(server, project, ["app"], ["linux-64", "osx-arm64", "win-64"])
    files = lock_files(lock)
    assert len(files) == 5  # app, winonly, three native lib wheels
    server.reset_counts()

    r = envlock(project, "fetch")
    assert r.code == 0, r.stderr
    assert "5 downloaded" in r.stderr
    for filename, f in files.items():
        path = cached(cache, str(f["sha256"]), filename)
        assert path.is_file(), filename
        assert sha256_of(path) == f["sha256"]
        assert path.stat().st_size == f["size"]
        assert path.read_bytes() == server.file_path(filename).read_bytes()
    # Only the lock's URLs, each exactly once; no index pages, no metadata.
    lock_paths = sorted("/" + str(f["url"]).split("/", 3)[3] for f in files.values())
    assert sorted(req.path for req in server.requests) == lock_paths
    assert leftovers(cache) == []

    server.reset_counts()
    r = envlock(project, "fetch")
    assert r.code == 0, r.stderr
    assert server.count() == 0, server.requests
    assert "0 downloaded" in r.stderr and "5 already cached" in r.stderr


def test_fetch_platform_limits_what_is_downloaded(index, project, cache):
    server = index(
        [
            Dist("app", "1.0", requires=["lib"]),
            *[Dist("lib", "2.0", tag=t) for t in (LINUX, MAC, WIN)],
        ]
    )
    lock = lock_project(server, project, ["app"], ["linux-64", "osx-arm64", "win-64"])
    files = lock_files(lock)
    server.reset_counts()

    r = envlock(project, "fetch", "--platform", "win-64")
    assert r.code == 0, r.stderr
    wanted = {"app-1.0-py3-none-any.whl", f"lib-2.0-{WIN}.whl"}
    for filename, f in files.items():
        assert cached(cache, str(f["sha256"]), filename).is_file() == (filename in wanted), filename
    assert sorted(req.path for req in server.requests) == sorted(f"/files/{n}" for n in wanted)

    server.reset_counts()
    r = envlock(project, "fetch", "-p", "linux-64", "-p", "win-64")
    assert r.code == 0, r.stderr
    assert [req.path for req in server.requests] == [f"/files/lib-2.0-{LINUX}.whl"]
    assert not cached(
        cache, str(files[f"lib-2.0-{MAC}.whl"]["sha256"]), f"lib-2.0-{MAC}.whl"
    ).exists()

    r = envlock(project, "fetch", "--platform", "osx-64")
    assert r.code == 2
    assert "osx-64" in r.stderr and "linux-64, osx-arm64, win-64" in r.stderr


@pytest.mark.parametrize("same_size", [True, False], ids=["same-size", "other-size"])
def test_fetch_refuses_an_artifact_that_differs_from_the_lock(index, project, cache, same_size):
    server = index([Dist("good", "1.0"), Dist("bad", "1.0", files={"bad/data.bin": blob(1, 4096)})])
    lock = lock_project(server, project, ["good", "bad"], ["linux-64"])
    bad = "bad-1.0-py3-none-any.whl"
    f = lock_files(lock)[bad]
    served = server.file_path(bad)
    original = served.read_bytes()
    tampered = bytes(b ^ 0xFF for b in original) if same_size else original + b"tail"
    served.write_bytes(tampered)

    r = envlock(project, "fetch")
    assert r.code == 4, (r.stdout, r.stderr)  # integrity, not network
    errors = error_lines(r.stderr)
    assert len(errors) == 1 and bad in errors[0], r.stderr
    assert ("sha256" in errors[0]) if same_size else ("bytes" in errors[0])
    assert "Traceback" not in r.stderr
    entry = cached(cache, str(f["sha256"]), bad).parent
    assert not entry.exists()
    assert not any(p.name == bad for p in (cache / "artifacts").rglob("*"))
    assert leftovers(cache) == []

    # The genuine file comes back: the same command now succeeds.
    served.write_bytes(original)
    r = envlock(project, "fetch")
    assert r.code == 0, r.stderr
    assert sha256_of(cached(cache, str(f["sha256"]), bad)) == f["sha256"]


@pytest.mark.parametrize("damage", ["garbage", "truncate"])
def test_corrupt_cache_entry_is_reported_and_fetched_again(index, project, cache, damage):
    server = index(
        [Dist("alpha", "1.0", files={"alpha/data.bin": blob(2, 20_000)}), Dist("beta", "1.0")]
    )
    lock = lock_project(server, project, ["alpha", "beta"], ["linux-64"])
    assert envlock(project, "fetch").code == 0
    name = "alpha-1.0-py3-none-any.whl"
    f = lock_files(lock)[name]
    path = cached(cache, str(f["sha256"]), name)
    size = path.stat().st_size
    if damage == "garbage":
        path.write_bytes(blob(3, size))  # same size: only the hash can tell
    else:
        with path.open("r+b") as fh:
            fh.truncate(size // 2)

    server.reset_counts()
    r = envlock(project, "fetch")
    assert r.code == 0, r.stderr
    assert f"corrupt cache entry of {name}" in r.stderr
    assert "1 downloaded" in r.stderr and "1 already cached" in r.stderr
    assert [req.path for req in server.requests] == [f"/files/{name}"]
    assert sha256_of(path) == f["sha256"]

    server.reset_counts()
    r = envlock(project, "fetch")
    assert r.code == 0 and server.count() == 0 and "corrupt" not in r.stderr


def test_corrupt_entry_is_caught_by_materialize_which_stays_offline(
    index, project, cache, tmp_path
):
    server = index([Dist("alpha", "1.0")])
    lock = lock_project(server, project, ["alpha"], ["linux-64"])
    assert envlock(project, "fetch").code == 0
    name = "alpha-1.0-py3-none-any.whl"
    path = cached(cache, str(lock_files(lock)[name]["sha256"]), name)
    path.write_bytes(b"not a wheel")
    server.reset_counts()

    out = tmp_path / "env"
    r = envlock(project, "materialize", "--platform", "linux-64", "--output", str(out))
    assert r.code == 1, r.stderr
    assert name in r.stderr and "envlock fetch --platform linux-64" in r.stderr
    assert not out.exists() and not path.exists()
    assert server.count() == 0
    assert envlock(project, "fetch").code == 0
    r = envlock(project, "materialize", "--platform", "linux-64", "--output", str(out))
    assert r.code == 0, r.stderr


def test_two_concurrent_fetches_share_one_cache(index, project, cache):
    dists = [
        Dist(f"pkg{i}", "1.0", files={f"pkg{i}/data.bin": blob(10 + i, 400_000)}) for i in range(12)
    ]
    server = index(dists)
    lock = lock_project(server, project, [d.name for d in dists], ["linux-64"])
    files = lock_files(lock)
    server.reset_counts()

    env = {**os.environ, "COLUMNS": "200"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "envlock", "fetch"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    for filename, f in files.items():
        entry = cached(cache, str(f["sha256"]), filename).parent
        visible = [p for p in entry.iterdir() if not p.name.startswith(".")]
        assert [p.name for p in visible] == [filename]
        assert sha256_of(visible[0]) == f["sha256"]
    # The per-artifact lock makes the loser of each race use the winner's file.
    assert server.count("/files/") == len(files)
    assert leftovers(cache) == []
    assert sorted(p.name for p in (cache / "artifacts" / "sha256").rglob("*.whl")) == sorted(files)


def test_fetch_retries_server_errors_and_reports_a_missing_file(index, project, cache):
    server = index([Dist("alpha", "1.0")])
    lock = lock_project(server, project, ["alpha"], ["linux-64"])
    name = "alpha-1.0-py3-none-any.whl"
    sha = str(lock_files(lock)[name]["sha256"])
    server.reset_counts()
    server.fail(f"/files/{name}", 503, times=2)
    r = envlock(project, "fetch")
    assert r.code == 0, r.stderr
    assert [req.status for req in server.requests] == [503, 503, 200]
    assert sha256_of(cached(cache, sha, name)) == sha

    # Gone from the index: a clear error, nothing stored.
    (cache / "artifacts").rename(cache / "old-artifacts")
    server.fail(f"/files/{name}", 404, times=10)
    r = envlock(project, "fetch")
    assert r.code == 3
    errors = error_lines(r.stderr)
    assert len(errors) == 1 and name in errors[0] and "404" in errors[0]
    assert not cached(cache, sha, name).exists()
    assert leftovers(cache) == []


def test_a_download_cut_off_mid_file_resumes_with_a_range_request(index, project, cache):
    big = Dist("big", "1.0", files={"big/data.bin": blob(7, 600_000)})
    server = index([big])
    lock = lock_project(server, project, ["big"], ["linux-64"])
    ((filename, f),) = lock_files(lock).items()
    server.reset_counts()
    server.cut(f"/files/{filename}", after_bytes=200_000, times=1)

    r = envlock(project, "fetch")
    assert r.code == 0, r.stderr
    assert sha256_of(cached(cache, str(f["sha256"]), filename)) == f["sha256"]
    gets = [q for q in server.requests if q.path == f"/files/{filename}"]
    assert len(gets) == 2
    assert "range" not in gets[0].headers
    start = int(gets[1].headers["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= 200_000  # picked up where the broken response stopped
    assert leftovers(cache) == []


def test_fetch_platform_without_env_skips_environments_that_lack_it(index, project, cache):
    server = index([Dist("a", "1.0"), *[Dist("lib", "2.0", tag=t) for t in (LINUX, WIN)]])
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64", "win-64"]\n'
        'dependencies = ["a"]\n[environments.gpu]\nplatforms = ["linux-64"]\n'
        'dependencies = ["lib"]\n',
    )
    assert envlock(project, "lock").code == 0
    r = envlock(project, "fetch", "--platform", "win-64")
    assert r.code == 0, r.stderr
    assert "1 downloaded" in r.stderr  # a's wheel; the gpu environment has no win-64
    r = envlock(project, "fetch", "--platform", "win-64", "--env", "gpu")
    assert r.code == 2 and "no win-64 resolution" in r.stderr
    r = envlock(project, "fetch", "--platform", "osx-64")
    assert r.code == 2 and "no locked environment has platform(s) osx-64" in r.stderr
