"""The ``envlock`` command line: parse arguments, call one function below, render with rich."""

from __future__ import annotations

from envlock.cli.app import app, main

__all__ = ["app", "main"]
