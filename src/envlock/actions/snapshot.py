"""``envlock fetch`` (and the fetch half of ``build``): which locks and platforms to snapshot, and
snapshotting every artifact they need into the store (building locked sdists on the way)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from envlock.errors import NetworkError, UsageError
from envlock.interpreters import mirror_url
from envlock.lock import lockfile
from envlock.lock.artifacts import Artifact
from envlock.lock.lockfile import LockFile
from envlock.platforms import Target
from envlock.spec import EnvironmentSpec, load_spec
from envlock.spec_file import SPEC_FILENAME
from envlock.spec_values import parse_platforms

if TYPE_CHECKING:
    from envlock.cache.fetch import FetchEvents, FetchResult
    from envlock.cache.store import ArtifactStore
    from envlock.snapshot.remote import RemoteStore


@dataclass(frozen=True)
class Snapshot:
    """A lock and the platforms of it to snapshot."""

    env: EnvironmentSpec
    lock: LockFile
    platforms: tuple[str, ...]


def select_snapshots(spec: Path, envs: Sequence[str], platforms: Sequence[str]) -> list[Snapshot]:
    """What ``fetch --env … --platform …`` covers: with platforms but no ``--env``, every
    environment that locked one of them; a platform no lock has is a clear error."""
    loaded = load_spec(spec)
    wanted = parse_platforms(platforms, "--platform") if platforms else ()
    out = []
    locked: set[str] = set()
    for env in loaded.select(envs):
        lock = lockfile.load(env.lock_path)
        locked.update(lock.targets)
        if wanted and not envs:
            have = tuple(p for p in wanted if p in lock.targets)
            if have:
                out.append(Snapshot(env, lock, have))
            continue
        for p in wanted:
            lock.target(p)  # a clear error for a platform the lock does not have
        out.append(Snapshot(env, lock, tuple(wanted)))
    if not out:
        raise UsageError(
            f"no locked environment has platform(s) {', '.join(wanted)} "
            f"(locked: {', '.join(sorted(locked)) or 'none'})",
            hint="add them to the spec's platforms and run `envlock lock`",
        )
    return out


def fetch_hint(spec: Path, env: EnvironmentSpec, platform: str) -> str:
    """The ``envlock fetch`` command that gets what an offline build of ``env`` misses."""
    hint = f"envlock fetch --platform {platform}"
    if env.name:
        hint += f" --env {env.name}"
    if spec != Path(SPEC_FILENAME):
        hint += f" --spec {spec}"
    return hint


def check_archive_buildable(spec: Path, snap: Snapshot, platform: str) -> None:
    """``push --archives`` builds each archive here, so a system-interpreter lock can only be
    archived for this host's platform: elsewhere the base interpreter's path is unknown."""
    from envlock.platforms import host_platform

    if snap.lock.interpreter(platform) is not None or platform == host_platform():
        return
    build = f"envlock build --from-snapshot --platform {platform}"
    if snap.env.name:
        build += f" --env {snap.env.name}"
    if spec != Path(SPEC_FILENAME):
        build += f" --spec {spec}"
    raise UsageError(
        f"push --archives cannot build the {snap.env.label} environment for {platform}: it uses "
        f'the system interpreter (interpreter = "system"), whose path on {platform} machines '
        "is unknown here",
        hint=f"push without --archives for {platform} and run `{build} --base-python PATH` "
        f'on those machines, or use interpreter = "bundled" (the archive then carries its own '
        "CPython)",
    )


@dataclass(frozen=True)
class Needed:
    """Every artifact some snapshots need (interpreters and the build packages of locked sdists
    included, interpreters through the mirror), and the locked sdists each target builds into a
    wheel."""

    artifacts: dict[str, Artifact]
    to_build: list[tuple[Snapshot, Target, Artifact]]
    interpreters: frozenset[str] = frozenset()  # sha256 of the interpreter archives

    @property
    def lease_keys(self) -> set[str]:
        return {h for sha in self.artifacts for h in (sha, "built-" + sha)}


def needed(snapshots: Sequence[Snapshot]) -> Needed:
    artifacts: dict[str, Artifact] = {}
    to_build: list[tuple[Snapshot, Target, Artifact]] = []
    interpreters: set[str] = set()
    for snap in snapshots:
        for platform in snap.platforms or tuple(sorted(snap.lock.targets)):
            target = snap.lock.target(platform)
            for art in snap.lock.artifacts(target):
                artifacts.setdefault(art.sha256, art)
                if not art.is_wheel:
                    to_build.append((snap, target, art))
                    for f in snap.lock.build_packages(art.sha256, platform) or ():
                        artifacts.setdefault(f.sha256, f.artifact)
            interpreter = snap.lock.interpreter(platform)
            if interpreter is not None:
                # Downloaded like any artifact, from the mirror when one is set.
                art = interpreter.artifact
                url = mirror_url(art.url, snap.env.mirror)
                artifacts.setdefault(art.sha256, replace(art, url=url))
                interpreters.add(art.sha256)
    return Needed(artifacts, to_build, frozenset(interpreters))


def _interpreter_download(
    interpreters: frozenset[str],
) -> Callable[[Artifact, NetworkError], NetworkError]:
    """A failed download of a bundled interpreter says so, and the ways round it: a machine
    with no route to GitHub is common (CI behind a firewall), "cannot reach" is not enough."""

    def explain(art: Artifact, exc: NetworkError) -> NetworkError:
        if art.sha256 not in interpreters:
            return exc
        return NetworkError(
            f"downloading the bundled CPython {art.version} ({art.filename}) failed: {exc.message}",
            hint="set ENVLOCK_PYTHON_MIRROR (or python-mirror in envlock.toml) to a mirror of "
            "python-build-standalone, name your own archives in [interpreter-sources], or use "
            'interpreter = "system"',
        )

    return explain


def snapshot(
    store: ArtifactStore,
    snapshots: Sequence[Snapshot],
    events: FetchEvents | None = None,
    remote: RemoteStore | None = None,
) -> FetchResult:
    """Fetch what is missing (no request at all when nothing is), then build locked sdists.

    With ``remote`` (``--from-snapshot``) everything comes from that snapshot, never an index:
    artifacts and the wheels built from locked sdists alike."""
    # The network stack and the build frontend load only when a snapshot is taken.
    from envlock.cache.builds import built_wheel, ensure_built
    from envlock.cache.fetch import FetchEvents, fetch
    from envlock.cache.registry import lease, remember_lock
    from envlock.index.client import HttpClient

    for snap in snapshots:
        remember_lock(store, snap.lock.path)  # so `cache prune` elsewhere keeps what it needs
    need = needed(snapshots)
    envs = [snap.env for snap in snapshots]
    # The lease keeps a concurrent prune off what is being fetched and built.
    with lease(store, need.lease_keys):
        if remote is not None:
            return _from_remote(store, remote, need, events)
        # Only the locked URLs are fetched (each checked by the transport policy as it goes).
        result = fetch(
            store,
            list(need.artifacts.values()),
            lambda: HttpClient.for_environments(envs, check_indexes=False),
            events,
            explain=_interpreter_download(need.interpreters),
        )
        for snap, target, art in need.to_build:
            sdist = store.get(art.sha256, art.filename, art.size)
            assert sdist is not None  # fetched just above
            if built_wheel(store, art.sha256, target) is None:
                (events or FetchEvents()).building(art)
            packages = snap.lock.build_packages(art.sha256, target.platform)
            ensure_built(store, art, sdist, target, packages)
    return result


def _from_remote(
    store: ArtifactStore, remote: RemoteStore, need: Needed, events: FetchEvents | None
) -> FetchResult:
    from envlock.cache.builds import built_wheel
    from envlock.errors import MissingArtifactsError
    from envlock.snapshot.download import PUSH_HINT, download, download_built

    result = download(store, remote, list(need.artifacts.values()), events)
    for _snap, target, art in need.to_build:
        if built_wheel(store, art.sha256, target) is not None:
            continue
        if not download_built(store, remote, art) or built_wheel(store, art.sha256, target) is None:
            raise MissingArtifactsError(
                f"no wheel built from {art.filename} for {target.platform} in the snapshot "
                f"{remote.url}",
                hint=PUSH_HINT,
            )
    return result
