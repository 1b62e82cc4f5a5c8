"""Running the real ``envlock`` command against a spec in a temporary directory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.pylock import Pylock

from envlock._toml import tomllib
from envlock.platforms import Target


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def envlock(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``python -m envlock ARGS`` in ``cwd`` (a real process: exit codes, stderr)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "envlock", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=240,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def write_spec(directory: Path, index_url: str | None, body: str) -> Path:
    """Write envlock.toml; ``index_url`` adds an [[index]] table for the loopback index.

    A spec that does not choose its interpreter gets ``interpreter = "system"``: these tests
    run with no python-build-standalone download (tests of bundled interpreters say so)."""
    text = textwrap.dedent(body)
    if not any(line.startswith("interpreter") for line in text.splitlines()):
        text = 'interpreter = "system"\n' + text
    if index_url is not None:
        text += f'\n[[index]]\nname = "local"\nurl = "{index_url}"\n'
    path = directory / "envlock.toml"
    path.write_text(text)
    return path


def load_lock(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        data: dict[str, Any] = tomllib.load(f)
    return data


def _python_of(data: dict[str, Any], platform: str) -> str:
    """The Python a lock resolved ``platform`` for (exact for a bundled interpreter)."""
    for t in data.get("tool", {}).get("envlock", {}).get("targets", []):
        if t.get("platform") == platform and t.get("interpreter"):
            return str(t["python"])
    return "3.11"


def selected(lock_path: Path, platform: str, python: str | None = None) -> dict[str, str]:
    """name -> version that ``Pylock.select`` installs for a target (the PEP 751 reference)."""
    data = load_lock(lock_path)
    pylock = Pylock.from_dict(data)
    pylock.validate()
    target = Target(platform, python or _python_of(data, platform))
    return {
        str(pkg.name): str(pkg.version)
        for pkg, _ in pylock.select(environment=target.environment, tags=target.tags)  # type: ignore[arg-type]
    }


def selected_files(lock_path: Path, platform: str, python: str | None = None) -> dict[str, str]:
    """name -> filename that ``Pylock.select`` picks for a target."""
    data = load_lock(lock_path)
    pylock = Pylock.from_dict(data)
    target = Target(platform, python or _python_of(data, platform))
    return {
        str(pkg.name): str(getattr(dist, "filename", ""))
        for pkg, dist in pylock.select(environment=target.environment, tags=target.tags)  # type: ignore[arg-type]
    }
