"""Target platforms: ``"linux-64"`` + Python -> :class:`Target` (marker environment, ordered tags).

Pure: nothing here looks at the host except :func:`host_platform`. Platform facts live in one
table of frozen :class:`Platform` records; nobody re-derives them from name prefixes.
"""

from __future__ import annotations

import platform as _host
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from packaging.markers import Environment, Marker
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms

OsKind = Literal["linux", "macos", "windows"]


@dataclass(frozen=True)
class Platform:
    """What a conda-style platform name stands for: marker values and the wheel-tag arch."""

    name: str
    os: OsKind
    sys_platform: str
    platform_system: str
    os_name: str
    machine: str  # platform_machine as Python reports it there
    arch: str  # the architecture part of wheel platform tags

    @property
    def windows(self) -> bool:
        return self.os == "windows"

    @property
    def marker(self) -> str:
        """The marker that tells this platform apart from the others (used in locks)."""
        return f"sys_platform == '{self.sys_platform}' and platform_machine == '{self.machine}'"

    @property
    def description(self) -> str:
        """``linux x86_64``, ``macOS arm64``, ``Windows x86_64`` (for messages)."""
        system = {"linux": "Linux", "macos": "macOS", "windows": "Windows"}[self.os]
        return f"{system} {self.machine.lower() if self.windows else self.machine}".replace(
            "amd64", "x86_64"
        )


PLATFORMS: Mapping[str, Platform] = {
    p.name: p
    for p in (
        Platform("linux-64", "linux", "linux", "Linux", "posix", "x86_64", "x86_64"),
        Platform("linux-aarch64", "linux", "linux", "Linux", "posix", "aarch64", "aarch64"),
        Platform("osx-64", "macos", "darwin", "Darwin", "posix", "x86_64", "x86_64"),
        Platform("osx-arm64", "macos", "darwin", "Darwin", "posix", "arm64", "arm64"),
        Platform("win-64", "windows", "win32", "Windows", "nt", "AMD64", "amd64"),
    )
}
PLATFORM_NAMES: tuple[str, ...] = tuple(PLATFORMS)

# PEP 600 legacy names and the glibc version each one stands for.
LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
# The oldest glibc a manylinux wheel can claim per architecture (aarch64 began with 2014).
_GLIBC_MIN = {"x86_64": 5, "aarch64": 17}
# macOS on Apple silicon starts at 11.0.
_MACOS_ARM64_MIN = (11, 0)


def dotted(pair: tuple[int, int]) -> str:
    """``(2, 28)`` -> ``"2.28"``."""
    return f"{pair[0]}.{pair[1]}"


@dataclass(frozen=True)
class PlatformOptions:
    """Tag floors and opt-ins from ``[platform-tags]`` in the spec.

    The defaults are pip's and uv's: glibc 2.28 (uv's default manylinux target), macOS 13.0 (the
    oldest macOS Apple still supports, uv's default), and the legacy manylinux spellings
    accepted within the glibc floor (PEP 600).
    """

    glibc: tuple[int, int] = (2, 28)
    macos_x86_64: tuple[int, int] = (13, 0)
    macos_arm64: tuple[int, int] = (13, 0)
    musllinux: tuple[int, int] | None = None
    manylinux_legacy_aliases: bool = True

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "glibc": dotted(self.glibc),
            "macos-x86_64": dotted(self.macos_x86_64),
            "macos-arm64": dotted(self.macos_arm64),
        }
        if self.musllinux:
            out["musllinux"] = dotted(self.musllinux)
        if not self.manylinux_legacy_aliases:
            out["manylinux-legacy-aliases"] = False
        return out

    def macos_floor(self, arch: str) -> tuple[int, int]:
        if arch == "arm64":
            return max(self.macos_arm64, _MACOS_ARM64_MIN)
        return self.macos_x86_64

    def floor_for(self, platform: Platform) -> str:
        """A short human description of the tag floor used for a platform."""
        if platform.os == "linux":
            text = "glibc " + dotted(self.glibc)
            if self.musllinux:
                text += ", musl " + dotted(self.musllinux)
            return text
        if platform.os == "macos":
            return "macOS " + dotted(self.macos_floor(platform.arch))
        return "any"


@dataclass(frozen=True)
class Target:
    """One thing a lock resolves for: a platform, a CPython version, and what follows from them."""

    platform: str
    python: str
    options: PlatformOptions = field(default_factory=PlatformOptions)

    @property
    def platform_info(self) -> Platform:
        return PLATFORMS[self.platform]

    @property
    def python_full_version(self) -> str:
        # "3.11" resolves as 3.11.0: the lowest patch release, so Requires-Python lower
        # bounds hold for every 3.11.x the lock may be installed on.
        parts = self.python.split(".")
        return self.python if len(parts) == 3 else f"{self.python}.0"

    @property
    def python_version(self) -> str:
        return ".".join(self.python.split(".")[:2])

    @property
    def python_tuple(self) -> tuple[int, int]:
        major, minor = self.python_version.split(".")
        return int(major), int(minor)

    @property
    def abi(self) -> str:
        major, minor = self.python_tuple
        return f"cp{major}{minor}"

    @property
    def label(self) -> str:
        return f"{self.platform} / {self.abi}"

    @property
    def environment(self) -> Environment:
        """The PEP 508 marker environment of this target (not of the host)."""
        p = self.platform_info
        return {
            "implementation_name": "cpython",
            "implementation_version": self.python_full_version,
            "os_name": p.os_name,
            "platform_machine": p.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": p.platform_system,
            "platform_version": "",
            "python_full_version": self.python_full_version,
            "python_version": self.python_version,
            "sys_platform": p.sys_platform,
        }

    @property
    def marker(self) -> str:
        return self.platform_info.marker

    @property
    def sys_platform(self) -> str:
        return self.platform_info.sys_platform

    @cached_property
    def platform_tags(self) -> tuple[str, ...]:
        """Platform part of wheel tags, most specific first."""
        p = self.platform_info
        if p.os == "linux":
            return tuple(_linux_platforms(p.arch, self.options))
        if p.os == "macos":
            return tuple(mac_platforms(self.options.macos_floor(p.arch), p.arch))
        return ("win_amd64",)

    @cached_property
    def tags(self) -> tuple[Tag, ...]:
        """Every wheel tag this target accepts, best first (the order of ``sys_tags()``)."""
        return _tags(self.python_tuple, self.abi, self.platform_tags)

    @cached_property
    def _marker_memo(self) -> dict[tuple[str, frozenset[str]], bool]:
        return {}

    def marker_matches(self, marker: Marker | None, extras: frozenset[str] = frozenset()) -> bool:
        """Evaluate a requirement marker for this target, with the given extras active."""
        if marker is None:
            return True
        key = (str(marker), extras)
        found = self._marker_memo.get(key)
        if found is None:
            env: dict[str, str] = {k: str(v) for k, v in self.environment.items()}
            if extras:
                found = any(marker.evaluate({**env, "extra": e}) for e in extras)
            else:
                found = marker.evaluate({**env, "extra": ""})
            self._marker_memo[key] = found
        return found


def _tags(python: tuple[int, int], abi: str, platforms: tuple[str, ...]) -> tuple[Tag, ...]:
    out = list(cpython_tags(python, [abi], list(platforms)))
    out.extend(compatible_tags(python, abi, list(platforms)))
    return tuple(dict.fromkeys(out))


def _linux_platforms(arch: str, options: PlatformOptions) -> list[str]:
    major, floor_minor = options.glibc
    out: list[str] = []
    for minor in range(floor_minor, _GLIBC_MIN[arch] - 1, -1):
        out.append(f"manylinux_{major}_{minor}_{arch}")
        legacy = LEGACY_MANYLINUX.get((major, minor))
        if options.manylinux_legacy_aliases and legacy and (arch == "x86_64" or minor >= 17):
            out.append(f"{legacy}_{arch}")
    if options.musllinux:
        mmajor, mminor = options.musllinux
        out.extend(f"musllinux_{mmajor}_{m}_{arch}" for m in range(mminor, -1, -1))
    return out


def host_platform() -> str:
    """The conda-style name of the machine envlock runs on (default target)."""
    machine = _host.machine().lower()
    if sys.platform.startswith("linux"):
        return "linux-aarch64" if machine in ("aarch64", "arm64") else "linux-64"
    if sys.platform == "darwin":
        return "osx-arm64" if machine == "arm64" else "osx-64"
    if sys.platform == "win32":
        return "win-64"
    return "linux-64"


def describe(options: PlatformOptions) -> list[dict[str, str]]:
    """One row per known platform for ``envlock platforms``."""
    rows = []
    for name, info in PLATFORMS.items():
        t = Target(name, "3.11", options)
        plats = t.platform_tags
        rows.append(
            {
                "platform": name,
                "markers": t.marker,
                "floor": options.floor_for(info),
                "best": plats[0],
                "count": str(len(plats)),
            }
        )
    return rows
