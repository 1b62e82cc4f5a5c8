"""The text of a starter ``envlock.toml``: chosen values plus commented examples of the rest.

Top-level keys come before any table, and the commented ``[policy]`` example sits after the
top-level keys, so uncommenting any block keeps the document meaning what it says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from envlock.importers import ImportedIndex

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class SpecValues:
    """The values a starter spec sets."""

    python: str
    platforms: tuple[str, ...]
    dependencies: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    environments: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    indexes: tuple[ImportedIndex, ...] = ()
    insecure_hosts: tuple[str, ...] = ()
    prerelease: bool = False
    interpreter: str | None = None  # None: leave the default ("bundled"), commented
    source: Path | None = None


def toml_string(value: str) -> str:
    """A TOML string: literal ('...') when that saves escaping the double quotes of a marker,
    else basic, with quotes, backslashes and control characters escaped."""
    plain = not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
    if plain and '"' in value and "'" not in value:
        return f"'{value}'"
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else toml_string(key)


def _array(key: str, items: Iterable[str], *, inline: bool = False) -> list[str]:
    values = [toml_string(i) for i in items]
    if inline or not values:
        return [f"{key} = [{', '.join(values)}]"]
    return [f"{key} = [", *(f"    {v}," for v in values), "]"]


def render(v: SpecValues) -> str:
    """The whole file."""
    origin = f" from {v.source.name}" if v.source else ""
    minor = ".".join(v.python.split(".")[:2])
    lines = [
        "# envlock.toml: what `envlock lock` resolves into pylock.toml, for every platform below.",
        f"# Written by `envlock init`{origin}. Every key is described in envlock.toml.example",
        "# (envlock repository). Next: `envlock lock`.",
        "",
        f'# Target CPython: "{minor}" (the newest {minor}.x with a bundled build for every',
        f'# platform; kept when re-locking) or an exact version such as "{minor}.4".',
        f"python = {toml_string(v.python)}",
        "",
        '# "bundled" (default): each environment carries its own relocatable CPython, pinned in',
        '# the lock, so target machines need no Python. "system": a virtual environment on a',
        "# Python already installed on the target machine.",
        f"interpreter = {toml_string(v.interpreter)}"
        if v.interpreter
        else '# interpreter = "bundled"',
        "",
        "# Platforms to lock for (they need not be the host):",
        "# linux-64, linux-aarch64, osx-64, osx-arm64, win-64.",
        *_array("platforms", v.platforms, inline=True),
        "",
        "# PEP 508 requirements; extras and markers allowed (markers are evaluated per platform).",
        *_array("dependencies", v.dependencies),
        "",
        *_constraints(v.constraints),
    ]
    if v.prerelease:
        lines += ["# Prereleases may be locked (the import had --pre).", 'prerelease = "allow"', ""]
    if v.insecure_hosts:
        lines += ["# Hosts that may be spoken to over plain http://."]
        lines += [*_array("insecure-hosts", v.insecure_hosts, inline=True), ""]
    lines += [
        "# Optional: ignore files uploaded after this RFC 3339 time (reproducible re-resolution).",
        '# exclude-newer = "2026-01-01T00:00:00Z"',
        "",
        "# Optional: packages whose source-only releases may be locked (default: wheels only).",
        '# allow-sdist = ["some-package"]',
        "",
        *_indexes(v.indexes),
        "# Optional: supply-chain policy. `envlock lock` enforces it while resolving;",
        "# `envlock audit` checks an existing lock against it.",
        "# [policy]",
        '# allowed-indexes = ["pypi"]                # index names or URL prefixes',
        '# deny = ["pyyaml<5.4"]                     # PEP 508: never lock these',
        '# min-age = "7 days"                        # ignore files uploaded more recently',
        '# allowed-licenses = ["MIT", "BSD-3-Clause", "Apache-2.0"]   # SPDX identifiers',
        '# license-exceptions = { "nvidia-*" = ["LicenseRef-NVIDIA-Proprietary"] }  # per package',
        "",
        *_environments(v.environments),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def _constraints(constraints: tuple[str, ...]) -> list[str]:
    head = [
        "# Limits on versions that add no package (pip's -c files, uv's constraint-dependencies):",
        "# a package something requires is held to them; one nothing requires stays out.",
    ]
    if not constraints:
        return [*head, '# constraints = ["urllib3<2"]', ""]
    return [*head, *_array("constraints", constraints), ""]


def _indexes(indexes: tuple[ImportedIndex, ...]) -> list[str]:
    head = [
        "# Indexes: a package comes from the FIRST index that has it (never merged across",
        "# indexes). ENVLOCK_INDEX_URL overrides the first URL. Credentials come from ~/.netrc",
        "# or ENVLOCK_INDEX_<NAME>_USERNAME / _PASSWORD, never from this file.",
    ]
    if not indexes:
        example = ["[[index]]", 'name = "pypi"', 'url = "https://pypi.org/simple/"']
        return [*head, "# Default: PyPI.", *(f"# {line}" for line in example), ""]
    out = head
    for index in indexes:
        out += ["[[index]]", f"name = {toml_string(index.name)}", f"url = {toml_string(index.url)}"]
    return [*out, ""]


def _environments(envs: Mapping[str, tuple[str, ...]]) -> list[str]:
    out = [
        "# Named environments, each locked to pylock.NAME.toml (`envlock lock --env NAME`).",
        "# Unset keys are inherited from the top level; `dependencies` and `constraints` ADD to",
        "# the lists above.",
    ]
    if not envs:
        return [*out, "# [environments.test]", '# dependencies = ["pytest"]']
    for name, deps in envs.items():
        out += [f"[environments.{toml_key(name)}]", *_array("dependencies", deps), ""]
    return out
