"""The cache's registry of locks and builds' leases, and what a prune keeps because of them."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from envlock.cache import maintenance, registry
from envlock.cache.registry import lease, read_leases, registered_locks, remember_lock
from envlock.cache.store import ArtifactStore
from envlock.errors import EnvlockError, UsageError
from envlock.index.simple import DistFile
from envlock.lock.document import build_lock
from envlock.lock.lockfile import write_lock
from envlock.platforms import Target
from envlock.resolve import Resolution, ResolvedPackage
from envlock.spec import EnvironmentSpec
from envlock.spec_indexes import Index

INDEX = "https://pkgs.example.com/simple/"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_project_lock(directory: Path, *wheels: str) -> Path:
    """A real pylock.toml (through build_lock and write_lock) pinning ``wheels``; each file's
    sha256 is the sha256 of its name."""
    directory.mkdir(parents=True, exist_ok=True)
    env = EnvironmentSpec(
        name=None,
        python="3.11",
        platforms=("linux-64",),
        dependencies=tuple(parse_wheel_filename(w)[0] for w in wheels),
        indexes=(Index("pypi", INDEX),),
        spec_dir=directory,
    )
    packages = {}
    for filename in wheels:
        name, version, _, tags = parse_wheel_filename(filename)
        f = DistFile(
            filename=filename,
            url=f"https://files.example.com/{filename}",
            name=name,
            version=version,
            is_wheel=True,
            tags=frozenset(tags),
            sha256=sha(filename),
            size=100,
            upload_time=datetime(2024, 1, 1, tzinfo=timezone.utc),
            index=INDEX,
        )
        packages[name] = ResolvedPackage(name, version, f, None)
    resolution = Resolution(Target("linux-64", "3.11"), packages)
    write_lock(env.lock_path, build_lock(env, [resolution], {}))
    return env.lock_path


def put(store: ArtifactStore, filename: str) -> str:
    """Store an artifact under the sha256 of its name (the store does not re-hash on listing)."""
    digest = sha(filename)
    path = store.path(digest, filename)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 100)
    return digest


# -- registry file format ----------------------------------------------------------------------


def test_remember_lock_writes_one_json_file_per_lock_path(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    lock = tmp_path / "proj" / "pylock.toml"
    before = datetime.now(timezone.utc).replace(microsecond=0)
    remember_lock(store, lock)

    entry = tmp_path / "cache" / "registry" / "locks" / f"{sha(str(lock.resolve()))}.json"
    assert sorted((tmp_path / "cache" / "registry" / "locks").iterdir()) == [entry]
    data = json.loads(entry.read_text())
    assert data["format"] == 1
    assert data["path"] == str(lock.resolve())
    used = datetime.strptime(data["last-used"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before <= used <= datetime.now(timezone.utc)

    (reg,) = registered_locks(store)
    assert (reg.path, reg.last_used, reg.entry) == (lock.resolve(), used, entry)


def test_the_same_lock_spelled_differently_is_one_entry_and_is_refreshed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArtifactStore(tmp_path / "cache")
    (tmp_path / "proj").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "proj")
    old = (datetime.now(timezone.utc) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    entry = registry.entry_path(store, tmp_path / "proj" / "pylock.toml")
    entry.parent.mkdir(parents=True)
    entry.write_text(
        json.dumps({"format": 1, "path": str(tmp_path / "proj" / "pylock.toml"), "last-used": old})
    )

    monkeypatch.chdir(tmp_path)
    remember_lock(store, Path("link/pylock.toml"))
    remember_lock(store, Path("proj") / ".." / "proj" / "pylock.toml")

    (reg,) = registered_locks(store)
    assert reg.path == tmp_path.resolve() / "proj" / "pylock.toml"
    assert datetime.now(timezone.utc) - reg.last_used < timedelta(minutes=1)
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]  # no temporary leftovers


def test_remember_lock_never_fails_where_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    remember_lock(ArtifactStore(blocker / "cache"), tmp_path / "pylock.toml")  # no exception
    assert blocker.read_text() == ""


def test_concurrent_writers_keep_every_entry(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    locks = [tmp_path / f"p{i}" / "pylock.toml" for i in range(40)]
    threads = [threading.Thread(target=remember_lock, args=(store, p)) for p in locks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.path for r in registered_locks(store)] == sorted(p.resolve() for p in locks)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"path": "/x/pylock.toml"}',
        '{"path": "rel/pylock.toml", "last-used": "2024-01-01T00:00:00Z"}',
        '["a list"]',
    ],
    ids=["syntax", "no-date", "relative", "not-a-table"],
)
def test_an_unreadable_registry_entry_is_an_error_naming_it(tmp_path: Path, content: str) -> None:
    store = ArtifactStore(tmp_path / "cache")
    remember_lock(store, tmp_path / "good" / "pylock.toml")
    bad = registry.registry_dir(store) / f"{'0' * 64}.json"
    bad.write_text(content)
    with pytest.raises(EnvlockError, match=r"registry entry .*0000000000\.json is unreadable") as e:
        registered_locks(store)
    assert "\n" not in e.value.message


def test_forget_lock_drops_only_that_entry(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    a, b = tmp_path / "a" / "pylock.toml", tmp_path / "b" / "pylock.toml"
    remember_lock(store, a)
    remember_lock(store, b)
    assert registry.forget_lock(store, a) is True
    assert registry.forget_lock(store, a) is False
    assert [r.path for r in registered_locks(store)] == [b.resolve()]


# -- keep-set computation ----------------------------------------------------------------------


def test_keep_set_is_the_union_of_registered_and_given_locks(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    lock_a = write_project_lock(
        tmp_path / "a", "common-1.0-py3-none-any.whl", "alpha-1.0-py3-none-any.whl"
    )
    lock_b = write_project_lock(
        tmp_path / "b", "common-1.0-py3-none-any.whl", "beta-1.0-py3-none-any.whl"
    )
    lock_c = write_project_lock(tmp_path / "c", "gamma-1.0-py3-none-any.whl")
    remember_lock(store, lock_a)
    remember_lock(store, lock_b)

    kept = maintenance.keep_set(store, [lock_c, lock_b])
    assert kept.sha256s == {
        sha(f"{n}-1.0-py3-none-any.whl") for n in ("common", "alpha", "beta", "gamma")
    }
    assert kept.locks == tuple(sorted(p.resolve() for p in (lock_a, lock_b, lock_c)))
    assert kept.gone == kept.forgotten == ()
    assert kept.leases == 0


def test_a_registered_lock_that_is_gone_is_reported_not_kept(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    lock_a = write_project_lock(tmp_path / "a", "alpha-1.0-py3-none-any.whl")
    lock_b = write_project_lock(tmp_path / "b", "beta-1.0-py3-none-any.whl")
    remember_lock(store, lock_a)
    remember_lock(store, lock_b)
    lock_a.unlink()

    kept = maintenance.keep_set(store, [])
    assert kept.sha256s == {sha("beta-1.0-py3-none-any.whl")}
    assert [r.path for r in kept.gone] == [lock_a.resolve()]
    assert kept.locks == (lock_b.resolve(),)
    assert len(registered_locks(store)) == 2  # computing the keep set forgets nothing


def test_an_unparseable_registered_lock_refuses_unless_forgotten(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    lock_a = write_project_lock(tmp_path / "a", "alpha-1.0-py3-none-any.whl")
    lock_b = write_project_lock(tmp_path / "b", "beta-1.0-py3-none-any.whl")
    remember_lock(store, lock_a)
    lock_a.write_text("this is [not toml")

    with pytest.raises(UsageError) as e:
        maintenance.keep_set(store, [lock_b])
    assert str(lock_a.resolve()) in e.value.message and "refusing to prune" in e.value.message
    assert e.value.hint is not None and f"--forget-lock {lock_a.resolve()}" in e.value.hint

    kept = maintenance.keep_set(store, [lock_b], forget=[lock_a])
    assert kept.sha256s == {sha("beta-1.0-py3-none-any.whl")}
    assert [r.path for r in kept.forgotten] == [lock_a.resolve()]


def test_a_given_unparseable_lock_is_its_own_error(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    bad = tmp_path / "pylock.toml"
    bad.write_text("[[packages]")
    with pytest.raises(UsageError, match="not a valid PEP 751 lock") as e:
        maintenance.keep_set(store, [bad])
    assert "refusing" not in e.value.message


def test_no_lock_at_all_refuses(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    lock_a = write_project_lock(tmp_path / "a", "alpha-1.0-py3-none-any.whl")
    remember_lock(store, lock_a)
    lock_a.unlink()
    with pytest.raises(UsageError, match="no lock to keep"):
        maintenance.keep_set(store, [])


def test_doomed_lists_unneeded_artifacts_and_orphan_trees_but_keeps_derived_ones(
    tmp_path: Path,
) -> None:
    store = ArtifactStore(tmp_path / "cache")
    keep_wheel = put(store, "keep-1.0-py3-none-any.whl")
    keep_sdist = put(store, "src-1.0.tar.gz")
    drop = put(store, "drop-1.0-py3-none-any.whl")
    gone = sha("never-stored")
    trees = {
        "kept unpacked": store.unpacked_path(keep_wheel),
        "kept built": store.built_dir(keep_sdist),
        "kept built unpacked": store.unpacked_path("built-" + keep_sdist),
        "dropped unpacked": store.unpacked_path(drop),
        "dropped built unpacked": store.unpacked_path("built-" + drop),
        "orphan unpacked": store.unpacked_path(gone),
        "orphan built": store.built_dir(gone),
        "orphan built unpacked": store.unpacked_path("built-" + gone),
    }
    for tree in trees.values():
        tree.mkdir(parents=True)
        (tree / "f").write_bytes(b"y" * 10)

    out = maintenance.doomed(store, frozenset({keep_wheel, keep_sdist}))
    assert [(d.name, d.size, d.is_artifact) for d in out] == [
        ("drop-1.0-py3-none-any.whl", 100, True),
        *sorted(
            (trees[k].relative_to(store.root).as_posix(), 10, False)
            for k in ("orphan unpacked", "orphan built", "orphan built unpacked")
        ),
    ]
    assert trees["dropped unpacked"] in out[0].paths
    assert trees["dropped built unpacked"] in out[0].paths


# -- leases ------------------------------------------------------------------------------------


def test_a_lease_is_visible_while_held_and_gone_after(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    with lease(store, ["b" * 64, "a" * 64, "a" * 64]):
        (record,) = (tmp_path / "cache" / "leases").glob("*.json")
        assert record.name.startswith(f"{os.getpid()}-")
        assert json.loads(record.read_text())["sha256"] == ["a" * 64, "b" * 64]
        found = read_leases(store, remove_stale=True)
        assert (found.sha256s, found.live, found.stale) == ({"a" * 64, "b" * 64}, 1, ())
    assert list((tmp_path / "cache" / "leases").iterdir()) == []
    assert read_leases(store, remove_stale=True).live == 0


def test_a_lease_whose_holder_is_gone_is_stale_and_removed(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    leases = tmp_path / "cache" / "leases"
    leases.mkdir(parents=True)
    record = leases / "999999-dead.json"
    record.write_text(json.dumps({"format": 1, "sha256": ["c" * 64]}))

    found = read_leases(store, remove_stale=False)
    assert (found.sha256s, found.live, found.stale) == (frozenset(), 0, (record,))
    assert record.exists()  # a dry run removes nothing
    read_leases(store, remove_stale=True)
    assert list(leases.iterdir()) == []


def test_a_lease_waits_for_a_running_prune(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    started = threading.Event()
    leased = threading.Event()
    done = threading.Event()

    def build() -> None:
        started.set()
        with lease(store, ["d" * 64]):
            leased.set()
            done.wait(10)

    with store.lock(registry.PRUNE_LOCK):
        thread = threading.Thread(target=build)
        thread.start()
        started.wait(5)
        time.sleep(0.5)
        assert not leased.is_set()
        assert not list((tmp_path / "cache" / "leases").glob("*.json"))
    assert leased.wait(10)
    assert read_leases(store, remove_stale=True).sha256s == {"d" * 64}
    done.set()
    thread.join(10)


def test_a_lease_on_a_cache_it_cannot_write_still_runs_the_block(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    ran = False
    with lease(ArtifactStore(blocker / "cache"), ["e" * 64]):
        ran = True
    assert ran


def test_keep_set_includes_what_live_leases_hold(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    lock_a = write_project_lock(tmp_path / "a", "alpha-1.0-py3-none-any.whl")
    with lease(store, ["f" * 64]):
        kept = maintenance.keep_set(store, [lock_a])
    assert kept.sha256s == {sha("alpha-1.0-py3-none-any.whl"), "f" * 64}
    assert kept.leases == 1
