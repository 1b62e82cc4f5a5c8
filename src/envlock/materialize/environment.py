"""Build an environment from the cache alone: a directory (atomic rename) or an archive.

Never opens a network connection. Everything missing is reported before anything is written;
the tree is staged in a temporary directory and renamed into place, so an interrupted or failed
build leaves nothing at the output path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from envlock import __version__
from envlock.cache.builds import built_wheel
from envlock.cache.store import ArtifactStore, CorruptEntry
from envlock.cache.unpack import TamperedTree, UnpackedWheel, discard, unpacked
from envlock.core_metadata import MetadataError, parse_metadata, requires_key
from envlock.errors import IntegrityError, MissingArtifactsError, UsageError
from envlock.lock.artifacts import Artifact
from envlock.lock.lockfile import LockFile
from envlock.materialize.archive import write_archive
from envlock.materialize.install import Linker, install_wheel
from envlock.materialize.layout import Layout
from envlock.materialize.python import BasePython, find_host_python, resolve_base_python
from envlock.platforms import Target

ENV_META = "envlock.json"
# Installing is mostly link/mkdir syscalls between bits of Python: past two threads the GIL wins.
WORKERS = 2


@dataclass(frozen=True)
class MaterializeResult:
    target: Target
    output: Path | None
    archive: Path | None
    archive_sha256: str | None
    packages: int
    link_mode: str
    compiled: bool


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
    *,
    output: Path | None = None,
    archive: Path | None = None,
    base_python: str | None = None,
    force: bool = False,
    compile_bytecode: bool = False,
    link_mode: str = "hardlink",
    fetch_hint: str = "envlock fetch",
    on_phase: Callable[[str], None] = lambda phase: None,
) -> MaterializeResult:
    """Build the environment of ``platform`` from ``lock`` using only the cache."""
    if (output is None) == (archive is None):
        raise UsageError("give exactly one of --output DIR or --archive FILE.tar.gz")
    dest = output if output is not None else archive
    assert dest is not None
    if archive is not None and not archive.name.endswith((".tar.gz", ".tgz")):
        raise UsageError(f"--archive must end in .tar.gz, got {archive.name}")
    if (dest.exists() or dest.is_symlink()) and not force:
        raise UsageError(f"{dest} already exists", hint="pass --force to replace it")
    target = lock.target(platform)
    wheels = wheels_for(store, lock, target, fetch_hint)
    base = resolve_base_python(target, base_python)
    layout = Layout.for_target(target)

    dest.parent.mkdir(parents=True, exist_ok=True)
    stage_parent = dest.parent if output is not None else store.tmpdir()
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=stage_parent))
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    try:
        on_phase("unpacking")
        trees = list(
            pool.map(lambda w: unpacked(store, w[1], w[2], w[0].name, w[0].version), wheels)
        )
        for (art, _, _), tree in zip(wheels, trees, strict=True):
            check_metadata(lock, art, tree)
        on_phase("installing")
        linker = Linker(link_mode)

        def install(item: tuple[tuple[Artifact, Path, str], UnpackedWheel]) -> None:
            (art, wheel_path, key), tree = item
            try:
                install_wheel(tree, staging, layout, linker, art.name)
            except TamperedTree:
                # A cached file was edited through a link from some environment: unpack the
                # verified wheel again and install from the fresh tree.
                discard(store, key)
                fresh = unpacked(store, wheel_path, key, art.name, art.version)
                install_wheel(fresh, staging, layout, linker, art.name)

        items = list(zip(wheels, trees, strict=True))
        if _overlapping(trees):
            # Two wheels ship the same file: install in lock order so the same one wins on
            # every run (and the archive stays reproducible).
            for item in items:
                install(item)
        else:
            # Largest first balances the threads.
            list(pool.map(install, sorted(items, key=lambda i: -len(i[1].records))))
        _write_interpreter(staging, layout, base)
        _write_meta(staging, lock, target, base, [w[0] for w in wheels])
        compiled = False
        if compile_bytecode:
            on_phase("compiling")
            compiled = _compile(staging, layout, target)
        on_phase("finishing")
        sha = None
        if output is not None:
            _replace_dir(staging, output)
        else:
            assert archive is not None
            tmp_archive = archive.with_name(f".{archive.name}.tmp-{os.getpid()}")
            try:
                sha = write_archive(staging, tmp_archive)
                os.replace(tmp_archive, archive)
            finally:
                if tmp_archive.exists():
                    tmp_archive.unlink()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(staging, ignore_errors=True)
    return MaterializeResult(target, output, archive, sha, len(wheels), linker.mode, compiled)


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


def _overlapping(trees: Sequence[UnpackedWheel]) -> bool:
    """Whether two wheels would write the same place (``.data/<key>/x`` counted as ``<key>/x``;
    purelib and platlib both mean site-packages)."""
    seen: set[str] = set()
    for tree in trees:
        prefix = tree.data_dir + "/"
        paths = {
            r.path[len(prefix) :].replace("platlib/", "purelib/", 1)
            if r.path.startswith(prefix)
            else "purelib/" + r.path
            for r in tree.records
        }
        if not seen.isdisjoint(paths):
            return True
        seen |= paths
    return False


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


def _write_interpreter(root: Path, layout: Layout, base: BasePython) -> None:
    """pyvenv.cfg and the ``python`` links: the only place the base interpreter is named."""
    cfg = (
        f"home = {base.home}\n"
        "include-system-site-packages = false\n"
        f"version = {base.version}\n"
        f"executable = {base.executable}\n"
        f"envlock = {__version__}\n"
    )
    (root / "pyvenv.cfg").write_text(cfg)
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
    activate = scripts / "activate"
    activate.write_text(_ACTIVATE)
    os.chmod(activate, 0o644)


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


def _write_meta(
    root: Path, lock: LockFile, target: Target, base: BasePython, artifacts: Sequence[Artifact]
) -> None:
    meta = {
        "envlock": __version__,
        "lock": lock.path.name,
        "lock-sha256": lock.sha256,
        "environment": lock.environment,
        "platform": target.platform,
        "python": base.version,
        "base-python": base.executable,
        "packages": {a.name: a.version for a in sorted(artifacts, key=lambda a: a.name)},
    }
    (root / ENV_META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


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
