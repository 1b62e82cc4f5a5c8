"""Cache upkeep: sizes, full re-verification, pruning to what some locks need."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from envlock.cache.store import ArtifactStore, file_sha256


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
    """Re-hash every artifact; corrupt ones are removed. Returns (bad paths, checked)."""
    bad = []
    checked = 0
    for entry in store.entries():
        checked += 1
        if file_sha256(entry.path) != entry.sha256:
            bad.append(entry.path)
            store.remove(entry.sha256)
    return bad, checked


def prune(store: ArtifactStore, keep: set[str]) -> tuple[int, int]:
    """Remove artifacts whose sha256 is not in ``keep``; returns (removed, bytes freed)."""
    removed = freed = 0
    for entry in list(store.entries()):
        if entry.sha256 in keep:
            continue
        freed += entry.size
        store.remove(entry.sha256)
        removed += 1
    _clean_tmp(store.root / "tmp")
    return removed, freed


def _clean_tmp(tmp: Path, max_age: float = 3600.0) -> None:
    """Leftovers of killed processes; recent entries may belong to a running fetch."""
    if not tmp.is_dir():
        return
    now = time.time()
    for path in tmp.iterdir():
        try:
            if now - path.lstat().st_mtime < max_age:
                continue
        except FileNotFoundError:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
