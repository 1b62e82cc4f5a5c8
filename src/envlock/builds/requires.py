"""What an sdist says about its own build: ``[build-system]`` of its ``pyproject.toml`` (PEP 518)
or, when absent, the PEP 517 fallback pip and uv use (setuptools' legacy backend)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from envlock._toml import tomllib
from envlock.errors import BuildError

# PEP 517 "fallback": a project without [build-system] is built with setuptools' legacy backend;
# pip adds the legacy `wheel` too, which older setuptools needs to build a wheel.
DEFAULT_REQUIRES = ("setuptools>=40.8.0", "wheel")
DEFAULT_BACKEND = "setuptools.build_meta:__legacy__"


@dataclass(frozen=True)
class BuildSystem:
    """An sdist's build requirements and backend."""

    requires: tuple[str, ...]
    backend: str
    backend_path: tuple[str, ...] = ()


def build_system(pyproject: Mapping[str, Any] | None, label: str) -> BuildSystem:
    """The ``[build-system]`` table of a parsed ``pyproject.toml`` (None: there is none)."""
    table = pyproject.get("build-system") if pyproject is not None else None
    if table is None:
        return BuildSystem(DEFAULT_REQUIRES, DEFAULT_BACKEND)
    if not isinstance(table, Mapping):
        raise BuildError(f"{label}: pyproject.toml's [build-system] is not a table")
    requires = table.get("requires")
    if requires is None:
        # PEP 518: a [build-system] without requires is an error; pip falls back, and so do we.
        return BuildSystem(DEFAULT_REQUIRES, DEFAULT_BACKEND)
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise BuildError(f"{label}: [build-system] requires is not a list of strings")
    for text in requires:
        try:
            Requirement(text)
        except InvalidRequirement as exc:
            raise BuildError(f"{label}: a build requirement is not valid: {exc}") from None
    backend = table.get("build-backend", DEFAULT_BACKEND)
    path = table.get("backend-path", [])
    if not isinstance(backend, str) or not backend:
        raise BuildError(f"{label}: [build-system] build-backend is not a string")
    if not isinstance(path, list) or not all(isinstance(p, str) for p in path):
        raise BuildError(f"{label}: [build-system] backend-path is not a list of strings")
    return BuildSystem(tuple(requires), backend, tuple(path))


def read_build_system(source: Path, label: str) -> BuildSystem:
    """The build system of an unpacked sdist's tree."""
    try:
        text = (source / "pyproject.toml").read_text("utf-8")
    except FileNotFoundError:
        return build_system(None, label)
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"{label}: cannot read pyproject.toml: {exc}") from None
    try:
        return build_system(tomllib.loads(text), label)
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{label}: pyproject.toml is not valid TOML: {exc}") from None
