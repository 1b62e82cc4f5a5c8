"""``envlock export``: an environment's lock for other tools, as a hash-pinned requirements file
for one platform or as PEP 751 (whole, or one platform's packages)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from envlock.cli.options import QuietOpt, SpecOpt, VerboseOpt, set_verbosity
from envlock.cli.output import info
from envlock.spec_file import locate_spec


def export(
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="requirements (pip install --require-hashes --no-deps -r) or pylock (PEP 751).",
        ),
    ] = "requirements",
    platform: Annotated[
        Optional[str],
        typer.Option(
            "--platform",
            "-p",
            help="requirements: the platform (default: this machine's, or the lock's only one). "
            "pylock: keep only this platform's packages (default: the whole lock).",
            show_default=False,
        ),
    ] = None,
    env: Annotated[
        str, typer.Option("--env", "-e", help="Environment ('default' = top level).")
    ] = "default",
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output",
            "-o",
            help="Write this file (atomically) instead of stdout.",
            show_default=False,
        ),
    ] = None,
    spec: SpecOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Export a lock as a requirements file with hashes, or as PEP 751 for other tools."""
    from envlock.actions import export as actions
    from envlock.errors import UsageError
    from envlock.spec import load_spec

    set_verbosity(quiet, verbose)
    spec = locate_spec(spec)
    if fmt not in actions.FORMATS:
        raise UsageError(f"--format: must be {' or '.join(actions.FORMATS)}, not {fmt!r}")
    loaded = load_spec(spec)
    chosen = loaded.select([env])[0]
    if output is not None:
        actions.check_output(output, fmt, [e.lock_path for e in loaded.select([])])
    lock, raw = actions.read_lock(chosen.lock_path)
    if fmt == "requirements":
        where = actions.choose_platform(lock, platform)
        data = actions.requirements(lock, where).encode()
    else:
        data = actions.pylock(lock, raw, platform)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    from envlock._fs import atomic_write_bytes

    atomic_write_bytes(output, data)
    info(f"wrote {output}")


def register(app: typer.Typer) -> None:
    app.command()(export)
