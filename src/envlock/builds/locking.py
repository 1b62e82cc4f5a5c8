"""Lock time: the build dependencies of every locked sdist, resolved, pinned and hashed.

For each sdist the lock selects, its build requirements are ``[build-system] requires`` (or the
PEP 517 default) plus what its backend's ``get_requires_for_build_wheel`` answers. That answer
needs the backend running: once, on this host, in an offline build environment of the static
requirements (resolved for this host), and cached by the sdist's sha256 forever, like metadata.

The build requirements are then resolved with the environment's own indexes and policy
(exclude-newer, deny, min-age) for each target platform that installs the sdist, with that
target's Python: a build for linux-64 runs on a linux-64 machine. Build packages must be wheels
(envlock does not bootstrap a build backend from source).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import Version

from envlock._fs import atomic_write_bytes
from envlock.cache.store import ArtifactStore
from envlock.errors import BuildError, ResolutionError
from envlock.index.auth import redact
from envlock.index.repository import IndexSession, Repository
from envlock.lock.artifacts import Artifact
from envlock.lock.builds import BuildFile, BuildTable, SdistBuild
from envlock.lock.lockfile import LockFile
from envlock.platforms import Target, host_platform
from envlock.resolve import Policy, Resolution, ResolvedPackage, resolve
from envlock.spec import EnvironmentSpec

_CACHE = "build-requires-v1"


@dataclass(frozen=True)
class _Requires:
    backend: str
    requires: tuple[str, ...]
    backend_requires: tuple[str, ...]


@dataclass
class _Sdist:
    pkg: ResolvedPackage
    art: Artifact
    targets: list[Target] = field(default_factory=list)


def lock_builds(
    env: EnvironmentSpec,
    session: IndexSession,
    repo: Repository,
    policy: Policy,
    resolutions: Sequence[Resolution],
    digests: Mapping[str, tuple[str, int]],
    previous: LockFile | None = None,
) -> BuildTable:
    """The build table of the sdists in ``resolutions`` (empty when they lock none)."""
    sdists: dict[str, _Sdist] = {}
    for res in resolutions:
        for pkg in res.packages.values():
            if pkg.file.is_wheel:
                continue
            sha, size = (
                (pkg.file.sha256, pkg.file.size)
                if pkg.file.sha256 and pkg.file.size is not None
                else digests[pkg.file.url]
            )
            art = Artifact(
                pkg.name,
                str(pkg.version),
                pkg.file.filename,
                pkg.file.url,
                sha,
                size,
                is_wheel=False,
                index=redact(pkg.file.index),
            )
            sdists.setdefault(sha, _Sdist(pkg, art)).targets.append(res.target)
    if not sdists:
        return BuildTable()
    locker = _BuildLocker(env, session, repo, policy, previous)
    builds = [locker.lock(s) for _, s in sorted(sdists.items())]
    return BuildTable(tuple(builds), locker.files)


class _BuildLocker:
    def __init__(
        self,
        env: EnvironmentSpec,
        session: IndexSession,
        repo: Repository,
        policy: Policy,
        previous: LockFile | None,
    ) -> None:
        self.env = env
        self.session = session
        self.repo = repo
        # Build packages are installed, never built: no sdists among them. A spec's own == pins
        # are for the environment, not for its build tools, so none is exempt from min-age.
        self.policy = replace(policy, sdist_allowed=None, cooldown_exempt=frozenset())
        self.previous = previous
        self.store = ArtifactStore(session.cache_dir)
        self.files: dict[str, BuildFile] = {}
        self._resolved: dict[tuple[tuple[str, ...], str], tuple[str, ...]] = {}

    def lock(self, sdist: _Sdist) -> SdistBuild:
        art = sdist.art
        found = self._requires(sdist)
        reqs = (*found.requires, *found.backend_requires)
        platforms = {
            t.platform: self._resolve(art, reqs, t)
            for t in sorted(sdist.targets, key=lambda t: t.platform)
        }
        return SdistBuild(
            art.name,
            art.version,
            art.filename,
            art.sha256,
            found.requires,
            found.backend,
            found.backend_requires,
            platforms,
        )

    # -- resolving build requirements for a target --------------------------------------
    def _resolve(self, art: Artifact, reqs: Sequence[str], target: Target) -> tuple[str, ...]:
        key = (tuple(reqs), target.platform)
        if key in self._resolved:
            return self._resolved[key]
        label = f"{art.name} {art.version} ({art.filename})"
        self.session.progress.enter(f"resolving the build dependencies of {label}")
        try:
            requirements = [Requirement(r) for r in reqs]
        except InvalidRequirement as exc:
            raise BuildError(f"{label}: a build requirement is not valid: {exc}") from None
        try:
            res = resolve(
                requirements,
                target,
                self.repo,
                self.policy,
                preferences=self._preferences(art, target.platform),
            )
        except ResolutionError as exc:
            raise ResolutionError(
                f"the build dependencies of {label} for {target.platform}: {exc.message}",
                hint="build packages must be wheels the spec's indexes and [policy] allow",
            ) from None
        names = []
        for pkg in sorted(res.packages.values(), key=lambda p: p.name):
            sha, size = self.session.digest(pkg.file)
            f = BuildFile(
                pkg.name,
                str(pkg.version),
                pkg.file.filename,
                redact(pkg.file.url),
                sha,
                size,
                redact(pkg.file.index),
            )
            self.files.setdefault(f.name, f)
            names.append(f.name)
        self._resolved[key] = tuple(names)
        return self._resolved[key]

    def _preferences(self, art: Artifact, platform: str) -> dict[str, Version]:
        """The previous lock's build pins of this sdist: kept unless they no longer fit."""
        if self.previous is None:
            return {}
        files = self.previous.build_packages(art.sha256, platform) or []
        return {f.package: Version(f.version) for f in files}

    # -- what the sdist needs to build ----------------------------------------------------
    def _requires(self, sdist: _Sdist) -> _Requires:
        path = self.store.root / _CACHE / sdist.art.sha256[:2] / f"{sdist.art.sha256}.json"
        cached = _read_cached(path)
        if cached is not None:
            return cached
        found = self._ask_backend(sdist)
        data = {
            "backend": found.backend,
            "requires": list(found.requires),
            "backend-requires": list(found.backend_requires),
        }
        atomic_write_bytes(path, json.dumps(data, sort_keys=True).encode())
        return found

    def _ask_backend(self, sdist: _Sdist) -> _Requires:
        """Static requirements from pyproject.toml, dynamic ones from the backend itself, run
        offline in an environment of the static ones resolved for this host."""
        from envlock.builds.environment import (
            build_environment,
            build_python,
            call_hook,
            check_installable,
            hooks,
        )
        from envlock.builds.requires import read_build_system
        from envlock.cache.builds import cached_files
        from envlock.cache.fetch import fetch
        from envlock.core_metadata import MetadataError
        from envlock.index.client import HttpClient
        from envlock.index.sdist import unpack_sdist

        art = sdist.art
        label = f"{art.name} {art.version} ({art.filename})"

        def client() -> HttpClient:
            return HttpClient.for_environments([self.env], check_indexes=False)

        fetch(self.store, [art], client)
        path = self.store.get(art.sha256, art.filename, art.size)
        assert path is not None  # fetched just above
        host = next(
            (t for t in sdist.targets if t.platform == host_platform()),
            Target(host_platform(), self.env.python, self.env.platform_options),
        )
        python = build_python(host)
        minor = ".".join(python.version.split(".")[:2])
        host = Target(host_platform(), minor, self.env.platform_options)
        work = self.store.scratch_dir("build-requires-" + art.sha256)
        try:
            source = unpack_sdist(path.read_bytes(), art.filename, work / "src")
            system = read_build_system(source, label)
            names = self._resolve(art, system.requires, host)
            packages = [self.files[n] for n in names]
            check_installable(packages, python, label)
            fetch(self.store, [f.artifact for f in packages], client)
            files = cached_files(self.store, packages)
            self.session.progress.enter(f"asking the build backend of {label} what it needs")
            with build_environment(self.store, files, python, work) as env_python:
                caller = hooks(source, system, env_python)
                dynamic = call_hook(
                    label,
                    "get_requires_for_build_wheel",
                    caller.get_requires_for_build_wheel,
                )
        except MetadataError as exc:
            raise BuildError(str(exc)) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if not isinstance(dynamic, list) or not all(isinstance(r, str) for r in dynamic):
            raise BuildError(f"{label}: get_requires_for_build_wheel did not answer a list")
        return _Requires(system.backend, system.requires, tuple(dynamic))


def _read_cached(path: Path) -> _Requires | None:
    try:
        data = json.loads(path.read_bytes())
        return _Requires(
            str(data["backend"]),
            tuple(str(r) for r in data["requires"]),
            tuple(str(r) for r in data["backend-requires"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or damaged: ask again
