"""Who uses a shared cache: the locks that fetched, locked or built with it, and the builds
running now (leases), so ``cache prune`` keeps what any of them needs.

``registry/locks/<sha256 of the lock's path>.json`` holds one lock each (concurrent writers never
touch each other's file); ``leases/<pid>-<random>.json`` lists the hashes one running build uses,
alive while its ``.lock`` beside it is held.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envlock._fs import atomic_write_bytes
from envlock.errors import EnvlockError

if TYPE_CHECKING:
    from filelock import FileLock

    from envlock.cache.store import ArtifactStore

FORMAT = 1
PRUNE_LOCK = "prune"


@dataclass(frozen=True)
class RegisteredLock:
    """A lock file that used the cache, as its registry entry records it."""

    path: Path
    last_used: datetime
    entry: Path  # the registry file itself


@dataclass(frozen=True)
class Leases:
    """What running builds use: the union of their hashes, and how many builds hold one."""

    sha256s: frozenset[str]
    live: int
    stale: tuple[Path, ...]  # lease files whose holder is gone (removed unless a dry run)


def registry_dir(store: ArtifactStore) -> Path:
    return store.root / "registry" / "locks"


def leases_dir(store: ArtifactStore) -> Path:
    return store.root / "leases"


def _canonical(lock_path: Path) -> Path:
    # One entry per file whatever the spelling (relative, through a symlinked directory).
    return lock_path.expanduser().resolve()


def entry_path(store: ArtifactStore, lock_path: Path) -> Path:
    """The registry file of ``lock_path``."""
    key = hashlib.sha256(str(_canonical(lock_path)).encode("utf-8")).hexdigest()
    return registry_dir(store) / f"{key}.json"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def remember_lock(store: ArtifactStore, lock_path: Path) -> None:
    """Record that ``lock_path`` uses the cache (never fails: a read-only cache just skips)."""
    try:
        path = _canonical(lock_path)
        record = {"format": FORMAT, "path": str(path), "last-used": _now()}
        data = (json.dumps(record, indent=2) + "\n").encode("utf-8")
        atomic_write_bytes(entry_path(store, path), data)
    except OSError as exc:
        # The command itself worked; losing a registry refresh only makes prune less informed.
        import logging

        logging.getLogger(__name__).debug("not registering %s: %s", lock_path, exc)


def forget_lock(store: ArtifactStore, lock_path: Path) -> bool:
    """Drop ``lock_path``'s entry; False when it had none."""
    try:
        entry_path(store, lock_path).unlink()
    except FileNotFoundError:
        return False
    return True


def _unreadable(entry: Path, reason: str) -> EnvlockError:
    return EnvlockError(
        f"cache registry entry {entry} is unreadable ({reason}), so nothing was pruned",
        hint="delete that file; the lock it named is registered again on its next lock or fetch",
    )


def parse_entry(entry: Path, raw: bytes) -> RegisteredLock:
    """One registry file's bytes -> :class:`RegisteredLock` (an error names ``entry``)."""
    try:
        data: Any = json.loads(raw.decode("utf-8"))
        path = Path(data["path"])
        when = datetime.strptime(data["last-used"], "%Y-%m-%dT%H:%M:%SZ")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise _unreadable(entry, type(exc).__name__) from None
    if not path.is_absolute():
        raise _unreadable(entry, f"path {str(path)!r} is not absolute")
    return RegisteredLock(path, when.replace(tzinfo=timezone.utc), entry)


def registered_locks(store: ArtifactStore) -> list[RegisteredLock]:
    """Every registered lock, by path; an entry that cannot be read is an error, not a skip
    (skipping it would prune what its lock needs)."""
    directory = registry_dir(store)
    if not directory.is_dir():
        return []
    out = []
    for entry in sorted(directory.glob("*.json")):
        try:
            raw = entry.read_bytes()
        except FileNotFoundError:
            continue  # forgotten meanwhile
        except OSError as exc:
            raise _unreadable(entry, exc.strerror or str(exc)) from None
        out.append(parse_entry(entry, raw))
    return sorted(out, key=lambda r: str(r.path))


# -- leases ---------------------------------------------------------------------------------


def _file_lock(path: Path) -> FileLock:
    from filelock import FileLock

    return FileLock(str(path))


@contextlib.contextmanager
def lease(store: ArtifactStore, sha256s: Iterable[str]) -> Iterator[None]:
    """Keep ``sha256s`` (and what is unpacked or built from them) out of every prune while the
    block runs. A cache where the lease cannot be written (read-only) runs the block unleased."""
    from filelock import Timeout

    hashes = sorted(set(sha256s))
    directory = leases_dir(store)
    name = f"{os.getpid()}-{os.urandom(8).hex()}.json"
    record = directory / name
    holder: FileLock | None = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # Under the prune lock, so a lease never appears halfway through a prune's reading.
        with store.lock(PRUNE_LOCK):
            lock = _file_lock(directory / f"{name}.lock")
            lock.acquire()  # held before the record exists: a prune never sees it unheld
            holder = lock
            data = {"format": FORMAT, "pid": os.getpid(), "created": _now(), "sha256": hashes}
            atomic_write_bytes(record, (json.dumps(data) + "\n").encode("utf-8"))
    except Timeout:
        raise  # a lock timeout is not a read-only cache: building unleased could lose files
    except OSError as exc:
        import logging

        logging.getLogger(__name__).debug("building without a lease: %s", exc)
        _drop(record, holder)
        holder = None
    try:
        yield
    finally:
        if holder is not None:
            _drop(record, holder)


def _drop(record: Path, holder: FileLock | None) -> None:
    with contextlib.suppress(OSError):
        record.unlink(missing_ok=True)
    if holder is not None:
        holder.release()
        with contextlib.suppress(OSError):
            Path(holder.lock_file).unlink(missing_ok=True)


def read_leases(store: ArtifactStore, *, remove_stale: bool) -> Leases:
    """The hashes of every running build's lease. Call with the prune lock held (no lease can
    appear meanwhile). A lease whose lock can be taken lost its holder (killed): it is stale."""
    from filelock import Timeout

    directory = leases_dir(store)
    if not directory.is_dir():
        return Leases(frozenset(), 0, ())
    hashes: set[str] = set()
    live = 0
    stale = []
    for record in sorted(directory.glob("*.json")):
        lock = _file_lock(record.with_name(record.name + ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            live += 1
            hashes.update(_lease_hashes(record))
            continue
        stale.append(record)
        if remove_stale:
            _drop(record, lock)
        else:
            lock.release()
    return Leases(frozenset(hashes), live, tuple(stale))


def _lease_hashes(record: Path) -> list[str]:
    try:
        data: Any = json.loads(record.read_bytes())
        hashes = data["sha256"]
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
            raise TypeError("sha256 is not a list of strings")
    except FileNotFoundError:
        return []  # the build ended while we looked
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EnvlockError(
            f"lease {record} of a running build is unreadable ({type(exc).__name__}), so "
            "nothing was pruned",
            hint="wait for the build to finish, or delete the file if no build is running",
        ) from None
    return hashes
