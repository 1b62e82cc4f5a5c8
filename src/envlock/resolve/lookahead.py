"""Look a little ahead of the resolver: drop versions that cannot be part of any solution.

A version is *infeasible* when one of its dependencies has no usable version at all within what
the dependency asks and what the spec itself requires of that project (root requirements hold in
every solution). Checked two levels deep, so ``httpx>=0.27`` with ``h11<0.10`` fails at once:
every httpx needs some httpcore 1.x, and every httpcore 1.x needs an h11 the spec excludes.
Sound: a version is only dropped with a proof, which the explanation of a failure reuses.

It switches on at the first conflict: a resolution that never backtracks pays nothing for it
(looking ahead means waiting for metadata the resolver would otherwise fetch in the background),
and which versions it drops depends only on the index's data, never on timing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envlock.resolve.candidates import Candidate, Req

DEPTH = 2


@dataclass(frozen=True)
class Conflict:
    """Why a version is infeasible: ``requirement`` of it cannot be met."""

    requirement: Req
    # The spec's own requirement it clashes with, or None when the dependency simply has no
    # feasible version in range (then its versions carry proofs of their own).
    spec_requirement: SpecifierSet | None


# (project, version, extras): a version with extras has more dependencies than without.
Key = tuple[str, Version, frozenset[str]]
# Candidates of a project within a specifier, newest first (the provider's own generator).
CandidatesOf = Callable[[str, SpecifierSet], Iterator[Candidate]]
Dependencies = Callable[[Candidate], "list[Req] | None"]


class Lookahead:
    """Memoised feasibility of (project, version) for one target."""

    def __init__(
        self,
        candidates_of: CandidatesOf,
        dependencies: Dependencies,
        root: Mapping[str, SpecifierSet],
        prefetch: Callable[[Candidate], None],
    ) -> None:
        self._candidates_of = candidates_of
        self._dependencies = dependencies
        self.root = root
        self._prefetch = prefetch
        self.enabled = False
        self.conflicts: dict[Key, Conflict] = {}
        self._feasible: dict[Key, int] = {}  # depth proven feasible
        self._viable: dict[tuple[str, str, int], bool] = {}
        self._active: set[Key] = set()

    def enable(self) -> None:
        self.enabled = True

    def conflict_of(self, name: str, version: Version) -> Conflict | None:
        """Why ``name`` ``version`` (without extras) is infeasible, if it is."""
        return self.conflicts.get((name, version, frozenset()))

    def feasible(self, cand: Candidate, depth: int = DEPTH) -> bool:
        """Whether ``cand`` may be part of a solution, as far as ``depth`` levels can tell."""
        if not self.enabled:
            return True
        key = (cand.name, cand.version, cand.extras)  # extras bring dependencies of their own
        if key in self.conflicts:
            return False
        if cand.file is None:
            return True  # the target's Python: nothing below it
        if depth <= 0 or self._feasible.get(key, -1) >= depth or key in self._active:
            return True  # cycles are assumed fine: the resolver itself sorts those out
        deps = self._dependencies(cand)
        if deps is None:
            return True  # unusable metadata: the resolver rejects it with its own reason
        self._active.add(key)
        try:
            for req in deps:
                if req.name == cand.name:
                    continue  # an extra's dependency on its own project
                spec = req.specifier
                root = self.root.get(req.name)
                combined = spec & root if root is not None else spec
                if not self.viable(req.name, combined, depth - 1):
                    clash = root if root is not None and self.viable(req.name, spec, 0) else None
                    self.conflicts[key] = Conflict(req, clash)
                    return False
        finally:
            self._active.discard(key)
        self._feasible[key] = depth
        return True

    def viable(self, name: str, spec: SpecifierSet, depth: int) -> bool:
        """Whether some usable version of ``name`` in ``spec`` is feasible to ``depth``."""
        key = (name, str(spec), depth)
        found = self._viable.get(key)
        if found is None:
            found = any(self.feasible(c, depth) for c in self._batched(name, spec, depth))
            self._viable[key] = found
        return found

    def _batched(self, name: str, spec: SpecifierSet, depth: int) -> Iterator[Candidate]:
        """Candidates in growing batches whose metadata is fetched together (1, 4, 16, …):
        the first usually settles it; a long scan runs many requests at once."""
        pending = self._candidates_of(name, spec)
        size = 1
        while True:
            batch = list(islice(pending, size))
            if not batch:
                return
            if depth > 0:
                for cand in batch:
                    self._prefetch(cand)
            yield from batch
            size = min(size * 4, 64)
