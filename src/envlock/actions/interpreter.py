"""The interpreter half of ``envlock lock``: which CPython a bundled environment carries.

The choice is pure (:func:`envlock.interpreters.plan`); this module adds the one thing that
needs the network, the archive sizes python-build-standalone's table does not list (a HEAD
request, through the mirror when one is set). What changed since the last lock is
:mod:`envlock.lock.diff`'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from envlock.errors import EnvlockError
from envlock.index.client import HttpClient
from envlock.index.transport import HttpSettings
from envlock.interpreters import mirror_url, plan, standalone_builds
from envlock.lock.model import LockedInterpreter
from envlock.progress import LockProgress
from envlock.spec import EnvironmentSpec

if TYPE_CHECKING:
    from envlock.actions.lock import LockOptions
    from envlock.lock.lockfile import LockFile


@dataclass(frozen=True)
class InterpreterLock:
    """What the lock records for one environment's interpreter (empty for "system")."""

    chosen: Mapping[str, LockedInterpreter] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def lock_interpreters(
    env: EnvironmentSpec,
    previous: LockFile | None,
    options: LockOptions,
    progress: LockProgress,
) -> InterpreterLock:
    old = _previous(previous)
    if env.interpreter != "bundled":
        return InterpreterLock()
    progress.enter(f"choosing the interpreter of {env.label}")
    upgrade = options.upgrade or "python" in options.upgrade_packages
    chosen = plan(env, old, standalone_builds, upgrade=upgrade)
    sized, warnings = _with_sizes(env, chosen)
    return InterpreterLock(sized, warnings)


def _previous(previous: LockFile | None) -> dict[str, LockedInterpreter]:
    if previous is None:
        return {}
    return {t.platform: t.interpreter for t in previous.envlock.targets if t.interpreter}


def _with_sizes(
    env: EnvironmentSpec, chosen: Mapping[str, LockedInterpreter]
) -> tuple[dict[str, LockedInterpreter], tuple[str, ...]]:
    """Ask the download host for the sizes the lock does not know yet (concurrently, no
    retries: a host that cannot be reached leaves the size out, with a warning)."""
    todo = {p: i for p, i in chosen.items() if i.size is None}
    if not todo:
        return dict(chosen), ()
    settings = replace(HttpSettings.from_env(), retries=0)
    out = dict(chosen)
    unknown: dict[str, str] = {}
    with HttpClient(insecure_hosts=env.insecure_hosts, settings=settings) as http:

        def size_of(interp: LockedInterpreter) -> int | str:
            try:
                size = http.head_size(mirror_url(interp.url, env.mirror))
            except EnvlockError as exc:
                return exc.message
            return size if size is not None else "the server gave no size"

        with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
            for platform, found in zip(todo, pool.map(size_of, todo.values()), strict=True):
                if isinstance(found, int):
                    out[platform] = replace(todo[platform], size=found)
                else:
                    unknown[todo[platform].name] = found
    if not unknown:
        return out, ()
    why = next(iter(unknown.values()))
    return out, (
        f"size of {len(unknown)} interpreter archive(s) not recorded ({why}); "
        "the sha256 still checks them",
    )
