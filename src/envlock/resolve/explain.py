"""A failed resolution -> a few lines a person can act on: the chain of requirements that clash
(which requirement of which package wants what), or the cause a project has no usable version
and the one setting that would change it."""

from __future__ import annotations

from collections.abc import Sequence

from packaging.specifiers import SpecifierSet
from packaging.version import Version
from resolvelib.structs import RequirementInformation

from envlock.errors import ResolutionError
from envlock.index.auth import redact
from envlock.platforms import Target
from envlock.resolve.candidates import PYTHON, Candidate, Rejection
from envlock.resolve.lookahead import DEPTH, Conflict
from envlock.resolve.provider import Info, Provider
from envlock.resolve.reporter import Reporter

_MAX_LINES = 10
_DENY_CHAIN = 3  # requirement lines shown above a deny rule that blocks what they need


def explain(
    causes: Sequence[Info], provider: Provider, reporter: Reporter, target: Target
) -> ResolutionError:
    """The error for ``ResolutionImpossible(causes)``.

    Where the search ended is not always where the story starts: if one of the spec's own
    requirements has provably no usable version (the lookahead's proofs), that is explained
    instead, from the top."""
    return _Explainer(provider, reporter, target).explain(_root_causes(provider) or causes)


def _root_causes(provider: Provider) -> list[Info]:
    lookahead = provider.lookahead
    lookahead.enable()
    # A requirement of the spec with no usable file at all (a pin whose wheels are for other
    # Pythons, say) is the story before any requirement that merely needs it: otherwise a
    # package asking for "jinja2>=3" is blamed for the spec's unusable "jinja2==3.1.6".
    for depth in (0, DEPTH):
        for req in provider.roots:
            spec = provider.root_specs.get(req.name, req.specifier)
            if not lookahead.viable(req.name, spec, depth):
                return [
                    RequirementInformation(r, None) for r in provider.roots if r.name == req.name
                ]
    return []


def explain_too_deep(provider: Provider, reporter: Reporter, target: Target) -> ResolutionError:
    """The error when the search ran out of rounds: what it kept running into."""
    causes = reporter.most_frequent_conflict()
    error = _Explainer(provider, reporter, target).explain(causes) if causes else None
    lines = error.message.split("\n", 1)[1] if error and "\n" in error.message else ""
    message = f"cannot resolve for {target.label}: no solution found after a long search"
    if lines:
        message += "; the conflict it kept hitting:\n" + lines
    return ResolutionError(message, hint="pin the packages named here to versions that agree")


def who(parent: Candidate | None) -> str:
    return "the spec" if parent is None else str(parent)


def span(versions: Sequence[Version], all_versions: Sequence[Version]) -> str:
    """``1.0.0 … 1.0.8`` for a run of consecutive versions, else a short list."""
    chosen = sorted(set(versions))
    if len(chosen) == 1:
        return str(chosen[0])
    ordered = sorted(all_versions)
    lo, hi = ordered.index(chosen[0]), ordered.index(chosen[-1])
    if ordered[lo : hi + 1] == chosen:
        return f"{chosen[0]} … {chosen[-1]}"
    shown = ", ".join(str(v) for v in chosen[-3:][::-1])
    return shown + (f" and {len(chosen) - 3} older" if len(chosen) > 3 else "")


class _Explainer:
    def __init__(self, provider: Provider, reporter: Reporter, target: Target) -> None:
        self.p = provider
        self.reporter = reporter
        self.target = target
        self.lines: list[str] = []
        self.fixes: list[str] = []
        self.explained: set[str] = set()
        self.clash = False
        self.denied: list[str] = []  # "lib 1.0 … 2.0: denied by the [policy] deny rule 'lib'"

    def explain(self, causes: Sequence[Info]) -> ResolutionError:
        where = self.target.label
        names = list(dict.fromkeys(c.requirement.name for c in _roots_first(causes)))
        for name in names:
            if name in self.p.missing:
                asked = [c for c in causes if c.requirement.name == name]
                return self._missing(name, who(asked[0].parent), asked[0].requirement.text)
        for name in names:
            # Versions dropped because a dependency is on no index: that is the whole story.
            for v in self._in_range(name, _spec([c for c in causes if c.requirement.name == name])):
                conflict = self.p.lookahead.conflict_of(name, v)
                if conflict is not None and conflict.requirement.name in self.p.missing:
                    return self._missing(
                        conflict.requirement.name, f"{name} {v}", conflict.requirement.text
                    )
        python = [c for c in causes if c.requirement.name == PYTHON]
        for name in names:
            if name != PYTHON:
                self._why(name, [c for c in causes if c.requirement.name == name], depth=0)
        for c in python:
            if c.parent is None:
                continue
            if c.requirement.specifier.contains(self.target.python_full_version, True):
                continue  # met: not why the search failed (a version it needs is unusable)
            unusable = self.p.rejections.get(c.parent.name, {}).get(c.parent.version)
            if unusable is not None and unusable.kind == "bad_metadata":
                self.lines.append(f"{c.parent}: {unusable.detail}")
                continue
            self.clash = True
            self.lines.append(
                f"{c.parent} requires Python {c.requirement.specifier}, the target is "
                f"{self.target.python_full_version}"
            )
            self.fixes.append("set a python in the spec that it supports, or pin an older release")
        single = self._single_no_wheel(names, causes)
        if single is not None:
            return single
        if self.denied:
            return self._denied(where)
        shown = self.lines[:_MAX_LINES]
        if len(self.lines) > _MAX_LINES:
            shown.append(f"… and {len(self.lines) - _MAX_LINES} more")
        hint = "relax one of these requirements" if self.clash else None
        if self.fixes and not self.clash:
            hint = self.fixes[0]
        return ResolutionError(f"cannot resolve for {where}:\n  " + "\n  ".join(shown), hint=hint)

    def _denied(self, where: str) -> ResolutionError:
        """A deny rule took away what is needed: the rule first, then the shortest chain that
        leads to it (not every requirement that ends there)."""
        first = self.denied[0]
        at = self.lines.index(first)
        chain = self.lines[:at][-_DENY_CHAIN:]
        lines = [*chain, first]
        fix = next((f for f in self.fixes if "deny rule" in f), None)
        return ResolutionError(
            f"cannot resolve for {where}: a [policy] deny rule blocks a package it needs:\n  "
            + "\n  ".join(lines),
            hint=fix,
        )

    def _missing(self, name: str, asker: str, text: str) -> ResolutionError:
        urls = ", ".join(redact(i.url) for i in self.p.repo.indexes)
        return ResolutionError(
            f"no project named {name!r} on {urls} ({asker} requires {text})",
            hint="check the spelling, and which index should serve it",
        )

    def _single_no_wheel(self, names: list[str], causes: Sequence[Info]) -> ResolutionError | None:
        """One project whose every version in range is unusable for file reasons: say so in
        one line with the cause of the newest one and the setting that would change it."""
        if self.clash or len(names) != 1 or names[0] == PYTHON:
            return None
        name = names[0]
        infos = [c for c in causes if c.requirement.name == name]
        versions = self._in_range(name, _spec(infos))
        rejections = self.p.rejections.get(name, {})
        reasons = [rejections.get(v) for v in versions]
        if not versions or any(r is None for r in reasons):
            return None
        newest = versions[0]
        rej = rejections[newest]
        assert rej is not None
        req = " and ".join(sorted({c.requirement.text for c in infos}))
        others = len(versions) - 1
        more = f" ({others} older version{'s' if others != 1 else ''} in range: none usable)"
        message = (
            f"no version of {req} can be installed on {self.target.label}: {name} {newest}: "
            f"{rej.detail}" + (more if others else "")
        )
        if rej.fix:
            hint = rej.fix
        else:
            hint = (
                f"pin a version of {name} that has such a wheel, or drop {self.target.platform} "
                "from the spec's platforms"
            )
        return ResolutionError(message, hint=hint)

    def _in_range(self, name: str, spec: SpecifierSet) -> list[Version]:
        page = self.p.repo.project(name)
        if page is None:
            return []
        return [v for v in page.versions if spec.contains(v, prereleases=True)]

    def _why(self, name: str, infos: Sequence[Info], depth: int) -> None:
        """Lines saying why no version of ``name`` satisfies ``infos``."""
        if name in self.explained or len(self.lines) >= _MAX_LINES:
            return
        self.explained.add(name)
        spec = _spec(infos)
        page = self.p.repo.project(name)
        all_versions = list(page.versions) if page is not None else []
        in_range = self._in_range(name, spec)
        asks = sorted({f"{self._chain(c.parent)} requires {c.requirement.text}" for c in infos})
        if not in_range:
            self.clash = True
            newest = max((v for v in all_versions if not v.is_prerelease), default=None)
            tail = f" (newest: {newest})" if newest is not None else ""
            if len(asks) > 1:
                self.lines.extend(asks)
                self.lines.append(f"no version of {name} satisfies all of them{tail}")
            else:
                self.lines.append(f"{asks[0]}, but {name} has no such version{tail}")
            return
        self.lines.extend(asks)
        self._rejected(name, in_range, all_versions, depth)

    def _rejected(
        self, name: str, versions: list[Version], all_versions: list[Version], depth: int
    ) -> None:
        """Group the versions in range by why each is unusable, newest group first."""
        groups: dict[tuple[str, str], list[Version]] = {}
        conflicts: dict[tuple[str, str], Conflict] = {}
        rejections = self.p.rejections.get(name, {})
        for v in versions:
            conflict = self.p.lookahead.conflict_of(name, v)
            rej = rejections.get(v)
            if conflict is not None:
                key = ("conflict", conflict.requirement.text)
                conflicts[key] = conflict
            elif rej is not None:
                key = (rej.kind, rej.detail)
                if rej.fix and rej.fix not in self.fixes:
                    self.fixes.append(rej.fix)
            else:
                key = ("search", "")
            groups.setdefault(key, []).append(v)
        # Pre-releases last: they are a side note unless nothing else is in range.
        ordered = sorted(groups.items(), key=lambda kv: kv[0][0] == "prerelease")
        trailer: list[str] = []
        for (kind, detail), vs in ordered:
            if len(self.lines) >= _MAX_LINES:
                return
            label = f"{name} {span(vs, all_versions)}"
            plural = len(vs) > 1
            if kind == "conflict":
                c = conflicts[(kind, detail)]
                self.lines.append(f"{label} require{'' if plural else 's'} {c.requirement.text}")
                dep = c.requirement.name
                both = self._both(dep, c.requirement.specifier, c.spec_requirement)
                if both and depth < 3 and dep not in self.explained:
                    # Both requirements allow these versions: what is wrong is the versions
                    # themselves (no file for the target, say), not a clash.
                    self.explained.add(dep)
                    self._rejected(dep, both[0], both[1], depth + 1)
                elif c.spec_requirement is not None:
                    self.clash = True
                    if dep == PYTHON:
                        self.lines[-1] += f", the target is {self.target.python_full_version}"
                    elif dep not in self.explained:
                        self.explained.add(dep)
                        trailer.append(f"but the spec requires {dep}{c.spec_requirement}")
                elif depth < 3 and dep not in self.explained and dep != PYTHON:
                    self.explained.add(dep)
                    root = self.p.root_specs.get(dep)
                    dep_spec = c.requirement.specifier & root if root else c.requirement.specifier
                    dep_page = self.p.repo.project(dep)
                    dep_all = list(dep_page.versions) if dep_page is not None else []
                    dep_versions = [v for v in dep_all if dep_spec.contains(v, prereleases=True)]
                    if dep_versions:
                        self._rejected(dep, dep_versions, dep_all, depth + 1)
                    elif root is not None:
                        self.lines.append(f"but the spec requires {dep}{root}")
            elif kind == "search":
                self.clash = True
                self.lines.append(f"{label} conflict{'' if plural else 's'} with the other pins")
            else:
                self.lines.append(f"{label}: {detail}")
                if kind == "denied":
                    self.denied.append(self.lines[-1])
        self.lines.extend(trailer)

    def _both(
        self, name: str, spec: SpecifierSet, root: SpecifierSet | None
    ) -> tuple[list[Version], list[Version]] | None:
        """The versions of ``name`` on the index that a dependency's ``spec`` and the spec's
        own ``root`` requirement both allow (with all of its versions), or None if there are
        none: then the two requirements really clash."""
        if root is None or name == PYTHON:
            return None
        page = self.p.repo.project(name)
        if page is None:
            return None
        both = [v for v in page.versions if (spec & root).contains(v, prereleases=True)]
        return (both, list(page.versions)) if both else None

    def _chain(self, parent: Candidate | None) -> str:
        """``the spec`` or ``A 1.0`` with, one level up, why A is there."""
        if parent is None:
            return "the spec"
        up = self.reporter.why_pinned(parent)
        if any(i.parent is None for i in up):
            return f"{parent} (in the spec)"
        return str(parent)


def _roots_first(causes: Sequence[Info]) -> list[Info]:
    return sorted(causes, key=lambda c: c.parent is not None)


def _spec(infos: Sequence[Info]) -> SpecifierSet:
    spec = SpecifierSet()
    for c in infos:
        spec &= c.requirement.specifier
    return spec


__all__ = ["Rejection", "explain", "explain_too_deep"]
