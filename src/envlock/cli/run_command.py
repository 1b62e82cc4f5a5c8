"""``envlock run``: check the lock, build the host's environment into the cache once, exec the
command in it. A warm run usually never gets here: :mod:`envlock.cli.fast` execs directly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envlock.actions import run as running
from envlock.actions.snapshot import Snapshot, snapshot
from envlock.cli.environments import (
    BuildFlags,
    OneEnvOpt,
    build_environment,
    fetch_progress,
    open_store,
    refuse_stale,
    remote_for,
    report_fetch,
)
from envlock.cli.options import (
    CacheOpt,
    FromSnapshotOpt,
    QuietOpt,
    SnapshotOpt,
    SpecOpt,
    VerboseOpt,
    set_verbosity,
)
from envlock.cli.output import info
from envlock.errors import EnvlockError, UsageError
from envlock.lock import lockfile
from envlock.lock.lockfile import LockFile
from envlock.platforms import host_platform
from envlock.spec import EnvironmentSpec, load_spec
from envlock.spec_file import locate_spec

if TYPE_CHECKING:
    from envlock.cache.store import ArtifactStore
    from envlock.snapshot.remote import RemoteStore

CommandArg = Annotated[
    list[str],
    typer.Argument(
        help="The command and its arguments, after `--`.",
        metavar="-- COMMAND [ARGS]...",
        show_default=False,
    ),
]


def run(
    command: CommandArg,
    env: OneEnvOpt = "default",
    frozen: Annotated[
        bool,
        typer.Option(
            "--frozen",
            help="Run the lock as it is, even if the spec changed since it was made (CI, "
            "production).",
        ),
    ] = False,
    from_snapshot: FromSnapshotOpt = False,
    snapshot_url: SnapshotOpt = None,
    spec: SpecOpt = None,
    cache: CacheOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run a command in this machine's environment of the lock (built once, then cached).

    The lock must match the spec (as `lock --check` says) unless --frozen; run never re-locks.

    Its scripts come first on PATH and VIRTUAL_ENV is set; the exit code is the command's.
    """
    set_verbosity(quiet, verbose)
    spec = locate_spec(spec)
    platform = host_platform()
    before = _stamp(spec, env, platform)
    target_env = load_spec(spec).select([env])[0]
    refuse_stale(target_env, platform, frozen)
    lock = lockfile.load(target_env.lock_path)
    if platform not in lock.targets:
        locked = ", ".join(sorted(lock.targets)) or "none"
        raise UsageError(
            f"{lock.path.name} has no environment for this machine's platform {platform} "
            f"(locked: {locked})",
            hint=f"add {platform} to the spec's platforms and run `envlock lock`",
        )
    store = open_store(cache)
    directory = running.env_dir(str(store.root), lock.sha256, platform)
    remote = remote_for(target_env, from_snapshot, snapshot_url)
    if not running.is_ready(directory, lock.sha256, platform):
        _build(spec, target_env, lock, platform, frozen, store, directory, remote)
    if not running.hold(directory):  # pruned between the build and now: once more
        _build(spec, target_env, lock, platform, frozen, store, directory, remote)
        if not running.hold(directory):
            raise EnvlockError(f"the environment {directory} keeps disappearing (cache prune?)")
    # The next warm run may skip the check (cli/fast.py) for exactly the files checked here:
    # the stamp is taken before and after, and both must name this lock.
    if not frozen and before is not None and before[1] == lock.sha256:
        after = _stamp(spec, env, platform)
        if after == before and before[0] == os.path.abspath(target_env.lock_path):
            running.remember_fresh(directory, before[2])
    running.exec_command(command, running.command_environment(directory))


def _stamp(spec: Path, env: str, platform: str) -> tuple[str, str, str] | None:
    try:
        return running.current_stamp(str(spec), env, platform)
    except OSError:
        return None


def _build(
    spec: Path,
    target_env: EnvironmentSpec,
    lock: LockFile,
    platform: str,
    frozen: bool,
    store: ArtifactStore,
    directory: str,
    remote: RemoteStore | None,
) -> None:
    """Fetch what is missing and build, once: concurrent runs of the same lock wait here, and
    materialize's staging rename means nobody sees a half-built tree."""
    if not store.writable:
        raise UsageError(
            f"the environment of {lock.path.name} for {platform} is not built yet, and the "
            f"cache {store.root} is read-only",
            hint="point --cache-dir (or ENVLOCK_CACHE_DIR) at a writable directory",
        )
    key = running.build_key(lock.sha256, platform)
    held = store.try_lock(key)
    if held is None:
        info(f"waiting for another `envlock run` to build the environment of {lock.path.name}")
        held = store.lock(key)
        held.acquire()
    try:
        if running.is_ready(directory, lock.sha256, platform):
            return  # built by the run we waited for
        with fetch_progress() as events:
            result = snapshot(store, [Snapshot(target_env, lock, (platform,))], events, remote)
        if result.downloaded:
            report_fetch(result)
        flags = BuildFlags(
            output=Path(directory),
            archive=None,
            base_python=None,
            force=False,
            compile=False,
            link_mode="hardlink",
            verify_files=False,
            frozen=frozen,
        )
        build_environment(spec, target_env, lock, platform, flags, store, replace_own=True)
    finally:
        held.release()


def register(app: typer.Typer) -> None:
    # Everything after the command's name is the command's, options included
    # (`envlock run python -c pass` works without `--` too).
    app.command(context_settings={"allow_interspersed_args": False})(run)
