"""What a lock installs on one of its targets: the artifacts, by ``Pylock.select``."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.pylock import PackageSdist, PackageWheel, Pylock, PylockSelectError
from packaging.utils import NormalizedName

from envlock.errors import UsageError
from envlock.lock.io import parse_lock
from envlock.platforms import Target
from envlock.spec import platform_options_from


@dataclass(frozen=True)
class Artifact:
    """One file a lock pins: where it comes from and what it must hash to."""

    name: NormalizedName
    version: str
    filename: str
    url: str
    sha256: str
    size: int | None
    is_wheel: bool


@dataclass(frozen=True)
class LoadedLock:
    """A lock file read from disk, with the targets it was made for."""

    path: Path
    data: Mapping[str, Any]
    pylock: Pylock  # validated once when read; select() is called per target
    sha256: str
    targets: Mapping[str, Target]

    @property
    def environment(self) -> str:
        return str(self.data.get("tool", {}).get("envlock", {}).get("environment", "default"))

    def target(self, platform: str) -> Target:
        try:
            return self.targets[platform]
        except KeyError:
            locked = ", ".join(sorted(self.targets)) or "none"
            raise UsageError(
                f"{self.path.name} has no {platform} resolution (locked: {locked})",
                hint=f"add {platform} to the spec's platforms and run `envlock lock`",
            ) from None

    def artifacts(self, target: Target) -> list[Artifact]:
        """The artifacts this target installs, in lock order (the PEP 751 selection)."""
        try:
            chosen = list(
                self.pylock.select(
                    environment=target.environment,  # type: ignore[arg-type]
                    tags=target.tags,
                )
            )
        except PylockSelectError as exc:
            raise UsageError(f"{self.path.name}: {exc}") from None
        out = []
        for pkg, dist in chosen:
            if not isinstance(dist, (PackageWheel, PackageSdist)) or not dist.url:
                raise UsageError(f"{self.path.name}: {pkg.name} has no downloadable file")
            sha = dist.hashes.get("sha256")
            if not sha:
                raise UsageError(f"{self.path.name}: {dist.filename} has no sha256")
            out.append(
                Artifact(
                    pkg.name,
                    str(pkg.version),
                    dist.filename,
                    dist.url,
                    sha,
                    dist.size,
                    isinstance(dist, PackageWheel),
                )
            )
        return out

    def all_artifacts(self, platforms: Sequence[str] = ()) -> list[Artifact]:
        """Artifacts of several targets (default: every locked one), each file once."""
        seen: dict[str, Artifact] = {}
        for platform in platforms or sorted(self.targets):
            for art in self.artifacts(self.target(platform)):
                seen.setdefault(art.sha256, art)
        return list(seen.values())


def load(path: Path) -> LoadedLock:
    """Read a lock; missing or invalid is a usage error (exit 2) with a next step."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist", hint="run `envlock lock` first") from None
    data, pylock = parse_lock(path, raw)
    tool = data.get("tool", {}).get("envlock", {})
    options = platform_options_from(tool.get("platform-tags", {}), path)
    targets = {}
    for t in tool.get("targets", []):
        targets[t["platform"]] = Target(t["platform"], _python(t["python"], data), options)
    return LoadedLock(path, data, pylock, hashlib.sha256(raw).hexdigest(), targets)


def _python(full: str, data: Mapping[str, Any]) -> str:
    # The lock stores python_full_version; "3.11.0" came from a spec's "3.11" when the
    # lock's requires-python is "==3.11.*".
    rp = str(data.get("requires-python", ""))
    return rp[2:-2] if rp.endswith(".*") else full
