"""CLI plumbing: consoles, verbosity, the cache location, live progress on a terminal."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from platformdirs import user_cache_dir
from rich.console import Console
from rich.live import Live
from rich.text import Text

from envlock.events import Stats

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


class Verbosity:
    level = 0  # -1 quiet, 0 normal, 1 verbose


def info(message: str) -> None:
    if Verbosity.level >= 0:
        stderr.print(message)


def debug(message: str) -> None:
    if Verbosity.level >= 1:
        stderr.print(f"[dim]{message}[/dim]")


def cache_dir(option: Path | None) -> Path:
    """``--cache-dir``, else ``ENVLOCK_CACHE_DIR``, else the platform's user cache dir."""
    if option is not None:
        return option.expanduser().resolve()
    env = os.environ.get("ENVLOCK_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return Path(user_cache_dir("envlock"))


def _status_line(stats: Stats) -> str:
    return (f"{stats.phase} · {stats.projects} projects · {stats.metadata} metadata · "
            f"{stats.candidates} candidates tried · {stats.elapsed:.1f}s")


@contextmanager
def progress(stats: Stats) -> Iterator[None]:
    """A live status line on a terminal; nothing extra otherwise (callers print plain lines)."""
    if Verbosity.level < 0 or not stderr.is_terminal:
        yield
        return
    stop = threading.Event()
    with Live(Text(_status_line(stats)), console=stderr, transient=True,
              refresh_per_second=8) as live:
        def tick() -> None:
            while not stop.wait(0.125):
                live.update(Text(_status_line(stats)))

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
