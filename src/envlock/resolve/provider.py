"""A resolvelib provider that resolves for one :class:`Target`, not for the host.

Markers are evaluated in the target's environment, Requires-Python is checked against the
target's Python (as a dependency on the virtual ``<python>`` package so conflicts explain it),
and a version counts only if it has a file the target can install.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import create_compatible_tags_selector
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib import AbstractProvider
from resolvelib.structs import RequirementInformation

from envlock.events import Stats
from envlock.index.metadata import MetadataError
from envlock.index.repository import PackageIndex
from envlock.index.simple import DistFile
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

    def __init__(self, target: Target, index: PackageIndex, options: ResolveOptions,
                 stats: Stats | None = None) -> None:
        self.target = target
        self.index = index
        self.options = options
        self.stats = stats or Stats()
        self.python_version = Version(target.python_full_version)
        self._select = create_compatible_tags_selector(target.tags)
        self.rejections: dict[str, Rejections] = {}
        self.missing: set[str] = set()
        self.empty: set[str] = set()  # projects whose last candidate search found nothing

    # -- resolvelib interface --------------------------------------------------------------
    def identify(self, requirement_or_candidate: Req | Candidate) -> str:
        return requirement_or_candidate.identifier

    def get_preference(self, identifier: str, resolutions: Mapping[str, Candidate],
                       candidates: Mapping[str, Iterator[Candidate]],
                       information: Mapping[str, Iterator[RequirementInformation[Req, Candidate]]],
                       backtrack_causes: Sequence[RequirementInformation[Req, Candidate]],
                       ) -> Any:
        infos = list(information[identifier])
        pinned = any(info.requirement.pinned for info in infos)
        direct = any(info.parent is None for info in infos)
        conflicted = any(c.requirement.name == identifier.split("[")[0] for c in backtrack_causes)
        return (identifier != PYTHON, not conflicted, not pinned, not direct, identifier)

    def find_matches(self, identifier: str, requirements: Mapping[str, Iterator[Req]],
                     incompatibilities: Mapping[str, Iterator[Candidate]]) -> list[Candidate]:
        reqs = list(requirements[identifier])
        bad = {c.version for c in incompatibilities[identifier]}
        if identifier == PYTHON:
            python = Candidate(PYTHON, self.python_version)
            return [python] if python.version not in bad and all(
                r.specifier.contains(python.version, prereleases=True) for r in reqs
            ) else []
        name = reqs[0].name if reqs else identifier.split("[")[0]
        extras: frozenset[NormalizedName] = frozenset().union(*(r.extras for r in reqs))
        out = [
            Candidate(name, c.version, extras, c.file, c.requires_python)
            for c in self._candidates(name, reqs)
            if c.version not in bad
        ]
        if out:
            self.index.prefetch_metadata(out[0].file)  # type: ignore[arg-type]
        return out

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
                candidate.version] = str(exc)
            # An impossible requirement makes resolvelib drop this candidate and backtrack.
            return [Req(PYTHON, frozenset(), SpecifierSet("<0"), f"usable metadata of {candidate}")]
        deps: list[Req] = []
        if candidate.extras:
            # The extra-candidate depends on its base project at the very same version.
            deps.append(Req(candidate.name, frozenset(), SpecifierSet(f"=={candidate.version}"),
                            f"{candidate.name}=={candidate.version}"))
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

    # -- candidates -----------------------------------------------------------------------
    def _candidates(self, name: str, reqs: Sequence[Req]) -> list[Candidate]:
        page = self.index.project(name)
        if page is None:
            self.missing.add(name)
            return []
        rej = self.rejections[name] = Rejections()
        by_version: dict[Version, list[DistFile]] = {}
        for f in page.files:
            by_version.setdefault(f.version, []).append(f)
        pinned = {
            Version(s.version) for r in reqs for s in r.specifier
            if s.operator in ("==", "===") and "*" not in s.version
        }
        allow_pre = self.options.prerelease == "allow" or any(
            s.prereleases for r in reqs for s in r.specifier
        )
        out: list[Candidate] = []
        for version in sorted(by_version, reverse=True):
            if not all(r.specifier.contains(version, prereleases=True) for r in reqs):
                continue
            if version.is_prerelease and not allow_pre and version not in pinned:
                continue
            files = by_version[version]
            if self.options.exclude_newer is not None:
                cutoff = self.options.exclude_newer
                files = [f for f in files if f.upload_time is not None and f.upload_time <= cutoff]
                if not files:
                    rej.newer.append(version)
                    continue
            if version not in pinned:
                unyanked = [f for f in files if not f.yanked]
                if not unyanked:
                    rej.yanked.append(version)
                    continue
                files = unyanked
            usable = [f for f in files if f.requires_python is None
                      or f.requires_python.contains(self.python_version, prereleases=True)]
            if not usable:
                rej.requires_python.append(version)
                continue
            chosen = self.best_file(usable)
            if chosen is None:
                if any(not f.is_wheel for f in usable):
                    rej.sdist_only.append(version)
                else:
                    rej.no_file.append(version)
                rej.wheel_tags.update(_platform_part(f.filename) for f in usable if f.is_wheel)
                continue
            out.append(Candidate(name, version, frozenset(), chosen, chosen.requires_python))
        if out:
            self.empty.discard(name)
        else:
            self.empty.add(name)
        preferred = self.options.preferences.get(name)
        if preferred is not None:
            out.sort(key=lambda c: c.version != preferred)  # stable: rest stays newest-first
        return out

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
