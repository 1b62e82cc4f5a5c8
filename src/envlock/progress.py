"""What a run has done so far, bumped from worker threads and read by the display (no I/O).

One typed channel per kind of work instead of string-keyed counters; the CLI renders it, and
``on_phase`` lets it print plain lines where there is no live display.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LockProgress:
    """Counters of a lock run."""

    projects: int = 0
    metadata: int = 0
    candidates: int = 0
    conflicts: int = 0
    phase: str = "starting"
    on_phase: Callable[[str], None] | None = None
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def project_read(self) -> None:
        with self._lock:
            self.projects += 1

    def metadata_read(self) -> None:
        with self._lock:
            self.metadata += 1

    def candidate_tried(self) -> None:
        with self._lock:
            self.candidates += 1

    def conflict(self) -> None:
        with self._lock:
            self.conflicts += 1

    def enter(self, phase: str) -> None:
        self.phase = phase
        if self.on_phase is not None:
            self.on_phase(phase)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def status_line(self) -> str:
        backtracks = f" · {self.conflicts} conflicts" if self.conflicts else ""
        return (
            f"{self.phase} · {self.projects} projects · {self.metadata} metadata · "
            f"{self.candidates} candidates tried{backtracks} · {self.elapsed:.1f}s"
        )


@dataclass
class BuildProgress:
    """What ``materialize`` is doing: a phase and its count (packages, files or bytes)."""

    phase: str = "starting"
    done: int = 0
    total: int = 0
    unit: str = ""
    on_phase: Callable[[str], None] | None = None
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def enter(self, phase: str, total: int = 0, unit: str = "") -> None:
        with self._lock:
            self.phase, self.done, self.total, self.unit = phase, 0, total, unit
        if self.on_phase is not None:
            self.on_phase(phase)

    def advance(self, n: int) -> None:
        with self._lock:
            self.done += n

    def status_line(self) -> str:
        elapsed = f"{time.monotonic() - self.started:.1f}s"
        if not self.total:
            return f"{self.phase} · {elapsed}"
        if self.unit == "bytes":
            count = f"{self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
        else:
            count = f"{self.done}/{self.total} {self.unit}"
        return f"{self.phase} · {count} · {elapsed}"
