"""The ``envlock`` command line: parse arguments, call one function below, render with rich."""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point: ``lock --check`` first takes a path that imports no CLI
    framework (it runs on every commit); everything else goes through the Typer app."""
    from envlock.cli.fast import fast_check

    code = fast_check(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from envlock.cli.app import main as run

    run()


__all__ = ["main"]
