"""``envlock diff``: what changed between two locks (default: each lock in git HEAD against the
working tree), per environment and platform; red flags (a file whose bytes changed for the same
name and version) in red. Exit 0, or with ``--exit-code`` 1 when anything changed (as git diff).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from envlock.cli.options import PythonOpt, QuietOpt, SpecOpt, VerboseOpt, set_verbosity
from envlock.cli.output import stdout, warn
from envlock.spec_file import locate_spec

if TYPE_CHECKING:
    from envlock.actions.diff import LockComparison
    from envlock.lock.foreign import ForeignScope

_STYLES = {"+": "green", "-": "red", "~": "yellow", "!": "bold red"}


def diff(
    locks: Annotated[
        Optional[list[Path]],
        typer.Argument(
            help="OLD NEW: compare two lock files. One lock: it in git --rev against the "
            "working tree. None: every environment's lock, in git against the working tree.",
            metavar="[OLD] [NEW]",
            show_default=False,
        ),
    ] = None,
    spec: SpecOpt = None,
    env: Annotated[
        list[str],
        typer.Option("--env", "-e", help="Only this environment (repeatable). Default: all."),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    rev: Annotated[
        str, typer.Option("--rev", help="The git revision to compare the working tree with.")
    ] = "HEAD",
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="text, or json for machines.")
    ] = "text",
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when anything changed (as git diff).")
    ] = False,
    platform: Annotated[
        list[str],
        typer.Option(
            "--platform",
            "-p",
            help="For locks another tool wrote (they record no platforms): compare what these "
            "platforms install (repeatable; default: this machine's).",
        ),
    ] = [],  # noqa: B006
    python: PythonOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show what changed between two locks: packages, versions, indexes, the interpreter."""
    from envlock.errors import UsageError

    set_verbosity(quiet, verbose)
    if fmt not in ("text", "json"):
        raise UsageError(f"--format: must be text or json, not {fmt!r}")
    comparisons = _compare(list(locks or ()), spec, env, rev, _scope(platform, python))
    if fmt == "json":
        payload = {"locks": [_as_dict(c) for c in comparisons]}
        sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    else:
        for comparison in comparisons:
            _show(comparison)
    flags = sum(len(c.diff.red_flags) for c in comparisons)
    if flags:
        warn(
            f"{flags} locked file(s) changed bytes without changing name or version: "
            "find out where they came from before using this lock"
        )
    if exit_code and any(not c.diff.empty for c in comparisons):
        raise typer.Exit(1)


def _scope(platforms: list[str], python: str | None) -> ForeignScope:
    """What a lock another tool wrote is compared on (envlock's own record their platforms)."""
    from envlock.lock.foreign import ForeignScope
    from envlock.platforms import host_platform
    from envlock.spec_values import parse_platforms

    chosen = parse_platforms(platforms, "--platform") if platforms else (host_platform(),)
    return ForeignScope(tuple(chosen), python)


def _compare(
    locks: list[Path], spec: Path | None, env: list[str], rev: str, scope: ForeignScope
) -> list[LockComparison]:
    from envlock.actions.diff import compare_files, compare_with_git
    from envlock.errors import UsageError

    if len(locks) > 2:
        raise UsageError(f"diff takes at most two locks, got {len(locks)}")
    if locks and env:
        raise UsageError("--env picks locks from the spec: give it without lock files")
    if len(locks) == 2:
        if rev != "HEAD":
            raise UsageError("--rev compares with git: give it one lock file or none")
        return [compare_files(locks[0], locks[1], scope)]
    if len(locks) == 1:
        return [compare_with_git(locks[0], rev, foreign=scope)]
    from envlock.actions.check import select_environments

    out = []
    for e in select_environments(locate_spec(spec), env, [], None):
        out.append(compare_with_git(e.lock_path, rev, f"{e.lock_path.name} ({e.label})"))
    return out


def _show(comparison: LockComparison) -> None:
    from rich.text import Text

    stdout.print(Text(comparison.header, style="bold"))
    if comparison.note:
        stdout.print(Text(f"  {comparison.note}", style="dim"))
    from envlock.lock.diff import render

    lines = render(comparison.diff)
    if not lines and comparison.diff.empty:
        stdout.print(Text("  no changes", style="dim"))
    for line in lines:
        stdout.print(Text(f"  {line}", style=_STYLES.get(line[:1], "")))


def _as_dict(comparison: LockComparison) -> dict[str, object]:
    return {
        "header": comparison.header,
        "old": comparison.old,
        "new": comparison.new,
        "note": comparison.note,
        **comparison.diff.to_dict(),
    }


def register(app: typer.Typer) -> None:
    app.command()(diff)
