"""Whether a lock still matches its spec: the offline half of ``lock --check``. No network."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from envlock.errors import StaleLockError, UsageError
from envlock.lock import lockfile
from envlock.platforms import Target
from envlock.spec import EnvironmentSpec

if TYPE_CHECKING:
    from envlock.interpreters import InterpreterBuild
    from envlock.lock.lockfile import LockFile


def staleness(env: EnvironmentSpec, targets: Sequence[Target]) -> str | None:
    """Why the lock of ``env`` does not match the spec, or None when it is fresh; a missing lock
    is no reason but the one MissingLockError every command gives."""
    path = env.lock_path
    try:
        lock = lockfile.read(path)
    except UsageError as exc:
        return str(exc)
    if lock is None:
        raise lockfile.missing(path)
    if lock.envlock.interpreter != env.interpreter:
        return (
            f"{path.name} is stale: the spec asks for the {env.interpreter} interpreter, the "
            f"lock has the {lock.envlock.interpreter} one"
        )
    if lock.envlock.spec_hash != env.content_hash():
        return (
            f"{path.name} is stale: the spec of environment '{env.label}' changed "
            "since it was locked"
        )
    locked = {t.platform for t in lock.envlock.targets}
    wanted = {t.platform for t in targets}
    if wanted - locked:
        return f"{path.name} is stale: platform(s) {', '.join(sorted(wanted - locked))} not locked"
    if locked - wanted:
        return (
            f"{path.name} is stale: locks platform(s) {', '.join(sorted(locked - wanted))} "
            "the spec no longer asks for"
        )
    if lock.envlock.interpreter == "bundled":
        return _interpreter_staleness(env, lock)
    return None


def _interpreter_staleness(env: EnvironmentSpec, lock: LockFile) -> str | None:
    """Each locked interpreter must be the archive the spec gives its platform: the spec hash
    cannot tell, as the url and sha256 live only in the lock."""
    # Imported here: a system lock's check stays light (pbs-installer's table is read only
    # for a platform without [interpreter-sources]).
    from envlock.interpreters import standalone_builds, unexpected

    table: list[InterpreterBuild] = []

    def builds() -> list[InterpreterBuild]:
        if not table:
            table.extend(standalone_builds())
        return table

    for target in lock.envlock.targets:
        if target.interpreter is None:
            continue
        reason = unexpected(env, target.platform, target.interpreter, builds)
        if reason is not None:
            return (
                f"{lock.path.name} is stale: the interpreter of {target.platform} is not the "
                f"one the spec gives it ({reason})"
            )
    return None


def check(env: EnvironmentSpec, targets: Sequence[Target]) -> None:
    """Raise StaleLockError (exit 1) when the lock is missing or stale."""
    reason = staleness(env, targets)
    if reason is not None:
        raise StaleLockError(reason, hint="run `envlock lock` and commit the result")
