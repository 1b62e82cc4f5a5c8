"""Core metadata of an sdist read from its ``pyproject.toml`` when that is static (pure).

An sdist whose PKG-INFO predates PEP 643 (Metadata-Version < 2.2) says nothing about what is
static, but its ``pyproject.toml`` does: a ``[project]`` table (PEP 621) whose ``dynamic`` list
names none of the fields a resolver needs is the metadata any backend must produce. uv and
pip-tools read it the same way instead of running the backend (which may need the network, or
another platform: dbt-core-experimental-parser's downloads a wheel from GitHub).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from envlock._toml import tomllib

# The fields a resolver needs; if the backend may compute one, the table cannot be trusted.
_NEEDED = {"version", "dependencies", "optional-dependencies", "requires-python"}


def metadata_from_pyproject(raw: bytes) -> bytes | None:
    """METADATA bytes equivalent to a static ``[project]`` table, or None when the table is
    absent, dynamic where it matters, or malformed (the backend then decides)."""
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    project = data.get("project")
    if not isinstance(project, Mapping):
        return None
    dynamic = project.get("dynamic", [])
    if not isinstance(dynamic, list) or _NEEDED & set(map(str, dynamic)):
        return None
    try:
        return _render(project, {str(d) for d in dynamic})
    except (TypeError, ValueError, InvalidRequirement, InvalidSpecifier):
        return None


def _render(project: Mapping[str, Any], dynamic: set[str]) -> bytes | None:
    name, version = project.get("name"), project.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        return None
    lines = ["Metadata-Version: 2.2", f"Name: {name}", f"Version: {version}"]
    requires_python = project.get("requires-python")
    if requires_python is not None:
        lines.append(f"Requires-Python: {SpecifierSet(_text(requires_python))}")
    lines += _license(project.get("license"))
    for classifier in _strings(project.get("classifiers", [])):
        lines.append(f"Classifier: {classifier}")
    for dep in _strings(project.get("dependencies", [])):
        lines.append(f"Requires-Dist: {Requirement(dep)}")
    optional = project.get("optional-dependencies", {})
    if not isinstance(optional, Mapping):
        return None
    for extra in sorted(optional):
        canonical = canonicalize_name(_text(extra))
        lines.append(f"Provides-Extra: {canonical}")
        for dep in _strings(optional[extra]):
            req = Requirement(dep)
            marker = f"extra == '{canonical}'"
            if req.marker is not None:
                marker = f"({req.marker}) and {marker}"
            req.marker = None
            lines.append(f"Requires-Dist: {req}; {marker}")
    lines += [f"Dynamic: {field}" for field in sorted(dynamic)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _license(value: Any) -> list[str]:
    if isinstance(value, str):  # PEP 639: an SPDX expression
        return [f"License-Expression: {value}"]
    if isinstance(value, Mapping) and isinstance(value.get("text"), str):
        first = value["text"].strip().splitlines()
        return [f"License: {first[0][:200]}"] if first else []
    return []


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    if "\n" in value or "\r" in value:
        raise ValueError("a header value cannot hold a line break")
    return value


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise TypeError("not a list")
    return [_text(v) for v in value]
