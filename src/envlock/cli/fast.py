"""``envlock lock --check`` and a warm ``envlock run`` without the CLI framework: pre-commit and
CI run the first on every commit, and the second should cost little more than Python's start.

Typer alone costs more to import than the whole check, so the plain forms of the command
(``--spec``, ``--env``, ``--platform``, ``--exclude-newer``, ``--cache-dir``, ``-q``) are
handled here; anything else (``--online``, ``-v``, ``--help``, an unknown flag) returns None and
goes through the full CLI, which gives the same answers. ``run`` is handled here only when its
environment is built and a full run found the lock fresh for exactly the current files (see
:mod:`envlock.actions.run`); it imports nothing but ``hashlib`` on the way to ``exec``.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's: importing typing costs a warm `run` ~15 ms
if TYPE_CHECKING:
    from collections.abc import Sequence

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
    """Run ``lock --check`` if ``argv`` is a plain form of it (or exec a warm ``run``); the exit
    code, or None."""
    if argv and argv[0] == "run":
        return fast_run(argv[1:])
    parsed = _parse(argv)
    if parsed is None:
        return None
    from envlock.errors import EnvlockError

    quiet = "-q" in parsed or "--quiet" in parsed
    try:
        from envlock.actions.check import check_locks, select_environments
        from envlock.spec_file import locate_spec

        spec = parsed.get("--spec", [None])[-1]
        envs = select_environments(
            locate_spec(spec),
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


# --from-snapshot/--snapshot only say where a build would fetch from: a warm run builds nothing.
_RUN_VALUED = {"--spec", "--env", "-e", "--cache-dir", "--snapshot"}
_RUN_FLAGS = {"--frozen", "-q", "--quiet", "--from-snapshot"}


def _parse_run(argv: Sequence[str]) -> tuple[dict[str, str], list[str]] | None:
    """``run``'s options and the command (after ``--`` or the first plain word), or None."""
    found: dict[str, str] = {}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--":
            break
        name, eq, value = arg.partition("=")
        if arg in _RUN_FLAGS:
            found[arg] = ""
        elif name in _RUN_VALUED and eq and name.startswith("--"):
            found[name] = value
        elif arg in _RUN_VALUED and args:
            found["--env" if arg == "-e" else arg] = args.pop(0)
        elif arg.startswith("-"):
            return None  # -v, --help, an unknown flag: the full CLI
        else:
            args.insert(0, arg)
            break
    return (found, args) if args else None


def fast_run(argv: Sequence[str]) -> int | None:
    """Exec a command in its already built, already checked environment; None (the full CLI
    checks, builds and runs) when that is not the case. Returns only on failure to start."""
    parsed = _parse_run(argv)
    if parsed is None:
        return None
    options, command = parsed
    from envlock.actions.run import command_environment, exec_command, hold, warm_environment
    from envlock.errors import EnvlockError
    from envlock.spec_file import locate_spec

    try:
        spec = locate_spec(options.get("--spec"))
    except EnvlockError:
        return None  # the full CLI says so
    directory = warm_environment(
        str(spec),
        options.get("--env", "default"),
        "--frozen" in options,
        options.get("--cache-dir"),
    )
    if directory is None or not hold(directory):
        return None

    try:
        exec_command(command, command_environment(directory))
    except EnvlockError as exc:
        _print("error: ", exc.message, "bold red")
        if exc.hint:
            _print("", f"hint: {exc.hint}", "dim")
        return exc.exit_code


def _print(prefix: str, message: str, style: str) -> None:
    if sys.stderr.isatty():  # a person is reading: the same colours as the full CLI
        from rich.text import Text

        from envlock.cli.output import stderr

        stderr.print(Text.assemble((prefix, style), message) if prefix else Text(message, style))
    else:
        sys.stderr.write(f"{prefix}{message}\n")
