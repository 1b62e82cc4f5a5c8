"""Commands given ``--lock FILE`` (build, materialize, fetch, audit, export): the lock as it is,
envlock's or another tool's (uv, pip), with no envlock.toml, and the environment it stands for.

A lock named this way is used as it is: there is no spec to be stale against, its indexes are the
ones its packages name, and another tool's lock is selected for ``--platform`` (default: this
host's) and ``--python`` (default: from its ``requires-python``, else this host's).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from envlock.errors import UsageError
from envlock.lock import lockfile
from envlock.lock.foreign import ForeignScope
from envlock.lock.lockfile import LockFile
from envlock.platforms import host_platform
from envlock.spec import EnvironmentSpec
from envlock.spec_indexes import DEFAULT_INDEX_URL, Index
from envlock.spec_values import parse_platforms


def check_lock_options(
    lock: Path | None, python: str | None, *, spec: Path | None = None, envs: Sequence[str] = ()
) -> None:
    """``--lock`` names the lock instead of the spec; ``--python`` is for such a lock."""
    if lock is None:
        if python is not None:
            raise UsageError("--python is for a lock another tool wrote: give it with --lock FILE")
        return
    if spec is not None:
        raise UsageError("--lock uses a lock as it is, without a spec: drop --spec")
    if [e for e in envs if e != "default"]:
        raise UsageError("--env picks a lock from the spec: give --lock FILE or --env, not both")


def load_given(
    path: Path,
    platforms: Sequence[str] = (),
    python: str | None = None,
    base_python: str | None = None,
) -> LockFile:
    """The lock ``--lock`` names; another tool's is selected for ``platforms`` (default: this
    host's) and ``python`` (default: its ``requires-python``, else the version of
    ``base_python`` when that runs here, else this host's)."""
    wanted = tuple(parse_platforms(platforms, "--platform")) if platforms else (host_platform(),)
    lock = lockfile.load_named(path, ForeignScope(wanted, python, _version_of(base_python)))
    if python is not None and not lock.foreign:
        raise UsageError(
            f"--python is for a lock another tool wrote: {path.name} is envlock's, locked for "
            + ", ".join(f"{t.platform} (Python {t.python})" for t in lock.envlock.targets),
        )
    return lock


def _version_of(base_python: str | None) -> str | None:
    """The version of a ``--base-python`` that runs on this host (None: none given, or a path
    of another machine)."""
    if base_python is None or not os.path.isfile(base_python):
        return None
    from envlock.materialize.python import probe

    found = probe(base_python)
    return found["version"] if found is not None and found["impl"] == "cpython" else None


def environment_of(lock: LockFile) -> EnvironmentSpec:
    """The environment a lock named with ``--lock`` stands for: its platforms, the indexes its
    packages came from (PyPI when it names none: then they only build locked sdists), no
    requirements or policy of a spec."""
    urls = sorted({pkg.index for pkg in lock.pylock.packages if pkg.index})
    indexes = tuple(Index(url, url) for url in urls) or (Index("pypi", DEFAULT_INDEX_URL),)
    targets = list(lock.targets.values())
    return EnvironmentSpec(
        name=None,
        python=targets[0].python if targets else "",
        platforms=tuple(lock.targets),
        dependencies=(),
        indexes=indexes,
        spec_dir=lock.path.parent,
        interpreter="bundled" if lock.envlock.interpreter == "bundled" else "system",
    )


def fetch_hint(lock: LockFile, platform: str, python: str | None) -> str:
    """The ``envlock fetch`` command that gets what an offline build of ``lock`` misses."""
    hint = f"envlock fetch --lock {lock.path} --platform {platform}"
    return hint + (f" --python {python}" if python else "")
