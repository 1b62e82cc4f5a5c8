"""Build an environment from the cache alone: a directory (atomic rename) or an archive.

Never opens a network connection. Everything missing is reported before anything is written;
the tree is staged in a temporary directory and renamed into place, so an interrupted or failed
build leaves nothing at the output path.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from envlock import __version__
from envlock._fs import UMASK, atomic_write_bytes
from envlock.cache.builds import built_wheel
from envlock.cache.store import ArtifactStore, CorruptEntry
from envlock.cache.unpack import TamperedTree, UnpackedWheel, discard, unpacked
from envlock.core_metadata import MetadataError, parse_metadata, requires_key
from envlock.errors import IntegrityError, MissingArtifactsError, UsageError
from envlock.lock.artifacts import Artifact
from envlock.lock.lockfile import LockFile
from envlock.materialize.archive import write_archive
from envlock.materialize.destination import check_archive, check_directory
from envlock.materialize.install import (
    Linker,
    LinkMode,
    Placement,
    install,
    plan,
    plan_wheel,
    write_new,
)
from envlock.materialize.layout import Layout
from envlock.materialize.meta import ENV_META, EnvMeta, read_meta
from envlock.materialize.python import BasePython, find_host_python, resolve_base_python
from envlock.platforms import Target
from envlock.progress import BuildProgress

# Installing is mostly link/mkdir syscalls between bits of Python: past two threads the GIL wins.
WORKERS = 2


@dataclass(frozen=True)
class MaterializeOptions:
    """How to build: exactly one of ``output`` (a directory) or ``archive`` (a .tar.gz)."""

    output: Path | None = None
    archive: Path | None = None
    base_python: str | None = None
    force: bool = False
    replace_own: bool = False  # replace an envlock-made environment without --force (build)
    compile_bytecode: bool = False
    link_mode: LinkMode = "hardlink"
    verify_files: bool = False  # re-hash every cached file as it is installed
    protected: tuple[Path, ...] = ()  # directories never replaced (the spec's)
    fetch_hint: str = "envlock fetch"


@dataclass(frozen=True)
class MaterializeResult:
    target: Target
    output: Path | None
    archive: Path | None
    archive_sha256: str | None
    packages: int
    link_mode: str
    compiled: bool
    up_to_date: bool = False


def wheels_for(
    store: ArtifactStore, lock: LockFile, target: Target, fetch_hint: str
) -> list[tuple[Artifact, Path, str]]:
    """(artifact, wheel file, cache key) for every package of the target; all or an error."""
    out: list[tuple[Artifact, Path, str]] = []
    missing: list[str] = []
    for art in lock.artifacts(target):
        if art.is_wheel:
            try:
                path = store.get(art.sha256, art.filename, art.size)
            except CorruptEntry:
                path = None
            if path is None:
                missing.append(art.filename)
            else:
                out.append((art, path, art.sha256))
        else:
            wheel = built_wheel(store, art.sha256, target)
            if wheel is None:
                missing.append(f"{art.filename} (to be built into a wheel)")
            else:
                out.append((art, wheel, "built-" + art.sha256))
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise MissingArtifactsError(
            f"{len(missing)} artifact(s) for {target.platform} are not in the cache: {shown}",
            hint=f"run `{fetch_hint}` (materialize never uses the network)",
        )
    return out


def materialize(
    lock: LockFile,
    platform: str,
    store: ArtifactStore,
    options: MaterializeOptions,
    progress: BuildProgress | None = None,
) -> MaterializeResult:
    """Build the environment of ``platform`` from ``lock`` using only the cache."""
    from envlock.cache.registry import lease

    progress = progress or BuildProgress()
    output, archive = options.output, options.archive
    if (output is None) == (archive is None):
        raise UsageError("give exactly one of --output DIR or --archive FILE.tar.gz")
    if archive is not None:
        if not archive.name.endswith((".tar.gz", ".tgz")):
            raise UsageError(f"--archive must end in .tar.gz, got {archive.name}")
        check_archive(archive, force=options.force)
    else:
        assert output is not None
        check_directory(
            output,
            force=options.force,
            replace_own=options.replace_own,
            protected=options.protected,
        )
    target = lock.target(platform)
    # The lease keeps a concurrent prune off everything this build uses, from the moment it
    # looks for it in the cache until the environment is in place.
    keys = {h for a in lock.artifacts(target) for h in (a.sha256, "built-" + a.sha256)}
    with lease(store, keys):
        return _build(lock, target, store, options, progress)


def _build(
    lock: LockFile,
    target: Target,
    store: ArtifactStore,
    options: MaterializeOptions,
    progress: BuildProgress,
) -> MaterializeResult:
    from envlock.cache.registry import remember_lock

    output, archive = options.output, options.archive
    remember_lock(store, lock.path)  # so that `cache prune` keeps what this lock needs
    wheels = wheels_for(store, lock, target, options.fetch_hint)
    base = resolve_base_python(target, options.base_python)
    layout = Layout.for_target(target)
    meta = EnvMeta(
        envlock=__version__,
        lock=lock.path.name,
        lock_sha256=lock.sha256,
        environment=lock.environment,
        platform=target.platform,
        python=base.version,
        base_python=base.executable,
        packages={a.name: a.version for a, _, _ in wheels},
        compiled=options.compile_bytecode and find_host_python(target.python_version) is not None,
    )
    if output is not None and not options.force and _current(output, meta):
        return MaterializeResult(target, output, None, None, len(wheels), "", meta.compiled, True)

    dest = output if output is not None else archive
    assert dest is not None
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Staging goes beside the output (so the final rename is atomic), never into the cache:
    # the cache may be read-only, shared by a fleet.
    _remove_leftovers(dest)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-{os.getpid()}-", dir=dest.parent))
    os.chmod(staging, 0o777 & ~UMASK)  # the environment is for everyone the umask allows
    scratch = staging.with_name(staging.name + "-unpack")
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    try:
        progress.enter("unpacking", len(wheels), "packages")

        def unpack(w: tuple[Artifact, Path, str]) -> UnpackedWheel:
            tree = unpacked(store, w[1], w[2], w[0].name, w[0].version, scratch=scratch)
            progress.advance(1)
            return tree

        trees = list(pool.map(unpack, wheels))
        for (art, _, _), tree in zip(wheels, trees, strict=True):
            check_metadata(lock, art, tree)
        plans = plan(
            [(tree, art.name) for (art, _, _), tree in zip(wheels, trees, strict=True)], layout
        )
        progress.enter("installing", sum(len(mine) for _, mine in plans), "files")
        linker = Linker(options.link_mode)
        root = str(staging)

        def install_one(i: int) -> None:
            wheel_plan, mine = plans[i]
            art, wheel_path, key = wheels[i]
            try:
                install(
                    wheel_plan,
                    mine,
                    root,
                    layout,
                    linker,
                    verify_files=options.verify_files,
                    advance=progress.advance,
                )
            except TamperedTree:
                # A cached file was edited through a link from some environment: unpack
                # the verified wheel again and install from the fresh tree.
                discard(store, key)
                fresh = unpacked(store, wheel_path, key, art.name, art.version, scratch=scratch)
                fresh_plan = plan_wheel(fresh, layout, art.name)
                keep = {p.dest for p in mine}
                again = [p for p in fresh_plan.placements if p.dest in keep]
                _clear(root, again)
                install(fresh_plan, again, root, layout, linker, verify_files=True)

        # Largest first balances the threads; no two plans share a destination.
        order = sorted(range(len(plans)), key=lambda i: -len(plans[i][1]))
        list(pool.map(install_one, order))
        write_interpreter(staging, layout, base)
        atomic_write_bytes(staging / ENV_META, meta.to_json().encode())
        compiled = False
        if options.compile_bytecode:
            progress.enter("compiling")
            compiled = _compile(staging, layout, target)
        sha = None
        if output is not None:
            progress.enter("finishing")
            # Checked again: the directory may have changed while we built.
            check_directory(output, force=True, replace_own=True, protected=options.protected)
            _replace_dir(staging, output)
        else:
            assert archive is not None
            tmp_archive = archive.with_name(f".{archive.name}.tmp-{os.getpid()}-archive")
            try:
                sha = write_archive(staging, tmp_archive, progress)
                os.replace(tmp_archive, archive)
            finally:
                if tmp_archive.exists():
                    tmp_archive.unlink()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return MaterializeResult(target, output, archive, sha, len(wheels), linker.mode, compiled)


_LEFTOVER = re.compile(r"\.(?:tmp|old)-(\d+)(?:-|$)")


def _remove_leftovers(dest: Path, grace: float = 3600.0) -> None:
    """Staging and backup trees of ``dest`` (``.NAME.tmp-PID-…``, ``.NAME.old-PID``) left by a
    killed build: removed when their process is gone, or after ``grace`` seconds."""
    prefix = f".{dest.name}."
    try:
        names = [n for n in os.listdir(dest.parent) if n.startswith(prefix)]
    except OSError:
        return
    now = time.time()
    for name in names:
        match = _LEFTOVER.match(name[len(prefix) - 1 :])
        if match is None:
            continue
        path = dest.parent / name
        try:
            old = now - path.lstat().st_mtime > grace
        except OSError:
            continue
        if old or not _alive(int(match.group(1))):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _current(output: Path, meta: EnvMeta) -> bool:
    """Whether ``output`` is already the environment ``meta`` describes."""
    try:
        return read_meta(output) == meta
    except UsageError:
        return False


def _clear(root: str, placements: Sequence[Placement]) -> None:
    for p in placements:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{root}/{p.dest}")


def check_metadata(lock: LockFile, art: Artifact, tree: UnpackedWheel) -> None:
    """The wheel's own METADATA must say what the lock was resolved from (an index's PEP 658
    file could have said otherwise): the same name, version and dependencies."""
    try:
        meta = parse_metadata((tree.root / tree.dist_info / "METADATA").read_bytes())
    except (OSError, MetadataError) as exc:
        raise IntegrityError(f"{art.filename}: unreadable METADATA ({exc})") from None
    if meta.name != canonicalize_name(art.name) or meta.version != Version(art.version):
        raise IntegrityError(
            f"{art.filename}: its METADATA names {meta.name} {meta.version}, the lock says "
            f"{art.name} {art.version}"
        )
    recorded = lock.requires_dist(art.name, art.version, art.filename)
    if recorded is None:
        return  # a lock from before envlock recorded dependencies
    actual = requires_key(meta.requires_dist)
    if actual != recorded:
        extra = sorted(set(actual) - set(recorded))
        missing = sorted(set(recorded) - set(actual))
        detail = "; ".join([*(f"+{r}" for r in extra[:3]), *(f"-{r}" for r in missing[:3])])
        raise IntegrityError(
            f"{art.filename}: its METADATA declares other dependencies than the lock was "
            f"resolved from ({detail})",
            hint="the index's metadata (PEP 658) disagrees with the wheel: re-lock, and check "
            "the index",
        )


def _replace_dir(staging: Path, output: Path) -> None:
    if not (output.exists() or output.is_symlink()):
        try:
            os.replace(staging, output)
        except OSError:  # another process put something there meanwhile
            raise UsageError(
                f"{output} appeared while building", hint="pass --force to replace it"
            ) from None
        return
    old = output.with_name(f".{output.name}.old-{os.getpid()}")
    os.replace(output, old)
    try:
        os.replace(staging, output)
    except BaseException:
        os.replace(old, output)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()


def write_interpreter(root: Path, layout: Layout, base: BasePython) -> None:
    """pyvenv.cfg and the ``python`` links: the only place the base interpreter is named."""
    cfg = (
        f"home = {base.home}\n"
        "include-system-site-packages = false\n"
        f"version = {base.version}\n"
        f"executable = {base.executable}\n"
        f"envlock = {__version__}\n"
    )
    write_new(str(root / "pyvenv.cfg"), cfg.encode(), executable=False)
    scripts = root / layout.scripts
    scripts.mkdir(parents=True, exist_ok=True)
    (root / layout.site_packages).mkdir(parents=True, exist_ok=True)
    if layout.windows:
        return  # python.exe is made on Windows itself: see README "Windows environments"
    for name in ("python", "python3", f"python{layout.python_version}"):
        link = scripts / name
        if link.exists() or link.is_symlink():
            link.unlink()
        os.symlink(base.executable, link)
    write_new(str(scripts / "activate"), _ACTIVATE.encode(), executable=False)


# A relocatable activate script for bash and zsh: it finds the environment from its own path.
_ACTIVATE = """\
# Source this file (bash or zsh): . bin/activate   — leave with: deactivate
if [ -n "${BASH_SOURCE-}" ]; then _envlock_self="${BASH_SOURCE[0]}"; \
elif [ -n "${ZSH_VERSION-}" ]; then _envlock_self="${(%):-%x}"; else _envlock_self="$0"; fi
VIRTUAL_ENV="$(cd "$(dirname "$_envlock_self")/.." && pwd)"
export VIRTUAL_ENV
_ENVLOCK_OLD_PATH="$PATH"
PATH="$VIRTUAL_ENV/bin:$PATH"
export PATH
unset _envlock_self
deactivate () {
    PATH="$_ENVLOCK_OLD_PATH"; export PATH
    unset VIRTUAL_ENV _ENVLOCK_OLD_PATH
    unset -f deactivate
    hash -r 2>/dev/null
}
hash -r 2>/dev/null
"""


def _compile(root: Path, layout: Layout, target: Target) -> bool:
    """Byte-compile site-packages with a host interpreter of the target's Python version."""
    python = find_host_python(target.python_version)
    if python is None:
        return False
    site = root / layout.site_packages
    # checked-hash pycs and a fixed path prefix keep the output independent of when and where
    # it was built (reproducible archives) and valid after the tree moves.
    subprocess.run(
        [
            python.executable,
            "-I",
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "checked-hash",
            "-s",
            str(root),
            "-p",
            "/",
            str(site),
        ],
        check=False,
        capture_output=True,
    )
    return True
