"""A resolvelib provider that resolves for one :class:`Target`, not for the host.

Markers are evaluated in the target's environment, Requires-Python is checked against the
target's Python (as a dependency on the virtual ``<python>`` package so conflicts explain it),
and a version counts only if it has a file the target can install.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import create_compatible_tags_selector
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib import AbstractProvider
from resolvelib.structs import RequirementInformation

from envlock.events import Stats
from envlock.index.metadata import CoreMetadata, MetadataError
from envlock.index.repository import PackageIndex
from envlock.index.simple import DistFile, ProjectPage
from envlock.platforms import Target

PYTHON = "<python>"


@dataclass(frozen=True)
class Req:
    """A requirement on a project (with extras), or on the target's Python."""

    name: str  # canonical name, or PYTHON
    extras: frozenset[NormalizedName]
    specifier: SpecifierSet
    text: str

    @property
    def identifier(self) -> str:
        return _identifier(self.name, self.extras)

    @classmethod
    def from_requirement(cls, req: Requirement) -> Req:
        return cls(
            canonicalize_name(req.name),
            frozenset(canonicalize_name(e) for e in req.extras),
            req.specifier,
            str(req),
        )

    @property
    def pinned(self) -> bool:
        return any(s.operator in ("==", "===") and "*" not in s.version for s in self.specifier)


@dataclass(frozen=True)
class Candidate:
    """One version of a project, with the file the target would install."""

    name: str
    version: Version
    extras: frozenset[NormalizedName] = frozenset()
    file: DistFile | None = None
    requires_python: SpecifierSet | None = field(default=None, compare=False)

    @property
    def identifier(self) -> str:
        return _identifier(self.name, self.extras)

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


def _identifier(name: str, extras: frozenset[str]) -> str:
    return f"{name}[{','.join(sorted(extras))}]" if extras else name


@dataclass
class Rejections:
    """Why versions of a project were not candidates (for error messages)."""

    no_file: list[Version] = field(default_factory=list)
    sdist_only: list[Version] = field(default_factory=list)
    wheel_tags: set[str] = field(default_factory=set)
    requires_python: list[Version] = field(default_factory=list)
    newer: list[Version] = field(default_factory=list)
    yanked: list[Version] = field(default_factory=list)
    bad_metadata: dict[Version, str] = field(default_factory=dict)


@dataclass
class ResolveOptions:
    """Policy knobs from the spec and the command line."""

    prerelease: str = "disallow"
    exclude_newer: datetime | None = None
    sdist_allowed: Callable[[str], bool] | None = None
    preferences: Mapping[str, Version] = field(default_factory=dict)


class Provider(AbstractProvider):  # type: ignore[type-arg]
    """Answers resolvelib's questions for one target."""

    def __init__(
        self,
        target: Target,
        index: PackageIndex,
        options: ResolveOptions,
        stats: Stats | None = None,
    ) -> None:
        self.target = target
        self.index = index
        self.options = options
        self.stats = stats or Stats()
        self.python_version = Version(target.python_full_version)
        self._select = create_compatible_tags_selector(target.tags)
        self.rejections: dict[str, Rejections] = {}
        self.missing: set[str] = set()
        self.empty: set[str] = set()  # projects whose last candidate search found nothing
        self._evaluated: dict[
            tuple[str, Version, bool], Candidate | tuple[str, tuple[str, ...]]
        ] = {}
        self._python_checks: dict[SpecifierSet, bool] = {}
        self._speculated: set[str] = set()
        self._spec_lock = threading.Lock()

    # -- resolvelib interface --------------------------------------------------------------
    def identify(self, requirement_or_candidate: Req | Candidate) -> str:
        return requirement_or_candidate.identifier

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[RequirementInformation[Req, Candidate]]],
        backtrack_causes: Sequence[RequirementInformation[Req, Candidate]],
    ) -> Any:
        infos = list(information[identifier])
        pinned = any(info.requirement.pinned for info in infos)
        direct = any(info.parent is None for info in infos)
        conflicted = any(c.requirement.name == identifier.split("[")[0] for c in backtrack_causes)
        return (identifier != PYTHON, not conflicted, not pinned, not direct, identifier)

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Req]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> list[Candidate] | Callable[[], Iterator[Candidate]]:
        reqs = list(requirements[identifier])
        bad = {c.version for c in incompatibilities[identifier]}
        if identifier == PYTHON:
            python = Candidate(PYTHON, self.python_version)
            return (
                [python]
                if python.version not in bad
                and all(r.specifier.contains(python.version, prereleases=True) for r in reqs)
                else []
            )
        name = reqs[0].name if reqs else identifier.split("[")[0]
        extras: frozenset[NormalizedName] = frozenset().union(*(r.extras for r in reqs))

        def matches() -> Iterator[Candidate]:
            # Lazy: resolvelib usually takes the first candidate, so most versions of a big
            # project are never looked at (their specifiers and files stay unchecked).
            first = True
            for c in self._candidates(name, reqs):
                if c.version in bad:
                    continue
                if first and c.file is not None:
                    self.index.prefetch_metadata(c.file)
                    first = False
                yield Candidate(name, c.version, extras, c.file, c.requires_python)

        return matches

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        if requirement.name != candidate.name:
            return False
        return requirement.specifier.contains(candidate.version, prereleases=True)

    def get_dependencies(self, candidate: Candidate) -> list[Req]:
        if candidate.name == PYTHON:
            return []
        self.stats.bump("candidates")
        assert candidate.file is not None
        try:
            meta = self.index.metadata(candidate.file)
        except MetadataError as exc:
            self.rejections.setdefault(candidate.name, Rejections()).bad_metadata[
                candidate.version
            ] = str(exc)
            # An impossible requirement makes resolvelib drop this candidate and backtrack.
            return [Req(PYTHON, frozenset(), SpecifierSet("<0"), f"usable metadata of {candidate}")]
        deps: list[Req] = []
        if candidate.extras:
            # The extra-candidate depends on its base project at the very same version.
            deps.append(
                Req(
                    candidate.name,
                    frozenset(),
                    SpecifierSet(f"=={candidate.version}"),
                    f"{candidate.name}=={candidate.version}",
                )
            )
        rp = meta.requires_python or candidate.requires_python
        if rp is not None:
            deps.append(Req(PYTHON, frozenset(), rp, f"Python{rp}"))
        names = []
        for req in meta.requires_dist:
            if not self.target.marker_matches(req.marker, candidate.extras):
                continue
            dep = Req.from_requirement(req)
            deps.append(dep)
            names.append(dep.name)
        self.index.prefetch(names)
        return deps

    # -- speculation ----------------------------------------------------------------------
    def speculate(self, names: Iterable[str], extras: frozenset[str] = frozenset()) -> None:
        """Crawl ahead of the resolver: page -> newest usable file -> its metadata -> the pages
        of its dependencies, in the background, so the resolver rarely waits on the network.
        A guess (the newest version usually wins); a wrong one only costs a request."""
        for name in names:
            key = canonicalize_name(name)
            with self._spec_lock:
                if key in self._speculated:
                    continue
                self._speculated.add(key)
            self.index.project_future(key).add_done_callback(partial(self._on_page, extras))

    def _on_page(self, extras: frozenset[str], fut: Future[ProjectPage | None]) -> None:
        # A guess must never fail the run nor print: the resolver asks again for real.
        with contextlib.suppress(Exception):
            self._speculate_from_page(extras, fut)

    def _speculate_from_page(self, extras: frozenset[str], fut: Future[ProjectPage | None]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        page = fut.result()
        if page is None:
            return
        preferred = self.options.preferences.get(page.name)
        versions = [v for v in page.versions if not v.is_prerelease][:20]
        if preferred is not None and preferred in page.versions:
            versions.insert(0, preferred)
        for version in versions:
            result = self._evaluate(page.name, version, page, False)
            if isinstance(result, Candidate) and result.file is not None:
                self.index.prefetch_metadata(result.file).add_done_callback(
                    partial(self._on_metadata, extras)
                )
                return

    def _on_metadata(self, extras: frozenset[str], fut: Future[CoreMetadata]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        meta = fut.result()
        with contextlib.suppress(Exception):
            self.speculate(
                r.name for r in meta.requires_dist if self.target.marker_matches(r.marker, extras)
            )

    # -- candidates -----------------------------------------------------------------------
    def _candidates(self, name: str, reqs: Sequence[Req]) -> Iterator[Candidate]:
        """Versions that satisfy ``reqs`` and have a file for the target, newest first
        (a locked version first); why the others were skipped goes to ``rejections``."""
        page = self.index.project(name)
        if page is None:
            self.missing.add(name)
            return
        rej = self.rejections[name] = Rejections()
        pinned = {
            Version(s.version)
            for r in reqs
            for s in r.specifier
            if s.operator in ("==", "===") and "*" not in s.version
        }
        allow_pre = self.options.prerelease == "allow" or any(
            s.prereleases for r in reqs for s in r.specifier
        )
        versions = list(page.versions)
        preferred = self.options.preferences.get(name)
        if preferred is not None and preferred in versions:
            versions.remove(preferred)
            versions.insert(0, preferred)
        found = False
        for version in versions:
            if version.is_prerelease and not allow_pre and version not in pinned:
                continue
            if not all(r.specifier.contains(version, prereleases=True) for r in reqs):
                continue
            result = self._evaluate(name, version, page, version in pinned)
            if isinstance(result, Candidate):
                if not found:
                    found = True
                    self.empty.discard(name)
                yield result
            else:
                reason, tags = result
                getattr(rej, reason).append(version)
                rej.wheel_tags.update(tags)
        if not found:
            self.empty.add(name)

    def _evaluate(
        self, name: str, version: Version, page: ProjectPage, pinned: bool
    ) -> Candidate | tuple[str, tuple[str, ...]]:
        """The candidate of one version, or why there is none (memoised: files never change)."""
        key = (name, version, pinned)
        cached = self._evaluated.get(key)
        if cached is None:
            cached = self._evaluate_files(name, version, page.files_of(version), pinned)
            self._evaluated[key] = cached
        return cached

    def _evaluate_files(
        self, name: str, version: Version, files: Sequence[DistFile], pinned: bool
    ) -> Candidate | tuple[str, tuple[str, ...]]:
        if self.options.exclude_newer is not None:
            cutoff = self.options.exclude_newer
            files = [f for f in files if f.upload_time is not None and f.upload_time <= cutoff]
            if not files:
                return "newer", ()
        if not pinned:
            files = [f for f in files if not f.yanked]
            if not files:
                return "yanked", ()
        usable = [
            f for f in files if f.requires_python is None or self._python_ok(f.requires_python)
        ]
        if not usable:
            return "requires_python", ()
        chosen = self.best_file(usable)
        if chosen is None:
            tags = tuple(_platform_part(f.filename) for f in usable if f.is_wheel)
            return ("sdist_only" if any(not f.is_wheel for f in usable) else "no_file"), tags
        return Candidate(name, version, frozenset(), chosen, chosen.requires_python)

    def _python_ok(self, spec: SpecifierSet) -> bool:
        ok = self._python_checks.get(spec)
        if ok is None:
            ok = self._python_checks[spec] = spec.contains(self.python_version, prereleases=True)
        return ok

    def best_file(self, files: Iterable[DistFile]) -> DistFile | None:
        """The file the target installs: its best-ranked wheel, else an allowed sdist."""
        files = list(files)
        wheel = next(self._select((f, f.tags) for f in files if f.is_wheel), None)
        if wheel is not None:
            return wheel
        sdists = sorted((f for f in files if not f.is_wheel), key=lambda f: f.filename)
        allowed = self.options.sdist_allowed
        if sdists and allowed is not None and allowed(files[0].name):
            # Prefer .tar.gz (the standard sdist format) over legacy .zip.
            return sorted(sdists, key=lambda f: not f.filename.endswith(".tar.gz"))[0]
        return None


def _platform_part(filename: str) -> str:
    return filename[:-4].split("-")[-1]
