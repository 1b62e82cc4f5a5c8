"""CLI plumbing: consoles, verbosity, the cache location, live progress on a terminal."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
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


# Off a terminal (CI logs), how often a long run says what it is doing, in seconds
# (ENVLOCK_PROGRESS_INTERVAL overrides; 0 turns it off).
PLAIN_EVERY = 10.0


def _plain_every() -> float:
    value = os.environ.get("ENVLOCK_PROGRESS_INTERVAL", "")
    try:
        seconds = float(value) if value.strip() else PLAIN_EVERY
    except ValueError:
        return PLAIN_EVERY  # a bad value is not worth failing a lock over
    return seconds if seconds == seconds and seconds >= 0 else PLAIN_EVERY  # NaN, negative


@contextmanager
def progress(stats: LockProgress | BuildProgress) -> Iterator[None]:
    """A live status line on a terminal; off one, the status as a plain line every
    ``PLAIN_EVERY`` seconds while the work lasts (a long search in a CI log is never silent)."""
    if Verbosity.level < 0:
        yield
        return
    if not stderr.is_terminal:
        every = _plain_every()
        if every == 0:
            yield
            return
        with _every(every, lambda: info(stats.status_line())):
            yield
        return
    from rich.live import Live
    from rich.text import Text

    with (
        Live(
            Text(stats.status_line()),
            console=real_console(stderr),
            transient=True,
            refresh_per_second=8,
        ) as live,
        _every(0.125, lambda: live.update(Text(stats.status_line()))),
    ):
        yield


@contextmanager
def _every(seconds: float, report: Callable[[], None]) -> Iterator[None]:
    """Call ``report`` every ``seconds`` (from a daemon thread) until the block ends."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(seconds):
            report()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
