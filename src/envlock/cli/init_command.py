"""``envlock init``: write a starter ``envlock.toml`` (optionally imported from a project)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from envlock.cli.options import QuietOpt, SpecOpt, VerboseOpt, set_verbosity
from envlock.cli.output import info, warn
from envlock.spec_file import init_target


def init(
    requirements: Annotated[
        Optional[list[str]],
        typer.Argument(
            help="PEP 508 requirements for `dependencies` (after any imported ones).",
            metavar="[REQ]...",
            show_default=False,
        ),
    ] = None,
    python: Annotated[
        Optional[str],
        typer.Option(
            "--python",
            help='Target CPython ("3.12" or "3.12.4"; default: the host\'s X.Y, or the '
            "oldest the imported requires-python allows).",
            show_default=False,
        ),
    ] = None,
    platform: Annotated[
        list[str],
        typer.Option(
            "--platform",
            "-p",
            help="Platform to lock for (repeatable; default: the host's and linux-64).",
        ),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    source: Annotated[
        Optional[Path],
        typer.Option(
            "--from",
            help="Import requirements.txt / requirements.in (pip syntax, -r includes) or "
            "pyproject.toml (dependencies; extras and dependency groups as environments).",
            show_default=False,
        ),
    ] = None,
    interpreter: Annotated[
        Optional[str],
        typer.Option(
            "--interpreter",
            help="'bundled' (the default, left commented) or 'system'.",
            show_default=False,
        ),
    ] = None,
    spec: SpecOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write a commented starter envlock.toml; never overwrites one."""
    from rich.markup import escape

    from envlock.actions.init import InitRequest, init_spec

    set_verbosity(quiet, verbose)
    spec = init_target(spec)
    result = init_spec(
        InitRequest(
            path=spec,
            python=python,
            platforms=tuple(platform),
            requirements=tuple(requirements or ()),
            source=source,
            interpreter=interpreter,
        )
    )
    for message in result.warnings:
        warn(message)
    v = result.values
    envs = f"; environments: {', '.join(v.environments)}" if v.environments else ""
    limits = f", {len(v.constraints)} constraints" if v.constraints else ""
    info(
        f"wrote {escape(str(spec))}: python {v.python}, platforms {', '.join(v.platforms)}, "
        f"{len(v.dependencies)} dependencies{limits}{envs}"
    )
    where = "" if spec == init_target(None) else f" --spec {escape(str(spec))}"
    info(f"next: review it, then run `envlock lock{where}`")


def register(app: typer.Typer) -> None:
    app.command()(init)
