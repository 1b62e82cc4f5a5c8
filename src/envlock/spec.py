"""``envlock.toml`` -> :class:`Spec` (frozen values); every spec validation error is raised here.

Errors name the file, the key and what is wrong, in one line (exit code 2).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from envlock._fs import read_regular
from envlock._toml import tomllib
from envlock._urls import redact
from envlock.errors import SpecError
from envlock.platforms import PlatformOptions, Target, host_platform
from envlock.spec_file import INIT_HINT
from envlock.spec_indexes import Index, insecure_hosts, parse_indexes
from envlock.spec_interpreter import (
    MIRROR_ENV,
    InterpreterMode,
    InterpreterSource,
    interpreter_mode,
    interpreter_sources,
    python_mirror,
)
from envlock.spec_policy import SpecPolicy, parse_policy
from envlock.spec_values import (
    Where,
    check_keys,
    parse_platforms,
    parse_timestamp,
    platform_options,
)

Prerelease = Literal["disallow", "allow"]
# A spec is a few KiB; a constraints list of thousands of pins is well under a MiB.
MAX_SPEC_BYTES = 16 << 20
PRERELEASE_MODES: tuple[Prerelease, ...] = ("disallow", "allow")

_TOP_KEYS = {
    "python",
    "platforms",
    "dependencies",
    "constraints",
    "exclude-newer",
    "allow-sdist",
    "prerelease",
    "index",
    "environments",
    "platform-tags",
    "uniform-versions",
    "insecure-hosts",
    "interpreter",
    "python-mirror",
    "interpreter-sources",
    "snapshot",
    "policy",
}
_ENV_KEYS = {
    "python",
    "platforms",
    "dependencies",
    "constraints",
    "exclude-newer",
    "allow-sdist",
    "prerelease",
    "uniform-versions",
    "interpreter",
}
_ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PYTHON = re.compile(r"^3\.\d+(\.\d+)?$")


@dataclass(frozen=True)
class EnvironmentSpec:
    """One lockable environment: the top level (``name`` None) or ``[environments.NAME]``."""

    name: str | None
    python: str
    platforms: tuple[str, ...]
    dependencies: tuple[str, ...]
    indexes: tuple[Index, ...]
    exclude_newer: datetime | None = None
    allow_sdist: frozenset[NormalizedName] | bool = False
    prerelease: Prerelease = "disallow"
    platform_options: PlatformOptions = field(default_factory=PlatformOptions)
    spec_dir: Path = Path(".")
    uniform_versions: bool = False
    insecure_hosts: frozenset[str] = frozenset()
    interpreter: InterpreterMode = "system"  # a spec file defaults to "bundled" (parse_spec)
    python_mirror: str | None = None  # the spec's; ENVLOCK_PYTHON_MIRROR wins (see mirror)
    interpreter_sources: Mapping[str, InterpreterSource] = field(default_factory=dict)
    snapshot: str | None = None  # the spec's snapshot URL (where a fleet takes its bytes)
    policy: SpecPolicy = field(default_factory=SpecPolicy)  # [policy], for every environment
    # PEP 508 limits on versions that require nothing (uv's constraint-dependencies)
    constraints: tuple[str, ...] = ()

    @property
    def mirror(self) -> str | None:
        """Where python-build-standalone downloads come from instead of GitHub (fetch time)."""
        return os.environ.get(MIRROR_ENV) or self.python_mirror

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        return tuple(Requirement(d) for d in self.dependencies)

    @property
    def constraint_requirements(self) -> tuple[Requirement, ...]:
        return tuple(Requirement(c) for c in self.constraints)

    @property
    def label(self) -> str:
        return self.name or "default"

    @property
    def lock_path(self) -> Path:
        filename = "pylock.toml" if self.name is None else f"pylock.{self.name}.toml"
        return self.spec_dir / filename

    def sdist_allowed(self, name: str) -> bool:
        if isinstance(self.allow_sdist, bool):
            return self.allow_sdist
        return canonicalize_name(name) in self.allow_sdist

    @property
    def targets(self) -> list[Target]:
        """What this environment resolves for: one target per platform."""
        return [Target(p, self.python, self.platform_options) for p in self.platforms]

    def with_platforms(self, platforms: Sequence[str]) -> EnvironmentSpec:
        return replace(self, platforms=tuple(dict.fromkeys(platforms)))

    def with_exclude_newer(self, ts: datetime | None) -> EnvironmentSpec:
        return replace(self, exclude_newer=ts)

    def content_hash(self) -> str:
        """A hash of what decides the resolution (not comments, other envs or the platform list,
        which the lock records itself)."""
        payload = {
            "python": self.python,
            "dependencies": sorted(_canonical(r) for r in self.requirements),
            "indexes": [[i.name, redact(i.url), *sorted(i.packages)] for i in self.indexes],
            "exclude-newer": self.exclude_newer.isoformat() if self.exclude_newer else None,
            "allow-sdist": (
                self.allow_sdist if isinstance(self.allow_sdist, bool) else sorted(self.allow_sdist)
            ),
            "prerelease": self.prerelease,
            "platform-tags": self.platform_options.as_dict(),
        }
        if self.uniform_versions:
            payload["uniform-versions"] = True
        if self.constraints:  # absent without constraints: older locks stay fresh
            payload["constraints"] = sorted(_canonical(r) for r in self.constraint_requirements)
        if not self.policy.empty:  # absent without a policy: older locks stay fresh
            payload["policy"] = self.policy.as_dict()
        if self.interpreter == "bundled":  # absent for "system": older locks stay fresh
            payload["interpreter"] = "bundled"
            payload["interpreter-sources"] = {
                p: self.interpreter_sources[p].as_list()
                for p in sorted(self.interpreter_sources)
                if p in self.platforms
            }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()


def _canonical(req: Requirement) -> str:
    """A requirement's text with its name normalised, so `Requests` and `requests` agree."""
    req.name = canonicalize_name(req.name)
    return str(req)


@dataclass(frozen=True)
class Spec:
    """A parsed ``envlock.toml``: the top-level environment and the named ones."""

    path: Path
    root: EnvironmentSpec
    environments: Mapping[str, EnvironmentSpec]

    def select(self, names: Sequence[str]) -> list[EnvironmentSpec]:
        """The environments named (``default`` is the top level); all of them when empty."""
        if not names:
            return [self.root, *self.environments.values()]
        out: list[EnvironmentSpec] = []
        for name in names:
            if name == "default":
                out.append(self.root)
            elif name in self.environments:
                out.append(self.environments[name])
            else:
                known = ", ".join(["default", *self.environments]) or "default"
                raise SpecError(f"{self.path}: no environment named {name!r} (known: {known})")
        return out


def load_spec(path: Path) -> Spec:
    """Read and validate a spec file."""
    try:
        raw = read_regular(path, MAX_SPEC_BYTES)
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found", hint=INIT_HINT) from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read spec: {exc.strerror}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"{path}: more than {MAX_SPEC_BYTES >> 20} MiB: not a spec")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SpecError(f"{path}: spec is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{path}: invalid TOML: nested too deeply") from None
    return parse_spec(data, path)


def parse_spec(data: Mapping[str, Any], path: Path) -> Spec:
    """Validate a TOML document already loaded into ``data``."""
    ctx = Where(path)
    check_keys(ctx, data, _TOP_KEYS, "")
    python = _python(ctx, data.get("python"), "python")
    platforms = _platforms(ctx, data.get("platforms", [host_platform()]), "platforms")
    deps = _dependencies(ctx, data.get("dependencies", []), "dependencies")
    constraints = _constraints(ctx, data.get("constraints", []), "constraints")
    indexes = parse_indexes(ctx, data.get("index"))
    exclude_newer = _timestamp(ctx, data.get("exclude-newer"), "exclude-newer")
    allow_sdist = _allow_sdist(ctx, data.get("allow-sdist", False), "allow-sdist")
    prerelease = _prerelease(ctx, data.get("prerelease", "disallow"), "prerelease")
    options = platform_options(ctx, data.get("platform-tags", {}))
    uniform = _bool(ctx, data.get("uniform-versions", False), "uniform-versions")
    insecure = insecure_hosts(ctx, data.get("insecure-hosts", []))
    mode = interpreter_mode(ctx, data.get("interpreter", "bundled"), "interpreter")
    mirror = python_mirror(ctx, data.get("python-mirror"))
    sources = interpreter_sources(ctx, data.get("interpreter-sources"))
    snapshot = _snapshot(ctx, data.get("snapshot"))
    policy = parse_policy(ctx, data.get("policy"), indexes)
    root = EnvironmentSpec(
        name=None,
        python=python,
        platforms=platforms,
        dependencies=deps,
        indexes=indexes,
        exclude_newer=exclude_newer,
        allow_sdist=allow_sdist,
        prerelease=prerelease,
        platform_options=options,
        spec_dir=path.parent,
        uniform_versions=uniform,
        insecure_hosts=insecure,
        interpreter=mode,
        python_mirror=mirror,
        interpreter_sources=sources,
        snapshot=snapshot,
        policy=policy,
        constraints=constraints,
    )
    envs_raw = data.get("environments", {})
    if not isinstance(envs_raw, Mapping):
        raise ctx.fail("environments", "must be a table of [environments.NAME] tables")
    envs: dict[str, EnvironmentSpec] = {}
    for name in sorted(envs_raw):
        table = envs_raw[name]
        prefix = f"environments.{name}"
        if not _ENV_NAME.match(name) or name == "default":
            raise ctx.fail(
                prefix,
                "environment names use letters, digits, '.', '_', '-' and cannot be 'default'",
            )
        if not isinstance(table, Mapping):
            raise ctx.fail(prefix, "must be a table")
        check_keys(ctx, table, _ENV_KEYS, prefix + ".")
        envs[name] = EnvironmentSpec(
            name=name,
            python=_python(ctx, table["python"], f"{prefix}.python")
            if "python" in table
            else python,
            platforms=_platforms(ctx, table["platforms"], f"{prefix}.platforms")
            if "platforms" in table
            else platforms,
            dependencies=deps
            + _dependencies(ctx, table.get("dependencies", []), f"{prefix}.dependencies"),
            indexes=indexes,
            exclude_newer=_timestamp(ctx, table["exclude-newer"], f"{prefix}.exclude-newer")
            if "exclude-newer" in table
            else exclude_newer,
            allow_sdist=_allow_sdist(ctx, table["allow-sdist"], f"{prefix}.allow-sdist")
            if "allow-sdist" in table
            else allow_sdist,
            prerelease=_prerelease(ctx, table["prerelease"], f"{prefix}.prerelease")
            if "prerelease" in table
            else prerelease,
            platform_options=options,
            spec_dir=path.parent,
            uniform_versions=_bool(ctx, table["uniform-versions"], f"{prefix}.uniform-versions")
            if "uniform-versions" in table
            else uniform,
            insecure_hosts=insecure,
            interpreter=interpreter_mode(ctx, table["interpreter"], f"{prefix}.interpreter")
            if "interpreter" in table
            else mode,
            python_mirror=mirror,
            interpreter_sources=sources,
            snapshot=snapshot,
            policy=policy,
            constraints=constraints
            + _constraints(ctx, table.get("constraints", []), f"{prefix}.constraints"),
        )
    return Spec(path=path, root=root, environments=envs)


def _python(ctx: Where, value: Any, key: str) -> str:
    if value is None:
        raise ctx.fail(key, 'is required, e.g. python = "3.11"')
    if not isinstance(value, str) or not _PYTHON.match(value):
        raise ctx.fail(key, f'must be a CPython 3 version like "3.11" or "3.11.7", got {value!r}')
    return value


def _platforms(ctx: Where, value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ctx.fail(key, 'must be a non-empty list of platform names, e.g. ["linux-64"]')
    return parse_platforms(value, f"{ctx.path}: key '{key}'")


def _dependencies(ctx: Where, value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ctx.fail(key, "must be a list of PEP 508 requirement strings")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ctx.fail(f"{key}[{i}]", f"must be a string, got {item!r}")
        try:
            req = Requirement(item)
        except InvalidRequirement as exc:
            first = str(exc).splitlines()[0]
            raise ctx.fail(f"{key}[{i}]", f"invalid requirement {item!r}: {first}") from None
        if req.url:
            raise ctx.fail(
                f"{key}[{i}]", f"direct URL requirements are not supported yet: {item!r}"
            )
        out.append(str(req))
    return tuple(out)


def _constraints(ctx: Where, value: Any, key: str) -> tuple[str, ...]:
    """Like ``dependencies``, but a constraint only limits versions: extras would mean nothing
    (pip refuses them in constraints files too)."""
    out = _dependencies(ctx, value, key)
    for i, text in enumerate(out):
        if Requirement(text).extras:
            raise ctx.fail(
                f"{key}[{i}]",
                f"a constraint is a name, versions and an optional marker, not extras: {text!r}",
            )
    return out


def _bool(ctx: Where, value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ctx.fail(key, f"must be true or false, got {value!r}")
    return value


def _timestamp(ctx: Where, value: Any, key: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ctx.fail(key, "timestamp needs a timezone (e.g. a trailing Z)")
        return value.astimezone(timezone.utc)
    if not isinstance(value, str):
        raise ctx.fail(key, "must be an RFC 3339 timestamp")
    return parse_timestamp(value, f"{ctx.path}: key '{key}'")


def _allow_sdist(ctx: Where, value: Any, key: str) -> frozenset[NormalizedName] | bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(canonicalize_name(v) for v in value)
    raise ctx.fail(key, "must be true, false or a list of package names")


def _prerelease(ctx: Where, value: Any, key: str) -> Prerelease:
    for mode in PRERELEASE_MODES:
        if value == mode:
            return mode
    raise ctx.fail(key, f"must be one of {', '.join(map(repr, PRERELEASE_MODES))}")


def _snapshot(ctx: Where, value: Any) -> str | None:
    from envlock.errors import UsageError
    from envlock.snapshot.remote import check_url

    if value is None:
        return None
    if not isinstance(value, str):
        raise ctx.fail("snapshot", "must be a URL such as s3://bucket/prefix")
    try:
        return check_url(value, f"{ctx.path}: key 'snapshot'")
    except UsageError as exc:
        raise SpecError(exc.message, hint=exc.hint) from None
