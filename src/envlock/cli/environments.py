"""``envlock fetch``, ``materialize``, ``build`` and ``verify``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from envlock.actions.snapshot import fetch_hint, select_snapshots
from envlock.cli.options import (
    CacheOpt,
    FromSnapshotOpt,
    LockOpt,
    PythonOpt,
    QuietOpt,
    SnapshotOpt,
    SpecOpt,
    VerboseOpt,
    set_verbosity,
)
from envlock.cli.output import (
    Verbosity,
    cache_dir,
    debug,
    info,
    real_console,
    stderr,
    stdout,
    warn,
)
from envlock.cli.output import progress as live_progress
from envlock.errors import SpecError, StaleLockError, UsageError
from envlock.lock import lockfile
from envlock.lock.foreign import ForeignScope
from envlock.lock.lockfile import LockFile
from envlock.platforms import PLATFORMS, host_platform
from envlock.spec import EnvironmentSpec, load_spec
from envlock.spec_file import locate_spec
from envlock.spec_values import parse_platforms

if TYPE_CHECKING:  # the network stack and the cache are imported by the commands using them
    from envlock.cache.fetch import FetchEvents, FetchResult
    from envlock.cache.store import ArtifactStore
    from envlock.materialize.install import LinkMode
    from envlock.snapshot.remote import RemoteStore

EnvsOpt = Annotated[
    list[str],
    typer.Option(
        "--env", "-e", help="Environment ('default' = top level; repeatable). Default: all."
    ),
]
PlatformsOpt = Annotated[
    list[str],
    typer.Option(
        "--platform", "-p", help="Platform (repeatable). Default: every platform in the lock."
    ),
]
OneEnvOpt = Annotated[str, typer.Option("--env", "-e", help="Environment ('default' = top level).")]
OutputOpt = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", help="Build into this directory.", show_default=False),
]
ArchiveOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--archive",
        help="Build this reproducible .tar.gz instead of a directory.",
        show_default=False,
    ),
]
BasePythonOpt = Annotated[
    Optional[str],
    typer.Option(
        "--base-python",
        help="Interpreter path on the machine that will run the environment "
        "(default for the host platform: a matching Python found here).",
        show_default=False,
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Rebuild, replacing an existing output (only an envlock environment, an empty "
        "directory or an archive file is ever replaced).",
    ),
]
FrozenOpt = Annotated[
    bool,
    typer.Option(
        "--frozen",
        help="Build the lock as it is, even if the spec changed since it was made (CI, "
        "production).",
    ),
]
VerifyFilesOpt = Annotated[
    bool,
    typer.Option("--verify-files", help="Re-hash every cached file as it is installed (slower)."),
]
CompileOpt = Annotated[bool, typer.Option("--compile", help="Byte-compile .pyc files.")]
LinkOpt = Annotated[
    str, typer.Option("--link-mode", help="hardlink (default; copies across filesystems) or copy.")
]


@dataclass(frozen=True)
class BuildFlags:
    """The options ``materialize`` and ``build`` share, as one value."""

    output: Path | None
    archive: Path | None
    base_python: str | None
    force: bool
    compile: bool
    link_mode: str
    verify_files: bool
    frozen: bool


@contextmanager
def fetch_progress(verb: str = "fetch") -> Iterator[FetchEvents]:
    """A progress bar (files, bytes, rate, ETA) on a terminal; plain lines otherwise
    (``verb``: "fetch", or "upload" for push)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from envlock.cache.fetch import FetchEvents

    lock = threading.Lock()
    if Verbosity.level < 0 or not stderr.is_terminal:

        def announce(files: int, size: int) -> None:
            if files:
                info(f"{verb.rstrip('e')}ing {files} artifact(s), {size / 1e6:.1f} MB")

        yield FetchEvents(
            start=announce,
            done=lambda a: debug(f"  {verb}ed {a.filename}"),
            corrupt=lambda a: info(
                f"corrupt cache entry of {a.filename} removed; fetching it again"
            ),
            building=lambda a: info(f"building {a.filename} into a wheel"),
        )
        return
    progress = Progress(
        TextColumn(f"[bold]{verb}"),
        BarColumn(),
        TextColumn("{task.fields[files]}"),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=real_console(stderr),
        transient=True,
    )
    task = progress.add_task(verb, total=0, files="")
    counts = [0, 0]  # files done, files total

    def start(n: int, size: int) -> None:
        counts[1] = n
        progress.update(task, total=size, files=f"0/{n} files")

    def advance(n: int) -> None:
        with lock:
            progress.advance(task, n)

    def done(_art: object) -> None:
        with lock:
            counts[0] += 1
            progress.update(task, files=f"{counts[0]}/{counts[1]} files")

    with progress:
        yield FetchEvents(
            start=start,
            advance=advance,
            done=done,
            corrupt=lambda a: progress.console.print(
                f"corrupt cache entry of {a.filename} removed; fetching it again"
            ),
            building=lambda a: progress.console.print(f"building {a.filename} into a wheel"),
        )


def report_fetch(result: FetchResult) -> None:
    got = len(result.downloaded)
    info(
        f"{got} downloaded ({result.bytes_downloaded / 1e6:.1f} MB), "
        f"{len(result.cached)} already cached"
    )


def fetch(
    spec: SpecOpt = None,
    env: EnvsOpt = [],  # noqa: B006
    platform: PlatformsOpt = [],  # noqa: B006
    from_snapshot: FromSnapshotOpt = False,
    snapshot_url: SnapshotOpt = None,
    lock: LockOpt = None,
    python: PythonOpt = None,
    cache: CacheOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Download every artifact of the locks into the local cache (hash-checked)."""
    from envlock.actions.given_lock import check_lock_options, environment_of, load_given
    from envlock.actions.snapshot import Snapshot, snapshot

    set_verbosity(quiet, verbose)
    check_lock_options(lock, python, spec=spec, envs=env)
    if lock is not None:
        given = load_given(lock, platform, python)
        snaps = [Snapshot(environment_of(given), given, tuple(platform))]
    else:
        snaps = select_snapshots(locate_spec(spec), env, platform)
    from envlock.cache.store import ArtifactStore

    store = ArtifactStore(cache_dir(cache))
    remote = remote_for(snaps[0].env, from_snapshot, snapshot_url)
    with fetch_progress() as events:
        result = snapshot(store, snaps, events, remote)
    report_fetch(result)


def remote_for(env: EnvironmentSpec, from_snapshot: bool, option: str | None) -> RemoteStore | None:
    """The snapshot ``--from-snapshot`` takes artifacts from (None: the indexes)."""
    if not from_snapshot:
        return None
    from envlock.snapshot.remote import open_snapshot

    return open_snapshot(option, env.snapshot, debug)


def _check_link_mode(link_mode: str) -> LinkMode:
    if link_mode not in ("hardlink", "copy"):
        raise UsageError(f"--link-mode must be hardlink or copy, got {link_mode!r}")
    return "hardlink" if link_mode == "hardlink" else "copy"


def refuse_stale(env: EnvironmentSpec, platform: str, frozen: bool) -> None:
    """A lock that no longer matches the spec is not built unless ``--frozen`` says so."""
    from envlock.lock.staleness import staleness

    stale = staleness(env, env.targets)
    if not stale:
        return
    if frozen:
        info(f"[yellow]warning:[/yellow] {stale}; building the lock as it is (--frozen)")
        return
    raise StaleLockError(
        f"{stale}",
        hint="run `envlock lock` to update it, or pass --frozen to build the lock as it is",
    )


def build_environment(
    spec: Path,
    target_env: EnvironmentSpec,
    lock: LockFile,
    platform: str,
    flags: BuildFlags,
    store: ArtifactStore,
    *,
    replace_own: bool,
    hint: str | None = None,
) -> None:
    """Materialize ``lock`` for ``platform``; ``spec`` is the file it comes from (a spec, or a
    lock named with --lock), whose directory is never replaced; ``hint`` the fetch command."""
    from envlock.materialize.environment import MaterializeOptions
    from envlock.materialize.environment import materialize as run
    from envlock.progress import BuildProgress

    options = MaterializeOptions(
        output=flags.output,
        archive=flags.archive,
        base_python=flags.base_python,
        force=flags.force,
        replace_own=replace_own,
        compile_bytecode=flags.compile,
        link_mode=_check_link_mode(flags.link_mode),
        verify_files=flags.verify_files,
        protected=(spec.parent,),
        fetch_hint=hint or fetch_hint(spec, target_env, platform),
    )
    tracker = BuildProgress(on_phase=None if stderr.is_terminal else debug)
    with live_progress(tracker):
        result = run(lock, platform, store, options, tracker)
    where = result.output if result.output is not None else result.archive
    if result.note:
        warn(result.note)
    if result.up_to_date:
        info(
            f"[bold]{target_env.label}[/bold] for {platform}: {where} is up to date with "
            f"{lock.path.name} ({result.packages} packages)"
        )
        return
    info(
        f"[bold]{target_env.label}[/bold] for {platform}: {result.packages} packages → {where}"
        + (" (byte-compiled)" if result.compiled else "")
    )
    if result.archive_sha256:
        stdout.print(f"sha256:{result.archive_sha256}  {result.archive}")


def materialize(
    platform: Annotated[str, typer.Option("--platform", "-p", help="Locked platform to build.")],
    env: OneEnvOpt = "default",
    output: OutputOpt = None,
    archive: ArchiveOpt = None,
    base_python: BasePythonOpt = None,
    force: ForceOpt = False,
    frozen: FrozenOpt = False,
    compile: CompileOpt = False,
    link_mode: LinkOpt = "hardlink",
    verify_files: VerifyFilesOpt = False,
    lock: LockOpt = None,
    python: PythonOpt = None,
    spec: SpecOpt = None,
    cache: CacheOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Build an environment from the cache alone (never uses the network)."""
    from envlock.actions import given_lock

    set_verbosity(quiet, verbose)
    given_lock.check_lock_options(lock, python, spec=spec, envs=[env])
    parse_platforms([platform], "--platform")
    flags = BuildFlags(
        output, archive, base_python, force, compile, link_mode, verify_files, frozen
    )
    _check_link_mode(link_mode)
    if lock is not None:
        given = given_lock.load_given(lock, [platform], python, base_python)
        hint = given_lock.fetch_hint(given, platform, python)
        build_environment(
            given.path,
            given_lock.environment_of(given),
            given,
            platform,
            flags,
            open_store(cache),
            replace_own=False,
            hint=hint,
        )
        return
    spec = locate_spec(spec)
    target_env = load_spec(spec).select([env])[0]
    loaded = lockfile.load(target_env.lock_path)
    refuse_stale(target_env, platform, frozen)
    build_environment(
        spec, target_env, loaded, platform, flags, open_store(cache), replace_own=False
    )


def build(
    platform: Annotated[
        Optional[str],
        typer.Option("--platform", "-p", help="Locked platform to build (default: the host's)."),
    ] = None,
    env: OneEnvOpt = "default",
    output: OutputOpt = None,
    archive: ArchiveOpt = None,
    base_python: BasePythonOpt = None,
    force: ForceOpt = False,
    frozen: FrozenOpt = False,
    compile: CompileOpt = False,
    link_mode: LinkOpt = "hardlink",
    verify_files: VerifyFilesOpt = False,
    from_snapshot: FromSnapshotOpt = False,
    snapshot_url: SnapshotOpt = None,
    lock: LockOpt = None,
    python: PythonOpt = None,
    spec: SpecOpt = None,
    cache: CacheOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """`fetch` what is missing, then `materialize` (default output .envlock/envs/ENV-PLATFORM).

    Re-running on an unchanged lock is a no-op; a changed lock replaces the environment."""
    from envlock.actions import given_lock
    from envlock.actions.snapshot import Snapshot, snapshot

    set_verbosity(quiet, verbose)
    given_lock.check_lock_options(lock, python, spec=spec, envs=[env])
    platform = platform or host_platform()
    parse_platforms([platform], "--platform")
    _check_link_mode(link_mode)
    store = open_store(cache)
    hint = None
    if lock is not None:
        # A lock named on the command line is built as it is: no spec to be stale against.
        given = given_lock.load_given(lock, [platform], python, base_python)
        snaps = [Snapshot(given_lock.environment_of(given), given, (platform,))]
        spec = given.path  # the default output goes beside it, as beside a spec
        hint = given_lock.fetch_hint(given, platform, python)
    else:
        spec = locate_spec(spec)
        snaps = select_snapshots(spec, [env], [platform])
        refuse_stale(snaps[0].env, platform, frozen)
    remote = remote_for(snaps[0].env, from_snapshot, snapshot_url)
    with fetch_progress() as events:
        result = snapshot(store, snaps, events, remote)
    if result.downloaded:
        report_fetch(result)
    if output is None and archive is None:
        output = spec.parent / ".envlock" / "envs" / f"{snaps[0].env.label}-{platform}"
    flags = BuildFlags(
        output, archive, base_python, force, compile, link_mode, verify_files, frozen
    )
    build_environment(
        spec, snaps[0].env, snaps[0].lock, platform, flags, store, replace_own=True, hint=hint
    )


def verify(
    directory: Annotated[Path, typer.Argument(help="The environment to check.")],
    lock: Annotated[
        Optional[Path],
        typer.Option(
            "--lock",
            help="Lock to check against (default: the one it was built from, beside "
            "the spec, if present).",
            show_default=False,
        ),
    ] = None,
    spec: SpecOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Check an environment against its lock; exit 1 listing every difference."""
    from envlock.materialize.meta import read_meta
    from envlock.materialize.verify import verify as run

    set_verbosity(quiet, verbose)
    meta = read_meta(directory)
    if lock is None:
        try:
            beside = locate_spec(spec).parent
        except SpecError:  # no spec here: check against the list recorded at build time
            beside = None
        recorded = beside / (meta.lock or "pylock.toml") if beside else None
        lock = recorded if recorded is not None and recorded.is_file() else None
    # A lock another tool wrote is selected as the build did: for the environment's platform
    # and the Python it runs on.
    platforms = (meta.platform,) if meta.platform in PLATFORMS else ()
    scope = ForeignScope(platforms, None, meta.python or None)
    loaded = lockfile.load_named(lock, scope) if lock is not None else None
    report = run(directory, loaded)
    against = loaded.path.name if loaded else "the package list recorded at build time"
    if report.clean:
        info(f"{directory}: {report.packages} packages, {report.files} files match {against}")
        return
    for problem in report.problems:
        stdout.print(problem, markup=False)
    info(f"{directory}: {len(report.problems)} difference(s) from {against}")
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    for command in (fetch, materialize, build, verify):
        app.command()(command)


def open_store(cache: Path | None) -> ArtifactStore:
    from envlock.cache.store import ArtifactStore

    return ArtifactStore(cache_dir(cache))
