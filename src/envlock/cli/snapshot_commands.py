"""``envlock push`` and ``envlock pull``: the snapshot on object storage (see snapshot/)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from envlock.cli.environments import (
    EnvsOpt,
    ForceOpt,
    OneEnvOpt,
    PlatformsOpt,
    fetch_progress,
    open_store,
    report_fetch,
)
from envlock.cli.options import (
    CacheOpt,
    QuietOpt,
    SnapshotOpt,
    SpecOpt,
    VerboseOpt,
    set_verbosity,
)
from envlock.cli.output import debug, info, stdout
from envlock.spec_file import locate_spec

if TYPE_CHECKING:
    from envlock.actions.snapshot import Snapshot
    from envlock.cache.store import ArtifactStore
    from envlock.snapshot.remote import RemoteStore
    from envlock.snapshot.upload import Upload


def push(
    env: EnvsOpt = [],  # noqa: B006
    platform: PlatformsOpt = [],  # noqa: B006
    archives: Annotated[
        bool,
        typer.Option("--archives", help="Also build and upload each environment's archive."),
    ] = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Re-read and hash every object already in the snapshot (not just its size and "
            "ETag); replace any whose bytes are wrong.",
        ),
    ] = False,
    snapshot_url: SnapshotOpt = None,
    spec: SpecOpt = None,
    cache: CacheOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Upload every artifact the locks need (and, with --archives, their environments) to the
    snapshot; what is already there with the right bytes is skipped, a wrong object replaced."""
    from envlock.actions.snapshot import needed, select_snapshots, snapshot
    from envlock.snapshot.remote import open_snapshot
    from envlock.snapshot.upload import push as upload
    from envlock.snapshot.upload import uploads

    set_verbosity(quiet, verbose)
    spec = locate_spec(spec)
    snaps = select_snapshots(spec, env, platform)
    remote = open_snapshot(snapshot_url, snaps[0].env.snapshot, debug)
    store = open_store(cache)
    with fetch_progress() as events:  # what the local cache lacks comes from the indexes first
        fetched = snapshot(store, snaps, events)
    if fetched.downloaded:
        report_fetch(fetched)
    need = needed(snaps)
    todo = uploads(store, [(a.sha256, a.filename, a.size) for a in need.artifacts.values()])
    with fetch_progress("upload") as events:

        def done(u: Upload) -> None:
            events.advance(u.size)
            events.done(u)  # type: ignore[arg-type]  # reads only .filename

        result = upload(remote, todo, verify=verify, on_start=events.start, on_done=done)
    replaced = (
        f" ({len(result.replaced)} replaced: the snapshot held other bytes under their keys)"
        if result.replaced
        else ""
    )
    info(
        f"uploaded {len(result.uploaded)} artifact(s) ({result.bytes_uploaded / 1e6:.1f} MB)"
        f"{replaced}, {len(result.present)} already there → {remote.url}"
    )
    if archives:
        _push_archives(spec, snaps, store, remote, verify)


def _push_archives(
    spec: Path, snaps: Sequence[Snapshot], store: ArtifactStore, remote: RemoteStore, verify: bool
) -> None:
    from envlock import __version__
    from envlock.actions.snapshot import check_archive_buildable
    from envlock.cache.store import file_sha256
    from envlock.materialize.environment import MaterializeOptions, materialize
    from envlock.snapshot.layout import Manifest
    from envlock.snapshot.upload import push_archive

    for snap in snaps:
        for platform in snap.platforms or tuple(sorted(snap.lock.targets)):
            check_archive_buildable(spec, snap, platform)
            with tempfile.TemporaryDirectory(prefix="envlock-push-") as tmp:
                archive = Path(tmp) / f"{snap.env.label}-{platform}.tar.gz"
                options = MaterializeOptions(archive=archive, protected=(spec.parent,))
                materialize(snap.lock, platform, store, options)
                manifest = Manifest(
                    file_sha256(archive),
                    archive.stat().st_size,
                    snap.lock.sha256,
                    snap.env.label,
                    platform,
                    __version__,
                )
                found = push_archive(remote, archive, manifest, verify=verify)
            state = {
                "absent": "uploaded",
                "intact": "already there",
                "wrong": "replaced (the snapshot held other bytes)",
            }[found]
            info(
                f"{snap.env.label} for {platform}: archive {manifest.size / 1e6:.1f} MB "
                f"sha256:{manifest.sha256[:16]}… {state}"
            )


def pull(
    platform: Annotated[str, typer.Option("--platform", "-p", help="Locked platform to pull.")],
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Directory to unpack the environment into."),
    ] = None,
    env: OneEnvOpt = "default",
    force: ForceOpt = False,
    print_url: Annotated[
        bool,
        typer.Option(
            "--print-url",
            help="Print a pre-signed URL of the archive and its sha256 instead of pulling.",
        ),
    ] = False,
    expires: Annotated[
        int, typer.Option("--expires", help="Seconds a --print-url URL stays valid.")
    ] = 3600,
    snapshot_url: SnapshotOpt = None,
    spec: SpecOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Download the prebuilt environment of this lock from the snapshot (one object, checked
    against its manifest) and unpack it atomically into --output."""
    from envlock.errors import UsageError
    from envlock.lock import lockfile
    from envlock.snapshot.layout import archive_key
    from envlock.snapshot.pull import manifest_of
    from envlock.snapshot.pull import pull as download
    from envlock.snapshot.remote import open_snapshot
    from envlock.spec import load_spec
    from envlock.spec_values import parse_platforms

    set_verbosity(quiet, verbose)
    spec = locate_spec(spec)
    parse_platforms([platform], "--platform")
    target_env = load_spec(spec).select([env])[0]
    lock = lockfile.load(target_env.lock_path)
    lock.target(platform)  # a clear error for a platform the lock lacks
    remote = open_snapshot(snapshot_url, target_env.snapshot, debug)
    if print_url:
        manifest = manifest_of(remote, lock.sha256, target_env.label, platform)
        url = remote.sign(archive_key(lock.sha256, target_env.label, platform), expires)
        stdout.print(url, markup=False, highlight=False, soft_wrap=True)
        stdout.print(f"{manifest.sha256}  {platform}.tar.gz", markup=False, highlight=False)
        return
    if output is None:
        raise UsageError("give --output DIR (or --print-url)")
    manifest = download(
        remote,
        lock.sha256,
        target_env.label,
        platform,
        output,
        force=force,
        protected=(spec.parent.resolve(),),
    )
    info(
        f"{target_env.label} for {platform}: {manifest.size / 1e6:.1f} MB "
        f"sha256:{manifest.sha256[:16]}… → {output}"
    )


def register(app: typer.Typer) -> None:
    for command in (push, pull):
        app.command()(command)
