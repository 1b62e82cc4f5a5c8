"""The base interpreter an environment runs on (``--base-python``), and finding one on the host."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from envlock.errors import UsageError
from envlock.platforms import Target, host_platform

_PROBE = (
    "import json, sys; print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3], "
    "'impl': sys.implementation.name, "
    "'executable': getattr(sys, '_base_executable', None) or sys.executable}))"
)


@dataclass(frozen=True)
class BasePython:
    """An interpreter path on the machine that will run the environment."""

    executable: str  # absolute path, in the target platform's syntax
    version: str  # full version if known (probed), else the lock's
    windows: bool
    note: str | None = None  # why it could not be checked here, for the user

    @property
    def home(self) -> str:
        path = PureWindowsPath(self.executable) if self.windows else PurePosixPath(self.executable)
        return str(path.parent)


def probe(executable: str) -> dict[str, str] | None:
    """Version and real path of a runnable interpreter, None if it cannot run here."""
    try:
        out = subprocess.run(
            [executable, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        info: dict[str, str] = json.loads(out)
        return info
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _matches(version: str, wanted: str) -> bool:
    """ "3.11.7" matches "3.11" and "3.11.7"."""
    return version == wanted or (wanted.count(".") == 1 and version.startswith(wanted + "."))


def _running() -> BasePython | None:
    """The interpreter envlock runs on (its base, outside any venv), if it is CPython."""
    if sys.implementation.name != "cpython":
        return None
    base = getattr(sys, "_base_executable", None) or sys.executable
    return BasePython(base, ".".join(map(str, sys.version_info[:3])), windows=False)


def find_host_python(wanted: str) -> BasePython | None:
    """An interpreter of version ``wanted`` ("3.11" or "3.11.7") on this host."""
    minor = ".".join(wanted.split(".")[:2])
    running = _running()
    if running is not None and _matches(running.version, wanted):
        # envlock itself runs on a suitable interpreter: no need to start another to ask.
        return running
    candidates = [sys.executable, shutil.which(f"python{minor}"), shutil.which("python3")]
    candidates += [
        f"/usr/bin/python{minor}",
        f"/usr/local/bin/python{minor}",
        f"/opt/homebrew/bin/python{minor}",
    ]
    # pyenv's shims only run the versions selected for the current directory: look behind them.
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(str(p) for p in pyenv_root.glob(f"versions/{minor}*/bin/python{minor}"))
    seen = set()
    for cand in candidates:
        if not cand or cand in seen or not os.path.exists(cand):
            continue
        seen.add(cand)
        info = probe(cand)
        if info and info["impl"] == "cpython" and _matches(info["version"], wanted):
            return BasePython(info["executable"], info["version"], windows=False)
    return None


def resolve_base_python(target: Target, option: str | None) -> BasePython:
    """``--base-python`` checked against the target, or a host interpreter for the host."""
    windows = target.platform_info.windows
    is_host = target.platform == host_platform()
    wanted = target.python
    if option is None:
        if not is_host:
            example = r"C:\Python311\python.exe" if windows else "/usr/local/bin/python3.11"
            raise UsageError(
                f"--base-python is required for {target.platform}: the path of a Python "
                f"{target.python_version} on the machine that will run the environment",
                hint=f"e.g. --base-python {example}",
            )
        found = find_host_python(wanted)
        if found is None:
            raise UsageError(
                f"no Python {wanted} found on this host (looked for python{target.python_version}"
                " on PATH)",
                hint=f"install CPython {target.python_version} or pass --base-python PATH",
            )
        return found
    absolute = PureWindowsPath(option).is_absolute() if windows else option.startswith("/")
    if not absolute:
        if is_host and os.path.exists(option):
            option = str(Path(option).absolute())
        else:
            raise UsageError(f"--base-python must be an absolute path, got {option!r}")
    if is_host and os.path.exists(option):
        running = _running()
        if (
            running is not None
            and os.path.realpath(option) == os.path.realpath(running.executable)
            and _matches(running.version, wanted)
        ):
            return BasePython(option, running.version, windows=False)
        info = probe(option)
        if info is None:
            raise UsageError(f"--base-python {option} does not run on this host")
        if info["impl"] != "cpython" or not _matches(info["version"], wanted):
            raise UsageError(
                f"--base-python {option} is {info['impl']} {info['version']}, but the lock is "
                f"for CPython {wanted}"
            )
        return BasePython(option, info["version"], windows=False)
    if is_host:
        # A path of the machines that will run the environment (a CI host building for a
        # python:3.11-slim image whose Python is /usr/local/bin/python3.11): taken on trust.
        return BasePython(
            option,
            target.python_full_version,
            windows=False,
            note=f"--base-python {option} does not exist here, so it was not checked: it must be "
            f"a CPython {target.python_version} on the machines that run the environment",
        )
    return BasePython(option, target.python_full_version, windows=windows)
