"""Limits on the versions of a project that require nothing of it. Pure.

Two sources: the spec's ``constraints`` (PEP 508, markers evaluated per target, like uv's
``constraint-dependencies`` and pip's ``-c``) and ``uniform-versions``, which holds a package to
the oldest version another platform chose. A constraint never brings a package in; it only
rejects versions, with a :class:`~envlock.resolve.candidates.Rejection` that names it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from envlock.platforms import Target
from envlock.resolve.candidates import Rejection


@dataclass(frozen=True)
class Constraint:
    """One limit on one project's versions, and what a version outside it is told."""

    name: NormalizedName
    specifier: SpecifierSet
    rejection: Rejection

    def allows(self, version: Version) -> bool:
        return self.specifier.contains(version, prereleases=True)


def on_target(requirements: Iterable[Requirement], target: Target) -> list[Constraint]:
    """The spec's constraints that hold on ``target`` (their markers true there)."""
    out = []
    for req in requirements:
        if not target.marker_matches(req.marker):
            continue
        text = str(req)
        out.append(
            Constraint(
                canonicalize_name(req.name),
                req.specifier,
                Rejection(
                    "constraint",
                    f"excluded by the constraint {text!r}",
                    f"change the constraint {text!r} in the spec's constraints",
                ),
            )
        )
    return out


def uniform_constraints(limits: Mapping[str, SpecifierSet]) -> list[Constraint]:
    """``uniform-versions``' limits (name -> the versions the other platforms allow)."""
    return [
        Constraint(
            canonicalize_name(name),
            spec,
            Rejection("constraint", f"outside {name}{spec} (uniform-versions)"),
        )
        for name, spec in limits.items()
    ]


def by_project(constraints: Iterable[Constraint]) -> dict[str, tuple[Constraint, ...]]:
    out: dict[str, tuple[Constraint, ...]] = {}
    for c in constraints:
        out[c.name] = (*out.get(c.name, ()), c)
    return out


def excluded_by(constraints: Sequence[Constraint], version: Version) -> Constraint | None:
    """The first of ``constraints`` (of one project) that ``version`` is outside, or None."""
    return next((c for c in constraints if not c.allows(version)), None)
