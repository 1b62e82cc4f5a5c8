"""``envlock cache prune`` on a cache shared by several projects and used by running builds."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from integration.helpers import envlock, load_lock, write_spec
from integration.test_cache import stored
from support.wheels import Dist


def lock_files(lock_path: Path) -> dict[str, str]:
    """filename -> sha256 of every file in a lock."""
    out = {}
    for pkg in load_lock(lock_path)["packages"]:
        for f in [*pkg.get("wheels", []), *([pkg["sdist"]] if "sdist" in pkg else [])]:
            out[f["name"]] = f["hashes"]["sha256"]
    return out


def registered(cache: Path) -> list[str]:
    """Lock paths in the cache's registry (checking each entry's file name is its path's hash)."""
    directory = cache / "registry" / "locks"
    out = []
    for entry in sorted(directory.glob("*.json")) if directory.is_dir() else ():
        path = json.loads(entry.read_text())["path"]
        assert entry.name == hashlib.sha256(path.encode()).hexdigest() + ".json"
        out.append(path)
    return sorted(out)


def make_project(server, directory: Path, deps: list[str], extra: str = "") -> Path:
    directory.mkdir(exist_ok=True)
    write_spec(
        directory,
        server.url,
        f'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = {deps!r}\n'.replace("'", '"')
        + extra,
    )
    r = envlock(directory, "lock")
    assert r.code == 0, r.stderr
    r = envlock(directory, "fetch")
    assert r.code == 0, r.stderr
    return directory / "pylock.toml"


@pytest.fixture
def two_projects(index, tmp_path: Path) -> tuple[Path, Path]:
    """Projects a and b sharing the test's cache: a needs common+alpha (+ an sdist), b needs
    common+beta. Returns their locks."""
    server = index(
        [
            Dist("common", "1.0"),
            Dist("alpha", "1.0", requires=["common"]),
            Dist("beta", "1.0", requires=["common"]),
            Dist("alphasrc", "1.0", kind="sdist"),
        ]
    )
    lock_a = make_project(
        server, tmp_path / "a", ["alpha", "alphasrc"], 'allow-sdist = ["alphasrc"]\n'
    )
    lock_b = make_project(server, tmp_path / "b", ["beta"])
    return lock_a, lock_b


ALL = [
    "alpha-1.0-py3-none-any.whl",
    "alphasrc-1.0.tar.gz",
    "beta-1.0-py3-none-any.whl",
    "common-1.0-py3-none-any.whl",
]
B_ONLY = ["beta-1.0-py3-none-any.whl", "common-1.0-py3-none-any.whl"]


def built_dir(cache: Path, sha256: str) -> Path:
    return cache / "built" / "sha256" / sha256[:2] / sha256[2:]


def test_prune_in_one_project_keeps_what_another_projects_lock_needs(two_projects, cache):
    lock_a, lock_b = two_projects
    assert registered(cache) == sorted([str(lock_a.resolve()), str(lock_b.resolve())])
    assert stored(cache) == ALL
    alphasrc = lock_files(lock_a)["alphasrc-1.0.tar.gz"]
    assert any(built_dir(cache, alphasrc).glob("*.whl"))

    r = envlock(lock_b.parent, "cache", "prune")
    assert r.code == 0, r.stderr
    assert r.stderr == "removed 0 artifact(s), freed 0.0 MB; kept what 2 lock(s) need\n"
    assert stored(cache) == ALL
    assert any(built_dir(cache, alphasrc).glob("*.whl"))  # a's sdist built into a wheel

    # a's lock goes away: the next prune removes what only a needed and forgets a.
    lock_a.unlink()
    r = envlock(lock_b.parent, "cache", "prune")
    assert r.code == 0, r.stderr
    assert r.stderr.splitlines() == [
        "removed 2 artifact(s), freed 0.0 MB; kept what 1 lock(s) need",
        f"forgot {lock_a.resolve()}: it no longer exists",
    ]
    assert stored(cache) == B_ONLY
    assert not built_dir(cache, alphasrc).exists()
    assert registered(cache) == [str(lock_b.resolve())]

    r = envlock(lock_b.parent, "cache", "prune")
    assert r.stderr == "removed 0 artifact(s), freed 0.0 MB; kept what 1 lock(s) need\n"


def test_prune_anywhere_keeps_what_registered_locks_need(two_projects, cache, tmp_path):
    lock_a, lock_b = two_projects
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = envlock(elsewhere, "cache", "prune")
    assert r.code == 0, r.stderr
    assert "kept what 2 lock(s) need" in r.stderr
    assert stored(cache) == ALL

    lock_a.unlink()
    lock_b.unlink()
    r = envlock(elsewhere, "cache", "prune")
    assert r.code == 2 and "--keep-lock" in r.stderr
    assert stored(cache) == ALL


def test_dry_run_lists_exactly_what_would_go_and_deletes_nothing(two_projects, cache):
    lock_a, lock_b = two_projects
    lock_a.unlink()
    orphan = cache / "unpacked" / "sha256" / "ff" / ("f" * 62)  # a tree whose wheel is gone
    orphan.mkdir(parents=True)
    (orphan / "mod.py").write_bytes(b"x" * 2500)
    before = sorted(p.relative_to(cache) for p in cache.rglob("*") if "locks" not in p.parts)

    r = envlock(lock_b.parent, "cache", "prune", "--dry-run")
    assert r.code == 0, r.stderr
    listed = [line.split("  ")[0] for line in r.stdout.splitlines()]
    assert listed == [
        "alpha-1.0-py3-none-any.whl",
        "alphasrc-1.0.tar.gz",
        f"unpacked/sha256/ff/{'f' * 62}",
    ]
    assert r.stdout.splitlines()[2].endswith("  2.5 kB")
    assert r.stderr.splitlines() == [
        "would remove 2 artifact(s) and 1 orphaned tree(s), would free 0.0 MB; "
        "kept what 1 lock(s) need",
        f"would forget {lock_a.resolve()}: it no longer exists",
    ]
    after = sorted(p.relative_to(cache) for p in cache.rglob("*") if "locks" not in p.parts)
    assert after == before
    assert str(lock_a.resolve()) in registered(cache)

    r = envlock(lock_b.parent, "cache", "prune")
    assert r.code == 0, r.stderr
    assert "removed 2 artifact(s) and 1 orphaned tree(s)" in r.stderr
    assert stored(cache) == [n for n in ALL if n not in listed]
    assert not orphan.exists()


def test_an_unparseable_registered_lock_refuses_to_prune(two_projects, cache):
    lock_a, lock_b = two_projects
    lock_a.write_text("<<<<<<< HEAD\n")  # a merge conflict

    r = envlock(lock_b.parent, "cache", "prune")
    assert r.code == 2
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"error: refusing to prune: {lock_a.resolve()}: not a valid PEP")
    assert f"--forget-lock {lock_a.resolve()}" in lines[1]
    assert len(lines) == 2
    assert stored(cache) == ALL

    r = envlock(lock_b.parent, "cache", "prune", "--dry-run", "--forget-lock", str(lock_a))
    assert r.code == 0, r.stderr
    assert stored(cache) == ALL and str(lock_a.resolve()) in registered(cache)

    r = envlock(lock_b.parent, "cache", "prune", "--forget-lock", str(lock_a))
    assert r.code == 0, r.stderr
    assert r.stderr.splitlines()[1] == f"forgot {lock_a.resolve()} (--forget-lock)"
    assert stored(cache) == B_ONLY
    assert registered(cache) == [str(lock_b.resolve())]


def test_a_read_only_registry_does_not_break_lock_or_fetch(index, tmp_path, cache):
    directory = cache / "registry"
    directory.mkdir(parents=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs: {r.stderr.strip()}")
    try:
        with pytest.raises(OSError):
            (directory / "probe").write_text("")  # really read-only, even for root
        server = index([Dist("solo", "1.0")])
        lock = make_project(server, tmp_path / "ro", ["solo"])  # asserts lock and fetch exit 0
        assert stored(cache) == ["solo-1.0-py3-none-any.whl"]
        assert registered(cache) == []
        again = envlock(lock.parent, "fetch")
        assert again.code == 0, again.stderr
    finally:
        subprocess.run(["umount", str(directory)], check=True)


LEASE_HOLDER = """
import sys, time
from pathlib import Path
from envlock.cache.registry import lease
from envlock.cache.store import ArtifactStore
with lease(ArtifactStore(Path(sys.argv[1])), sys.argv[2:]):
    print("leased", flush=True)
    time.sleep(600)
"""


def test_a_prune_keeps_what_a_running_build_leased_until_the_build_dies(two_projects, cache):
    lock_a, lock_b = two_projects
    alpha = lock_files(lock_a)["alpha-1.0-py3-none-any.whl"]
    lock_a.unlink()
    holder = subprocess.Popen(
        [sys.executable, "-c", LEASE_HOLDER, str(cache), alpha],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "leased\n"
        r = envlock(lock_b.parent, "cache", "prune")
        assert r.code == 0, r.stderr
        assert r.stderr.splitlines()[0] == (
            "removed 1 artifact(s), freed 0.0 MB; kept what 1 lock(s) need "
            "and 1 running build(s) use"
        )
        assert stored(cache) == ["alpha-1.0-py3-none-any.whl", *B_ONLY]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert len(list((cache / "leases").glob("*.json"))) == 1  # a killed build leaves its lease

    r = envlock(lock_b.parent, "cache", "prune")
    assert r.code == 0, r.stderr
    assert r.stderr == "removed 1 artifact(s), freed 0.0 MB; kept what 1 lock(s) need\n"
    assert stored(cache) == B_ONLY
    assert list((cache / "leases").iterdir()) == []


PRUNE_HOLDER = """
import sys
from pathlib import Path
from envlock.cache.registry import PRUNE_LOCK
from envlock.cache.store import ArtifactStore
with ArtifactStore(Path(sys.argv[1])).lock(PRUNE_LOCK):
    print("pruning", flush=True)
    sys.stdin.readline()
"""


def test_a_build_started_during_a_prune_waits_for_it_then_succeeds(two_projects, cache, tmp_path):
    _, lock_b = two_projects
    env_dir = tmp_path / "env"
    holder = subprocess.Popen(
        [sys.executable, "-c", PRUNE_HOLDER, str(cache)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    build = subprocess.Popen(
        [sys.executable, "-m", "envlock", "materialize", "-p", "linux-64", "-o", str(env_dir)],
        cwd=lock_b.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "pruning\n"
        with pytest.raises(subprocess.TimeoutExpired):
            build.wait(timeout=3)  # its lease waits for the prune to end
        assert not env_dir.exists()
        assert list((cache / "leases").glob("*.json")) == []
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    _, err = build.communicate(timeout=120)
    assert build.returncode == 0, err
    assert list(env_dir.rglob("beta/__init__.py"))
    assert list((cache / "leases").glob("*.json")) == []  # released with the build
