"""resolvelib's progress hooks: conflicts counted for the display, and what the explanation of a
failure needs to know about the search (the conflicts it kept hitting, the last state)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from resolvelib import BaseReporter
from resolvelib.structs import RequirementInformation

from envlock.progress import LockProgress
from envlock.resolve.candidates import Candidate, Req

Info = RequirementInformation[Req, Candidate]


class Reporter(BaseReporter):  # type: ignore[type-arg]
    def __init__(
        self,
        progress: LockProgress,
        on_conflict: Callable[[], None],
        on_reject: Callable[[Any, Candidate], None],
    ) -> None:
        self.progress = progress
        self._on_conflict = on_conflict
        self._on_reject = on_reject
        self.conflicts: Counter[tuple[str, ...]] = Counter()
        self.causes: dict[tuple[str, ...], list[Info]] = {}
        self.state: Any = None

    def resolving_conflicts(self, causes: Sequence[Info]) -> None:  # type: ignore[override]
        self.progress.conflict()
        self._on_conflict()
        key = tuple(sorted({c.requirement.name for c in causes}))
        self.conflicts[key] += 1
        self.causes[key] = list(causes)

    def rejecting_candidate(self, criterion: Any, candidate: Candidate) -> None:
        self._on_reject(criterion, candidate)

    def ending_round(self, index: int, state: Any) -> None:
        self.state = state

    def most_frequent_conflict(self) -> list[Info]:
        if not self.conflicts:
            return []
        key, _ = self.conflicts.most_common(1)[0]
        return self.causes[key]

    def why_pinned(self, candidate: Candidate) -> list[Info]:
        """The requirements that brought ``candidate``'s project in, as last seen."""
        criteria = getattr(self.state, "criteria", None) or {}
        criterion = criteria.get(candidate.identifier) or criteria.get(candidate.name)
        return list(criterion.information) if criterion is not None else []
