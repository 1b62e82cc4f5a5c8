"""``envlock cache dir|info|verify|prune``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from envlock.cli.options import CacheOpt, QuietOpt, SpecOpt, set_verbosity
from envlock.cli.output import cache_dir, info, stdout
from envlock.errors import UsageError
from envlock.spec import SPEC_FILENAME

cache_app = typer.Typer(help="Inspect and maintain the local package cache.", no_args_is_help=True)


@cache_app.command("dir")
def dir_(cache: CacheOpt = None) -> None:
    """Print the cache directory."""
    stdout.print(str(cache_dir(cache)), markup=False, highlight=False)


@cache_app.command("info")
def info_(cache: CacheOpt = None) -> None:
    """Entries and bytes in the cache."""
    from envlock.cache import maintenance
    from envlock.cache.store import ArtifactStore

    root = cache_dir(cache)
    stats = maintenance.info(ArtifactStore(root))
    stdout.print(f"cache: {root}", markup=False)
    stdout.print(f"artifacts: {stats.artifacts} ({stats.artifact_bytes / 1e6:.1f} MB)")
    stdout.print(f"unpacked wheels: {stats.unpacked}")
    stdout.print(f"built from sdists: {stats.built}")
    stdout.print(f"total on disk: {stats.total_bytes / 1e6:.1f} MB")


@cache_app.command("verify")
def verify_(cache: CacheOpt = None, quiet: QuietOpt = False) -> None:
    """Re-hash every artifact; report and drop the bad ones (exit 1 if any)."""
    from envlock.cache import maintenance
    from envlock.cache.store import ArtifactStore

    set_verbosity(quiet, False)
    bad, checked = maintenance.verify(ArtifactStore(cache_dir(cache)))
    for path in bad:
        stdout.print(f"corrupt, removed: {path}", markup=False)
    info(f"{checked} artifact(s) checked, {len(bad)} corrupt")
    if bad:
        raise typer.Exit(1)


@cache_app.command("prune")
def prune_(
    keep_lock: Annotated[
        list[Path],
        typer.Option(
            "--keep-lock",
            help="Keep what this lock needs (repeatable). Default: every "
            "pylock*.toml beside the spec.",
        ),
    ] = [],  # noqa: B006
    spec: SpecOpt = Path(SPEC_FILENAME),
    cache: CacheOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Remove every artifact no given lock needs."""
    from envlock.cache import maintenance
    from envlock.cache.store import ArtifactStore
    from envlock.lock import lockfile

    set_verbosity(quiet, False)
    locks = keep_lock or sorted(spec.parent.glob("pylock*.toml"))
    if not locks:
        raise UsageError("no lock to keep: pass --keep-lock PATH (prune would empty the cache)")
    keep = {a.sha256 for path in locks for a in lockfile.load(path).all_artifacts()}
    removed, freed = maintenance.prune(ArtifactStore(cache_dir(cache)), keep)
    info(
        f"removed {removed} artifact(s), freed {freed / 1e6:.1f} MB; kept what "
        f"{len(locks)} lock(s) need"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")
