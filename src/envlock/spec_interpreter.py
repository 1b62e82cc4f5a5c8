"""The spec's interpreter keys: ``interpreter``, ``python-mirror``, ``[interpreter-sources.P]``.

``interpreter = "bundled"`` (the default) makes every environment carry its own relocatable
CPython, pinned and hashed in the lock; ``"system"`` builds a virtual environment on a Python
that is already on the machine that runs it (``--base-python``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from envlock.platforms import PLATFORM_NAMES
from envlock.spec_values import Where, check_keys

InterpreterMode = Literal["bundled", "system"]
INTERPRETER_MODES: tuple[InterpreterMode, ...] = ("bundled", "system")
MIRROR_ENV = "ENVLOCK_PYTHON_MIRROR"

_SOURCE_KEYS = {"url", "sha256", "version"}
_SHA256 = re.compile(r"[0-9a-f]{64}")
_EXACT = re.compile(r"3\.\d+\.\d+")
_URL = re.compile(r"(https?|file)://[^\s]+")


@dataclass(frozen=True)
class InterpreterSource:
    """A team's own relocatable build for one platform (python-build-standalone layout)."""

    url: str
    sha256: str
    version: str | None = None

    def as_list(self) -> list[str]:
        return [self.url, self.sha256, self.version or ""]


def interpreter_mode(ctx: Where, value: Any, key: str) -> InterpreterMode:
    for mode in INTERPRETER_MODES:
        if value == mode:
            return mode
    raise ctx.fail(key, f'must be "bundled" or "system", got {value!r}')


def python_mirror(ctx: Where, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _URL.fullmatch(value) or "@" in value.split("/")[2]:
        raise ctx.fail("python-mirror", "must be an http(s):// or file:// URL without credentials")
    return value


def interpreter_sources(ctx: Where, value: Any) -> Mapping[str, InterpreterSource]:
    """``[interpreter-sources.PLATFORM]`` tables: url + sha256 (+ version)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ctx.fail("interpreter-sources", "must be a table of [interpreter-sources.PLATFORM]")
    out: dict[str, InterpreterSource] = {}
    for platform in sorted(value):
        key = f"interpreter-sources.{platform}"
        table = value[platform]
        if platform not in PLATFORM_NAMES:
            raise ctx.fail(key, f"unknown platform (known: {', '.join(PLATFORM_NAMES)})")
        if not isinstance(table, Mapping):
            raise ctx.fail(key, "must be a table with url and sha256")
        check_keys(ctx, table, _SOURCE_KEYS, key + ".")
        url, sha, version = table.get("url"), table.get("sha256"), table.get("version")
        if not isinstance(url, str) or not _URL.fullmatch(url) or "@" in url.split("/")[2]:
            raise ctx.fail(f"{key}.url", "must be an http(s):// or file:// URL without credentials")
        if not url.split("?")[0].endswith((".tar.gz", ".tgz")):
            raise ctx.fail(f"{key}.url", "must name a .tar.gz (python-build-standalone layout)")
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha.lower()):
            raise ctx.fail(f"{key}.sha256", "must be 64 hex digits")
        if version is not None and (not isinstance(version, str) or not _EXACT.fullmatch(version)):
            raise ctx.fail(
                f"{key}.version", f'must be an exact version like "3.11.9", got {version!r}'
            )
        out[platform] = InterpreterSource(url, sha.lower(), version)
    return out
