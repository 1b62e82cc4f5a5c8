"""Hand-written locks for tests: a few packages and platforms in, a checked LockFile out (the
bytes ``lockfile.render`` writes, parsed back)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envlock.lock import lockfile
from envlock.lock.lockfile import LockFile
from envlock.platforms import Target

PYPI = "https://pypi.org/simple/"
MIRROR = "https://pkgs.example.com/simple/"
LINUX = "cp311-cp311-manylinux_2_17_x86_64"
WIN = "cp311-cp311-win_amd64"
ANY = "py3-none-any"


@dataclass
class P:
    name: str
    version: str
    tags: Sequence[str] = (ANY,)
    index: str = PYPI
    salt: str = ""  # changes every file's bytes (sha256) without changing its name
    marker: str | None = None
    sdist: bool = False


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _package(p: P) -> dict[str, Any]:
    table: dict[str, Any] = {"name": p.name, "version": p.version, "index": p.index}
    if p.marker:
        table["marker"] = p.marker
    host = "https://files.example.com"
    if p.sdist:
        filename = f"{p.name}-{p.version}.tar.gz"
        table["sdist"] = {
            "name": filename,
            "url": f"{host}/{filename}",
            "hashes": {"sha256": sha(filename + p.salt)},
        }
        return table
    table["wheels"] = []
    for tag in p.tags:
        filename = f"{p.name}-{p.version}-{tag}.whl"
        table["wheels"].append(
            {
                "name": filename,
                "url": f"{host}/{filename}",
                "size": 100,
                "hashes": {"sha256": sha(filename + p.salt)},
            }
        )
    return table


def bundled_python(version: str, build: str, salt: str = "") -> dict[str, Any]:
    name = f"cpython-{version}+{build}-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz"
    return {
        "version": version,
        "build": build,
        "name": name,
        "url": f"https://github.com/astral-sh/python-build-standalone/releases/download/{build}/{name}",
        "sha256": sha(name + salt),
    }


def make_lock(
    tmp_path: Path,
    packages: Sequence[P],
    platforms: Sequence[str] = ("linux-64", "win-64"),
    interpreter: dict[str, Any] | None = None,
    name: str = "pylock.toml",
) -> LockFile:
    """A lock as envlock writes it (written to ``tmp_path / name``), parsed back: every value
    is checked."""
    python = interpreter["version"] if interpreter else "3.11"
    targets = []
    for platform in platforms:
        target = Target(platform, python)
        entry: dict[str, Any] = {
            "platform": platform,
            "python": target.python_full_version,
            "marker": target.marker,
            "tag-floor": "any",
            "best-tag": str(target.tags[0]),
        }
        if interpreter:
            entry["interpreter"] = interpreter
        targets.append(entry)
    document = {
        "lock-version": "1.0",
        "environments": [Target(p, python).marker for p in platforms],
        "requires-python": f"=={python}" if interpreter else f"=={python}.*",
        "created-by": "envlock",
        "packages": [_package(p) for p in packages],
        "tool": {
            "envlock": {
                "version": "0.1.0",
                "environment": "default",
                "spec-hash": "sha256:" + "0" * 64,
                "interpreter": "bundled" if interpreter else "system",
                "platform-tags": {},
                "targets": targets,
            }
        },
    }
    path = tmp_path / name
    raw = lockfile.render(document)
    path.write_bytes(raw)
    return lockfile.parse(path, raw)
