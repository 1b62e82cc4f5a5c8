"""envlock's own tables in a PEP 751 lock, as typed values: converted to TOML-shaped dicts only at
the edge, parsed back with errors that name the key.

* ``[tool.envlock]`` (:class:`EnvlockTable`): what the lock was made from, for ``lock --check``.
* ``[packages.tool.envlock]`` (:class:`PackageRecord`): the dependencies each file's metadata
  declared when the lock was resolved, so an install can check the wheel says the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envlock.errors import UsageError


def _bad(where: Path, key: str, what: str) -> UsageError:
    return UsageError(
        f"{where}: [tool.envlock] {key}: {what}",
        hint="delete the lock and run `envlock lock` again",
    )


@dataclass(frozen=True)
class LockedTarget:
    """One platform a lock resolved for."""

    platform: str
    python: str  # python_full_version used for markers
    marker: str
    tag_floor: str
    best_tag: str

    def to_dict(self) -> dict[str, str]:
        return {
            "platform": self.platform,
            "python": self.python,
            "marker": self.marker,
            "tag-floor": self.tag_floor,
            "best-tag": self.best_tag,
        }


@dataclass(frozen=True)
class EnvlockTable:
    """``[tool.envlock]``."""

    version: str
    environment: str
    spec_hash: str
    platform_tags: Mapping[str, Any]
    targets: tuple[LockedTarget, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "environment": self.environment,
            "spec-hash": self.spec_hash,
            "platform-tags": dict(self.platform_tags),
            "targets": [t.to_dict() for t in self.targets],
        }

    @classmethod
    def from_lock(cls, data: Mapping[str, Any], where: Path) -> EnvlockTable:
        tool = data.get("tool", {})
        table = tool.get("envlock") if isinstance(tool, Mapping) else None
        if not isinstance(table, Mapping):
            raise _bad(where, "(table)", "missing: not a lock envlock wrote")
        targets = table.get("targets", [])
        if not isinstance(targets, list):
            raise _bad(where, "targets", "must be an array of tables")
        parsed = []
        for i, t in enumerate(targets):
            if not isinstance(t, Mapping):
                raise _bad(where, f"targets[{i}]", "must be a table")
            values = {}
            for key in ("platform", "python", "marker", "tag-floor", "best-tag"):
                value = t.get(key, "")
                if not isinstance(value, str):
                    raise _bad(where, f"targets[{i}].{key}", "must be a string")
                values[key] = value
            if not values["platform"] or not values["python"]:
                raise _bad(where, f"targets[{i}]", "needs platform and python")
            parsed.append(
                LockedTarget(
                    values["platform"],
                    values["python"],
                    values["marker"],
                    values["tag-floor"],
                    values["best-tag"],
                )
            )
        tags = table.get("platform-tags", {})
        if not isinstance(tags, Mapping):
            raise _bad(where, "platform-tags", "must be a table")
        strings = {}
        for key in ("version", "environment", "spec-hash"):
            value = table.get(key, "")
            if not isinstance(value, str):
                raise _bad(where, key, "must be a string")
            strings[key] = value
        return cls(
            strings["version"],
            strings["environment"] or "default",
            strings["spec-hash"],
            dict(tags),
            tuple(parsed),
        )


@dataclass(frozen=True)
class MetadataGroup:
    """Files of one package version whose metadata declared the same dependencies."""

    files: tuple[str, ...]
    requires_dist: tuple[str, ...]


@dataclass(frozen=True)
class PackageRecord:
    """``[packages.tool.envlock]``."""

    metadata: tuple[MetadataGroup, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "metadata": [
                {"files": list(g.files), "requires-dist": list(g.requires_dist)}
                for g in self.metadata
            ]
        }

    @classmethod
    def build(cls, by_file: Mapping[str, Sequence[str]]) -> PackageRecord:
        groups: dict[tuple[str, ...], list[str]] = {}
        for filename, requires in sorted(by_file.items()):
            groups.setdefault(tuple(requires), []).append(filename)
        return cls(
            tuple(
                MetadataGroup(tuple(files), requires)
                for requires, files in sorted(groups.items(), key=lambda kv: kv[1])
            )
        )

    @classmethod
    def from_package(cls, tool: Mapping[str, Any] | None) -> PackageRecord | None:
        """The record of a ``[[packages]]`` entry, None when absent or not well-formed."""
        table = tool.get("envlock") if isinstance(tool, Mapping) else None
        groups = table.get("metadata") if isinstance(table, Mapping) else None
        if not isinstance(groups, list):
            return None
        out = []
        for g in groups:
            if not isinstance(g, Mapping):
                return None
            files, requires = g.get("files"), g.get("requires-dist")
            if not (isinstance(files, list) and isinstance(requires, list)):
                return None
            if not all(isinstance(x, str) for x in [*files, *requires]):
                return None
            out.append(MetadataGroup(tuple(files), tuple(requires)))
        return cls(tuple(out))

    def requires_of(self, filename: str) -> tuple[str, ...] | None:
        for group in self.metadata:
            if filename in group.files:
                return group.requires_dist
        return None
