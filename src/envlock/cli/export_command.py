"""``envlock export``: an environment's lock for other tools, as a hash-pinned requirements file
for one platform or as PEP 751 (whole, or one platform's packages)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from envlock.cli.options import (
    LockOpt,
    PythonOpt,
    QuietOpt,
    SpecOpt,
    VerboseOpt,
    set_verbosity,
)
from envlock.cli.output import info
from envlock.platforms import host_platform
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
    lock_file: LockOpt = None,
    python: PythonOpt = None,
    spec: SpecOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Export a lock as a requirements file with hashes, or as PEP 751 for other tools."""
    from envlock.actions import export as actions
    from envlock.actions.given_lock import check_lock_options
    from envlock.errors import UsageError
    from envlock.lock.foreign import ForeignScope
    from envlock.spec import load_spec

    set_verbosity(quiet, verbose)
    check_lock_options(lock_file, python, spec=spec, envs=[env])
    if fmt not in actions.FORMATS:
        raise UsageError(f"--format: must be {' or '.join(actions.FORMATS)}, not {fmt!r}")
    if lock_file is not None:
        # Another tool's lock: a requirements file is for one platform (default: this host's);
        # the whole PEP 751 file needs no platform.
        from envlock.spec_values import parse_platforms

        wanted = (platform,) if platform else () if fmt == "pylock" else (host_platform(),)
        parse_platforms(wanted, "--platform")
        if output is not None:
            actions.check_output(output, fmt, [lock_file])
        lock, raw = actions.read_lock(lock_file, ForeignScope(wanted, python))
    else:
        loaded = load_spec(locate_spec(spec))
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
