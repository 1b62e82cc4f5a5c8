"""envlock's own tables in a PEP 751 lock, as typed values: converted to TOML-shaped dicts only at
the edge, parsed back with errors that name the key.

* ``[tool.envlock]`` (:class:`EnvlockTable`): what the lock was made from, for ``lock --check``.
* ``[packages.tool.envlock]`` (:class:`PackageRecord`): the dependencies each file's metadata
  declared when the lock was resolved, so an install can check the wheel says the same.

A lock is input that may have been edited by hand or by someone hostile: :func:`lock_error` is
the one shape of every complaint about a value read from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import NormalizedName

from envlock.errors import UsageError
from envlock.licenses import MAX_TEXT
from envlock.platforms import PLATFORMS

if TYPE_CHECKING:
    from envlock.lock.artifacts import Artifact

LOCK_HINT = "the lock was edited or corrupted: run `envlock lock` to rewrite it"

# The spec's own rules: a Python version ("3.11" or "3.11.7"), from which Target derives tags,
# and an environment name (recorded in every environment built from the lock).
_PYTHON = re.compile(r"3\.\d+(\.\d+)?")
_ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def lock_error(path: Path, location: str, reason: str) -> UsageError:
    """``<lock>: <location>: <reason>`` (exit 2), with the hint to rewrite the lock."""
    return UsageError(
        f"{path}: {location}: {reason}" if location else f"{path}: {reason}", hint=LOCK_HINT
    )


def is_python_version(value: str) -> bool:
    """Whether ``value`` is a CPython version a target can be built from ("3.11", "3.11.7")."""
    return _PYTHON.fullmatch(value) is not None


def _bad(where: Path, key: str, what: str) -> UsageError:
    return lock_error(where, f"tool.envlock.{key}" if key else "tool.envlock", what)


@dataclass(frozen=True)
class LockedInterpreter:
    """``[tool.envlock.targets.interpreter]``: the relocatable CPython a bundled environment
    carries, pinned like any artifact (the canonical URL: a mirror is applied when fetching)."""

    version: str  # exact, e.g. "3.11.9"
    build: str  # python-build-standalone release ("20251010"), "" for a team's own build
    name: str  # the archive's file name
    url: str
    sha256: str
    size: int | None = None

    @property
    def artifact(self) -> Artifact:
        from envlock.lock.artifacts import Artifact

        return Artifact(
            NormalizedName("python"),
            self.version,
            self.name,
            self.url,
            self.sha256,
            self.size,
            is_wheel=False,
        )

    @property
    def label(self) -> str:
        return f"CPython {self.version}" + (f" ({self.build})" if self.build else "")

    def to_dict(self) -> dict[str, Any]:
        table: dict[str, Any] = {
            "version": self.version,
            "build": self.build,
            "name": self.name,
            "url": self.url,
            "sha256": self.sha256,
        }
        if self.size is not None:
            table["size"] = self.size
        return table


@dataclass(frozen=True)
class LockedTarget:
    """One platform a lock resolved for."""

    platform: str
    python: str  # python_full_version used for markers
    marker: str
    tag_floor: str
    best_tag: str
    interpreter: LockedInterpreter | None = None  # bundled locks only

    def to_dict(self) -> dict[str, Any]:
        table: dict[str, Any] = {
            "platform": self.platform,
            "python": self.python,
            "marker": self.marker,
            "tag-floor": self.tag_floor,
            "best-tag": self.best_tag,
        }
        if self.interpreter is not None:
            table["interpreter"] = self.interpreter.to_dict()
        return table


@dataclass(frozen=True)
class EnvlockTable:
    """``[tool.envlock]``."""

    version: str
    environment: str
    spec_hash: str
    platform_tags: Mapping[str, Any]
    targets: tuple[LockedTarget, ...]
    interpreter: str = "system"  # "bundled": every target has its interpreter

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "environment": self.environment,
            "spec-hash": self.spec_hash,
            "interpreter": self.interpreter,
            "platform-tags": dict(self.platform_tags),
            "targets": [t.to_dict() for t in self.targets],
        }

    @classmethod
    def from_lock(cls, data: Mapping[str, Any], where: Path) -> EnvlockTable:
        """``[tool.envlock]`` of a parsed lock; any value of the wrong shape is a UsageError."""
        tool = data.get("tool")
        table = tool.get("envlock") if isinstance(tool, Mapping) else None
        if table is None:
            raise _bad(where, "", "missing: not a lock envlock wrote")
        if not isinstance(table, Mapping):
            raise _bad(where, "", f"must be a table, not {type(table).__name__}")
        targets = table.get("targets", [])
        if not isinstance(targets, list):
            raise _bad(where, "targets", "must be an array of tables")
        parsed = [_target(where, i, t) for i, t in enumerate(targets)]
        platforms = [t.platform for t in parsed]
        if len(set(platforms)) != len(platforms):
            raise _bad(where, "targets", "a platform is listed twice")
        tags = table.get("platform-tags", {})
        if not isinstance(tags, Mapping):
            raise _bad(where, "platform-tags", "must be a table")
        strings = {
            key: _string(where, table, key) for key in ("version", "environment", "spec-hash")
        }
        if strings["environment"] and not _ENV_NAME.fullmatch(strings["environment"]):
            raise _bad(where, "environment", f"not an environment name: {strings['environment']!r}")
        mode = _string(where, table, "interpreter") or "system"
        if mode not in ("bundled", "system"):
            raise _bad(where, "interpreter", f'must be "bundled" or "system", not {mode!r}')
        for i, t in enumerate(parsed):
            if (t.interpreter is not None) != (mode == "bundled"):
                have = "has" if t.interpreter is not None else "lacks"
                raise _bad(where, f"targets[{i}].interpreter", f"{have} one in a {mode} lock")
        return cls(
            strings["version"],
            strings["environment"] or "default",
            strings["spec-hash"],
            dict(tags),
            tuple(parsed),
            mode,
        )


def _string(where: Path, table: Mapping[str, Any], key: str, location: str = "") -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise _bad(where, location + key, f"must be a string, not {type(value).__name__}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise _bad(where, location + key, f"control character in {value!r}")
    return value


def _target(where: Path, i: int, table: Any) -> LockedTarget:
    location = f"targets[{i}]"
    if not isinstance(table, Mapping):
        raise _bad(where, location, "must be a table")
    values = {
        key: _string(where, table, key, location + ".")
        for key in ("platform", "python", "marker", "tag-floor", "best-tag")
    }
    if values["platform"] not in PLATFORMS:
        raise _bad(where, location + ".platform", f"unknown platform {values['platform']!r}")
    if not is_python_version(values["python"]):
        raise _bad(where, location + ".python", f"not a Python version: {values['python']!r}")
    interpreter = None
    if "interpreter" in table:
        interpreter = _interpreter(where, location + ".interpreter", table["interpreter"])
        if interpreter.version != values["python"]:
            raise _bad(
                where,
                location + ".interpreter.version",
                f"{interpreter.version} is not the target's python {values['python']}",
            )
    return LockedTarget(
        values["platform"],
        values["python"],
        values["marker"],
        values["tag-floor"],
        values["best-tag"],
        interpreter,
    )


_INTERPRETER_KEYS = {"version", "build", "name", "url", "sha256", "size"}
_EXACT = re.compile(r"3\.\d+\.\d+")


def _interpreter(where: Path, location: str, table: Any) -> LockedInterpreter:
    """A target's interpreter entry, every value checked like an artifact's."""
    from envlock.lock.artifacts import check_interpreter_file

    if not isinstance(table, Mapping):
        raise _bad(where, location, "must be a table")
    unknown = sorted(set(table) - _INTERPRETER_KEYS)
    if unknown:
        raise _bad(where, f"{location}.{unknown[0]}", "unknown key")
    values = {
        key: _string(where, table, key, location + ".")
        for key in ("version", "build", "name", "url", "sha256")
    }
    if not _EXACT.fullmatch(values["version"]):
        raise _bad(where, location + ".version", f"not an exact version: {values['version']!r}")
    if values["build"] and not values["build"].isdigit():
        raise _bad(where, location + ".build", f"not a build id: {values['build']!r}")
    size = table.get("size")
    reason = check_interpreter_file(values["name"], values["url"], values["sha256"], size)
    if reason is not None:
        raise _bad(where, f"{location}.{reason[0]}", reason[1])
    return LockedInterpreter(
        values["version"], values["build"], values["name"], values["url"], values["sha256"], size
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
    license: str | None = None  # what the metadata declared (envlock.licenses.from_metadata)

    def to_dict(self) -> dict[str, Any]:
        table: dict[str, Any] = {}
        if self.license is not None:
            table["license"] = self.license
        table["metadata"] = [
            {"files": list(g.files), "requires-dist": list(g.requires_dist)} for g in self.metadata
        ]
        return table

    @classmethod
    def build(
        cls, by_file: Mapping[str, Sequence[str]], license: str | None = None
    ) -> PackageRecord:
        groups: dict[tuple[str, ...], list[str]] = {}
        for filename, requires in sorted(by_file.items()):
            groups.setdefault(tuple(requires), []).append(filename)
        return cls(
            tuple(
                MetadataGroup(tuple(files), requires)
                for requires, files in sorted(groups.items(), key=lambda kv: kv[1])
            ),
            license,
        )

    @classmethod
    def from_package(
        cls, tool: Mapping[str, Any] | None, where: Path, location: str
    ) -> PackageRecord | None:
        """The record of a ``[[packages]]`` entry (``location`` names it in errors): None when
        the entry has none (a lock from before envlock recorded dependencies), a UsageError when
        it is not well-formed."""
        table = tool.get("envlock") if isinstance(tool, Mapping) else None
        if table is None:
            return None
        location += ".tool.envlock"
        if not isinstance(table, Mapping):
            raise lock_error(where, location, "must be a table")
        groups = table.get("metadata")
        if not isinstance(groups, list):
            raise lock_error(where, location + ".metadata", "must be an array of tables")
        out = []
        for i, g in enumerate(groups):
            here = f"{location}.metadata[{i}]"
            if not isinstance(g, Mapping):
                raise lock_error(where, here, "must be a table")
            files = _strings(where, g.get("files"), here + ".files")
            requires = _strings(where, g.get("requires-dist"), here + ".requires-dist")
            out.append(MetadataGroup(files, requires))
        license = table.get("license")
        if license is not None and (
            not isinstance(license, str)
            or len(license) > MAX_TEXT
            or any(ord(c) < 0x20 or ord(c) == 0x7F for c in license)
        ):
            raise lock_error(where, location + ".license", f"not a license: {license!r:.60}")
        return cls(tuple(out), license)

    def requires_of(self, filename: str) -> tuple[str, ...] | None:
        for group in self.metadata:
            if filename in group.files:
                return group.requires_dist
        return None


def _strings(where: Path, value: Any, location: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise lock_error(where, location, "must be an array of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise lock_error(
                where, f"{location}[{i}]", f"must be a string, not {type(item).__name__}"
            )
    return tuple(value)
