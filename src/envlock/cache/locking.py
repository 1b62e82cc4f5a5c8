"""Cross-process locks on cache keys: bounded waits (``ENVLOCK_LOCK_TIMEOUT``), cancellable,
naming the holder when they time out; a no-op on a read-only cache, which nobody can write."""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from envlock.errors import CacheBusyError, UsageError

if TYPE_CHECKING:
    from filelock import FileLock

    from envlock.cache.store import ArtifactStore

DEFAULT_LOCK_TIMEOUT = 300.0
_WAIT_SLICE = 0.2  # a lock wait looks at its cancel event this often


def lock_timeout() -> float:
    """``ENVLOCK_LOCK_TIMEOUT``: how long to wait for a cache lock another process holds."""
    raw = os.environ.get("ENVLOCK_LOCK_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < math.inf:  # NaN fails this too
        raise UsageError(
            f"ENVLOCK_LOCK_TIMEOUT must be a number of seconds (0 or more), got {raw!r}"
        )
    return value


class CacheLock:
    """A cross-process lock on one cache key; ``with`` waits for it at most ``timeout`` seconds.

    Without a lock file (a read-only cache, which nobody can write) it is a no-op."""

    def __init__(
        self,
        store: ArtifactStore,
        key: str,
        path: Path | None,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> None:
        self.key = key
        self.path = path
        self.timeout = timeout
        self._store = store
        self._cancel = cancel
        self._file: FileLock | None = None
        if path is not None:
            from filelock import FileLock

            self._file = FileLock(str(path))

    def acquire(self) -> None:
        """Wait for the lock: :class:`CacheBusyError` after ``timeout`` seconds,
        :class:`LockWaitCancelled` soon after ``cancel`` is set."""
        if self._file is None:
            return
        from filelock import Timeout

        end = time.monotonic() + self.timeout
        while True:
            if self._cancel is not None and self._cancel.is_set():
                raise LockWaitCancelled(self.key)
            left = end - time.monotonic()
            try:
                self._file.acquire(timeout=max(0.0, min(_WAIT_SLICE, left)))
                break
            except Timeout:
                if left <= 0:
                    raise self._busy() from None
            except OSError as exc:
                raise UsageError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        self._store._held_keys().add(self.key)

    def try_acquire(self) -> bool:
        """Take the lock if it is free right now (no waiting)."""
        if self._file is None:
            return True
        from filelock import Timeout

        try:
            self._file.acquire(timeout=0)
        except Timeout:
            return False
        except OSError as exc:
            raise UsageError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        self._store._held_keys().add(self.key)
        return True

    def release(self) -> None:
        if self._file is None:
            return
        self._store._held_keys().discard(self.key)
        self._file.release()

    def __enter__(self) -> CacheLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _busy(self) -> CacheBusyError:
        pid = _flock_holder(self.path) if self.path is not None else None
        who = "another envlock process"
        if pid == os.getpid():
            who = "another thread of this process"
        elif pid is not None:
            who += f" (pid {pid})"
        return CacheBusyError(
            f"the cache lock {self.key} is held by {who} for more than {self.timeout:g} s",
            hint="let that process finish, or set ENVLOCK_LOCK_TIMEOUT (seconds) to wait longer",
        )


class LockWaitCancelled(Exception):
    """A wait for a cache lock was given up because the run is being cancelled."""


def _flock_holder(path: Path) -> int | None:
    """The pid holding a ``flock`` on ``path``, from Linux's ``/proc/locks`` (else None)."""
    try:
        inode = path.stat().st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:123456 0 EOF"; "1: -> FLOCK …" is a waiter.
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].endswith(f":{inode}"):
            with contextlib.suppress(ValueError):
                return int(fields[4])
    return None
