"""Where things live in a snapshot (a contract, documented in the README) and the manifest of a
built environment archive. Pure: no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from envlock.errors import IntegrityError

# A manifest is a few hundred bytes: a larger object is refused before it is read (a 1 GiB one
# once took 2 GiB of memory), never parsed.
MAX_MANIFEST = 16 << 20


def artifact_key(sha256: str, filename: str) -> str:
    """An artifact, content-addressed: ``artifacts/sha256/<ab>/<sha256>/<file name>``."""
    return f"artifacts/sha256/{sha256[:2]}/{sha256}/{filename}"


def built_prefix(sdist_sha256: str) -> str:
    """Where the wheels built from a locked sdist live (keyed by the sdist's sha256)."""
    return f"built/sha256/{sdist_sha256[:2]}/{sdist_sha256}/"


def archive_key(lock_sha256: str, environment: str, platform: str) -> str:
    """A built environment archive: ``envs/<lock sha256>/<env>/<platform>.tar.gz``."""
    return f"envs/{lock_sha256}/{environment}/{platform}.tar.gz"


def manifest_key(lock_sha256: str, environment: str, platform: str) -> str:
    return f"envs/{lock_sha256}/{environment}/{platform}.json"


@dataclass(frozen=True)
class Manifest:
    """What an environment archive in the snapshot is: checked before it is unpacked."""

    sha256: str
    size: int
    lock_sha256: str
    environment: str
    platform: str
    envlock: str

    def to_json(self) -> bytes:
        data = {
            "sha256": self.sha256,
            "size": self.size,
            "lock-sha256": self.lock_sha256,
            "environment": self.environment,
            "platform": self.platform,
            "envlock": self.envlock,
        }
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> Manifest:
        if len(raw) > MAX_MANIFEST:
            raise IntegrityError(f"{where}: more than {MAX_MANIFEST >> 20} MiB, not a manifest")
        try:
            data: Any = json.loads(raw)
            values = {
                k: data[k]
                for k in ("sha256", "size", "lock-sha256", "environment", "platform", "envlock")
            }
        except (ValueError, KeyError, TypeError):
            raise IntegrityError(f"{where}: not a valid environment manifest") from None
        sha, size = values["sha256"], values["size"]
        if not isinstance(sha, str) or len(sha) != 64 or not isinstance(size, int):
            raise IntegrityError(f"{where}: not a valid environment manifest")
        return cls(
            sha,
            size,
            str(values["lock-sha256"]),
            str(values["environment"]),
            str(values["platform"]),
            str(values["envlock"]),
        )
