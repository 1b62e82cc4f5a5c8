"""What a lock installs on one of its targets: the artifacts, by ``Pylock.select``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.pylock import PackageSdist, PackageWheel, PylockSelectError
from packaging.utils import NormalizedName

from envlock.errors import UsageError
from envlock.platforms import Target

if TYPE_CHECKING:
    from envlock.lock.lockfile import LockFile


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
    index: str | None = None


def select(lock: LockFile, target: Target) -> list[Artifact]:
    """The artifacts ``target`` installs from ``lock``, in lock order (PEP 751 selection)."""
    try:
        chosen = list(lock.pylock.select(environment=target.environment, tags=target.tags))
    except PylockSelectError as exc:
        raise UsageError(f"{lock.path.name}: {exc}") from None
    out = []
    for pkg, dist in chosen:
        if not isinstance(dist, (PackageWheel, PackageSdist)) or not dist.url:
            raise UsageError(f"{lock.path.name}: {pkg.name} has no downloadable file")
        sha = dist.hashes.get("sha256")
        if not sha:
            raise UsageError(f"{lock.path.name}: {dist.filename} has no sha256")
        out.append(
            Artifact(
                pkg.name,
                str(pkg.version),
                dist.filename,
                dist.url,
                sha,
                dist.size,
                isinstance(dist, PackageWheel),
                pkg.index,
            )
        )
    return out
