"""CLI plumbing: consoles, verbosity, the cache location, live progress on a terminal."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platformdirs import user_cache_dir

from envlock._urls import redact_text
from envlock.progress import BuildProgress, LockProgress

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A rich Console made on first use: importing rich costs ~40 ms that a quiet, fast
    command (``materialize -q`` in a container build) should not pay."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def real(self) -> Console:
        """The Console itself (for rich objects that take one, e.g. Live, Progress)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


def real_console(console: Console) -> Console:
    """Unwrap a lazy console."""
    return console.real() if isinstance(console, _LazyConsole) else console


stderr: Console = _LazyConsole(stderr=True, highlight=False, soft_wrap=True)  # type: ignore[assignment]
stdout: Console = _LazyConsole(highlight=False, soft_wrap=True)  # type: ignore[assignment]


class Verbosity:
    level = 0  # -1 quiet, 0 normal, 1 verbose


def info(message: str) -> None:
    if Verbosity.level >= 0:
        stderr.print(redact_text(message))


def warn(message: str) -> None:
    """A warning: shown unless -q."""
    if Verbosity.level >= 0:
        from rich.text import Text

        stderr.print(Text.assemble(("warning: ", "yellow"), redact_text(message)))


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


@contextmanager
def progress(stats: LockProgress | BuildProgress) -> Iterator[None]:
    """A live status line on a terminal; nothing extra otherwise (callers print plain lines)."""
    if Verbosity.level < 0 or not stderr.is_terminal:
        yield
        return
    from rich.live import Live
    from rich.text import Text

    stop = threading.Event()
    with Live(
        Text(stats.status_line()),
        console=real_console(stderr),
        transient=True,
        refresh_per_second=8,
    ) as live:

        def tick() -> None:
            while not stop.wait(0.125):
                live.update(Text(stats.status_line()))

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
