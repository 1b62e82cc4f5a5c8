"""``envlock lock`` and ``envlock platforms``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from envlock.cli.options import CacheOpt, QuietOpt, SpecOpt, VerboseOpt, set_verbosity
from envlock.cli.output import cache_dir, debug, info, progress, stderr, stdout, warn
from envlock.spec import EnvironmentSpec
from envlock.spec_file import locate_spec

if TYPE_CHECKING:
    from envlock.actions.lock import LockResult


def lock(
    spec: SpecOpt = None,
    platform: Annotated[
        list[str],
        typer.Option(
            "--platform",
            "-p",
            help="Lock for this platform (repeatable); replaces the spec's list.",
        ),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    env: Annotated[
        list[str],
        typer.Option(
            "--env",
            "-e",
            help="Only this environment ('default' = top level; repeatable).",
        ),
    ] = [],  # noqa: B006
    upgrade: Annotated[
        bool, typer.Option("--upgrade", "-U", help="Ignore versions already in the lock.")
    ] = False,
    upgrade_package: Annotated[
        list[str],
        typer.Option(
            "--upgrade-package",
            "-P",
            help="Let this package move to a newer version or another index (repeatable).",
        ),
    ] = [],  # noqa: B006
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Exit 1 if a lock is missing or stale; write nothing, no network.",
        ),
    ] = False,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="With --check: also confirm every locked file with its recorded index.",
        ),
    ] = False,
    exclude_newer: Annotated[
        Optional[str],
        typer.Option(
            "--exclude-newer",
            help="Ignore files uploaded after this RFC 3339 timestamp.",
        ),
    ] = None,
    cache: CacheOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Resolve the spec for its target platforms and write PEP 751 pylock files."""
    from envlock.errors import UsageError

    set_verbosity(quiet, verbose)
    spec = locate_spec(spec)
    if online and not check:
        raise UsageError("--online only goes with --check")
    from envlock.actions.check import select_environments

    envs = select_environments(spec, env, platform, exclude_newer)
    if check:
        _check(envs, online, cache)
        return
    from packaging.utils import canonicalize_name

    from envlock.actions.lock import LockOptions, lock_environments
    from envlock.progress import LockProgress

    tracker = LockProgress(on_phase=None if stderr.is_terminal else info)
    options = LockOptions(
        cache_dir(cache), upgrade, frozenset(canonicalize_name(n) for n in upgrade_package)
    )
    with progress(tracker):
        results = lock_environments(envs, options, tracker)
    for result in results:
        _summary(result)
    info(
        f"[dim]{tracker.projects} projects, {tracker.metadata} metadata in "
        f"{tracker.elapsed:.1f}s[/dim]"
    )


def _check(envs: list[EnvironmentSpec], online: bool, cache: Path | None) -> None:
    from envlock.actions.check import check_locks

    if not online:
        check_locks(envs)
        for e in envs:
            info(f"{e.lock_path.name} is up to date")
        return
    from envlock.actions.check import check_online, require_clean

    report = check_online(envs, cache_dir(cache))
    for problem in report.problems:
        stdout.print(problem, markup=False, highlight=False)
    require_clean(report)
    info(f"{report.files} locked file(s) match their indexes")


def _summary(r: LockResult) -> None:
    per = ", ".join(f"{p}: {n}" for p, n in r.counts.items())
    state = "wrote" if r.changed else "unchanged"
    info(f"[bold]{r.env.label}[/bold]: {per} packages → {state} {r.path}")
    labels = sorted({i.label for i in r.interpreters.values()})
    if labels:
        info(f"  interpreter: {' | '.join(labels)} (bundled)")
    for warning in r.warnings:
        warn(warning)
    _skipped(r)
    if r.changes:
        info("  changes since the last lock:")
        from rich.markup import escape

        for line in r.changes:
            # "!": a file whose bytes changed under the same name and version.
            shown = f"[bold red]{escape(line)}[/bold red]" if line.startswith("!") else escape(line)
            info(f"    {shown}")
    if r.splits:
        info("  versions that differ between platforms:")
        for split in r.splits:
            by_version: dict[str, list[str]] = {}
            for plat, version in split.versions.items():
                by_version.setdefault(version, []).append(plat)
            shown = " | ".join(f"{v} ({', '.join(p)})" for v, p in by_version.items())
            info(f"    {split.name} {shown}")
            for plat, reason in split.reasons.items():
                info(f"      {plat}: {reason}")
    for name, version in r.versions.items():
        debug(f"  {name} {version}")


def _skipped(r: LockResult) -> None:
    """Packages locked from their sdist, and those older than the newest version in range:
    which, and why."""
    from rich.markup import escape

    if r.from_source:
        info("  built from source (at fetch time, once):")
        for line in r.from_source:
            info(f"    {escape(line)}")
    causes = [s for s in r.skipped if not s.kept]
    if causes:
        info("  older than the newest in range:")
        for s in causes:
            where = f" ({', '.join(s.platforms)})" if len(s.platforms) < len(r.counts) else ""
            info(f"    {escape(s.describe())}{where}")
    kept = sorted({s.name for s in r.skipped if s.kept})
    if kept:
        n = len(kept)
        info(
            f"  {n} package{'s' if n > 1 else ''} kept at the locked version though newer "
            "ones are in range (--upgrade to move them)"
        )
        debug(f"    {', '.join(kept)}")


def platforms(
    glibc: Annotated[
        Optional[str], typer.Option(help="Show linux tags for this glibc floor.")
    ] = None,
) -> None:
    """List the target platforms envlock can lock for, with their wheel tags."""
    from rich.table import Table

    from envlock.errors import SpecError
    from envlock.platforms import PlatformOptions, describe
    from envlock.spec_values import platform_options_from

    options = PlatformOptions()
    if glibc is not None:
        try:
            options = platform_options_from({"glibc": glibc}, Path("--glibc"))
        except SpecError:
            raise SpecError(f'--glibc: must be a version like "2.28", got {glibc!r}') from None
    table = Table("platform", "markers", "tag floor", "best tag (cp311)", "platform tags")
    for row in describe(options):
        table.add_row(row["platform"], row["markers"], row["floor"], row["best"], row["count"])
    stdout.print(table)


def register(app: typer.Typer) -> None:
    app.command()(lock)
    app.command()(platforms)
