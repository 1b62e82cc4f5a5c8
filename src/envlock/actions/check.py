"""``envlock lock --check``: is every lock fresh? Offline by default; ``--online`` also asks
each package's recorded index (through its mirror, if ENVLOCK_INDEX_URL sets one) whether it
still lists exactly the locked files.

The offline path imports no network code: it runs on every commit (pre-commit, CI).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.pylock import PackageSdist, PackageWheel

from envlock._urls import redact
from envlock.errors import StaleLockError
from envlock.lock import lockfile
from envlock.lock.staleness import check
from envlock.spec import EnvironmentSpec, load_spec
from envlock.spec_values import parse_platforms, parse_timestamp

if TYPE_CHECKING:
    from envlock.index.client import HttpClient
    from envlock.lock.model import LockedInterpreter


def select_environments(
    spec: Path, names: Sequence[str], platforms: Sequence[str], exclude_newer: str | None
) -> list[EnvironmentSpec]:
    """The environments ``envlock lock`` works on: ``--env`` picks them, ``--platform`` and
    ``--exclude-newer`` override the spec for this run."""
    envs = load_spec(spec).select(names)
    if platforms:
        chosen = parse_platforms(platforms, "--platform")
        envs = [e.with_platforms(chosen) for e in envs]
    if exclude_newer is not None:
        ts = parse_timestamp(exclude_newer, "--exclude-newer")
        envs = [e.with_exclude_newer(ts) for e in envs]
    return envs


def check_locks(envs: Sequence[EnvironmentSpec]) -> None:
    """Fail on the first missing or stale lock (exit 1). Touches no network."""
    for env in envs:
        check(env, env.targets)


@dataclass(frozen=True)
class OnlineReport:
    """What ``--check --online`` found: one line per locked file that the index contradicts."""

    files: int
    problems: tuple[str, ...]


def check_online(envs: Sequence[EnvironmentSpec], cache_dir: Path) -> OnlineReport:
    """Every locked file must still be listed by its package's recorded index, at the same URL
    and with the same sha256. Catches a lock edited to point a file elsewhere."""
    from envlock.index.client import HttpClient
    from envlock.index.repository import IndexSession

    check_locks(envs)
    problems: list[str] = []
    files = 0
    with HttpClient.for_environments(envs) as http:
        session = IndexSession(http, cache_dir)
        for env in envs:
            lock = lockfile.load(env.lock_path)
            by_url = {redact(i.url): i for i in env.indexes}
            jobs = []
            for pkg in lock.pylock.packages:
                dists: list[PackageWheel | PackageSdist] = [
                    *(pkg.wheels or []),
                    *([pkg.sdist] if pkg.sdist else []),
                ]
                files += len(dists)
                found_index = by_url.get(pkg.index or "")
                if found_index is None:
                    problems.append(
                        f"{lock.path.name}: {pkg.name} {pkg.version}: locked from "
                        f"{pkg.index or 'no recorded index'}, which the spec does not list"
                    )
                    continue
                pending = http.pool.submit(session.page, found_index, pkg.name)
                jobs.append((pkg, dists, found_index, pending))
            for pkg, dists, found_index, fut in jobs:
                page = fut.result()
                where = f"{lock.path.name}: {pkg.name} {pkg.version}"
                index = pkg.index
                if found_index.mirror is not None:
                    index = f"{pkg.index} (through the mirror {redact(found_index.mirror)})"
                if page is None:
                    problems.append(f"{where}: {index} no longer lists {pkg.name}")
                    continue
                listed = {f.filename: f for f in page.files_of(pkg.version)} if pkg.version else {}
                for dist in dists:
                    name = dist.filename
                    found = listed.get(name)
                    sha = dist.hashes.get("sha256")
                    if found is None:
                        problems.append(f"{where}: {name} is not listed by {index}")
                    elif found_index.mirror is None and redact(found.url) != dist.url:
                        # (A mirror lists the files at its own URLs: there, name and sha256.)
                        problems.append(
                            f"{where}: {name}: the lock says {dist.url}, the index lists "
                            f"{redact(found.url)}"
                        )
                    elif found.sha256 is not None and found.sha256 != sha:
                        problems.append(
                            f"{where}: {name}: sha256 {sha} in the lock, {found.sha256} on the "
                            "index"
                        )
            for target in lock.envlock.targets:
                if target.interpreter is None:
                    continue
                files += 1
                problem = _interpreter_online(http, env, target.interpreter)
                if problem is not None:
                    problems.append(
                        f"{lock.path.name}: the interpreter of {target.platform}: {problem}"
                    )
    return OnlineReport(files, tuple(problems))


def _interpreter_online(
    http: HttpClient, env: EnvironmentSpec, entry: LockedInterpreter
) -> str | None:
    """Whether the archive's url answers (through the mirror, as ``fetch`` would ask it) with
    the size the lock records, when the lock and the server both know one."""
    from envlock.errors import EnvlockError
    from envlock.interpreters import mirror_url

    url = mirror_url(entry.url, env.mirror)
    try:
        with http.stream(url, {"Accept-Encoding": "identity"}, method="HEAD") as response:
            status = response.status_code
            length = response.headers.get("content-length", "").strip()
    except EnvlockError as exc:
        return f"{entry.name}: {exc.message}"
    if status != 200:
        return f"{entry.name}: HTTP {status} from {redact(url)}"
    if entry.size is not None and length.isdigit() and int(length) != entry.size:
        return f"{entry.name}: {entry.size} bytes in the lock, {length} at {redact(url)}"
    return None


def require_clean(report: OnlineReport) -> None:
    if report.problems:
        raise StaleLockError(
            f"{len(report.problems)} locked file(s) do not match their index",
            hint="re-lock with `envlock lock`, and find out who changed the lock",
        )
