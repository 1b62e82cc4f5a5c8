"""``pyproject.toml`` -> :class:`Imported`: ``[project] dependencies`` at the top level, each
``optional-dependencies`` extra and PEP 735 ``dependency-groups`` group as an environment.

The project itself is not on an index, so a self-reference (``myproj[test]``) is replaced by
that extra's requirements (under the self-reference's marker).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from envlock._toml import tomllib
from envlock.errors import UsageError
from envlock.importers.model import Imported, read_text, unique, without_userinfo

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")  # PEP 508 names / extras
GROUP_SUFFIX = "-group"  # a dependency group named like an extra becomes "<name>-group"
MAX_EXPANSIONS = 1_000  # self-reference expansions: a guard against cyclic extra bombs


def read_pyproject(path: Path) -> Imported:
    """Read, parse and import a ``pyproject.toml``."""
    try:
        data = tomllib.loads(read_text(path, "pyproject.toml"))
    except (tomllib.TOMLDecodeError, RecursionError) as exc:  # tomli: nesting past 400 levels
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    return parse_pyproject(path, data)


def parse_pyproject(path: Path, data: Mapping[str, Any]) -> Imported:
    """Import an already-loaded ``pyproject.toml`` document."""
    project = data.get("project")
    groups_raw = data.get("dependency-groups")
    if project is None and groups_raw is None:
        tool = data.get("tool")
        if isinstance(tool, Mapping) and "poetry" in tool:
            raise UsageError(
                f"{path}: a Poetry project without a [project] table is not supported",
                hint="move the dependencies to [project] (Poetry 2 reads it) or pass them as REQ",
            )
        raise UsageError(f"{path}: no [project] table (nor [dependency-groups]) to import")
    project = _table(path, project if project is not None else {}, "project")
    warnings: list[str] = []
    dynamic = _strings(path, project.get("dynamic", []), "project.dynamic")
    if "dependencies" in dynamic:
        raise UsageError(
            f"{path}: [project] dependencies are dynamic (set by the build backend at build "
            "time); envlock cannot read them",
            hint="pass the requirements as REQ arguments, or --from the requirements file",
        )
    if "optional-dependencies" in dynamic:
        warnings.append(f"{path}: optional-dependencies are dynamic; no extras imported")
    name = project.get("name")
    me = canonicalize_name(name) if isinstance(name, str) and name else None
    extras = _extras(path, project)
    deps = _Expander(path, me, extras)
    top = deps.expand(_strings(path, project.get("dependencies", []), "project.dependencies"))
    envs: dict[str, tuple[str, ...]] = {}
    for extra in extras:
        envs[_env_name(path, extra, "optional-dependencies")] = deps.extra(extra)
    for group, items in _groups(path, groups_raw).items():
        env = _env_name(path, group, "dependency-groups")
        if env in envs:
            env += GROUP_SUFFIX
            if env in envs:
                raise UsageError(f"{path}: dependency group {group!r} clashes with extra {env!r}")
            warnings.append(
                f"{path}: dependency group {group!r} has the name of an extra; its environment "
                f"is {env!r}"
            )
        envs[env] = deps.expand(items, f"dependency-groups.{group}")
    return Imported(
        source=path,
        dependencies=top,
        environments=envs,
        requires_python=_requires_python(path, project.get("requires-python")),
        warnings=tuple(warnings),
    )


def _table(path: Path, value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UsageError(f"{path}: [{key}] must be a table")
    return value


def _strings(path: Path, value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{path}: key '{key}' must be a list of strings")
    return value


def _extras(path: Path, project: Mapping[str, Any]) -> dict[NormalizedName, list[str]]:
    raw = _table(path, project.get("optional-dependencies", {}), "project.optional-dependencies")
    out: dict[NormalizedName, list[str]] = {}
    for extra, items in raw.items():
        key = f"project.optional-dependencies.{extra}"
        if not _NAME.match(extra):
            raise UsageError(f"{path}: key '{key}': not a valid extra name")
        if canonicalize_name(extra) in out:
            raise UsageError(f"{path}: key '{key}': extra defined twice (names are normalised)")
        out[canonicalize_name(extra)] = _strings(path, items, key)
    return out


def _env_name(path: Path, name: str, table: str) -> str:
    env = canonicalize_name(name)
    if env == "default":
        raise UsageError(
            f"{path}: {table} {name!r} cannot become an environment: envlock reserves "
            "'default' for the top level",
            hint="rename it, or add its requirements to the spec by hand",
        )
    return env


def _requires_python(path: Path, value: Any) -> SpecifierSet | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise InvalidSpecifier(repr(value))
        return SpecifierSet(value)
    except InvalidSpecifier:
        raise UsageError(f"{path}: key 'project.requires-python': invalid {value!r}") from None


def _groups(path: Path, raw: Any) -> dict[str, list[str]]:
    """PEP 735 groups with ``{include-group = ...}`` expanded (a cycle is an error)."""
    if raw is None:
        return {}
    table = _table(path, raw, "dependency-groups")
    by_norm: dict[str, str] = {}
    for group in table:
        if not _NAME.match(group):
            raise UsageError(f"{path}: dependency group {group!r}: not a valid group name")
        if canonicalize_name(group) in by_norm:
            raise UsageError(f"{path}: dependency group {group!r} defined twice (normalised)")
        by_norm[canonicalize_name(group)] = group

    done: dict[str, list[str]] = {}  # each group expanded once: no blow-up from diamonds

    def expand(group: str, stack: tuple[str, ...]) -> list[str]:
        key = f"dependency-groups.{group}"
        if group in done:
            return done[group]
        if group in stack:
            chain = " -> ".join([*stack[stack.index(group) :], group])
            raise UsageError(f"{path}: dependency groups include each other: {chain}")
        items = table[group]
        if not isinstance(items, list):
            raise UsageError(f"{path}: key '{key}' must be a list")
        out: list[str] = []
        for item in items:
            if isinstance(item, str):
                out.append(item)
                continue
            target = item.get("include-group") if isinstance(item, Mapping) else None
            if not isinstance(target, str) or len(item) != 1:
                raise UsageError(
                    f"{path}: key '{key}': entries are requirement strings or "
                    f'{{include-group = "name"}}, got {item!r}'
                )
            if canonicalize_name(target) not in by_norm:
                raise UsageError(f"{path}: key '{key}': includes unknown group {target!r}")
            out += expand(by_norm[canonicalize_name(target)], (*stack, group))
        done[group] = list(unique(out))
        return done[group]

    return {group: expand(group, ()) for group in table}


class _Expander:
    """Validates requirements and replaces self-references by the extras they name."""

    def __init__(
        self, path: Path, me: NormalizedName | None, extras: dict[NormalizedName, list[str]]
    ) -> None:
        self.path, self.me, self.extras = path, me, extras
        self._active: set[NormalizedName] = set()
        # Results that did not depend on cutting a cycle short: each extra is expanded once.
        self._done: dict[NormalizedName, tuple[str, ...]] = {}
        self._cut = False
        self._calls = 0

    def extra(self, extra: NormalizedName) -> tuple[str, ...]:
        if extra in self._done:
            return self._done[extra]
        if extra in self._active:  # `a = ["me[b]"]`, `b = ["me[a]"]`: a union, as pip does
            self._cut = True
            return ()
        self._calls += 1
        if self._calls > MAX_EXPANSIONS:
            raise UsageError(f"{self.path}: extras refer to each other too intricately to expand")
        outer_cut, self._cut = self._cut, False
        self._active.add(extra)
        try:
            result = self.expand(self.extras[extra], f"project.optional-dependencies.{extra}")
        finally:
            self._active.discard(extra)
        if not self._cut:
            self._done[extra] = result
        self._cut = self._cut or outer_cut
        return result

    def expand(self, items: list[str], key: str = "project.dependencies") -> tuple[str, ...]:
        out: list[str] = []
        for text in items:
            req = self._requirement(text, key)
            if self.me is None or canonicalize_name(req.name) != self.me:
                out.append(str(req))
                continue
            # The project's own dependencies are the top level, which every environment has.
            for extra in sorted(canonicalize_name(e) for e in req.extras):
                if extra not in self.extras:
                    raise UsageError(
                        f"{self.path}: key '{key}': {text!r} names extra {extra!r} of the "
                        "project itself, which it does not define"
                    )
                out += (_and_marker(d, req.marker) for d in self.extra(extra))
        return unique(out)

    def _requirement(self, text: str, key: str) -> Requirement:
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            first = str(exc).splitlines()[0]
            raise UsageError(
                f"{self.path}: key '{key}': invalid requirement {text!r}: {first}"
            ) from None
        if req.url:
            raise UsageError(
                f"{self.path}: key '{key}': direct URL requirements are not supported: "
                f"{without_userinfo(text)}"
            )
        return req


def _and_marker(text: str, marker: Marker | None) -> str:
    """``text`` (a requirement) applying only where ``marker`` also holds."""
    if marker is None:
        return text
    req = Requirement(text)
    req.marker = Marker(f"({req.marker}) and ({marker})") if req.marker else marker
    return str(req)
