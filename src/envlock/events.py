"""Progress counters that workers bump and the CLI renders (thread-safe, no I/O)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class Stats:
    """What a run has done so far; read by the progress display."""

    projects: int = 0
    metadata: int = 0
    candidates: int = 0
    phase: str = "starting"
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bump(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
