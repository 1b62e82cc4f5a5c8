"""Validators of single values, shared by the spec, command-line flags and lock tables.

Each raises :class:`~envlock.errors.SpecError` (exit 2) naming where the value came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from envlock.errors import SpecError
from envlock.platforms import PLATFORM_NAMES, PlatformOptions

_TAG_KEYS = {"glibc", "macos-x86_64", "macos-arm64", "musllinux", "manylinux-legacy-aliases"}


class Where:
    """Where a value came from, for messages: ``<file>: key '<key>'``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> SpecError:
        return SpecError(f"{self.path}: key '{key}': {message}")


def parse_platforms(values: Sequence[str], where: str) -> tuple[str, ...]:
    """Validate platform names (used for the spec and for ``--platform``)."""
    for p in values:
        if p not in PLATFORM_NAMES:
            raise SpecError(f"{where}: unknown platform {p!r} (known: {', '.join(PLATFORM_NAMES)})")
    return tuple(dict.fromkeys(values))


def parse_timestamp(value: str, where: str) -> datetime:
    """An RFC 3339 timestamp (a bare date means midnight UTC)."""
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            ts = datetime.fromisoformat(text + "T00:00:00+00:00")
        else:
            ts = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise SpecError(
            f"{where}: not an RFC 3339 timestamp: {value!r} (e.g. 2026-01-31T00:00:00Z)"
        ) from None
    if ts.tzinfo is None:
        raise SpecError(f"{where}: timestamp {value!r} needs a timezone (e.g. a trailing Z)")
    return ts.astimezone(timezone.utc)


def version_pair(ctx: Where, value: Any, key: str) -> tuple[int, int]:
    try:
        v = Version(str(value))
    except InvalidVersion:
        v = None
    if not isinstance(value, str) or v is None or len(v.release) > 2:
        raise ctx.fail(key, f'must be a version like "2.28", got {value!r}')
    release = (*v.release, 0)
    return release[0], release[1]


def platform_options(ctx: Where, value: Any) -> PlatformOptions:
    if not isinstance(value, Mapping):
        raise ctx.fail("platform-tags", "must be a table")
    check_keys(ctx, value, _TAG_KEYS, "platform-tags.")
    defaults = PlatformOptions()
    legacy = value.get("manylinux-legacy-aliases", defaults.manylinux_legacy_aliases)
    if not isinstance(legacy, bool):
        raise ctx.fail("platform-tags.manylinux-legacy-aliases", "must be true or false")
    return PlatformOptions(
        glibc=version_pair(ctx, value["glibc"], "platform-tags.glibc")
        if "glibc" in value
        else defaults.glibc,
        macos_x86_64=version_pair(ctx, value["macos-x86_64"], "platform-tags.macos-x86_64")
        if "macos-x86_64" in value
        else defaults.macos_x86_64,
        macos_arm64=version_pair(ctx, value["macos-arm64"], "platform-tags.macos-arm64")
        if "macos-arm64" in value
        else defaults.macos_arm64,
        musllinux=version_pair(ctx, value["musllinux"], "platform-tags.musllinux")
        if "musllinux" in value
        else None,
        manylinux_legacy_aliases=legacy,
    )


def check_keys(ctx: Where, table: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    for key in table:
        if key not in allowed:
            raise ctx.fail(prefix + key, f"unknown key (allowed: {', '.join(sorted(allowed))})")


def platform_options_from(table: Mapping[str, Any], where: Path) -> PlatformOptions:
    """Rebuild tag floors from a ``[platform-tags]``-shaped table (e.g. stored in a lock)."""
    return platform_options(Where(where), table)
