"""``envlock cache dir|info|verify|prune`` end to end against a real, fetched cache."""

from __future__ import annotations

import hashlib
import random
import shutil
from pathlib import Path

import pytest

from integration.helpers import envlock, load_lock, write_spec
from support.wheels import Dist


def blob(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def lock_files(lock_path: Path) -> dict[str, tuple[str, int]]:
    """filename -> (sha256, size) of every file in a lock."""
    out = {}
    for pkg in load_lock(lock_path)["packages"]:
        for f in [*pkg.get("wheels", []), *([pkg["sdist"]] if "sdist" in pkg else [])]:
            out[f["name"]] = (f["hashes"]["sha256"], f["size"])
    return out


def entry_dir(cache: Path, sha256: str) -> Path:
    return cache / "artifacts" / "sha256" / sha256[:2] / sha256[2:]


def stored(cache: Path) -> list[str]:
    root = cache / "artifacts" / "sha256"
    return (
        sorted(p.name for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        if root.is_dir()
        else []
    )


def stdout_value(stdout: str, key: str) -> str:
    return next(
        line.split(":", 1)[1].strip() for line in stdout.splitlines() if line.startswith(f"{key}:")
    )


def spec(server, project: Path, deps: list[str]) -> None:
    write_spec(
        project,
        server.url,
        f'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = {deps!r}\n'.replace("'", '"'),
    )


def test_cache_dir_prints_the_configured_directory(project, tmp_path, cache):
    r = envlock(project, "cache", "dir")
    assert r.code == 0, r.stderr
    assert r.stdout == f"{cache.resolve()}\n"
    other = tmp_path / "somewhere" / "else"
    r = envlock(project, "cache", "dir", "--cache-dir", str(other))
    assert r.stdout == f"{other.resolve()}\n"
    r = envlock(project, "cache", "dir", env={"ENVLOCK_CACHE_DIR": str(other)})
    assert r.stdout == f"{other.resolve()}\n"


def test_cache_info_counts_entries_and_bytes(index, project, cache, tmp_path):
    r = envlock(project, "cache", "info")
    assert r.code == 0, r.stderr
    assert stdout_value(r.stdout, "artifacts") == "0 (0.0 MB)"

    server = index(
        [
            Dist("big", "1.0", requires=["small"], files={"big/blob.bin": blob(1, 1_500_000)}),
            Dist("small", "1.0"),
            Dist("src", "1.0", kind="sdist"),
        ]
    )
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\n'
        'dependencies = ["big", "src"]\nallow-sdist = ["src"]\n',
    )
    assert envlock(project, "lock").code == 0
    assert envlock(project, "fetch").code == 0
    files = lock_files(project / "pylock.toml")
    total = sum(size for _, size in files.values())

    r = envlock(project, "cache", "info")
    assert r.code == 0, r.stderr
    assert stdout_value(r.stdout, "cache") == str(cache.resolve())
    assert stdout_value(r.stdout, "artifacts") == f"3 ({total / 1e6:.1f} MB)"
    assert stdout_value(r.stdout, "unpacked wheels") == "0"
    assert stdout_value(r.stdout, "built from sdists") == "1"
    assert float(stdout_value(r.stdout, "total on disk").split()[0]) >= round(total / 1e6, 1)

    assert envlock(project, "materialize", "-p", "linux-64", "-o", str(tmp_path / "env")).code == 0
    r = envlock(project, "cache", "info")
    assert stdout_value(r.stdout, "artifacts") == f"3 ({total / 1e6:.1f} MB)"
    assert stdout_value(r.stdout, "unpacked wheels") == "3"  # big, small, and src's wheel


@pytest.mark.parametrize("damage", ["garbage", "truncate"])
def test_cache_verify_finds_and_drops_corrupt_entries(index, project, cache, damage):
    server = index(
        [Dist("alpha", "1.0", files={"alpha/blob.bin": blob(2, 50_000)}), Dist("beta", "1.0")]
    )
    spec(server, project, ["alpha", "beta"])
    assert envlock(project, "lock").code == 0
    assert envlock(project, "fetch").code == 0

    r = envlock(project, "cache", "verify")
    assert r.code == 0, (r.stdout, r.stderr)
    assert "2 artifact(s) and unpacked tree(s) checked, 0 corrupt" in r.stderr
    assert r.stdout == ""

    sha, size = lock_files(project / "pylock.toml")["alpha-1.0-py3-none-any.whl"]
    path = entry_dir(cache, sha) / "alpha-1.0-py3-none-any.whl"
    if damage == "garbage":
        path.write_bytes(blob(3, size))
    else:
        path.write_bytes(path.read_bytes()[: size // 3])
    r = envlock(project, "cache", "verify")
    assert r.code == 1
    assert r.stdout.strip() == f"corrupt, removed: {path.resolve()}"
    assert "2 artifact(s) and unpacked tree(s) checked, 1 corrupt" in r.stderr
    assert not entry_dir(cache, sha).exists()
    assert stored(cache) == ["beta-1.0-py3-none-any.whl"]

    r = envlock(project, "cache", "verify")
    assert r.code == 0 and "1 artifact(s) and unpacked tree(s) checked, 0 corrupt" in r.stderr
    server.reset_counts()
    assert envlock(project, "fetch").code == 0
    assert [req.path for req in server.requests] == ["/files/alpha-1.0-py3-none-any.whl"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    assert envlock(project, "cache", "verify").code == 0


def test_cache_prune_keeps_what_the_lock_needs(index, project, cache, tmp_path):
    server = index([Dist("app", "1.0", requires=["dep"]), Dist("dep", "1.0")])
    spec(server, project, ["app"])
    assert envlock(project, "lock").code == 0
    assert envlock(project, "fetch").code == 0
    assert envlock(project, "materialize", "-p", "linux-64", "-o", str(tmp_path / "e1")).code == 0
    old_lock = tmp_path / "old-pylock.toml"
    shutil.copy(project / "pylock.toml", old_lock)
    old = lock_files(old_lock)

    server.add(Dist("app", "2.0", requires=["dep"]))
    assert envlock(project, "lock", "--upgrade").code == 0
    assert envlock(project, "fetch").code == 0
    new = lock_files(project / "pylock.toml")
    assert sorted(new) == ["app-2.0-py3-none-any.whl", "dep-1.0-py3-none-any.whl"]
    assert stored(cache) == sorted({*old, *new})

    # Keeping both locks removes nothing.
    r = envlock(
        project, "cache", "prune", "--keep-lock", "pylock.toml", "--keep-lock", str(old_lock)
    )
    assert r.code == 0, r.stderr
    assert "removed 0 artifact(s)" in r.stderr
    assert stored(cache) == sorted({*old, *new})

    r = envlock(project, "cache", "prune", "--keep-lock", "pylock.toml")
    assert r.code == 0, r.stderr
    assert "removed 1 artifact(s)" in r.stderr
    assert stored(cache) == sorted(new)
    app1_sha = old["app-1.0-py3-none-any.whl"][0]
    assert not entry_dir(cache, app1_sha).exists()
    assert not (cache / "unpacked" / "sha256" / app1_sha[:2] / app1_sha[2:]).exists()

    # What remains is enough to build the current lock offline.
    server.stop()
    r = envlock(project, "materialize", "-p", "linux-64", "-o", str(tmp_path / "e2"))
    assert r.code == 0, r.stderr
    r = envlock(
        project,
        "materialize",
        "-p",
        "linux-64",
        "-o",
        str(tmp_path / "e3"),
        "--spec",
        str(project / "envlock.toml"),
    )
    assert r.code == 0


def test_cache_prune_defaults_to_the_locks_beside_the_spec(index, project, cache, tmp_path):
    server = index([Dist("a", "1.0"), Dist("b", "1.0")])
    spec(server, project, ["a", "b"])
    assert envlock(project, "lock").code == 0
    assert envlock(project, "fetch").code == 0
    spec(server, project, ["a"])
    assert envlock(project, "lock").code == 0

    r = envlock(project, "cache", "prune")
    assert r.code == 0, r.stderr
    assert stored(cache) == ["a-1.0-py3-none-any.whl"]

    empty = tmp_path / "empty"
    empty.mkdir()
    r = envlock(empty, "cache", "prune")  # the cache remembers the lock that used it
    assert r.code == 0 and "kept what 1 lock(s) need" in r.stderr
    assert stored(cache) == ["a-1.0-py3-none-any.whl"]
