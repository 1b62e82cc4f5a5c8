"""Which versions of a project a target can use, and exactly why the others cannot. Pure.

A version is a candidate when, after the policy filters (``exclude-newer``, yanked unless
pinned, ``Requires-Python``), it has a wheel the target accepts (best tag first) or, as with pip
and uv, an sdist (unless the spec turned sdists off). Otherwise :func:`evaluate` returns a
:class:`Rejection` that names the cause and the one setting that would change the answer
(:func:`diagnose_wheels`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import create_compatible_tags_selector
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from envlock.index.simple import DistFile
from envlock.platforms import LEGACY_MANYLINUX, Target, dotted
from envlock.spec_policy import denied_by

PYTHON = "<python>"

RejectKind = Literal[
    "newer",
    "yanked",
    "requires_python",
    "no_wheel",
    "sdist_only",
    "prerelease",
    "constraint",
    "bad_metadata",
    "denied",
    "cooldown",
]


@dataclass(frozen=True)
class Req:
    """A requirement on a project (with extras), or on the target's Python."""

    name: str  # canonical name, or PYTHON
    extras: frozenset[NormalizedName]
    specifier: SpecifierSet
    text: str

    @property
    def identifier(self) -> str:
        return identifier(self.name, self.extras)

    @classmethod
    def from_requirement(cls, req: Requirement) -> Req:
        return cls(
            canonicalize_name(req.name),
            frozenset(canonicalize_name(e) for e in req.extras),
            req.specifier,
            str(req),
        )

    @property
    def pinned(self) -> bool:
        return any(s.operator in ("==", "===") and "*" not in s.version for s in self.specifier)

    @property
    def upper_bounded(self) -> bool:
        return any(
            s.operator in ("<", "<=", "~=") or (s.operator == "==" and "*" in s.version)
            for s in self.specifier
        )


@dataclass(frozen=True)
class Candidate:
    """One version of a project, with the file the target would install."""

    name: str
    version: Version
    extras: frozenset[NormalizedName] = frozenset()
    file: DistFile | None = None
    requires_python: SpecifierSet | None = field(default=None, compare=False)

    @property
    def identifier(self) -> str:
        return identifier(self.name, self.extras)

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


def identifier(name: str, extras: frozenset[str]) -> str:
    return f"{name}[{','.join(sorted(extras))}]" if extras else name


@dataclass(frozen=True)
class Rejection:
    """Why one version of a project is not a candidate for a target."""

    kind: RejectKind
    detail: str  # what is wrong, e.g. "needs glibc 2.34 (the floor is 2.28)"
    fix: str | None = None  # the one setting that would change it, as an instruction
    tags: tuple[str, ...] = ()  # platform tags of its wheels, for "wheels for: …"


@dataclass(frozen=True)
class Policy:
    """Policy knobs from the spec and the command line."""

    prerelease: Literal["disallow", "allow"] = "disallow"
    exclude_newer: datetime | None = None
    # The setting that refuses a project's sdists (as the spec says it), None when allowed.
    sdist_refused_by: Callable[[str], str | None] = lambda name: None
    deny: tuple[Requirement, ...] = ()  # [policy] deny: never chosen, even when pinned
    # [policy] min-age: files uploaded after this are held back, except for the versions the
    # spec itself pins with == (an explicit decision; a dependency's pin is not one).
    cooldown: datetime | None = None
    cooldown_exempt: frozenset[tuple[str, Version]] = frozenset()
    min_age: str = ""  # as the spec says it ("7 days"), for messages


class Evaluator:
    """Candidate-or-rejection for (project, version) on one target, memoised (files never
    change within a run)."""

    def __init__(self, target: Target, policy: Policy) -> None:
        self.target = target
        self.policy = policy
        self.python = Version(target.python_full_version)
        self._select = create_compatible_tags_selector(target.tags)
        self._memo: dict[tuple[str, Version, bool], Candidate | Rejection] = {}
        self._python_checks: dict[SpecifierSet, bool] = {}

    def evaluate(
        self, name: str, version: Version, files: Sequence[DistFile], pinned: bool
    ) -> Candidate | Rejection:
        key = (name, version, pinned)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._evaluate(name, version, files, pinned)
        return found

    def python_ok(self, spec: SpecifierSet) -> bool:
        ok = self._python_checks.get(spec)
        if ok is None:
            ok = self._python_checks[spec] = spec.contains(self.python, prereleases=True)
        return ok

    def _evaluate(
        self, name: str, version: Version, files: Sequence[DistFile], pinned: bool
    ) -> Candidate | Rejection:
        if self.policy.deny:
            rule = denied_by(self.policy.deny, name, version, self.target.environment)
            if rule is not None:
                return Rejection(
                    "denied",
                    f"denied by the [policy] deny rule {str(rule)!r}",
                    f"change the [policy] deny rule {str(rule)!r} if this version is acceptable",
                )
        exempt = (canonicalize_name(name), version) in self.policy.cooldown_exempt
        if self.policy.cooldown is not None and not exempt:
            rejection = self._cooldown(name, version, files)
            if isinstance(rejection, Rejection):
                return rejection
            files = rejection
        cutoff = self.policy.exclude_newer
        if cutoff is not None:
            kept = [f for f in files if f.upload_time is not None and f.upload_time <= cutoff]
            if not kept:
                return Rejection(
                    "newer",
                    f"uploaded after exclude-newer ({cutoff.isoformat().replace('+00:00', 'Z')})",
                    "set a later exclude-newer in the spec (or --exclude-newer)",
                )
            files = kept
        if not pinned:
            kept = [f for f in files if not f.yanked]
            if not kept:
                reasons = sorted({f.yank_reason for f in files if f.yank_reason})
                why = f" ({'; '.join(reasons)})" if reasons else ""
                return Rejection("yanked", f"yanked{why}", f"pin it exactly: {name}=={version}")
            files = kept
        usable = [
            f for f in files if f.requires_python is None or self.python_ok(f.requires_python)
        ]
        if not usable:
            specs = sorted({str(f.requires_python) for f in files if f.requires_python})
            return Rejection(
                "requires_python",
                f"requires Python {' or '.join(specs)}, the target is {self.python}",
                "set a python in the spec that it supports",
            )
        chosen = self.best_file(usable)
        if chosen is None:
            return diagnose_wheels(name, usable, self.target, self.policy.sdist_refused_by)
        return Candidate(name, version, frozenset(), chosen, chosen.requires_python)

    def _cooldown(
        self, name: str, version: Version, files: Sequence[DistFile]
    ) -> Sequence[DistFile] | Rejection:
        """``files`` older than the cooldown, or why none is (a file without an upload time
        cannot be shown to be old enough: the rule is for safety, so it does not pass)."""
        cutoff = self.policy.cooldown
        assert cutoff is not None
        kept = [f for f in files if f.upload_time is not None and f.upload_time <= cutoff]
        if kept:
            return kept
        times = [f.upload_time for f in files if f.upload_time is not None]
        when = (
            f"uploaded {min(times).strftime('%Y-%m-%d %H:%M')} UTC, within min-age "
            f"({self.policy.min_age})"
            if times
            else f"its index gives no upload time, so min-age ({self.policy.min_age}) cannot "
            "be checked"
        )
        fix = f"wait, or pin it exactly if it is trusted: {name}=={version}"
        return Rejection("cooldown", when, fix)

    def best_file(self, files: Iterable[DistFile]) -> DistFile | None:
        """The file the target installs: its best-ranked wheel, else an allowed sdist."""
        files = list(files)
        wheel = next(self._select((f, f.tags) for f in files if f.is_wheel), None)
        if wheel is not None:
            return wheel
        sdists = [f for f in files if not f.is_wheel]
        if sdists and self.policy.sdist_refused_by(files[0].name) is None:
            # Prefer .tar.gz (the standard sdist format) over legacy .zip.
            return sorted(sdists, key=lambda f: (not f.filename.endswith(".tar.gz"), f.filename))[0]
        return None


_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_(\w+)")
_LEGACY = re.compile(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)")
_MUSL = re.compile(r"musllinux_(\d+)_(\d+)_(\w+)")
_MACOS = re.compile(r"macosx_(\d+)_(\d+)_(\w+)")
_LEGACY_GLIBC = {name: pair for pair, name in LEGACY_MANYLINUX.items()}
_MAC_ARCHES = {
    "x86_64": ("x86_64", "intel", "fat64", "fat3", "universal2", "universal"),
    "arm64": ("arm64", "universal2"),
}


def diagnose_wheels(
    name: str,
    files: Sequence[DistFile],
    target: Target,
    sdist_refused_by: Callable[[str], str | None] = lambda name: None,
) -> Rejection:
    """Why none of ``files`` installs on ``target``, and the one setting that would change it.

    A wheel whose Python tags fit but whose platform tag is the target's OS and architecture
    above a floor names that floor; one whose platform fits but Python tags do not names the
    Python; otherwise the platforms its wheels are for are listed, and nothing promises more.
    An sdist the spec refuses is named with the setting that refuses it (building it is what
    pip and uv would do).
    """
    wheels = [f for f in files if f.is_wheel]
    tags = tuple(sorted({t.platform for f in wheels for t in f.tags}))
    refused = sdist_refused_by(name) if any(not f.is_wheel for f in files) else None
    found = _wheels_unusable(wheels, target, tags)
    if refused is None:
        if found is not None:
            return found
        if not wheels:
            return Rejection("no_wheel", "it has no files this target can use")
        where = target.platform_info.description
        return Rejection(
            "no_wheel", f"it has no wheel for {where} (wheels for: {', '.join(tags)})", None, tags
        )
    fix = _sdist_fix(name, refused)
    if found is not None:
        detail = found.detail
        if found.fix and found.fix.startswith("set [platform-tags]"):
            fix = found.fix  # a floor the machines may well meet: closer than a build
    elif wheels:
        detail = f"it has no wheel for {target.platform_info.description} (wheels for: "
        detail += f"{', '.join(tags)})"
    else:
        detail = "it has only a source distribution"
    detail += f", and {refused} refuses its sdist"
    return Rejection("sdist_only", detail, fix, tags)


def _wheels_unusable(
    wheels: Sequence[DistFile], target: Target, tags: tuple[str, ...]
) -> Rejection | None:
    """The wheels' near miss (a floor, a Python, musl), or None when they are simply for
    other platforms (or there are none)."""
    platform = target.platform_info
    options = target.options
    pairs = {(t.interpreter, t.abi) for t in target.tags}
    plats = set(target.platform_tags) | {"any"}
    glibc: list[tuple[int, int]] = []
    macos: list[tuple[int, int]] = []
    musl: list[tuple[int, int]] = []
    legacy_off = False
    pythons: set[str] = set()
    for f in wheels:
        for tag in f.tags:
            pair_ok = (tag.interpreter, tag.abi) in pairs
            plat_ok = tag.platform in plats
            if plat_ok and not pair_ok:
                pythons.add(tag.interpreter)
            if not pair_ok or plat_ok:
                continue
            if platform.os == "linux":
                m = _MANYLINUX.fullmatch(tag.platform)
                if m and m.group(3) == platform.arch:
                    glibc.append((int(m.group(1)), int(m.group(2))))
                m = _LEGACY.fullmatch(tag.platform)
                if m and m.group(2) == platform.arch:
                    if options.manylinux_legacy_aliases:
                        glibc.append(_LEGACY_GLIBC[m.group(1)])
                    else:
                        legacy_off = True
                m = _MUSL.fullmatch(tag.platform)
                if m and m.group(3) == platform.arch:
                    musl.append((int(m.group(1)), int(m.group(2))))
            elif platform.os == "macos":
                m = _MACOS.fullmatch(tag.platform)
                if m and m.group(3) in _MAC_ARCHES[platform.arch]:
                    macos.append((int(m.group(1)), int(m.group(2))))
    where = f"{platform.description}"
    if glibc:
        need = min(glibc)
        return Rejection(
            "no_wheel",
            f"its {where} wheels need glibc {dotted(need)} (the floor is {dotted(options.glibc)})",
            f'set [platform-tags] glibc = "{dotted(need)}", if your machines have it',
            tags,
        )
    if macos:
        need = min(macos)
        key = "macos-arm64" if platform.arch == "arm64" else "macos-x86_64"
        return Rejection(
            "no_wheel",
            f"its {where} wheels need macOS {dotted(need)} (the floor is "
            f"{dotted(options.macos_floor(platform.arch))})",
            f'set [platform-tags] {key} = "{dotted(need)}", if your machines have it',
            tags,
        )
    if legacy_off:
        return Rejection(
            "no_wheel",
            f"its {where} wheels use the legacy manylinux tags, which the spec turned off",
            "set [platform-tags] manylinux-legacy-aliases = true",
            tags,
        )
    if musl:
        need = min(musl)
        return Rejection(
            "no_wheel",
            f"its {where} wheels are for musl libc (musllinux_{need[0]}_{need[1]}) only",
            f'set [platform-tags] musllinux = "{dotted(need)}", if your machines use musl',
            tags,
        )
    if pythons:
        versions = sorted(pythons, key=_python_order)
        return Rejection(
            "no_wheel",
            f"its {where} wheels are for {_python_span(versions)}, not {target.abi}",
            "set a python in the spec that it has wheels for"
            + (f" (e.g. {_python_text(versions[-1])})" if _python_text(versions[-1]) else ""),
            tags,
        )
    return None


def _sdist_fix(name: str, refused: str) -> str:
    if refused.startswith("[policy]"):
        return f"pin a version of {name} with a wheel for this platform, or lift {refused}"
    if refused.startswith("allow-sdist ("):
        return f'add "{name}" to allow-sdist in the spec'
    return f'set allow-sdist = ["{name}"] (or true) in the spec'


def _python_span(interpreters: Sequence[str]) -> str:
    """``cp36-cp39, pp310`` for sorted interpreter tags: runs of consecutive minors joined."""
    runs: list[list[str]] = []
    for tag in interpreters:
        m = re.fullmatch(r"([a-z]+)3(\d+)", tag)
        if runs and m:
            prev = re.fullmatch(r"([a-z]+)3(\d+)", runs[-1][-1])
            if prev and prev.group(1) == m.group(1) and int(prev.group(2)) + 1 == int(m.group(2)):
                runs[-1].append(tag)
                continue
        runs.append([tag])
    return ", ".join(", ".join(r) if len(r) < 3 else f"{r[0]}-{r[-1]}" for r in runs)


def _python_order(interpreter: str) -> tuple[int, str]:
    digits = interpreter[2:]
    return (int(digits) if digits.isdigit() else 0, interpreter)


def _python_text(interpreter: str) -> str | None:
    m = re.fullmatch(r"(?:cp|py)3(\d+)", interpreter)
    return f'python = "3.{m.group(1)}"' if m else None
