"""Typer commands. Each parses its options, calls one service function and renders the result."""

from __future__ import annotations

import signal
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from envlock import __version__
from envlock.cli.output import Verbosity, cache_dir, debug, info, progress, stderr, stdout
from envlock.errors import EnvlockError
from envlock.events import Stats
from envlock.platforms import PlatformOptions, Target, describe
from envlock.spec import SPEC_FILENAME, load_spec, parse_platforms, parse_timestamp

app = typer.Typer(
    name="envlock",
    help="Reproducible, auditable, relocatable Python environments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SpecOpt = Annotated[Path, typer.Option("--spec", help="Path to envlock.toml.")]
CacheOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--cache-dir",
        help="Cache directory (default: ENVLOCK_CACHE_DIR or the user cache dir).",
        show_default=False,
    ),
]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="Only errors.")]
VerboseOpt = Annotated[bool, typer.Option("-v", "--verbose", help="More detail; tracebacks.")]


def _version(value: bool) -> None:
    if value:
        stdout.print(f"envlock {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Lock, snapshot and build Python environments for any platform."""


def set_verbosity(quiet: bool, verbose: bool) -> None:
    Verbosity.level = -1 if quiet else (1 if verbose else 0)


@app.command()
def lock(
    spec: SpecOpt = Path(SPEC_FILENAME),
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
            help="Let this package move to a newer version (repeatable).",
        ),
    ] = [],  # noqa: B006
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Exit 1 if a lock is missing or stale; write nothing, no network.",
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
    from envlock.lock.service import check_locks, lock_environments

    set_verbosity(quiet, verbose)
    loaded = load_spec(spec)
    envs = loaded.select(env)
    if platform:
        platforms = parse_platforms(platform, "--platform")
        envs = [e.with_platforms(platforms) for e in envs]
    if exclude_newer is not None:
        ts = parse_timestamp(exclude_newer, "--exclude-newer")
        envs = [e.with_exclude_newer(ts) for e in envs]
    if check:
        check_locks(envs)
        for e in envs:
            info(f"{e.lock_path.name} is up to date")
        return
    stats = Stats()

    def on_target(e: object, target: Target) -> None:
        stats.phase = f"resolving {getattr(e, 'label', '')} for {target.label}"
        if not stderr.is_terminal:
            info(stats.phase)

    with progress(stats):
        results = lock_environments(
            envs,
            cache_dir(cache),
            upgrade=upgrade,
            upgrade_packages=upgrade_package,
            stats=stats,
            on_target=on_target,
        )
    for r in results:
        per = ", ".join(f"{p}: {n}" for p, n in r.counts.items())
        state = "wrote" if r.changed else "unchanged"
        info(f"[bold]{r.env.label}[/bold]: {per} packages → {state} {r.path}")
        for name, version in r.versions.items():
            debug(f"  {name} {version}")
    info(f"[dim]{stats.projects} projects, {stats.metadata} metadata in {stats.elapsed:.1f}s[/dim]")


@app.command()
def platforms(
    glibc: Annotated[
        Optional[str], typer.Option(help="Show linux tags for this glibc floor.")
    ] = None,
) -> None:
    """List the target platforms envlock can lock for, with their wheel tags."""
    from rich.table import Table

    options = PlatformOptions()
    if glibc:
        major, _, minor = glibc.partition(".")
        options = PlatformOptions(glibc=(int(major), int(minor or 0)))
    table = Table("platform", "markers", "tag floor", "best tag (cp311)", "platform tags")
    for row in describe(options):
        table.add_row(row["platform"], row["markers"], row["floor"], row["best"], row["count"])
    stdout.print(table)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _register() -> None:
    # Imported for their @app.command side effects.
    from envlock.cli import cache_commands, environments  # noqa: F401


def main() -> None:
    """Console-script entry point: one place turns expected failures into exit codes."""
    _register()
    # SIGTERM (docker stop, CI timeouts) unwinds like Ctrl-C, so temporary trees are removed.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()  # standalone: typer reports usage errors itself (exit 2)
    except EnvlockError as exc:
        from rich.text import Text

        if Verbosity.level >= 1:
            traceback.print_exc()
        stderr.print(Text.assemble(("error: ", "bold red"), exc.message))
        if exc.hint:
            stderr.print(Text(f"hint: {exc.hint}", style="dim"))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)
