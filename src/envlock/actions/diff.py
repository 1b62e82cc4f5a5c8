"""``envlock diff``: the locks to compare, read from files or from a git commit.

Git is asked exactly four things, each with ``git -C <lock's directory>``: the repository's top
level, whether the revision is a commit, the lock's size at that commit (``git cat-file -s``:
one over the lock cap is refused unread) and its bytes (``git show``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from envlock.errors import UsageError
from envlock.lock import lockfile
from envlock.lock.diff import LockDiff, compare
from envlock.lock.foreign import ForeignScope

_HINT = "or name the two locks to compare: envlock diff OLD NEW"


@dataclass(frozen=True)
class LockComparison:
    """Two versions of one lock and what changed between them."""

    header: str  # "pylock.toml (default): HEAD -> working tree"
    old: str  # where the old lock came from: "HEAD:pylock.toml", a path
    new: str
    diff: LockDiff
    note: str | None = None  # "not in HEAD: every package is new"


def compare_files(old: Path, new: Path, foreign: ForeignScope | None = None) -> LockComparison:
    """Two lock files on disk (each must exist and be a valid lock); a lock another tool wrote
    is compared on ``foreign``'s platforms."""
    diff = compare(lockfile.load_named(old, foreign), lockfile.load_named(new, foreign))
    return LockComparison(f"{old} -> {new}", str(old), str(new), diff)


def compare_with_git(
    path: Path, rev: str, title: str | None = None, foreign: ForeignScope | None = None
) -> LockComparison:
    """The lock at ``path`` as committed in ``rev`` against the working tree (``title`` names
    it in the header, default: the path); a lock missing on one side is an empty one."""
    root, relative = _locate(path)
    commit = _commit(root, rev)
    committed = None if commit is None else _show(root, commit, relative)
    old_label = f"{rev}:{relative}"
    old = None if committed is None else lockfile.parse(Path(old_label), committed, foreign)
    current = lockfile.read(path, foreign)
    note = None
    if old is None and current is None:
        note = f"not locked: neither in {rev} nor in the working tree"
    elif old is None:
        note = f"not in {rev}: everything is new"
    elif current is None:
        note = "deleted from the working tree"
    header = f"{title or path}: {rev} -> working tree"
    return LockComparison(header, old_label, str(path), compare(old, current), note)


def _git(root: Path, args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    # GIT_* variables of an enclosing git command (a hook) would point git at another
    # repository than the lock's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["LC_ALL"] = "C"
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, env=env, check=False
        )
    except FileNotFoundError:
        raise UsageError(
            "git is not installed: cannot read the committed lock", hint=_HINT
        ) from None


def _locate(path: Path) -> tuple[Path, str]:
    """The repository's top level and ``path`` relative to it, in git's form."""
    directory = path.resolve().parent
    if not directory.is_dir():
        raise UsageError(f"{path.parent}: no such directory")
    found = _git(directory, ["rev-parse", "--show-toplevel"])
    if found.returncode != 0:
        raise UsageError(f"{path.parent}: not in a git repository", hint=_HINT)
    root = Path(os.fsdecode(found.stdout.strip())).resolve()
    try:
        relative = path.resolve().relative_to(root)
    except ValueError:  # a lock reached through a link out of the repository
        raise UsageError(f"{path}: outside the git repository {root}", hint=_HINT) from None
    return root, relative.as_posix()


def _commit(root: Path, rev: str) -> str | None:
    """The commit ``rev`` names; None in a repository with no commit yet (``HEAD``)."""
    if rev.startswith("-"):
        raise UsageError(f"--rev: not a revision: {rev!r}")
    found = _git(root, ["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"])
    if found.returncode == 0:
        return found.stdout.decode().strip()
    if rev == "HEAD" and _git(root, ["rev-parse", "--verify", "--quiet", "HEAD"]).returncode:
        return None  # nothing committed yet: every lock is new
    raise UsageError(f"--rev: {rev!r} is not a commit in {root}")


def _show(root: Path, commit: str, relative: str) -> bytes | None:
    """The file's bytes at ``commit``; None when that commit does not have it."""
    listed = _git(root, ["ls-tree", "--name-only", "-z", commit, "--", relative])
    if listed.returncode != 0 or not listed.stdout.strip(b"\0"):
        return None
    sized = _git(root, ["cat-file", "-s", f"{commit}:{relative}"])
    size = sized.stdout.decode(errors="replace").strip()
    if sized.returncode == 0 and size.isdigit() and int(size) > lockfile.MAX_LOCK_BYTES:
        raise lockfile.too_large(f"{commit[:12]}:{relative}", int(size))
    shown = _git(root, ["show", f"{commit}:{relative}"])
    if shown.returncode != 0:
        reason = shown.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(f"git show {commit[:12]}:{relative}: {reason[0] if reason else 'failed'}")
    return shown.stdout
