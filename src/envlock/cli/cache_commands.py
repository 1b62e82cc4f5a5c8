"""``envlock cache dir|info|verify|prune``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from envlock.cli.options import CacheOpt, QuietOpt, SpecOpt, set_verbosity
from envlock.cli.output import cache_dir, info, stdout, warn
from envlock.spec_file import locate_spec

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
    """Re-hash every artifact and unpacked file; report and drop the bad ones (exit 1 if any)."""
    from envlock.cache import maintenance
    from envlock.cache.store import ArtifactStore

    set_verbosity(quiet, False)
    bad, checked = maintenance.verify(ArtifactStore(cache_dir(cache)))
    for path in bad:
        stdout.print(f"corrupt, removed: {path}", markup=False)
    info(f"{checked} artifact(s) and unpacked tree(s) checked, {len(bad)} corrupt")
    if bad:
        raise typer.Exit(1)


@cache_app.command("prune")
def prune_(
    keep_lock: Annotated[
        list[Path],
        typer.Option(
            "--keep-lock",
            help="Also keep what this lock needs (repeatable). Default: every "
            "pylock*.toml beside the spec. Locks that used the cache are always kept.",
        ),
    ] = [],  # noqa: B006
    forget_lock: Annotated[
        list[Path],
        typer.Option(
            "--forget-lock",
            help="Drop this lock from the cache's registry and do not keep what it needs "
            "(repeatable).",
        ),
    ] = [],  # noqa: B006
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")
    ] = False,
    spec: SpecOpt = None,
    cache: CacheOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Remove every artifact that no lock using the cache and no running build needs."""
    from rich.markup import escape

    from envlock.cache import maintenance
    from envlock.cache.store import ArtifactStore

    set_verbosity(quiet, False)
    locks = keep_lock or _locks_beside_spec(spec)
    result = maintenance.prune(ArtifactStore(cache_dir(cache)), locks, forget_lock, dry_run=dry_run)
    for item in result.removed if dry_run else ():
        stdout.print(f"{item.name}  {_size(item.size)}", markup=False, highlight=False)
    kept = result.kept
    verb, freed = ("would remove", "would free") if dry_run else ("removed", "freed")
    summary = f"{verb} {result.artifacts} artifact(s)"
    if result.orphans:
        summary += f" and {result.orphans} orphaned tree(s)"
    if result.run_envs:
        summary += f" and {result.run_envs} `envlock run` environment(s) of old locks"
    summary += f", {freed} {result.freed / 1e6:.1f} MB; kept what {len(kept.locks)} lock(s) need"
    if kept.leases:
        summary += f" and {kept.leases} running build(s) use"
    info(summary)
    forgets = "would forget" if dry_run else "forgot"
    for reg in kept.gone:
        info(f"{forgets} {escape(str(reg.path))}: it no longer exists")
    for reg in kept.forgotten:
        info(f"{forgets} {escape(str(reg.path))} (--forget-lock)")
    registered = {reg.path for reg in kept.forgotten}
    for path in forget_lock:
        if path.expanduser().resolve() not in registered:
            warn(f"--forget-lock {escape(str(path))}: not a registered lock of this cache")


def _locks_beside_spec(spec: Path | None) -> list[Path]:
    """The locks beside the spec; none where there is no spec (the cache remembers its locks)."""
    from envlock.errors import SpecError

    try:
        return sorted(locate_spec(spec).parent.glob("pylock*.toml"))
    except SpecError:
        return []


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")
