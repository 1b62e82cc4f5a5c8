"""A lock checked against the spec's ``[policy]``: every package's index, version, license and
upload time. Pure: ``lock`` runs it on what it resolved before writing, ``audit`` on a lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from packaging.pylock import PackageSdist, PackageWheel
from packaging.version import Version

from envlock._urls import host_of
from envlock.licenses import allowed
from envlock.lock.lockfile import LockFile, marker_matches
from envlock.spec_policy import SpecPolicy, denied_by

Severity = Literal["violation", "unknown"]


@dataclass(frozen=True)
class Finding:
    """One package against one rule: a violation (exit 1), or something that cannot be checked
    (reported as unknown)."""

    name: str
    version: str
    rule: str  # "allowed-indexes" | "deny" | "min-age" | "allowed-licenses"
    message: str
    severity: Severity = "violation"

    def describe(self) -> str:
        return f"{self.name} {self.version}: {self.message}"


def check(
    lock: LockFile,
    policy: SpecPolicy,
    *,
    platforms: Set[str] = frozenset(),
    pins: Mapping[str, Set[Version]] | None = None,
    now: datetime | None = None,
) -> list[Finding]:
    """Every finding of ``lock``'s packages (those of ``platforms``; default all) against
    ``policy``. ``pins`` (name -> versions the spec pins with ``==``) are exempt from min-age, as
    ``lock`` exempts them."""
    if policy.empty:
        return []
    now = now or datetime.now(timezone.utc)
    pins = pins or {}
    targets = [t for p, t in sorted(lock.targets.items()) if not platforms or p in platforms]
    rules = policy.deny_rules
    out: list[Finding] = []
    for pkg in lock.pylock.packages:
        on = [t for t in targets if marker_matches(pkg.marker, t)]
        if not on or pkg.version is None:
            continue
        name, version = str(pkg.name), str(pkg.version)

        def add(rule: str, message: str, severity: Severity = "violation") -> None:
            out.append(Finding(name, version, rule, message, severity))  # noqa: B023

        files: list[PackageWheel | PackageSdist] = [*(pkg.wheels or ())]
        files += [pkg.sdist] if pkg.sdist else []
        if not policy.index_allowed(pkg.index):
            where = pkg.index or "an unrecorded index"
            add("allowed-indexes", f"comes from {where}, which allowed-indexes does not list")
        else:
            # The recorded index is only a label: the files are what gets installed.
            stray = [f for f in files if f.url and not policy.file_allowed(pkg.index, f.url)]
            if stray:
                add("allowed-indexes", _stray_files(stray, pkg.index))
        for target in on:
            rule = denied_by(rules, name, pkg.version, target.environment)
            if rule is not None:
                add("deny", f"denied by the rule {str(rule)!r} ({target.platform})")
                break
        permitted = policy.licenses_for(name)
        if permitted is not None:
            license = lock.license(name, version)
            verdict = allowed(license, permitted)
            if verdict is False:
                add("allowed-licenses", f"license {license} is not in {_lists(policy, name)}")
            elif verdict is None:
                said = f" ({license!r} is not an SPDX expression)" if license else ""
                add("allowed-licenses", f"license unknown{said}", "unknown")
        if policy.min_age is not None and pkg.version not in pins.get(name, set()):
            times = [f.upload_time for f in files if f.upload_time is not None]
            if not times:
                add("min-age", "no upload time recorded, min-age cannot be checked", "unknown")
            elif max(times) > now - policy.min_age:
                newest = max(times).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")
                add("min-age", f"uploaded {newest} UTC, within min-age ({policy.min_age_text})")
    return sorted(out, key=lambda f: (f.name, Version(f.version), f.rule))


def _lists(policy: SpecPolicy, name: str) -> str:
    """Which lists allowed ``name``'s licenses, for the message of a violation."""
    globs = [repr(g) for g, _ in policy.exceptions_for(name)]
    if not globs:
        return "allowed-licenses"
    return f"allowed-licenses or license-exceptions {', '.join(globs)}"


def _stray_files(stray: list[PackageWheel | PackageSdist], index: str | None) -> str:
    first = stray[0]
    host = host_of(first.url or "") or (first.url or "")[:80]
    more = f" (and {len(stray) - 1} more)" if len(stray) > 1 else ""
    return (
        f"file {first.filename}{more} is on {host}, where {index} does not serve files "
        "(name the host in that [[index]] table's files)"
    )
