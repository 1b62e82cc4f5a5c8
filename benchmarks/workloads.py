"""Benchmark workloads as plain data, and writers for the input files each tool reads.

Shared by every benchmark in this directory: a workload is a named list of top-level
requirements plus the target CPython version. Nothing here touches the network.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

PYTHON = "3.11"

WORKLOADS: dict[str, tuple[str, ...]] = {
    # A typical web service: async framework, server with extras, ORM, HTTP clients.
    "web": (
        "fastapi",
        "uvicorn[standard]",
        "sqlalchemy",
        "httpx",
        "pydantic",
        "jinja2",
        "requests",
    ),
    # The scientific stack: few packages, but projects with very many wheels per release.
    "data": (
        "pandas",
        "numpy",
        "scipy",
        "scikit-learn",
        "pyarrow",
        "matplotlib",
    ),
}


def _toml_str(value: str) -> str:
    # A JSON string of ASCII text is a valid TOML basic string.
    return json.dumps(value, ensure_ascii=True)


def _toml_list(values: Sequence[str]) -> str:
    if not values:
        return "[]"
    items = "".join(f"    {_toml_str(v)},\n" for v in values)
    return f"[\n{items}]"


def requirements(workload: str) -> tuple[str, ...]:
    """The top-level requirements of a workload (KeyError names the unknown one)."""
    try:
        return WORKLOADS[workload]
    except KeyError:
        known = ", ".join(WORKLOADS)
        raise KeyError(f"unknown workload {workload!r} (known: {known})") from None


def write_spec(
    workload: str,
    directory: Path,
    platforms: Sequence[str] = ("linux-64",),
    python: str = PYTHON,
    platform_tags: Mapping[str, str] | None = None,
) -> Path:
    """Write ``directory/envlock.toml`` for a workload and a list of envlock platforms.

    ``platform_tags`` becomes the spec's ``[platform-tags]`` table (e.g. a macOS floor).
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "envlock.toml"
    text = (
        f"# envlock benchmark workload {workload!r}\n"
        f"python = {_toml_str(python)}\n"
        f"platforms = {_toml_list(platforms)}\n"
        f"dependencies = {_toml_list(requirements(workload))}\n"
    )
    if platform_tags:
        text += "\n[platform-tags]\n" + "".join(
            f"{key} = {_toml_str(value)}\n" for key, value in platform_tags.items()
        )
    path.write_text(text, encoding="utf-8")
    return path


def write_requirements_in(workload: str, directory: Path) -> Path:
    """Write ``directory/requirements.in`` (for uv pip compile and pip-compile)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "requirements.in"
    path.write_text("".join(f"{r}\n" for r in requirements(workload)), encoding="utf-8")
    return path


def write_pyproject(workload: str, directory: Path, python: str = PYTHON) -> Path:
    """Write a minimal, non-package ``directory/pyproject.toml`` (for ``pdm lock``)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pyproject.toml"
    path.write_text(
        "[project]\n"
        f"name = {_toml_str('bench-' + workload)}\n"
        'version = "0"\n'
        f"requires-python = {_toml_str('==' + python + '.*')}\n"
        f"dependencies = {_toml_list(requirements(workload))}\n"
        "\n[tool.pdm]\n"
        "distribution = false\n",
        encoding="utf-8",
    )
    return path


def run(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds one command takes (it must succeed: a failure ends the benchmark)."""
    start = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return elapsed
