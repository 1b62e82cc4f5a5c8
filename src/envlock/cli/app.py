"""The ``envlock`` Typer app: commands are registered explicitly, and one place (``main``) turns
every failure into one line and an exit code (see :mod:`envlock.errors`)."""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer

from envlock import __version__
from envlock._urls import redact_text
from envlock.cli.output import Verbosity, stderr, stdout
from envlock.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EnvlockError

app = typer.Typer(
    name="envlock",
    help="Reproducible, auditable, relocatable Python environments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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


def _register() -> None:
    from envlock.cli import (
        audit_command,
        cache_commands,
        diff_command,
        environments,
        export_command,
        init_command,
        lock_command,
        run_command,
        snapshot_commands,
    )

    for module in (
        init_command,
        lock_command,
        diff_command,
        environments,
        run_command,
        snapshot_commands,
        audit_command,
        export_command,
        cache_commands,
    ):
        module.register(app)


def _interrupt(signum: int, frame: object) -> None:
    # Once: `timeout` and process managers send SIGTERM to the process and again to its group,
    # and a second one must not cut short the cleanup the first one started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _fail(message: str, hint: str | None, code: int) -> None:
    from rich.text import Text

    if Verbosity.level >= 1:
        import traceback

        traceback.print_exc()
    # EnvlockError messages are redacted when made; an OSError's or a bug's are not.
    stderr.print(Text.assemble(("error: ", "bold red"), redact_text(message)))
    if hint:
        stderr.print(Text(f"hint: {redact_text(hint)}", style="dim"))
    sys.exit(code)


def main() -> None:
    """Console-script entry point."""
    _register()
    # SIGTERM (docker stop, CI timeouts) unwinds like Ctrl-C, so temporary trees are removed.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()  # standalone: typer reports usage errors itself (exit 2)
    except SystemExit as exc:
        # Typer turns Ctrl-C into a silent exit 130; say what happened.
        if exc.code == EXIT_INTERRUPTED:
            stderr.print("interrupted")
        raise
    except EnvlockError as exc:
        _fail(exc.message, exc.hint, exc.exit_code)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except OSError as exc:
        # A full or read-only disk, a permission problem: what and where, in one line.
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}", None, 1)
    except Exception as exc:  # a bug: still one line, the traceback with -v
        _fail(
            f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            "run again with -v for the traceback, and please report it",
            EXIT_INTERNAL,
        )
