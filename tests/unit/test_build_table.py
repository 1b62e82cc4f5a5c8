"""The build-dependency tables of a lock (``[tool.envlock] builds`` / ``build-files``) and an
sdist's ``[build-system]``: values round-trip, and every hostile value is a one-line error."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from envlock.builds.requires import DEFAULT_BACKEND, DEFAULT_REQUIRES, build_system
from envlock.errors import BuildError, UsageError
from envlock.lock.builds import BuildFile, BuildTable, SdistBuild

SHA = "a" * 64
SDIST_SHA = "b" * 64
WHEEL = "mini_backend-1.0-py3-none-any.whl"
WHERE = Path("pylock.toml")


def table() -> BuildTable:
    f = BuildFile(
        "mini-backend", "1.0", WHEEL, f"https://files.example/{WHEEL}", SHA, 10, "https://i/simple/"
    )
    build = SdistBuild(
        "srcpkg",
        "1.0",
        "srcpkg-1.0.tar.gz",
        SDIST_SHA,
        ("mini-backend>=1",),
        "mini_backend",
        (),
        {"win-64": (WHEEL,), "linux-64": (WHEEL,)},
    )
    return BuildTable((build,), {WHEEL: f})


def document(t: BuildTable) -> dict[str, Any]:
    return {"tool": {"envlock": t.to_dict()}}


def test_build_table_round_trips_in_a_deterministic_order():
    data = document(table())
    assert list(data["tool"]["envlock"]["builds"][0]["platforms"]) == ["linux-64", "win-64"]
    parsed = BuildTable.from_lock(data, WHERE)
    assert document(parsed) == data
    assert parsed.files_for(parsed.builds[0], "linux-64") == [table().files[WHEEL]]
    assert parsed.files_for(parsed.builds[0], "osx-arm64") is None
    assert BuildTable.from_lock({"tool": {"envlock": {}}}, WHERE).to_dict() == {}


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("build-files", 0, "hashes", "sha256"), "../../x", "build-files[0].hashes.sha256"),
        (("build-files", 0, "size"), True, "build-files[0].size"),
        (("build-files", 0, "size"), -1, "build-files[0].size"),
        (("build-files", 0, "url"), "https://u:p@h/" + WHEEL, "build-files[0].url"),
        (("build-files", 0, "url"), "file:///tmp/" + WHEEL, "build-files[0].url"),
        (("build-files", 0, "url"), "https://h/other.whl", "build-files[0].url"),
        (("build-files", 0, "name"), "../" + WHEEL, "build-files[0].name"),
        (("build-files", 0, "package"), "evil", "build-files[0].name"),
        (("builds", 0, "sdist-sha256"), "B" * 64, "builds[0].sdist-sha256"),
        (("builds", 0, "sdist"), "other-1.0.tar.gz", "builds[0].sdist"),
        (
            ("builds", 0, "platforms", "linux-64"),
            ["nothere.whl"],
            "builds[0].platforms.linux-64[0]",
        ),
        (("builds", 0, "platforms"), {"plan9": [WHEEL]}, "builds[0].platforms.plan9"),
        (("builds", 0, "requires"), "setuptools", "builds[0].requires"),
        (("builds",), {"not": "a list"}, "builds"),
    ],
)
def test_hostile_build_table_values_are_refused_naming_the_key(path, value, where):
    data = copy.deepcopy(document(table()))
    node: Any = data["tool"]["envlock"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(UsageError) as info:
        BuildTable.from_lock(data, WHERE)
    assert info.value.message.startswith(f"pylock.toml: tool.envlock.{where}:"), info.value.message
    assert "p@" not in info.value.message


def test_build_system_defaults_to_setuptools_legacy_as_pep_517_says():
    assert build_system(None, "x").requires == DEFAULT_REQUIRES
    assert build_system({"project": {}}, "x").backend == DEFAULT_BACKEND
    found = build_system(
        {"build-system": {"requires": ["flit_core>=3"], "build-backend": "flit_core.buildapi"}},
        "x",
    )
    assert (found.requires, found.backend) == (("flit_core>=3",), "flit_core.buildapi")
    with pytest.raises(BuildError, match="x: a build requirement is not valid"):
        build_system({"build-system": {"requires": ["not a req!"]}}, "x")
    with pytest.raises(BuildError, match="backend-path"):
        build_system({"build-system": {"requires": [], "backend-path": "."}}, "x")
