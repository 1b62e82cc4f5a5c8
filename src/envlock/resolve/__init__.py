"""Resolve requirements for one target -> :class:`Resolution`; explain failures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import resolvelib
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from envlock.core_metadata import requires_key
from envlock.index.repository import Repository
from envlock.index.simple import DistFile
from envlock.platforms import Target
from envlock.progress import LockProgress
from envlock.resolve.candidates import PYTHON, Policy, Req
from envlock.resolve.constraints import on_target, uniform_constraints
from envlock.resolve.explain import explain, explain_too_deep
from envlock.resolve.prefetch import Crawler
from envlock.resolve.provider import Provider
from envlock.resolve.reporter import Reporter

__all__ = ["Policy", "Resolution", "ResolvedPackage", "resolve"]

MAX_ROUNDS = 20000


@dataclass(frozen=True)
class ResolvedPackage:
    """One package pinned for a target, with the file the target installs."""

    name: NormalizedName
    version: Version
    file: DistFile
    requires_python: SpecifierSet | None
    requires_dist: tuple[str, ...] = ()  # its metadata's dependencies, canonical form
    # Who asked for it and what they asked: ("the spec" | "pkg 1.0", "name>=2")
    required_by: tuple[tuple[str, str], ...] = ()
    license: str | None = None  # as its metadata declares it (envlock.licenses)


@dataclass(frozen=True)
class Resolution:
    """The full transitive closure for one target."""

    target: Target
    packages: Mapping[NormalizedName, ResolvedPackage]
    warnings: tuple[str, ...] = field(default=())


def resolve(
    requirements: Sequence[Requirement],
    target: Target,
    repo: Repository,
    policy: Policy,
    *,
    preferences: Mapping[str, Version] | None = None,
    constraints: Mapping[str, SpecifierSet] | None = None,
    spec_constraints: Sequence[Requirement] = (),
    progress: LockProgress | None = None,
) -> Resolution:
    """Resolve ``requirements`` for ``target``; raises ResolutionError when impossible.

    ``preferences`` are versions to try first (an existing lock); ``constraints`` restrict
    versions without requiring anything (``uniform-versions``), as do the spec's PEP 508
    ``spec_constraints`` where their markers hold on ``target``."""
    progress = progress or LockProgress()
    roots = [Req.from_requirement(r) for r in requirements if target.marker_matches(r.marker)]
    provider = Provider(
        target,
        repo,
        policy,
        roots,
        preferences=preferences,
        constraints=[
            *uniform_constraints(constraints or {}),
            *on_target(spec_constraints, target),
        ],
        progress=progress,
    )
    crawler = Crawler(repo, target, provider.evaluator, preferences or {}, provider.constraints)
    for root in roots:
        crawler.speculate([root.name], root.extras)
    reporter = Reporter(progress, provider.lookahead.enable, provider.note_rejection)
    resolver: resolvelib.Resolver[Req, object, str] = resolvelib.Resolver(provider, reporter)
    try:
        result = resolver.resolve(roots, max_rounds=MAX_ROUNDS)
    except resolvelib.ResolutionImpossible as exc:
        raise explain(list(exc.causes), provider, reporter, target) from None
    except resolvelib.ResolutionTooDeep:
        raise explain_too_deep(provider, reporter, target) from None
    packages: dict[NormalizedName, ResolvedPackage] = {}
    warnings: list[str] = []
    for key, cand in result.mapping.items():
        if cand.name == PYTHON or cand.extras:  # type: ignore[attr-defined]
            continue
        file = cand.file  # type: ignore[attr-defined]
        assert file is not None
        name = canonicalize_name(cand.name)  # type: ignore[attr-defined]
        meta = repo.metadata(file)
        infos = result.criteria[key].information
        asked = tuple(
            sorted(
                {
                    ("the spec" if i.parent is None else str(i.parent), i.requirement.text)
                    for i in infos
                }
            )
        )
        packages[name] = ResolvedPackage(
            name,
            cand.version,  # type: ignore[attr-defined]
            file,
            cand.requires_python,  # type: ignore[attr-defined]
            requires_key(meta.requires_dist),
            asked,
            meta.license,
        )
        if file.yanked:
            why = f": {file.yank_reason}" if file.yank_reason else ""
            warnings.append(
                f"{name} {cand.version} is yanked{why} (locked because it is pinned with ==)"  # type: ignore[attr-defined]
            )
    return Resolution(target, dict(sorted(packages.items())), tuple(warnings))
