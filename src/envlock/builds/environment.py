"""The isolated, offline environment a PEP 517 backend runs in: a fresh virtual environment
holding exactly the locked build packages (installed from the cache by envlock's own installer),
and the hook calls into it with a fixed ``SOURCE_DATE_EPOCH`` and no package index."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from packaging.tags import Tag
from packaging.utils import parse_wheel_filename
from pyproject_hooks import (
    BackendUnavailable,
    BuildBackendHookCaller,
    BuildBackendWarning,
    HookMissing,
)

from envlock.builds.requires import BuildSystem
from envlock.cache.store import ArtifactStore
from envlock.cache.unpack import unpacked
from envlock.errors import BuildError
from envlock.lock.builds import BuildFile
from envlock.materialize.install import Linker, install, plan
from envlock.materialize.layout import Layout
from envlock.materialize.python import BasePython, find_host_python
from envlock.platforms import Target, host_platform

T = TypeVar("T")

# 1980-01-01T00:00:00Z, the earliest time a zip file can record: every build stamps its files
# with it, so two builds of one sdist by one backend give the same bytes (reproducible builds).
SOURCE_DATE_EPOCH = "315532800"
# What the backend may not inherit: another interpreter's paths, or a package index to reach.
_DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PIP_", "UV_")
_TAIL = 5


def build_python(target: Target) -> BasePython:
    """The host interpreter that builds for ``target``: its Python version when this host has
    one (a native wheel is then for the target's ABI), else the one envlock runs on."""
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = find_host_python(target.python) or find_host_python(running)
    if found is None:  # pragma: no cover - envlock itself runs on a CPython
        raise BuildError("no CPython on this host to run a build backend with")
    return found


def check_installable(files: Sequence[BuildFile], python: BasePython, label: str) -> None:
    """Every build package must be a wheel this host's ``python`` can install."""
    minor = ".".join(python.version.split(".")[:2])
    tags: set[Tag] = set(Target(host_platform(), minor).tags)
    for f in files:
        if not tags & set(parse_wheel_filename(f.name)[3]):
            raise BuildError(
                f"{label}: the build package {f.name} does not install on this host "
                f"({host_platform()}, Python {minor})",
                hint="build it on a machine of the platform it was locked for",
            )


@contextmanager
def build_environment(
    store: ArtifactStore,
    files: Sequence[tuple[BuildFile, Path]],
    python: BasePython,
    work: Path,
) -> Iterator[str]:
    """A virtual environment under ``work`` with exactly ``files`` (cached wheels) installed;
    yields its interpreter. Nothing but those packages and the standard library is in it."""
    root = work / "env"
    try:
        proc = subprocess.run(
            [python.executable, "-I", "-m", "venv", "--without-pip", str(root)],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise BuildError(f"cannot run {python.executable}: {exc.strerror}") from None
    if proc.returncode != 0:
        raise BuildError(f"cannot make a build environment: {_tail(proc.stderr)[-1:]}")
    windows = os.name == "nt"
    layout = Layout(windows, ".".join(python.version.split(".")[:2]))
    trees = [
        (unpacked(store, path, f.sha256, f.package, f.version, scratch=work / "unpack"), f.package)
        for f, path in files
    ]
    linker = Linker("copy")  # a backend writing into its own package never touches the cache
    for wheel_plan, mine in plan(trees, layout):
        install(wheel_plan, mine, str(root), layout, linker)
    try:
        yield str(root / ("Scripts/python.exe" if windows else "bin/python"))
    finally:
        shutil.rmtree(root, ignore_errors=True)


class _HookFailed(Exception):
    def __init__(self, output: str) -> None:
        super().__init__(output)
        self.output = output


def _environ(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED)}
    env.update(extra or {})
    env.update(
        SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH,
        PYTHONNOUSERSITE="1",
        PIP_NO_INDEX="1",  # a backend that calls pip finds no index to download from
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def _runner(
    cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
) -> None:
    proc = subprocess.run(
        list(cmd),
        cwd=cwd,
        env=_environ(extra_environ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise _HookFailed(proc.stdout.decode("utf-8", errors="replace"))


def hooks(source: Path, system: BuildSystem, python: str) -> BuildBackendHookCaller:
    """The backend of the sdist unpacked at ``source``, run by ``python`` (a build env's)."""
    return BuildBackendHookCaller(
        str(source),
        system.backend,
        list(system.backend_path) or None,
        runner=_runner,
        python_executable=python,
    )


def call_hook(label: str, hook: str, fn: Callable[[], T]) -> T:
    """Run one hook; a failure is a BuildError naming the package and the backend's last lines.

    The backend's own warnings (pyproject_hooks re-raises them here as BuildBackendWarning:
    deprecated setup.py options, license classifiers) are the package's business, not output."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BuildBackendWarning)
            return fn()
    except _HookFailed as exc:
        lines = _tail(exc.output)
        raise BuildError(
            f"building {label} failed in the backend's {hook}: "
            + (lines[-1] if lines else "no output"),
            hint="the backend's last lines: " + " | ".join(lines) if lines else None,
        ) from None
    except BackendUnavailable as exc:
        lines = _tail(exc.traceback)
        raise BuildError(
            f"building {label}: its build backend {exc.backend_name!r} cannot be imported "
            "from the locked build packages: " + (lines[-1] if lines else "no traceback"),
            hint="the sdist's [build-system] requires does not provide its build-backend",
        ) from None
    except HookMissing as exc:
        raise BuildError(f"building {label}: the backend has no {exc.hook_name} hook") from None


def _tail(text: str) -> list[str]:
    """The output's last lines; a Python traceback (the hook runner's, usually) counts as its
    last line only, so the backend's own words before it are shown."""
    lines: list[str] = []
    in_traceback = False
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("Traceback (most recent call last):"):
            in_traceback = True
            continue
        if in_traceback and line.startswith((" ", "\t")):
            continue
        in_traceback = False
        lines.append(line.rstrip()[:300])
    return lines[-_TAIL:]
