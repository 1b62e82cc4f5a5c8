"""``envlock lock``: resolve each environment for each target and write its lock file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from envlock.events import Stats
from envlock.index.client import HttpClient
from envlock.index.repository import PackageIndex
from envlock.lock.document import build_lock, locked_versions
from envlock.lock.io import check, read_lock, write_lock
from envlock.platforms import Target
from envlock.resolve import Resolution, ResolveOptions, resolve
from envlock.spec import EnvironmentSpec


@dataclass(frozen=True)
class LockResult:
    """What one environment's lock run produced."""

    env: EnvironmentSpec
    path: Path
    changed: bool
    counts: dict[str, int]  # platform -> number of packages
    versions: dict[str, str]  # name -> version(s), for the summary


def targets_of(env: EnvironmentSpec) -> list[Target]:
    return [Target(p, env.python, env.platform_options) for p in env.platforms]


def check_locks(envs: Sequence[EnvironmentSpec]) -> None:
    """``lock --check``: fail on the first missing or stale lock. Touches no network."""
    for env in envs:
        check(env, targets_of(env))


def lock_environments(
    envs: Sequence[EnvironmentSpec],
    cache_dir: Path,
    *,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    stats: Stats | None = None,
    on_target: Callable[[EnvironmentSpec, Target], None] | None = None,
) -> list[LockResult]:
    """Resolve and write the lock of every environment; nothing is written if one fails."""
    stats = stats or Stats()
    all_indexes = {i.url: i for env in envs for i in env.indexes}
    upgrade_names = {canonicalize_name(n) for n in upgrade_packages}
    with HttpClient(list(all_indexes.values())) as http:
        plans = []
        indexes: dict[tuple[object, ...], PackageIndex] = {}
        for env in envs:
            # Environments on the same indexes share pages and metadata within the run.
            index = indexes.get(env.indexes) or PackageIndex(http, env.indexes, cache_dir, stats)
            indexes[env.indexes] = index
            previous = None if upgrade else read_lock(env.lock_path)
            resolutions: list[Resolution] = []
            for target in targets_of(env):
                if on_target is not None:
                    on_target(env, target)
                prefs: dict[str, Version] = {}
                if previous is not None:
                    prefs = {
                        n: v
                        for n, v in locked_versions(previous, target).items()
                        if n not in upgrade_names
                    }
                options = ResolveOptions(
                    prerelease=env.prerelease,
                    exclude_newer=env.exclude_newer,
                    sdist_allowed=env.sdist_allowed,
                    preferences=prefs,
                )
                resolutions.append(resolve(env, target, index, options, stats))
            # Indexes without PEP 700 sizes: ask for each file's size, concurrently.
            unsized = {
                p.file.url: p.file
                for r in resolutions
                for p in r.packages.values()
                if p.file.size is None
            }
            sized = http.pool.map(index.file_size, unsized.values())
            sizes = dict(zip(unsized, sized, strict=True))
            plans.append((env, build_lock(env, resolutions, sizes), resolutions))
    results = []
    # Write only after every environment resolved: a failure leaves all locks as they were.
    for env, document, resolutions in plans:
        changed = write_lock(env.lock_path, document)
        versions: dict[str, set[str]] = {}
        for res in resolutions:
            for pkg in res.packages.values():
                versions.setdefault(pkg.name, set()).add(str(pkg.version))
        results.append(
            LockResult(
                env=env,
                path=env.lock_path,
                changed=changed,
                counts={r.target.platform: len(r.packages) for r in resolutions},
                versions={n: " | ".join(sorted(v)) for n, v in sorted(versions.items())},
            )
        )
    return results
