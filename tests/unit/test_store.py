"""The artifact store on its own: keys that become paths, lock waits, leftovers, file modes."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from envlock._fs import UMASK
from envlock.cache.locking import LockWaitCancelled, lock_timeout
from envlock.cache.store import ArtifactStore
from envlock.errors import CacheBusyError, IntegrityError, UsageError

SHA = "ab" * 32


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


@pytest.mark.parametrize(
    "sha256",
    ["", "ab", "AB" * 32, "ab" * 32 + "\n", "ab" * 31 + "../", "g" * 64, "ab" * 33, "../" * 22],
)
def test_a_sha256_that_is_not_64_lowercase_hex_never_becomes_a_path(
    tmp_path: Path, sha256: str
) -> None:
    store = ArtifactStore(tmp_path)
    for make in (
        lambda: store.path(sha256, "a.whl"),
        lambda: store.unpacked_path(sha256),
        lambda: store.built_dir(sha256),
        lambda: store.remove(sha256),
    ):
        with pytest.raises(IntegrityError, match="not a sha256 digest"):
            make()


@pytest.mark.parametrize(
    "filename", ["", ".", "..", "../a.whl", "a/b.whl", "a\\b.whl", "a\x00.whl", "a\n.whl", "/a"]
)
def test_a_filename_that_is_not_one_plain_component_is_refused(
    tmp_path: Path, filename: str
) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(IntegrityError, match="not a plain file name"):
        store.path(SHA, filename)
    with pytest.raises(IntegrityError):
        store.ingest(_sha(b"x"), filename, [b"x"])
    assert not (tmp_path / "artifacts").exists()


def test_good_keys_make_the_expected_paths(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    assert store.path(SHA, "a-1.0.tar.gz") == tmp_path / "artifacts/sha256/ab" / SHA[2:] / (
        "a-1.0.tar.gz"
    )
    assert store.unpacked_path("built-" + SHA).parent == tmp_path / "unpacked/sha256/bu"
    with pytest.raises(IntegrityError, match="not a valid cache lock key"):
        store.lock("../../etc/x")


def test_making_a_store_does_no_io(tmp_path: Path) -> None:
    ArtifactStore(tmp_path / "a" / "b")
    ArtifactStore(Path("/proc/self/nonexistent"))
    assert not (tmp_path / "a").exists()


def test_a_root_that_is_a_file_or_under_one_is_a_one_line_usage_error(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    for root, needle in ((file, "is not a directory"), (file / "sub", f"is under {file}")):
        store = ArtifactStore(root)
        for use in (store.check, lambda s=store: s.get(SHA, "a.whl"), store.clean_leftovers):
            with pytest.raises(UsageError, match=needle) as info:
                use()
            assert str(root) in str(info.value) and "\n" not in str(info.value)


def test_lock_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVLOCK_LOCK_TIMEOUT", raising=False)
    assert lock_timeout() == 300
    monkeypatch.setenv("ENVLOCK_LOCK_TIMEOUT", "2.5")
    assert lock_timeout() == 2.5
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv("ENVLOCK_LOCK_TIMEOUT", bad)
        with pytest.raises(UsageError, match=f"ENVLOCK_LOCK_TIMEOUT .* got '{bad}'"):
            lock_timeout()


def _hold(store: ArtifactStore, key: str) -> tuple[threading.Event, threading.Thread]:
    """Hold ``lock(key)`` in another thread (a separate lock file descriptor, like another
    process) until the returned event is set."""
    held, done = threading.Event(), threading.Event()

    def run() -> None:
        with store.lock(key):
            held.set()
            done.wait(30)

    thread = threading.Thread(target=run)
    thread.start()
    assert held.wait(10)
    return done, thread


def test_a_held_lock_times_out_with_cache_busy(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    done, thread = _hold(store, SHA)
    try:
        start = time.monotonic()
        busy = f"cache lock {SHA} is held by another thread of this process for more than 0.5 s"
        with pytest.raises(CacheBusyError, match=busy) as info, store.lock(SHA, timeout=0.5):
            pass
        assert 0.4 < time.monotonic() - start < 3
        assert info.value.exit_code == 1 and "ENVLOCK_LOCK_TIMEOUT" in (info.value.hint or "")
        assert store.try_lock(SHA) is None
    finally:
        done.set()
        thread.join()
    lock = store.try_lock(SHA)
    assert lock is not None
    lock.release()


def test_a_lock_wait_stops_when_cancelled(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    done, thread = _hold(store, SHA)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    try:
        start = time.monotonic()
        with pytest.raises(LockWaitCancelled), store.lock(SHA, timeout=60, cancel=cancel):
            pass
        assert time.monotonic() - start < 2
    finally:
        done.set()
        thread.join()


def test_leftovers_go_when_their_lock_is_free_or_they_are_old(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with store.lock(SHA):
        dead_part = store.scratch_file(SHA)
        dead_dir = store.scratch_dir(SHA)
        (dead_dir / "x").write_text("x")
    assert dead_part.name.startswith(f"{SHA}@") and dead_part.name.endswith(".part")
    other = "cd" * 32
    done, thread = _hold(store, other)
    try:
        # The holder thread is mid-download: its file must survive any grace.
        live = store.tmpdir() / f"{other}@live.part"
        live.write_bytes(b"partial")
        _age(live, 10_000)
        fresh_unnamed = store.tmpdir() / "unpack-abc"
        fresh_unnamed.mkdir()
        old_unnamed = store.tmpdir() / "0123456789ab-xyz.part"
        old_unnamed.write_bytes(b"x")
        _age(old_unnamed, 7200)

        assert store.clean_leftovers() == 3
        assert sorted(p.name for p in store.tmpdir().iterdir()) == [live.name, "unpack-abc"]
    finally:
        done.set()
        thread.join()
    assert store.clean_leftovers() == 1  # its writer let go without removing it: gone
    assert [p.name for p in store.tmpdir().iterdir()] == ["unpack-abc"]
    assert store.clean_leftovers(grace=0) == 1
    assert store.clean_leftovers() == 0


def test_a_scratch_file_made_without_its_lock_is_left_to_the_grace_period(
    tmp_path: Path,
) -> None:
    store = ArtifactStore(tmp_path)
    path = store.scratch_file(SHA)
    assert "@" not in path.name
    assert store.clean_leftovers() == 0 and path.exists()


def test_stored_files_and_scratch_follow_the_umask(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    data = b"payload"
    with store.lock(_sha(data)):
        path = store.ingest(_sha(data), "a.whl", [data], size=len(data))
        scratch = store.scratch_dir(_sha(data))
    assert path.stat().st_mode & 0o777 == 0o666 & ~UMASK
    assert scratch.stat().st_mode & 0o777 == 0o777 & ~UMASK
    assert path.parent.stat().st_mode & 0o777 == 0o777 & ~UMASK
    assert store.tmpdir().stat().st_mode & 0o777 == 0o777 & ~UMASK
