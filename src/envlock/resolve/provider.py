"""A resolvelib provider that resolves for one :class:`Target`, not for the host.

Markers are evaluated in the target's environment, Requires-Python is checked against the
target's Python (as a dependency on the virtual ``<python>`` package so conflicts explain it),
and a version counts only if it has a file the target can install and is not provably part of
no solution (:mod:`envlock.resolve.lookahead`).

What to pin next follows pip and pdm: the causes of the last backtrack first, then pinned (``==``)
requirements, the spec's own requirements, upper-bounded ones, the fewest candidates, and the
order in which projects were discovered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, Literal

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version
from resolvelib import AbstractProvider
from resolvelib.structs import RequirementInformation

from envlock.core_metadata import MetadataError
from envlock.index.repository import Repository
from envlock.platforms import Target
from envlock.progress import LockProgress
from envlock.resolve.candidates import (
    PYTHON,
    Candidate,
    Evaluator,
    Policy,
    Rejection,
    Req,
)
from envlock.resolve.constraints import Constraint, by_project, excluded_by
from envlock.resolve.jump import newest_fitting
from envlock.resolve.lookahead import Lookahead

Info = RequirementInformation[Req, Candidate]


class Provider(AbstractProvider):  # type: ignore[type-arg]
    """Answers resolvelib's questions for one target."""

    def __init__(
        self,
        target: Target,
        repo: Repository,
        policy: Policy,
        roots: Sequence[Req],
        *,
        preferences: Mapping[str, Version] | None = None,
        constraints: Sequence[Constraint] = (),
        progress: LockProgress | None = None,
    ) -> None:
        self.target = target
        self.repo = repo
        self.policy = policy
        self.preferences = preferences or {}
        self.constraints = by_project(constraints)
        self.progress = progress or LockProgress()
        self.evaluator = Evaluator(target, policy)
        self.python_version = Version(target.python_full_version)
        self.rejections: dict[str, dict[Version, Rejection]] = {}
        self.missing: set[str] = set()
        self.roots = list(roots)
        # What the spec itself requires: constraints stay out (their versions are rejected with
        # a reason of their own, which an explanation then names).
        root_specs: dict[str, SpecifierSet] = {}
        for req in roots:
            if req.name in root_specs:
                root_specs[req.name] = root_specs[req.name] & req.specifier
            else:
                root_specs[req.name] = req.specifier
        self.root_specs = root_specs
        self.lookahead = Lookahead(self.within, self.dependencies_of, root_specs, self._prefetch)
        self._deps: dict[tuple[str, Version, frozenset[str]], list[Req] | None] = {}
        self._order: dict[str, int] = {}
        # The search state as resolvelib last showed it, and the last rejection per project:
        # what the jump over unfitting releases (resolve.jump) works from.
        self._resolutions: Mapping[str, Candidate] = {}
        self._rejected: dict[str, tuple[Candidate, list[Info]]] = {}
        # Searches that found no structure to rely on: not walked again for the same target.
        self._no_jump: set[tuple[str, str, tuple[Version, ...]]] = set()
        self._counts: dict[tuple[str, tuple[str, ...]], int] = {}
        self._ranks: dict[str, tuple[int, int]] | None = None

    # -- resolvelib interface ------------------------------------------------------------
    def identify(self, requirement_or_candidate: Req | Candidate) -> str:
        return requirement_or_candidate.identifier

    def narrow_requirement_selection(
        self,
        identifiers: Iterable[str],
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[Info]],
        backtrack_causes: Sequence[Info],
    ) -> Iterable[str]:
        self._resolutions = resolutions
        identifiers = list(identifiers)
        if PYTHON in identifiers:
            return [PYTHON]
        causes = {c.requirement.name for c in backtrack_causes}
        causes |= {c.parent.name for c in backtrack_causes if c.parent is not None}
        hit = [i for i in identifiers if i.split("[")[0] in causes]
        return hit or identifiers

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[Info]],
        backtrack_causes: Sequence[Info],
    ) -> Any:
        self._resolutions = resolutions
        infos = list(information[identifier])
        reqs = [i.requirement for i in infos]
        pinned = any(r.pinned for r in reqs)
        direct = any(i.parent is None for i in infos)
        bounded = any(r.upper_bounded for r in reqs)
        return (
            identifier != PYTHON,
            not pinned,
            not direct,
            self._root_ranks().get(identifier.split("[")[0], _MIDDLE) if direct else _MIDDLE,
            not bounded,
            self._count(identifier, reqs),
            self._order.get(identifier, 1 << 30),
            identifier,
        )

    def _root_ranks(self) -> Mapping[str, tuple[int, int]]:
        """In which order to decide the spec's own requirements, from their newest releases.

        A root whose newest release requires another root below that one's newest goes first,
        the furthest behind first; the roots so held back go last. Plugins pin a shared core
        exactly, and when the core's newest release is out before every plugin has caught up
        (dagster 1.13.28, dagster-dbt 0.29.27 pinning dagster==1.13.27), deciding the core (or a
        plugin that has caught up) first sends the lagging plugin years back to a release
        without the pin (dagster-dbt 0.10.9); deciding the laggard first costs the others a
        release each. uv reaches the same answer by reprioritising packages that keep
        conflicting. Computed once: the newest releases' metadata is fetched first anyway."""
        if self._ranks is not None:
            return self._ranks
        newest: dict[str, Candidate] = {}
        for name, spec in self.root_specs.items():
            if name == PYTHON or self.repo.project(name) is None:
                continue
            cand = next(self.within(name, spec), None)
            if cand is not None:
                newest[name] = cand
                self._prefetch(cand)
        behind: dict[str, int] = {}
        held: set[str] = set()
        for name, cand in newest.items():
            for dep in self.dependencies_of(cand) or ():
                if dep.name == name or dep.name not in newest:
                    continue
                skipped = self._skipped(dep.name, dep.specifier)
                if skipped:
                    behind[name] = max(behind.get(name, 0), skipped)
                    held.add(dep.name)
        ranks = {name: (0, -count) for name, count in behind.items()}
        ranks.update({name: (2, 0) for name in held})
        self._ranks = ranks
        return ranks

    def _skipped(self, name: str, spec: SpecifierSet) -> int:
        """How many of the newest releases of root ``name`` (within the spec's own range) the
        specifier ``spec`` excludes before it admits one."""
        page = self.repo.project(name)
        count = 0
        for version in page.versions if page is not None else ():
            if version.is_prerelease or not self.root_specs[name].contains(version):
                continue
            if spec.contains(version, prereleases=True):
                break
            count += 1
        return count

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Req]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> list[Candidate] | Callable[[], Iterator[Candidate]]:
        self._order.setdefault(identifier, len(self._order))
        reqs = list(requirements[identifier])
        bad = {c.version for c in incompatibilities[identifier]}
        if identifier == PYTHON:
            return [c for c in self._python(reqs) if c.version not in bad]
        name = reqs[0].name if reqs else identifier.split("[")[0]
        extras: frozenset[NormalizedName] = frozenset().union(*(r.extras for r in reqs))

        specs = [r.specifier for r in reqs]

        def matches() -> Iterator[Candidate]:
            # Lazy: resolvelib usually takes the first candidate, so most versions of a big
            # project are never looked at. Deeper in the list (backtracking), metadata of the
            # next few is fetched together, or a binary search jumps to a release that fits.
            ahead = 0
            seen: set[Version] = set()
            pending = self._candidates(name, specs)
            for index, c in enumerate(pending):
                if c.version in bad or c.version in seen:
                    continue
                if index >= ahead and c.file is not None:
                    ahead = self._prefetch_after(c, name, reqs, index)
                cand = Candidate(name, c.version, extras, c.file, c.requires_python)
                if not self.lookahead.feasible(cand):
                    continue
                seen.add(cand.version)
                yield cand
                # Back here: resolvelib rejected it. If its requirement on another project
                # clashed, try the newest release whose requirement fits before the next one.
                jump = self._jump(cand, specs, bad | seen)
                if jump is not None and self.lookahead.feasible(jump):
                    seen.add(jump.version)
                    yield jump

        return matches

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        if requirement.name != candidate.name:
            return False
        return requirement.specifier.contains(candidate.version, prereleases=True)

    def get_dependencies(self, candidate: Candidate) -> list[Req]:
        if candidate.name == PYTHON:
            return []
        self.progress.candidate_tried()
        deps = self.dependencies_of(candidate)
        if deps is None:
            # An impossible requirement makes resolvelib drop this candidate and backtrack.
            return [Req(PYTHON, frozenset(), SpecifierSet("<0"), f"usable metadata of {candidate}")]
        if candidate.extras:
            # The extra-candidate depends on its base project at the very same version.
            deps = [
                Req(
                    candidate.name,
                    frozenset(),
                    SpecifierSet(f"=={candidate.version}"),
                    f"{candidate.name}=={candidate.version}",
                ),
                *deps,
            ]
        self.repo.prefetch(d.name for d in deps if d.name != PYTHON)
        return deps

    def note_rejection(self, criterion: Any, candidate: Candidate) -> None:
        """resolvelib rejected ``candidate``: its requirement clashed with ``criterion``."""
        self._rejected[candidate.name] = (candidate, list(criterion.information))

    def _jump(
        self, rejected: Candidate, specs: Sequence[SpecifierSet], skip: set[Version]
    ) -> Candidate | None:
        """The newest remaining release of ``rejected``'s project whose requirement on the
        project it clashed with fits what the resolution holds that project to."""
        last = self._rejected.get(rejected.name)
        if last is None or last[0] != rejected or not last[1]:
            return None
        infos = last[1]
        dep = infos[0].requirement.name
        if dep in (PYTHON, rejected.name):
            return None
        dep_page = self.repo.project(dep)
        if dep_page is None:
            return None
        pin = self._resolutions.get(infos[0].requirement.identifier)
        others = [i for i in infos if i.parent is None or i.parent.name != rejected.name]
        if pin is not None:
            allowed = [pin.version]
        elif others:
            allowed = [
                v
                for v in dep_page.versions
                if all(i.requirement.specifier.contains(v, prereleases=True) for i in others)
            ]
        else:
            return None
        attempt = (rejected.name, dep, tuple(allowed))
        if attempt in self._no_jump:
            return None
        remaining = [c for c in self._candidates(rejected.name, specs) if c.version not in skip]
        if len(remaining) < _JUMP_MIN:
            return None  # a few tries are cheaper than a search
        found = newest_fitting(
            remaining, lambda c: self._requirement_on(c, dep), allowed, dep_page.versions
        )
        if found is None:
            self._no_jump.add(attempt)
        if not found:  # None, or the very next one anyway
            return None
        c = remaining[found]
        return Candidate(rejected.name, c.version, rejected.extras, c.file, c.requires_python)

    def _requirement_on(self, cand: Candidate, dep: str) -> SpecifierSet | Literal[False] | None:
        deps = self.dependencies_of(cand)
        if deps is None:
            return False
        on = [d.specifier for d in deps if d.name == dep]
        if not on:
            return None
        spec = SpecifierSet()
        for s in on:
            spec &= s
        return spec

    # -- dependencies and candidates -----------------------------------------------------
    def dependencies_of(self, candidate: Candidate) -> list[Req] | None:
        """The target's dependencies of a candidate (None: its metadata is unusable)."""
        key = (candidate.name, candidate.version, candidate.extras)
        if key in self._deps:
            return self._deps[key]
        assert candidate.file is not None
        try:
            meta = self.repo.metadata(candidate.file)
        except MetadataError as exc:
            self.rejections.setdefault(candidate.name, {})[candidate.version] = Rejection(
                "bad_metadata", f"its metadata is unusable ({exc})"
            )
            self._deps[key] = None
            return None
        deps: list[Req] = []
        rp = meta.requires_python or candidate.requires_python
        if rp is not None:
            deps.append(Req(PYTHON, frozenset(), rp, f"Python{rp}"))
        for req in meta.requires_dist:
            if self.target.marker_matches(req.marker, candidate.extras):
                deps.append(Req.from_requirement(req))
        self._deps[key] = deps
        return deps

    def within(self, name: str, spec: SpecifierSet) -> Iterator[Candidate]:
        """Usable versions of ``name`` in ``spec``, newest first (for the lookahead)."""
        if name == PYTHON:
            python = Candidate(PYTHON, self.python_version)
            if spec.contains(python.version, prereleases=True):
                yield python
            return
        yield from self._candidates(name, [spec])

    def _python(self, reqs: Sequence[Req]) -> list[Candidate]:
        python = Candidate(PYTHON, self.python_version)
        ok = all(r.specifier.contains(python.version, prereleases=True) for r in reqs)
        return [python] if ok else []

    def _candidates(self, name: str, specs: Sequence[SpecifierSet]) -> Iterator[Candidate]:
        """Versions that satisfy ``specs`` and have a file for the target, newest first (a
        locked version first); why the others were skipped goes to ``rejections``."""
        page = self.repo.project(name)
        if page is None:
            self.missing.add(name)
            return
        rejections = self.rejections.setdefault(name, {})
        pinned = {
            Version(s.version)
            for spec in specs
            for s in spec
            if s.operator in ("==", "===") and "*" not in s.version
        }
        allow_pre = self.policy.prerelease == "allow" or any(
            s.prereleases for spec in specs for s in spec
        )
        limits = self.constraints.get(name, ())
        versions = list(page.versions)
        preferred = self.preferences.get(name)
        if preferred is not None and preferred in versions:
            versions.remove(preferred)
            versions.insert(0, preferred)
        for version in versions:
            if not all(spec.contains(version, prereleases=True) for spec in specs):
                continue
            if version.is_prerelease and not allow_pre and version not in pinned:
                rejections.setdefault(version, _PRERELEASE)
                continue
            outside = excluded_by(limits, version) if limits else None
            if outside is not None:
                rejections[version] = outside.rejection
                continue
            result = self.evaluator.evaluate(
                name, version, page.files_of(version), version in pinned
            )
            if isinstance(result, Candidate):
                yield result
            else:
                rejections[version] = result

    def _prefetch(self, cand: Candidate) -> None:
        if cand.file is not None and cand.name != PYTHON:
            self.repo.prefetch_metadata(cand.file)

    def _prefetch_after(self, first: Candidate, name: str, reqs: Sequence[Req], index: int) -> int:
        """Prefetch the metadata of the candidates after ``index`` (more the deeper we are);
        returns the index up to which that is done."""
        self._prefetch(first)
        if index == 0:
            return 1
        batch = min(64, 4 * index)
        ahead = islice(
            self._candidates(name, [r.specifier for r in reqs]), index + 1, index + 1 + batch
        )
        for cand in ahead:
            self._prefetch(cand)
        return index + 1 + batch

    def _count(self, identifier: str, reqs: Sequence[Req]) -> int:
        """How many versions the requirements leave (files unchecked: cheap, and enough to
        order by)."""
        if identifier == PYTHON:
            return 1
        key = (identifier, tuple(sorted(r.text for r in reqs)))
        found = self._counts.get(key)
        if found is None:
            page = self.repo.project(reqs[0].name if reqs else identifier.split("[")[0])
            versions = page.versions if page is not None else ()
            found = sum(
                1
                for v in versions
                if all(r.specifier.contains(v, prereleases=True) for r in reqs)
                and not v.is_prerelease
            )
            self._counts[key] = found
        return found


# The rank of a root requirement that neither holds back another root nor is held back.
_MIDDLE = (1, 0)

# Below this many remaining releases, trying them in order beats a binary search.
_JUMP_MIN = 8

_PRERELEASE = Rejection(
    "prerelease",
    "a pre-release",
    'set prerelease = "allow" in the spec, or a requirement that names a pre-release',
)
