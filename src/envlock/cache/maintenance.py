"""Cache upkeep: sizes, full re-verification, pruning to what the locks using it need."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from envlock.cache import registry
from envlock.cache.registry import RegisteredLock
from envlock.cache.store import ArtifactStore, file_sha256
from envlock.errors import EnvlockError, UsageError


@dataclass(frozen=True)
class CacheInfo:
    artifacts: int
    artifact_bytes: int
    unpacked: int
    built: int
    total_bytes: int


def _tree_bytes(root: Path) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:  # hard links count once
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _count(root: Path) -> int:
    return sum(1 for p in root.glob("*/*") if p.is_dir()) if root.is_dir() else 0


def info(store: ArtifactStore) -> CacheInfo:
    entries = list(store.entries())
    return CacheInfo(
        artifacts=len(entries),
        artifact_bytes=sum(e.size for e in entries),
        unpacked=_count(store.unpacked),
        built=_count(store.built),
        total_bytes=_tree_bytes(store.root) if store.root.is_dir() else 0,
    )


def verify(store: ArtifactStore) -> tuple[list[Path], int]:
    """Re-hash every artifact and every file of every unpacked tree; a corrupt artifact is
    removed (with its trees), a corrupt tree is dropped (it is unpacked again from its verified
    wheel when next needed). Returns (bad paths, artifacts and trees checked)."""
    from envlock.cache.interpreter import cached_interpreters, verify_interpreter
    from envlock.cache.unpack import cached_trees, verify_tree

    bad: list[Path] = []
    checked = 0
    for entry in store.entries():
        checked += 1
        if file_sha256(entry.path) != entry.sha256:
            bad.append(entry.path)
            store.remove(entry.sha256)
    for tree in cached_trees(store):
        checked += 1
        damaged = verify_tree(tree)
        if damaged:
            bad.extend(tree.root / rel for rel in damaged)
            shutil.rmtree(tree.root, ignore_errors=True)
    for interpreter in cached_interpreters(store):  # unpacked again from its archive when needed
        checked += 1
        damaged = verify_interpreter(interpreter)
        if damaged:
            bad.extend(interpreter.root / rel for rel in damaged)
            shutil.rmtree(interpreter.root, ignore_errors=True)
    return bad, checked


@dataclass(frozen=True)
class KeepSet:
    """What a prune must keep, and why."""

    sha256s: frozenset[str]
    locks: tuple[Path, ...]  # every lock whose artifacts are kept
    gone: tuple[RegisteredLock, ...]  # registered locks that no longer exist (to forget)
    forgotten: tuple[RegisteredLock, ...]  # registered locks dropped by request (--forget-lock)
    leases: int  # running builds whose artifacts are kept


@dataclass(frozen=True)
class Doomed:
    """One thing a prune removes: an artifact (with its unpacked and built forms), or a tree
    unpacked or built from an artifact that is no longer in the cache."""

    name: str  # the artifact's file name, or the orphan tree's path in the cache
    size: int
    paths: tuple[Path, ...]
    is_artifact: bool


@dataclass(frozen=True)
class PruneResult:
    removed: tuple[Doomed, ...]  # what went (or, in a dry run, would go)
    kept: KeepSet
    dry_run: bool

    @property
    def artifacts(self) -> int:
        return sum(1 for d in self.removed if d.is_artifact)

    @property
    def orphans(self) -> int:
        return sum(1 for d in self.removed if not d.is_artifact) - self.run_envs

    @property
    def run_envs(self) -> int:
        """Environments of ``envlock run`` whose lock contents no kept lock has."""
        return sum(1 for d in self.removed if d.name.startswith("envs/"))

    @property
    def freed(self) -> int:
        return sum(d.size for d in self.removed)


def _exists(path: Path) -> bool:
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True  # there but unreadable: loading it reports why, nothing is dropped on a guess
    return True


def _needs(path: Path, registered: bool) -> set[str]:
    from envlock.lock import lockfile

    try:
        lock = lockfile.load_named(path)
        if lock.foreign:  # another tool's lock (--lock): no targets recorded, keep every file
            return lock.file_hashes()
        return (
            {a.sha256 for a in lock.all_artifacts()}
            | {i.sha256 for i in lock.interpreters()}
            | {f.sha256 for f in lock.builds.files.values()}  # build packages of its sdists
        )
    except EnvlockError as exc:
        if not registered:
            raise
        raise UsageError(
            f"refusing to prune: {exc.message} (a lock registered as using this cache)",
            hint=f"fix or delete {path}, or pass --forget-lock {path} to prune without it",
        ) from None


def keep_set(
    store: ArtifactStore,
    locks: Sequence[Path],
    forget: Sequence[Path] = (),
    *,
    remove_stale_leases: bool = False,
) -> KeepSet:
    """Hashes that ``locks``, every registered lock that still exists and every running build
    need; ``forget`` excludes locks. Call with the prune lock held."""
    dropped = {p.expanduser().resolve() for p in forget}
    registered = registry.registered_locks(store)
    forgotten = tuple(r for r in registered if r.path in dropped)
    gone = tuple(r for r in registered if r.path not in dropped and not _exists(r.path))
    wanted: dict[Path, bool] = {}  # lock -> registered (a broken registered lock refuses)
    for reg in registered:
        if reg not in forgotten and reg not in gone:
            wanted[reg.path] = True
    for path in locks:
        key = path.expanduser().resolve()
        if key not in dropped:
            wanted.setdefault(key, False)
    if not wanted:
        raise UsageError("no lock to keep: pass --keep-lock PATH (prune would empty the cache)")
    keep: set[str] = set()
    for path, is_registered in wanted.items():
        keep |= _needs(path, is_registered)
    leases = registry.read_leases(store, remove_stale=remove_stale_leases)
    return KeepSet(
        frozenset(keep | leases.sha256s), tuple(sorted(wanted)), gone, forgotten, leases.live
    )


def _source(key: str) -> str:
    """The artifact an unpacked tree comes from: a built wheel's tree is keyed by its sdist."""
    return key.removeprefix("built-")


_TREE_KEY = re.compile(r"(?:built-)?[0-9a-f]{64}")  # a wheel's sha256, or built- and an sdist's


def _trees(root: Path) -> Iterator[tuple[str, Path]]:
    """(key, directory) of every tree under ``unpacked/sha256`` or ``built/sha256``."""
    if not root.is_dir():
        return
    for prefix in sorted(root.iterdir()):
        for tree in sorted(prefix.iterdir()) if prefix.is_dir() else ():
            key = prefix.name + tree.name
            if _TREE_KEY.fullmatch(key) and tree.is_dir():  # never remove a stray name
                yield key, tree


def doomed(store: ArtifactStore, keep: frozenset[str]) -> list[Doomed]:
    """What a prune keeping ``keep`` removes, artifacts first, each by name."""
    present = {e.sha256: e for e in store.entries()}
    out = [
        Doomed(
            e.path.name,
            e.size,
            (
                e.path.parent,
                store.unpacked_path(sha),
                store.unpacked_path("built-" + sha),
                store.built_dir(sha),
            ),
            True,
        )
        for sha, e in present.items()
        if sha not in keep
    ]
    for root in (store.unpacked, store.built):
        for key, tree in _trees(root):
            source = _source(key)
            if source not in keep and source not in present:
                name = tree.relative_to(store.root).as_posix()
                out.append(Doomed(name, _tree_bytes(tree), (tree,), False))
    return sorted(out, key=lambda d: (not d.is_artifact, d.name))


_RUN_ENV = re.compile(r"(?P<sha>[0-9a-f]{64})-[a-z0-9-]+")


def _lock_sha256s(locks: Sequence[Path]) -> set[str]:
    out = set()
    for path in locks:
        with contextlib.suppress(OSError):
            out.add(hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def stale_run_envs(
    store: ArtifactStore, kept_locks: Sequence[Path], held: list[int]
) -> list[Doomed]:
    """``envlock run`` environments (``envs/<lock sha256>-<platform>``) of lock contents no
    kept lock has any more; not those in use (a running command holds ``DIR.in-use``) or being
    built. Each is returned with its in-use file locked exclusively (its descriptor added to
    ``held``, for the caller to close when the environment is gone)."""
    from envlock.actions.run import ENVS_DIR, IN_USE_SUFFIX, build_key

    root = store.root / ENVS_DIR
    if not root.is_dir():
        return []
    current = _lock_sha256s(kept_locks)
    out = []
    for tree in sorted(root.iterdir()):
        match = _RUN_ENV.fullmatch(tree.name)
        if match is None or match["sha"] in current or not tree.is_dir() or tree.is_symlink():
            continue
        building = store.try_lock(build_key(match["sha"], tree.name[65:]))
        if building is None:
            continue
        building.release()
        in_use = tree.with_name(tree.name + IN_USE_SUFFIX)
        if not _unused(in_use, held):
            continue
        extra = tuple(tree.with_name(tree.name + s) for s in (".fresh", IN_USE_SUFFIX))
        name = tree.relative_to(store.root).as_posix()
        out.append(Doomed(name, _tree_bytes(tree), (tree, *extra), False))
    return out


def _unused(in_use: Path, held: list[int]) -> bool:
    """Whether no command runs in the environment (exclusive lock taken and kept, so none
    starts before it is removed)."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fd = os.open(in_use, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    held.append(fd)
    return True


def prune(
    store: ArtifactStore,
    locks: Sequence[Path],
    forget: Sequence[Path] = (),
    *,
    dry_run: bool = False,
) -> PruneResult:
    """Remove what no lock (given, or registered and still there) and no running build needs.

    Holds the cache's prune lock throughout, so no build's lease appears meanwhile."""
    held: list[int] = []
    try:
        with store.lock(registry.PRUNE_LOCK):
            kept = keep_set(store, locks, forget, remove_stale_leases=not dry_run)
            removed = (*doomed(store, kept.sha256s), *stale_run_envs(store, kept.locks, held))
            if not dry_run:
                for item in removed:
                    for path in item.paths:
                        if path.is_dir() and not path.is_symlink():
                            shutil.rmtree(path, ignore_errors=True)
                        else:
                            path.unlink(missing_ok=True)
                for reg in (*kept.gone, *kept.forgotten):
                    reg.entry.unlink(missing_ok=True)
                store.clean_leftovers()
    except TimeoutError:
        raise EnvlockError(
            f"the cache {store.root} is busy (another prune holds it)", hint="try again later"
        ) from None
    except OSError as exc:
        raise EnvlockError(
            f"cannot prune the cache {store.root}: {exc.strerror or exc}"
            + (f": {exc.filename}" if exc.filename else "")
        ) from None
    finally:
        for fd in held:  # after the trees went: a run waiting on one finds it gone
            os.close(fd)
    return PruneResult(removed, kept, dry_run)
