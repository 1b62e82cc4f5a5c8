"""Options shared by several commands, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from envlock.cli.output import Verbosity

SpecOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--spec",
        help="The spec: a file, or a directory holding envlock.toml (default: envlock.toml in "
        "the current directory or the nearest parent that has one).",
        show_default=False,
    ),
]
CacheOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--cache-dir",
        help="Cache directory (default: ENVLOCK_CACHE_DIR or the user cache dir).",
        show_default=False,
    ),
]
SnapshotOpt = Annotated[
    Optional[str],
    typer.Option(
        "--snapshot",
        help="Snapshot URL (s3://, gs://, az://, file://; default: ENVLOCK_SNAPSHOT_URL or the "
        "spec's `snapshot`).",
        show_default=False,
    ),
]
FromSnapshotOpt = Annotated[
    bool,
    typer.Option(
        "--from-snapshot", help="Take every artifact from the snapshot, never from an index."
    ),
]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="Only errors.")]
VerboseOpt = Annotated[bool, typer.Option("-v", "--verbose", help="More detail; tracebacks.")]
LockOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--lock",
        help="Use this PEP 751 lock as it is, envlock's or another tool's (uv, pip), without "
        "envlock.toml.",
        show_default=False,
    ),
]
PythonOpt = Annotated[
    Optional[str],
    typer.Option(
        "--python",
        help="For a --lock another tool wrote: the Python to select its packages for (default: "
        "its requires-python, else --base-python's, else this host's).",
        show_default=False,
    ),
]


def set_verbosity(quiet: bool, verbose: bool) -> None:
    Verbosity.level = -1 if quiet else (1 if verbose else 0)
