"""Resolve an environment spec for one target -> :class:`Resolution`; explain failures."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import resolvelib
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from envlock.errors import ResolutionError
from envlock.events import Stats
from envlock.index.repository import PackageIndex
from envlock.index.simple import DistFile
from envlock.platforms import Target
from envlock.resolve.provider import PYTHON, Provider, Rejections, Req, ResolveOptions
from envlock.spec import EnvironmentSpec

__all__ = ["Resolution", "ResolveOptions", "ResolvedPackage", "resolve"]


@dataclass(frozen=True)
class ResolvedPackage:
    """One package pinned for a target, with the file the target installs."""

    name: NormalizedName
    version: Version
    file: DistFile
    requires_python: SpecifierSet | None


@dataclass(frozen=True)
class Resolution:
    """The full transitive closure for one target."""

    target: Target
    packages: Mapping[NormalizedName, ResolvedPackage]


def resolve(
    env: EnvironmentSpec,
    target: Target,
    index: PackageIndex,
    options: ResolveOptions,
    stats: Stats | None = None,
) -> Resolution:
    """Resolve ``env``'s dependencies for ``target``; raises ResolutionError when impossible."""
    provider = Provider(target, index, options, stats)
    roots = [Req.from_requirement(r) for r in env.requirements if target.marker_matches(r.marker)]
    for root in roots:
        provider.speculate([root.name], root.extras)
    resolver: resolvelib.Resolver = resolvelib.Resolver(provider, resolvelib.BaseReporter())  # type: ignore[type-arg]
    try:
        result = resolver.resolve(roots, max_rounds=20000)
    except resolvelib.ResolutionImpossible as exc:
        raise _explain(exc.causes, provider, target) from None
    except resolvelib.ResolutionTooDeep:
        raise ResolutionError(
            f"cannot resolve for {target.label}: the search gave up after too many attempts",
            hint="narrow the version ranges of your dependencies",
        ) from None
    packages: dict[NormalizedName, ResolvedPackage] = {}
    for cand in result.mapping.values():
        if cand.name == PYTHON or cand.extras:
            continue
        assert cand.file is not None
        name = canonicalize_name(cand.name)
        packages[name] = ResolvedPackage(name, cand.version, cand.file, cand.requires_python)
    return Resolution(target, dict(sorted(packages.items())))


def _explain(
    causes: Collection[resolvelib.structs.RequirementInformation],  # type: ignore[type-arg]
    provider: Provider,
    target: Target,
) -> ResolutionError:
    where = target.label
    names = {c.requirement.name for c in causes}
    # A missing project or one without a usable file is the whole story: say that first.
    for name in sorted(names - {PYTHON}):
        if name in provider.missing:
            urls = ", ".join(i.url for i in provider.index.indexes)
            return ResolutionError(
                f"no such package {name!r} on {urls}",
                hint="check the spelling in your spec's dependencies",
            )
    for name in sorted(names - {PYTHON}):
        rej = provider.rejections.get(name)
        if rej and (rej.no_file or rej.sdist_only) and name in provider.empty:
            return _no_wheel(name, rej, target)
    lines = []
    python_causes = [c for c in causes if c.requirement.name == PYTHON]
    for c in python_causes:
        if c.parent is not None:
            lines.append(
                f"{c.parent} requires {c.requirement.text}, "
                f"but the target Python is {target.python_full_version}"
            )
    if python_causes and len(python_causes) == len(causes):
        return ResolutionError(
            f"cannot resolve for {where}: " + "; ".join(lines),
            hint="lock for a newer Python or pin an older release",
        )
    by_name: dict[str, list[str]] = {}
    for c in causes:
        if c.requirement.name == PYTHON:
            continue
        who = "the spec" if c.parent is None else str(c.parent)
        by_name.setdefault(c.requirement.name, []).append(f"{who} requires {c.requirement.text}")
    for name, reasons in sorted(by_name.items()):
        extra = _rejection_note(provider.rejections.get(name))
        lines.append(
            f"no version of {name} satisfies all of: "
            + "; ".join(sorted(set(reasons)))
            + (f" ({extra})" if extra else "")
        )
    message = f"cannot resolve for {where}:\n  " + "\n  ".join(lines)
    return ResolutionError(message, hint="relax one of these requirements")


def _no_wheel(name: str, rej: Rejections, target: Target) -> ResolutionError:
    floor = _floor_that_would_fit(rej.wheel_tags, target)
    if floor is not None:
        key, value = floor
        hint = (
            f"{name} has {target.platform} wheels only for a newer OS: set "
            f'[platform-tags] {key} = "{value}" in the spec if your machines have it'
        )
    elif rej.sdist_only and not rej.wheel_tags:
        hint = (
            f"{name} {rej.sdist_only[0]} has only a source distribution: add {name!r} to "
            "allow-sdist in the spec, or pin a version that has wheels"
        )
    else:
        tags = ", ".join(sorted(rej.wheel_tags)[:6]) or "none"
        hint = (
            f"its wheels are for: {tags}; pin a version with a {target.platform} wheel"
            + (f", add {name!r} to allow-sdist" if rej.sdist_only else "")
            + ", or drop this platform"
        )
    return ResolutionError(f"no wheel of {name} for {target.label}", hint=hint)


def _floor_that_would_fit(platform_tags: set[str], target: Target) -> tuple[str, str] | None:
    """The lowest [platform-tags] floor under which one of these wheels would install."""
    arch = target.platform_tags[0].rsplit("_", 1)[-1] if target.platform_tags else ""
    found: list[tuple[int, int]] = []
    for tag in platform_tags:
        for part in tag.split("."):
            m = re.fullmatch(r"(macosx|manylinux)_(\d+)_(\d+)_(\w+)", part)
            if m and m.group(4) in (arch, "universal2"):
                kind = "macosx" if target.platform.startswith("osx") else "manylinux"
                if m.group(1) == kind:
                    found.append((int(m.group(2)), int(m.group(3))))
    if not found:
        return None
    major, minor = min(found)
    if target.platform.startswith("osx"):
        key = "macos-arm64" if target.platform == "osx-arm64" else "macos-x86_64"
        return key, f"{major}.{minor}"
    return "glibc", f"{major}.{minor}"


def _rejection_note(rej: Rejections | None) -> str:
    if rej is None:
        return ""
    notes = []
    if rej.no_file or rej.sdist_only:
        notes.append(f"{len(rej.no_file) + len(rej.sdist_only)} versions have no usable wheel")
    if rej.requires_python:
        notes.append(f"{len(rej.requires_python)} need another Python")
    if rej.yanked:
        notes.append(f"{len(rej.yanked)} yanked")
    if rej.newer:
        notes.append(f"{len(rej.newer)} newer than exclude-newer")
    return ", ".join(notes)
