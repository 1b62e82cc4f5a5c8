"""What changed between two locks of one environment, per platform: packages added, removed,
upgraded, downgraded or moved to another index, the interpreter, and the red flag of a file whose
bytes changed under the same name and version. Pure: two :class:`LockFile` values in, lines out.

A file name on an index names immutable bytes (PyPI never lets a release file be replaced), so a
locked file that keeps its name but changes its sha256 means the index served something else:
that is the red flag. The same version locked from another file (a new wheel tag, a wheel that
replaced an sdist) is an ordinary change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from envlock.lock.lockfile import LockFile

__all__ = ["Change", "Entry", "LockDiff", "compare", "diff_locks", "render"]

# How lines are ordered within one package: the kinds of change.
_KINDS = ("tampered", "added", "removed", "upgraded", "downgraded", "changed")
_INTERPRETER = "python"  # the name the interpreter's changes go under


@dataclass(frozen=True)
class Change:
    """How one package (or the interpreter, ``name == "python"``) differs on a platform.

    ``kind`` is ``added``, ``removed``, ``upgraded``, ``downgraded``, ``changed`` (same version:
    another index or file, or the interpreter's build) or ``tampered`` (the red flag)."""

    name: str
    kind: str
    old: str | None = None
    new: str | None = None
    old_index: str | None = None
    new_index: str | None = None
    detail: str | None = None  # "file a.whl -> b.whl"; for a red flag, what changed

    @property
    def red_flag(self) -> bool:
        return self.kind == "tampered"

    def describe(self) -> str:
        """``+ name 1.0``, ``- name 1.0``, ``~ name 1.0 -> 2.0 (upgraded)``, ``! name 1.0: ...``."""
        if self.kind == "added":
            return f"+ {self.name} {self.new}"
        if self.kind == "removed":
            return f"- {self.name} {self.old}"
        notes = [self.kind] if self.kind in ("upgraded", "downgraded") else []
        if self.old_index != self.new_index:
            notes.append(f"index {self.old_index or 'unknown'} -> {self.new_index or 'unknown'}")
        if self.red_flag:
            text = f"! {self.name} {self.new}: same version, different files: {self.detail}"
        else:
            notes += [self.detail] if self.detail else []
            text = f"~ {self.name} " + (
                f"{self.old} -> {self.new}" if self.old != self.new else f"{self.new}"
            )
        return f"{text} ({'; '.join(notes)})" if notes else text

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "old": self.old,
            "new": self.new,
            "old_index": self.old_index,
            "new_index": self.new_index,
            "detail": self.detail,
            "red_flag": self.red_flag,
        }


@dataclass(frozen=True)
class Entry:
    """One change and the platforms it happened on (``everywhere``: on every platform)."""

    change: Change
    platforms: tuple[str, ...]
    everywhere: bool

    def line(self) -> str:
        text = self.change.describe()
        return text if self.everywhere else f"{text} ({', '.join(self.platforms)})"

    def to_dict(self) -> dict[str, Any]:
        return {**self.change.to_dict(), "platforms": list(self.platforms)}


@dataclass(frozen=True)
class LockDiff:
    """Every difference between two locks of one environment."""

    platforms: tuple[str, ...] = ()  # of either lock, sorted
    platforms_added: tuple[str, ...] = ()
    platforms_removed: tuple[str, ...] = ()
    changes: tuple[tuple[str, Change], ...] = ()  # (platform, change)

    @property
    def empty(self) -> bool:
        return not (self.platforms_added or self.platforms_removed or self.changes)

    @property
    def entries(self) -> tuple[Entry, ...]:
        """Changes grouped: one entry per change with the platforms it happened on; red flags
        first, then the interpreter, then packages by name."""
        # "Everywhere" is every platform both locks have: an added platform's packages are all
        # new there and name it. With no platform in common, it is every platform.
        scope = set(self.platforms) - set(self.platforms_added) - set(self.platforms_removed)
        scope = scope or set(self.platforms)
        where: dict[Change, list[str]] = {}
        for platform, change in self.changes:
            where.setdefault(change, []).append(platform)
        out = [
            Entry(change, tuple(sorted(platforms)), set(platforms) == scope)
            for change, platforms in where.items()
        ]
        out.sort(
            key=lambda e: (
                not e.change.red_flag,
                e.change.name != _INTERPRETER,
                e.change.name,
                _KINDS.index(e.change.kind),
                not e.everywhere,
                e.platforms,
                e.change.describe(),
            )
        )
        return tuple(out)

    @property
    def red_flags(self) -> tuple[Entry, ...]:
        """Files whose bytes changed for the same name and version."""
        return tuple(e for e in self.entries if e.change.red_flag)

    def to_dict(self) -> dict[str, Any]:
        """The diff for machines (JSON-ready, deterministic)."""
        return {
            "platforms": list(self.platforms),
            "platforms_added": list(self.platforms_added),
            "platforms_removed": list(self.platforms_removed),
            "changes": [e.to_dict() for e in self.entries],
            "red_flags": len(self.red_flags),
        }


def diff_locks(old: LockFile | None, new: LockFile) -> LockDiff:
    """What changed from ``old`` to ``new`` (no previous lock: nothing to list)."""
    return LockDiff() if old is None else compare(old, new)


def compare(old: LockFile | None, new: LockFile | None) -> LockDiff:
    """Like :func:`diff_locks`, where a missing lock is an empty one: everything in the other
    is added (or removed)."""
    before = _locked(old)
    after = _locked(new)
    platforms = tuple(sorted(set(before) | set(after)))
    changes: list[tuple[str, Change]] = []
    for platform in platforms:
        a, b = before.get(platform, _Platform()), after.get(platform, _Platform())
        interpreter = _interpreter_change(a.interpreter, b.interpreter)
        if interpreter is not None:
            changes.append((platform, interpreter))
        changes.extend((platform, c) for c in _package_changes(a.packages, b.packages))
    return LockDiff(
        platforms,
        tuple(p for p in platforms if p not in before),
        tuple(p for p in platforms if p not in after),
        tuple(changes),
    )


def render(diff: LockDiff) -> list[str]:
    """The diff as lines: red flags, platforms added or removed, then one line per change (the
    interpreter first, then packages by name); a change on only some platforms names them.
    Empty when nothing changed."""
    lines = [f"+ platform {p}" for p in diff.platforms_added]
    lines += [f"- platform {p}" for p in diff.platforms_removed]
    entries = diff.entries
    flags = [e.line() for e in entries if e.change.red_flag]
    return flags + lines + [e.line() for e in entries if not e.change.red_flag]


# -- one platform of one lock ---------------------------------------------------------------


@dataclass(frozen=True)
class _File:
    version: str
    index: str | None
    filename: str
    sha256: str


@dataclass(frozen=True)
class _Interpreter:
    label: str  # "CPython 3.11.9 (20250101)" or "3.11 (system interpreter)"
    version: str
    archive: str | None = None  # bundled: file name and sha256
    sha256: str | None = None


@dataclass(frozen=True)
class _Platform:
    interpreter: _Interpreter | None = None
    packages: Mapping[str, _File] | None = None


def _locked(lock: LockFile | None) -> dict[str, _Platform]:
    if lock is None:
        return {}
    out = {}
    for platform, target in lock.targets.items():
        bundled = lock.interpreter(platform)
        interpreter = (
            _Interpreter(bundled.label, bundled.version, bundled.name, bundled.sha256)
            if bundled is not None
            else _Interpreter(f"{target.python} (system interpreter)", target.python)
        )
        files: dict[str, _File] = {}
        for art in lock.artifacts(target):
            files.setdefault(art.name, _File(art.version, art.index, art.filename, art.sha256))
        out[platform] = _Platform(interpreter, files)
    return out


def _interpreter_change(old: _Interpreter | None, new: _Interpreter | None) -> Change | None:
    if old is None or new is None:
        return None  # a platform added or removed says so itself
    if old.label != new.label:
        # system <-> bundled is a change of kind, not of version ("3.11" vs "3.11.9")
        same_mode = (old.archive is None) == (new.archive is None)
        kind = _direction(old.version, new.version) if same_mode else "changed"
        return Change(_INTERPRETER, kind, old.label, new.label)
    if old.sha256 != new.sha256:
        detail = f"{new.archive} sha256 {_short(old.sha256)} -> {_short(new.sha256)}"
        return Change(_INTERPRETER, "tampered", old.label, new.label, detail=detail)
    return None


def _package_changes(
    old: Mapping[str, _File] | None, new: Mapping[str, _File] | None
) -> Sequence[Change]:
    old, new = old or {}, new or {}
    out = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        if a is None and b is not None:
            out.append(Change(name, "added", new=b.version, new_index=b.index))
            continue
        if b is None and a is not None:
            out.append(Change(name, "removed", old=a.version, old_index=a.index))
            continue
        assert a is not None and b is not None
        detail = None
        kind = _direction(a.version, b.version)
        if kind == "changed" and a.filename == b.filename and a.sha256 != b.sha256:
            kind = "tampered"
            detail = f"{b.filename} sha256 {_short(a.sha256)} -> {_short(b.sha256)}"
        elif kind == "changed" and a.filename != b.filename:
            detail = f"file {a.filename} -> {b.filename}"
        out.append(Change(name, kind, a.version, b.version, a.index, b.index, detail))
    return out


def _direction(old: str, new: str) -> str:
    try:
        a, b = Version(old), Version(new)
    except InvalidVersion:  # labels of an interpreter or a hand-edited lock: no order
        return "changed" if old == new else "upgraded"
    return "upgraded" if b > a else "downgraded" if b < a else "changed"


def _short(sha256: str | None) -> str:
    return f"{sha256[:12]}…" if sha256 else "none"
