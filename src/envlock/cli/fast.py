"""``envlock lock --check`` without the CLI framework: pre-commit and CI run it on every commit.

Typer alone costs more to import than the whole check, so the plain forms of the command
(``--spec``, ``--env``, ``--platform``, ``--exclude-newer``, ``--cache-dir``, ``-q``) are
handled here; anything else (``--online``, ``-v``, ``--help``, an unknown flag) returns None and
goes through the full CLI, which gives the same answers.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

_VALUED = {"--spec", "--env", "-e", "--platform", "-p", "--exclude-newer", "--cache-dir"}
_FLAGS = {"--check", "-q", "--quiet"}


def _parse(argv: Sequence[str]) -> dict[str, list[str]] | None:
    if not argv or argv[0] != "lock" or "--check" not in argv:
        return None
    found: dict[str, list[str]] = {}
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")
        if arg in _FLAGS:
            found.setdefault(arg, []).append("")
        elif name in _VALUED and eq:
            found.setdefault(name, []).append(value)
        elif arg in _VALUED and args:
            found.setdefault(arg, []).append(args.pop(0))
        else:
            return None  # not a form handled here
    return found


def fast_check(argv: Sequence[str]) -> int | None:
    """Run ``lock --check`` if ``argv`` is a plain form of it; the exit code, or None."""
    parsed = _parse(argv)
    if parsed is None:
        return None
    from envlock.errors import EnvlockError

    quiet = "-q" in parsed or "--quiet" in parsed
    try:
        from envlock.actions.check import check_locks, select_environments
        from envlock.spec import SPEC_FILENAME

        envs = select_environments(
            Path(parsed.get("--spec", [SPEC_FILENAME])[-1]),
            [*parsed.get("--env", []), *parsed.get("-e", [])],
            [*parsed.get("--platform", []), *parsed.get("-p", [])],
            parsed.get("--exclude-newer", [None])[-1],
        )
        check_locks(envs)
    except EnvlockError as exc:
        _print("error: ", exc.message, "bold red")
        if exc.hint:
            _print("", f"hint: {exc.hint}", "dim")
        return exc.exit_code
    except Exception:
        return None  # read-only so far: the full CLI reports it the one usual way
    if not quiet:
        for e in envs:
            sys.stderr.write(f"{e.lock_path.name} is up to date\n")
    return 0


def _print(prefix: str, message: str, style: str) -> None:
    if sys.stderr.isatty():  # a person is reading: the same colours as the full CLI
        from rich.text import Text

        from envlock.cli.output import stderr

        stderr.print(Text.assemble((prefix, style), message) if prefix else Text(message, style))
    else:
        sys.stderr.write(f"{prefix}{message}\n")
