"""Build an environment from the cache alone: a directory (atomic rename) or an archive.

The environment is a virtual environment on a system interpreter (``interpreter = "system"``
locks: ``pyvenv.cfg`` names it) or the tree of the lock's bundled interpreter with the packages in
its own site-packages (:mod:`envlock.materialize.bundled`).

Never opens a network connection. Everything missing is reported before anything is written;
the tree is staged in a temporary directory and renamed into place, so an interrupted or failed
build leaves nothing at the output path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from envlock import __version__
from envlock._fs import UMASK, atomic_write_bytes
from envlock.cache.builds import built_wheel
from envlock.cache.store import ArtifactStore
from envlock.cache.unpack import TamperedTree, UnpackedWheel, discard, unpacked
from envlock.core_metadata import MetadataError, parse_metadata, requires_key
from envlock.errors import IntegrityError, MissingArtifactsError, UsageError
from envlock.lock.artifacts import Artifact
from envlock.lock.lockfile import LockFile
from envlock.lock.model import LockedInterpreter
from envlock.materialize import bundled
from envlock.materialize.archive import write_archive
from envlock.materialize.bytecode import compile_site, compiler
from envlock.materialize.destination import check_archive, check_directory
from envlock.materialize.install import (
    Linker,
    LinkMode,
    Placement,
    install,
    plan,
    plan_wheel,
)
from envlock.materialize.layout import Layout
from envlock.materialize.meta import ENV_META, EnvMeta, read_meta
from envlock.materialize.python import resolve_base_python
from envlock.materialize.staging import remove_leftovers, replace_dir
from envlock.materialize.venv import write_interpreter
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
    note: str | None = None  # e.g. a --base-python that could not be checked on this host


def wheels_for(
    store: ArtifactStore,
    lock: LockFile,
    target: Target,
    fetch_hint: str,
    interpreter: LockedInterpreter | None = None,
) -> list[tuple[Artifact, Path, str]]:
    """(artifact, wheel file, cache key) for every package of the target; all or an error
    (which also names a missing ``interpreter`` archive)."""
    out: list[tuple[Artifact, Path, str]] = []
    missing: list[str] = []
    if interpreter is not None and bundled.archive_of(store, interpreter) is None:
        missing.append(f"{interpreter.name} (the interpreter)")
    for art in lock.artifacts(target):
        if art.is_wheel:
            path = store.intact(art.sha256, art.filename, art.size)
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
    interpreter = lock.interpreter(platform)
    if interpreter is not None and options.base_python is not None:
        raise UsageError(
            f'--base-python is for locks with interpreter = "system"; {lock.path.name} '
            f"bundles {interpreter.label} for {platform}",
            hint="drop --base-python: the environment carries its own interpreter",
        )
    # The lease keeps a concurrent prune off everything this build uses, from the moment it
    # looks for it in the cache until the environment is in place.
    keys = {h for a in lock.artifacts(target) for h in (a.sha256, "built-" + a.sha256)}
    if interpreter is not None:
        keys.add(interpreter.sha256)
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
    li = lock.interpreter(target.platform)
    wheels = wheels_for(store, lock, target, options.fetch_hint, li)
    layout = Layout.for_target(target, bundled=li is not None)
    base = None if li is not None else resolve_base_python(target, options.base_python)
    meta = EnvMeta(
        envlock=__version__,
        lock=lock.path.name,
        lock_sha256=lock.sha256,
        environment=lock.environment,
        platform=target.platform,
        python=base.version if base is not None else li.version if li is not None else "",
        base_python=base.executable if base is not None else "",
        packages={a.name: a.version for a, _, _ in wheels},
        compiled=options.compile_bytecode and compiler(target, li is not None) is not None,
        interpreter=bundled.interpreter_meta(li) if li is not None else {},
    )
    notes = [base.note] if base is not None and base.note else []
    if base is not None and archive is not None:
        notes.append(
            f"interpreter = \"system\": the archive's python is the build machine's "
            f"{base.executable}, so it runs only where that interpreter exists at that path; "
            'interpreter = "bundled" gives an archive that carries its own CPython'
        )
    note = "; ".join(notes) or None
    if output is not None and not options.force and _current(output, meta):
        return MaterializeResult(
            target, output, None, None, len(wheels), "", meta.compiled, True, note
        )

    dest = output if output is not None else archive
    assert dest is not None
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Staging goes beside the output (so the final rename is atomic), never into the cache:
    # the cache may be read-only, shared by a fleet.
    remove_leftovers(dest)
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
        iplan = None
        if li is not None:
            iplan = bundled.prepare(
                store, li, layout, scratch=scratch, fetch_hint=options.fetch_hint
            )
        plans = plan(
            [(tree, art.name) for (art, _, _), tree in zip(wheels, trees, strict=True)],
            layout,
            iplan.occupied if iplan is not None else None,
        )
        files = sum(len(mine) for _, mine in plans)
        progress.enter("installing", files + (len(iplan.entries) if iplan else 0), "files")
        linker = Linker(options.link_mode)
        root = str(staging)
        if li is not None and iplan is not None:
            # The interpreter first: the wheels' files then land in its directories.
            iplan = bundled.install_interpreter(
                store,
                li,
                iplan,
                staging,
                layout,
                linker,
                scratch=scratch,
                fetch_hint=options.fetch_hint,
                verify_files=options.verify_files,
                advance=progress.advance,
            )

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
        if iplan is not None:
            bundled.finish(staging, layout, iplan)
        else:
            assert base is not None
            write_interpreter(staging, layout, base)
        atomic_write_bytes(staging / ENV_META, meta.to_json().encode())
        compiled = False
        if options.compile_bytecode:
            progress.enter("compiling")
            compiled = compile_site(staging, layout, compiler(target, iplan is not None))
        sha = None
        if output is not None:
            progress.enter("finishing")
            # Checked again: the directory may have changed while we built.
            check_directory(output, force=True, replace_own=True, protected=options.protected)
            replace_dir(staging, output)
        else:
            assert archive is not None
            tmp_archive = archive.with_name(f".{archive.name}.tmp-{os.getpid()}-archive")
            try:
                sha = write_archive(
                    staging, tmp_archive, progress, iplan.mtimes if iplan is not None else None
                )
                os.replace(tmp_archive, archive)
            finally:
                if tmp_archive.exists():
                    tmp_archive.unlink()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return MaterializeResult(
        target, output, archive, sha, len(wheels), linker.mode, compiled, note=note
    )


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
