"""``envlock lock``: resolve each environment for each of its platforms and write its lock.

Nothing is written unless every environment resolved. The result says what changed since the
last lock (versions, and any package that moved to another index) and which packages differ
between the platforms of one environment, and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version

from envlock.actions.interpreter import InterpreterLock, lock_interpreters
from envlock.actions.lock_policy import enforce, held_back, resolver_policy, utcnow
from envlock.audit.policy import Finding
from envlock.builds.locking import lock_builds
from envlock.cache.registry import remember_lock
from envlock.cache.store import ArtifactStore
from envlock.errors import ResolutionError, UsageError
from envlock.index.client import HttpClient
from envlock.index.repository import HttpRepository, IndexSession, Routing
from envlock.index.simple import DistFile
from envlock.lock import lockfile
from envlock.lock.diff import diff_locks
from envlock.lock.diff import render as render_diff
from envlock.lock.document import build_lock
from envlock.lock.lockfile import LockFile, write_lock
from envlock.lock.model import LockedInterpreter
from envlock.platforms import Target
from envlock.progress import LockProgress
from envlock.resolve import Policy, Resolution, resolve
from envlock.resolve.candidates import Evaluator, Rejection
from envlock.resolve.constraints import excluded_by, on_target
from envlock.spec import EnvironmentSpec


@dataclass(frozen=True)
class LockOptions:
    """What ``envlock lock`` was asked, beyond the spec."""

    cache_dir: Path
    upgrade: bool = False
    upgrade_packages: frozenset[NormalizedName] = frozenset()
    now: datetime | None = None  # min-age counts back from here (default: the clock)


@dataclass(frozen=True)
class VersionSplit:
    """A package locked at different versions on different platforms of one environment."""

    name: str
    versions: Mapping[str, str]  # platform -> version
    reasons: Mapping[str, str]  # platform -> why it is not the newest there


@dataclass(frozen=True)
class LockResult:
    """What one environment's lock run produced."""

    env: EnvironmentSpec
    path: Path
    changed: bool
    counts: dict[str, int]  # platform -> number of packages
    versions: dict[str, str]  # name -> version(s), for the summary
    splits: tuple[VersionSplit, ...] = ()
    changes: tuple[str, ...] = ()  # what changed since the last lock (envlock.lock.diff lines)
    warnings: tuple[str, ...] = field(default=())
    interpreters: Mapping[str, LockedInterpreter] = field(default_factory=dict)
    held_back: tuple[str, ...] = ()  # newer releases [policy] min-age kept out


_MAX_UNIFORM_ROUNDS = 50


@dataclass(frozen=True)
class _Plan:
    """One environment resolved and checked, waiting for the others before it is written."""

    env: EnvironmentSpec
    document: dict[str, Any]
    lock: LockFile  # the document as it will be read back
    previous: LockFile | None
    resolutions: list[Resolution]
    splits: tuple[VersionSplit, ...]
    interpreters: InterpreterLock
    held_back: tuple[str, ...]
    notes: list[str]


def lock_environments(
    envs: Sequence[EnvironmentSpec],
    options: LockOptions,
    progress: LockProgress | None = None,
) -> list[LockResult]:
    """Resolve and write the lock of every environment; nothing is written if one fails."""
    progress = progress or LockProgress()
    now = options.now or utcnow()
    plans: list[_Plan] = []
    with HttpClient.for_environments(envs) as http:
        session = IndexSession(http, options.cache_dir, progress)
        for env in envs:
            previous = _previous(env)
            interpreters = lock_interpreters(env, previous, options, progress)
            locker = _EnvLocker(
                env, session, None if options.upgrade else previous, options, progress, now
            )
            if interpreters.chosen:
                exact = next(iter(interpreters.chosen.values())).version
                locker.targets = [Target(p, exact, env.platform_options) for p in env.platforms]
            resolutions = locker.resolve_all()
            digests = _digests(session, resolutions)
            document = build_lock(env, resolutions, digests, interpreters.chosen or None)
            # Each locked sdist's build dependencies, pinned beside envlock's own table.
            builds = lock_builds(
                env, session, locker.repo, locker.policy, resolutions, digests, locker.previous
            )
            document["tool"]["envlock"].update(builds.to_dict())
            # The lock as it will be read back: checked against the policy now (a violation
            # stops here, nothing written), compared with the previous one after writing.
            candidate = lockfile.parse(env.lock_path, lockfile.render(document))
            unknown = enforce(env, candidate, now)
            splits = locker.splits(resolutions)  # may look at pages again: before the close
            plans.append(
                _Plan(
                    env,
                    document,
                    candidate,
                    previous,
                    resolutions,
                    splits,
                    interpreters,
                    held_back(resolutions, locker.repo, locker.policy),
                    _unknown_licenses(unknown),
                )
            )
    results = []
    # Write only after every environment resolved: a failure leaves all locks as they were.
    for plan in plans:
        env, resolutions, interpreters = plan.env, plan.resolutions, plan.interpreters
        changed = write_lock(env.lock_path, plan.document)
        remember_lock(ArtifactStore(options.cache_dir), env.lock_path)  # for `cache prune`
        versions: dict[str, set[str]] = {}
        for res in resolutions:
            for pkg in res.packages.values():
                versions.setdefault(pkg.name, set()).add(str(pkg.version))
        warnings = [w for r in resolutions for w in r.warnings]
        results.append(
            LockResult(
                env=env,
                path=env.lock_path,
                changed=changed,
                counts={r.target.platform: len(r.packages) for r in resolutions},
                versions={n: " | ".join(sorted(v)) for n, v in sorted(versions.items())},
                splits=plan.splits,
                changes=tuple(render_diff(diff_locks(plan.previous, plan.lock))),
                warnings=tuple(
                    dict.fromkeys(
                        [*warnings, *session.warnings, *interpreters.warnings, *plan.notes]
                    )
                ),
                interpreters=interpreters.chosen,
                held_back=plan.held_back,
            )
        )
    return results


def _unknown_licenses(findings: Sequence[Finding]) -> list[str]:
    names = [f"{f.name} {f.version}" for f in findings if f.rule == "allowed-licenses"]
    if not names:
        return []
    return [f"license unknown, allowed-licenses cannot be checked: {', '.join(names)}"]


def _previous(env: EnvironmentSpec) -> LockFile | None:
    try:
        return lockfile.read(env.lock_path)
    except UsageError:
        return None  # an unreadable lock (a merge conflict, say) is locked afresh


class _EnvLocker:
    """Resolution of one environment for each of its targets."""

    def __init__(
        self,
        env: EnvironmentSpec,
        session: IndexSession,
        previous: LockFile | None,
        options: LockOptions,
        progress: LockProgress,
        now: datetime,
    ) -> None:
        self.env = env
        self.previous = previous
        self.options = options
        self.progress = progress
        locked = previous.indexes() if previous is not None else {}
        self.repo: HttpRepository = session.repository(
            Routing(
                env.indexes,
                {n: u for n, u in locked.items() if n not in options.upgrade_packages},
            )
        )
        self.policy: Policy = resolver_policy(env, now)
        self.preferences: dict[str, dict[str, Version]] = {}
        # A bundled environment resolves for its interpreter's exact version.
        self.targets: list[Target] = env.targets

    def resolve_all(self) -> list[Resolution]:
        targets = self.targets
        constraints: dict[str, SpecifierSet] = {}
        sources: dict[str, tuple[str, Version]] = {}
        # Each round lowers at least one bound, so this ends; the cap is a safety net.
        for _ in range(_MAX_UNIFORM_ROUNDS):
            resolutions = [self._resolve(t, constraints, sources) for t in targets]
            if not self.env.uniform_versions or not _uniform(resolutions, constraints, sources):
                return resolutions
        raise ResolutionError(
            f"uniform-versions: no common versions found for {self.env.label} after "
            f"{_MAX_UNIFORM_ROUNDS} rounds",
            hint="pin the packages whose versions differ between platforms",
        )

    def _resolve(
        self,
        target: Target,
        constraints: Mapping[str, SpecifierSet],
        sources: Mapping[str, tuple[str, Version]],
    ) -> Resolution:
        self.progress.enter(f"resolving {self.env.label} for {target.label}")
        prefs: dict[str, Version] = {}
        if self.previous is not None:
            prefs = {
                n: v
                for n, v in self.previous.locked_versions(target).items()
                if n not in self.options.upgrade_packages
            }
        self.preferences[target.platform] = prefs
        try:
            return resolve(
                self.env.requirements,
                target,
                self.repo,
                self.policy,
                preferences=prefs,
                constraints=constraints,
                spec_constraints=self.env.constraint_requirements,
                progress=self.progress,
            )
        except ResolutionError as exc:
            held = [f"{n}{c} (from {sources[n][0]})" for n, c in constraints.items()]
            if not held:
                raise
            raise ResolutionError(
                f"uniform-versions: {target.platform} cannot use the versions the other "
                f"platforms allow ({', '.join(sorted(held))}): {exc.message}",
                hint="set uniform-versions = false to let platforms differ, or pin the package",
            ) from None

    def splits(self, resolutions: Sequence[Resolution]) -> tuple[VersionSplit, ...]:
        """Every package whose version differs between platforms, with the reason."""
        out = []
        names = sorted({n for r in resolutions for n in r.packages})
        for name in names:
            found = {r.target.platform: r.packages[name] for r in resolutions if name in r.packages}
            if len({p.version for p in found.values()}) < 2:
                continue
            newest = max(p.version for p in found.values())
            reasons = {}
            for res in resolutions:
                pkg = res.packages.get(name)
                if pkg is not None and pkg.version != newest:
                    reasons[res.target.platform] = self._why_not(res, name, newest)
            out.append(
                VersionSplit(
                    name,
                    {p: str(pkg.version) for p, pkg in sorted(found.items())},
                    reasons,
                )
            )
        return tuple(out)

    def _why_not(self, res: Resolution, name: NormalizedName, newest: Version) -> str:
        """Why ``res``'s platform did not take ``newest`` of ``name``."""
        page = self.repo.project(name)
        if page is not None and newest in page.versions:
            result = Evaluator(res.target, self.policy).evaluate(
                name, newest, page.files_of(newest), False
            )
            if isinstance(result, Rejection):
                return f"{name} {newest}: {result.detail}"
        limits = [
            c for c in on_target(self.env.constraint_requirements, res.target) if c.name == name
        ]
        outside = excluded_by(limits, newest)
        if outside is not None:
            return outside.rejection.detail
        pkg = res.packages[name]
        for who, text in pkg.required_by:
            try:
                spec = Requirement(text).specifier
            except InvalidRequirement:
                continue
            if not spec.contains(newest, prereleases=True):
                return f"{who} requires {text}"
        if self.preferences.get(res.target.platform, {}).get(name) == pkg.version:
            return f"kept from the existing lock (--upgrade-package {name} to move it)"
        return f"{name} {newest} does not fit the other packages pinned there"


def _uniform(
    resolutions: Sequence[Resolution],
    constraints: dict[str, SpecifierSet],
    sources: dict[str, tuple[str, Version]],
) -> bool:
    """Tighten ``constraints`` so a differing package is held to the oldest version chosen
    anywhere; True if anything changed (resolve again), False at the fixed point."""
    changed = False
    names = {n for r in resolutions for n in r.packages}
    for name in sorted(names):
        found = [
            (r.target.platform, r.packages[name].version) for r in resolutions if name in r.packages
        ]
        versions = {v for _, v in found}
        if len(versions) < 2:
            continue
        platform, lowest = min(found, key=lambda pv: (pv[1], pv[0]))
        constraints[name] = SpecifierSet(f"<={lowest}")
        sources[name] = (platform, lowest)
        changed = True
    return changed


def _digests(
    session: IndexSession, resolutions: Sequence[Resolution]
) -> dict[str, tuple[str, int]]:
    """(sha256, size) of every file whose index did not list both, concurrently."""
    todo: dict[str, DistFile] = {}
    for res in resolutions:
        for pkg in res.packages.values():
            if pkg.file.sha256 is None or pkg.file.size is None:
                todo[pkg.file.url] = pkg.file
    found = session.http.pool.map(session.digest, todo.values())
    return dict(zip(todo, found, strict=True))
