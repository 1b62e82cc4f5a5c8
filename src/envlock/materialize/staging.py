"""Staging an environment beside its output and swapping it into place; a killed build's
leftovers (``.NAME.tmp-PID-…``, ``.NAME.old-PID``) cleaned up by the next one."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from envlock.errors import UsageError

_LEFTOVER = re.compile(r"\.(?:tmp|old)-(\d+)(?:-|$)")


def remove_leftovers(dest: Path, grace: float = 3600.0) -> None:
    """Staging and backup trees of ``dest`` (``.NAME.tmp-PID-…``, ``.NAME.old-PID``) left by a
    killed build: removed when their process is gone, or after ``grace`` seconds."""
    prefix = f".{dest.name}."
    try:
        names = [n for n in os.listdir(dest.parent) if n.startswith(prefix)]
    except OSError:
        return
    now = time.time()
    for name in names:
        match = _LEFTOVER.match(name[len(prefix) - 1 :])
        if match is None:
            continue
        path = dest.parent / name
        try:
            old = now - path.lstat().st_mtime > grace
        except OSError:
            continue
        if old or not _alive(int(match.group(1))):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def replace_dir(staging: Path, output: Path) -> None:
    if not (output.exists() or output.is_symlink()):
        try:
            os.replace(staging, output)
        except OSError:  # another process put something there meanwhile
            raise UsageError(
                f"{output} appeared while building", hint="pass --force to replace it"
            ) from None
        return
    old = output.with_name(f".{output.name}.old-{os.getpid()}")
    os.replace(output, old)
    try:
        os.replace(staging, output)
    except BaseException:
        os.replace(old, output)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()
