"""Why a package was locked older than the newest version in range, or from its sdist, for the
``lock`` summary.

"In range" is what every requirement on the package allows (pre-releases only when the spec
allows them or one is locked). The reason is the newest such version's own (no file for the
target, sdists refused, a floor, a deny rule, min-age, Requires-Python: the resolver's
:class:`~envlock.resolve.candidates.Rejection`), else a requirement of it that the other pins
rule out, else the existing lock that kept the package where it was. A package locked from its
sdist while it has wheels says why none of them fits (a floor, a Python).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from envlock.core_metadata import MetadataError
from envlock.index.repository import Repository
from envlock.resolve import Policy, Resolution, ResolvedPackage
from envlock.resolve.candidates import Evaluator, Rejection, diagnose_wheels


@dataclass(frozen=True)
class Skipped:
    """A package locked older than the newest version its requirements allow, and why."""

    name: str
    locked: str
    newest: str
    reason: str
    platforms: tuple[str, ...]
    kept: bool = False  # held by the existing lock (a re-lock's preference), not by a cause

    def describe(self) -> str:
        return f"{self.name} {self.locked}, not {self.newest}: {self.reason}"


def skipped(
    resolutions: Sequence[Resolution],
    repo: Repository,
    policy: Policy,
    preferences: Mapping[str, Mapping[str, Version]],
) -> tuple[Skipped, ...]:
    """Every package of ``resolutions`` older than the newest version in range, with the cause;
    one entry per (package, locked, newest, reason) with the platforms it holds for."""
    found: dict[tuple[str, str, str, str], list[str]] = {}
    kept: set[tuple[str, str, str, str]] = set()
    for res in resolutions:
        evaluator = Evaluator(res.target, policy)
        prefs = preferences.get(res.target.platform, {})
        for name, pkg in res.packages.items():
            newest = newest_in_range(repo, pkg, policy, evaluator)
            if newest is None:
                continue
            reason, held = _reason(res, pkg, newest, repo, evaluator, prefs)
            key = (name, str(pkg.version), str(newest), reason)
            found.setdefault(key, []).append(res.target.platform)
            if held:
                kept.add(key)
    return tuple(Skipped(*key, tuple(found[key]), key in kept) for key in sorted(found))


def newest_in_range(
    repo: Repository, pkg: ResolvedPackage, policy: Policy, evaluator: Evaluator
) -> Version | None:
    """The newest version of ``pkg`` that all its requirements allow, if newer than locked
    (one uploaded after ``exclude-newer`` was never a choice: the index as of then)."""
    page = repo.project(pkg.name)
    if page is None:
        return None
    spec = requirement_range(pkg)
    allow_pre = policy.prerelease == "allow" or pkg.version.is_prerelease
    for version in page.versions:  # newest first
        if version <= pkg.version:
            return None
        if version.is_prerelease and not allow_pre:
            continue
        if not spec.contains(version, prereleases=True):
            continue
        result = evaluator.evaluate(pkg.name, version, page.files_of(version), False)
        if not (isinstance(result, Rejection) and result.kind == "newer"):
            return version
    return None


def requirement_range(pkg: ResolvedPackage) -> SpecifierSet:
    spec = SpecifierSet()
    for _, text in pkg.required_by:
        try:
            spec &= Requirement(text).specifier
        except InvalidRequirement:
            continue
    return spec


def _reason(
    res: Resolution,
    pkg: ResolvedPackage,
    newest: Version,
    repo: Repository,
    evaluator: Evaluator,
    prefs: Mapping[str, Version],
) -> tuple[str, bool]:
    """Why ``newest`` of ``pkg`` is not in ``res``, and whether the existing lock held it."""
    page = repo.project(pkg.name)
    assert page is not None
    result = evaluator.evaluate(pkg.name, newest, page.files_of(newest), False)
    if isinstance(result, Rejection):
        return result.detail, False
    if prefs.get(pkg.name) == pkg.version:
        return f"kept from the existing lock (--upgrade-package {pkg.name} to move it)", True
    assert result.file is not None
    try:
        meta = repo.metadata(result.file)
    except MetadataError as exc:
        return f"its metadata is unusable ({exc})", False
    python = Version(res.target.python_full_version)
    if meta.requires_python is not None and not meta.requires_python.contains(python, True):
        return f"requires Python {meta.requires_python}, the target is {python}", False
    for req in meta.requires_dist:
        if not res.target.marker_matches(req.marker):
            continue
        dep = res.packages.get(canonicalize_name(req.name))
        if dep is not None and not req.specifier.contains(dep.version, prereleases=True):
            why = f"{pkg.name} {newest} requires {req}, {dep.name} is locked at {dep.version}"
            return why, False
    return f"{pkg.name} {newest} does not fit the other packages pinned there", False


def from_source(resolutions: Sequence[Resolution], repo: Repository) -> tuple[str, ...]:
    """``name version (platforms): why not a wheel`` for each package a target builds from its
    sdist."""
    found: dict[tuple[str, str, str], list[str]] = {}
    for res in resolutions:
        for name, pkg in res.packages.items():
            if pkg.file.is_wheel:
                continue
            page = repo.project(name)
            files = page.files_of(pkg.version) if page is not None else ()
            if any(f.is_wheel for f in files):
                why = diagnose_wheels(name, [f for f in files if f.is_wheel], res.target).detail
            else:
                why = "it has only a source distribution"
            found.setdefault((name, str(pkg.version), why), []).append(res.target.platform)
    return tuple(
        f"{name} {version} ({', '.join(found[name, version, why])}): {why}"
        for name, version, why in sorted(found)
    )
