"""Target platforms: ``"linux-64"`` + Python -> :class:`Target` (marker environment, ordered tags).

Pure: nothing here looks at the host except :func:`host_platform`.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass, field
from typing import Any

from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms

# name -> (sys_platform, platform_system, os_name, platform_machine, tag arch)
_PLATFORMS: dict[str, tuple[str, str, str, str, str]] = {
    "linux-64": ("linux", "Linux", "posix", "x86_64", "x86_64"),
    "linux-aarch64": ("linux", "Linux", "posix", "aarch64", "aarch64"),
    "osx-64": ("darwin", "Darwin", "posix", "x86_64", "x86_64"),
    "osx-arm64": ("darwin", "Darwin", "posix", "arm64", "arm64"),
    "win-64": ("win32", "Windows", "nt", "AMD64", "amd64"),
}
PLATFORM_NAMES: tuple[str, ...] = tuple(_PLATFORMS)

# PEP 600 legacy names and the glibc version each one stands for.
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
# The oldest glibc a manylinux wheel can claim per architecture (aarch64 began with 2014).
_GLIBC_MIN = {"x86_64": 5, "aarch64": 17}


def _dotted(pair: tuple[int, int]) -> str:
    return f"{pair[0]}.{pair[1]}"


@dataclass(frozen=True)
class PlatformOptions:
    """Tag floors and opt-ins from ``[platform-tags]`` in the spec."""

    glibc: tuple[int, int] = (2, 28)
    macos_x86_64: tuple[int, int] = (10, 13)
    macos_arm64: tuple[int, int] = (11, 0)
    musllinux: tuple[int, int] | None = None
    manylinux_legacy_aliases: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "glibc": _dotted(self.glibc),
            "macos-x86_64": _dotted(self.macos_x86_64),
            "macos-arm64": _dotted(self.macos_arm64),
        }
        if self.musllinux:
            out["musllinux"] = _dotted(self.musllinux)
        if self.manylinux_legacy_aliases:
            out["manylinux-legacy-aliases"] = True
        return out

    def floor_for(self, platform_name: str) -> str:
        """A short human description of the tag floor used for a platform."""
        if platform_name.startswith("linux"):
            text = "glibc " + _dotted(self.glibc)
            if self.musllinux:
                text += ", musl " + _dotted(self.musllinux)
            return text
        if platform_name == "osx-64":
            return "macOS " + _dotted(self.macos_x86_64)
        if platform_name == "osx-arm64":
            return "macOS " + _dotted(max(self.macos_arm64, (11, 0)))
        return "any"


@dataclass(frozen=True)
class Target:
    """One thing a lock resolves for: a platform, a CPython version, and what follows from them."""

    platform: str
    python: str
    options: PlatformOptions = field(default_factory=PlatformOptions)

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
    def environment(self) -> dict[str, str]:
        """The PEP 508 marker environment of this target (not of the host)."""
        sys_platform, system, os_name, machine, _ = _PLATFORMS[self.platform]
        return {
            "implementation_name": "cpython",
            "implementation_version": self.python_full_version,
            "os_name": os_name,
            "platform_machine": machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": system,
            "platform_version": "",
            "python_full_version": self.python_full_version,
            "python_version": self.python_version,
            "sys_platform": sys_platform,
        }

    @property
    def marker(self) -> str:
        """The marker that tells this platform apart from the others (used in the lock)."""
        sys_platform, _, _, machine, _ = _PLATFORMS[self.platform]
        return f"sys_platform == '{sys_platform}' and platform_machine == '{machine}'"

    @property
    def sys_platform(self) -> str:
        return _PLATFORMS[self.platform][0]

    @property
    def platform_tags(self) -> tuple[str, ...]:
        """Platform part of wheel tags, most specific first."""
        arch = _PLATFORMS[self.platform][4]
        if self.platform.startswith("linux"):
            return tuple(_linux_platforms(arch, self.options))
        if self.platform.startswith("osx"):
            floor = self.options.macos_x86_64 if arch == "x86_64" else self.options.macos_arm64
            if arch == "arm64":
                floor = max(floor, (11, 0))
            return tuple(mac_platforms(floor, arch))
        return ("win_amd64",)

    @property
    def tags(self) -> tuple[Tag, ...]:
        """Every wheel tag this target accepts, best first (the order of ``sys_tags()``)."""
        return _tags(self.python_tuple, self.abi, self.platform_tags)

    def marker_matches(self, marker: Marker | None, extras: frozenset[str] = frozenset()) -> bool:
        """Evaluate a requirement marker for this target, with the given extras active."""
        if marker is None:
            return True
        env: dict[str, str] = dict(self.environment)
        if not extras:
            env["extra"] = ""
            return marker.evaluate(env)
        return any(marker.evaluate({**env, "extra": e}) for e in extras)


def _tags(python: tuple[int, int], abi: str, platforms: tuple[str, ...]) -> tuple[Tag, ...]:
    out = list(cpython_tags(python, [abi], list(platforms)))
    out.extend(compatible_tags(python, abi, list(platforms)))
    return tuple(dict.fromkeys(out))


def _linux_platforms(arch: str, options: PlatformOptions) -> list[str]:
    major, floor_minor = options.glibc
    out: list[str] = []
    for minor in range(floor_minor, _GLIBC_MIN[arch] - 1, -1):
        out.append(f"manylinux_{major}_{minor}_{arch}")
        legacy = _LEGACY_MANYLINUX.get((major, minor))
        if options.manylinux_legacy_aliases and legacy and (arch == "x86_64" or minor >= 17):
            out.append(f"{legacy}_{arch}")
    if options.musllinux:
        mmajor, mminor = options.musllinux
        out.extend(f"musllinux_{mmajor}_{m}_{arch}" for m in range(mminor, -1, -1))
    return out


def host_platform() -> str:
    """The conda-style name of the machine envlock runs on (default target)."""
    machine = platform.machine().lower()
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
    for name in PLATFORM_NAMES:
        t = Target(name, "3.11", options)
        plats = t.platform_tags
        rows.append(
            {
                "platform": name,
                "markers": t.marker,
                "floor": options.floor_for(name),
                "best": plats[0],
                "count": str(len(plats)),
            }
        )
    return rows
