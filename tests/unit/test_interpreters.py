"""Choosing bundled interpreters from pbs-installer's table (pure; the real table, no network)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest
from packaging.version import Version

from envlock.errors import SpecError
from envlock.interpreters import (
    DEFAULT_PREFIX,
    PBS_TARGETS,
    InterpreterBuild,
    builds_from_table,
    choose,
    locked,
    mirror_url,
    mirrored,
    plan,
    standalone_builds,
)
from envlock.spec import EnvironmentSpec
from envlock.spec_interpreter import InterpreterSource

ALL = tuple(PBS_TARGETS)


def fake(platform: str, version: str, build: str) -> InterpreterBuild:
    system, arch = PBS_TARGETS[platform]
    filename = f"cpython-{version}+{build}-{arch}-{system}-install_only_stripped.tar.gz"
    url = f"{DEFAULT_PREFIX}/{build}/{filename.replace('+', '%2B')}"
    return InterpreterBuild(platform, Version(version), build, url, "ab" * 32, filename)


def test_the_real_table_has_every_platform_for_current_pythons() -> None:
    builds = standalone_builds()
    for python in ("3.10", "3.11", "3.12", "3.13"):
        chosen = choose(builds, python, ALL)
        assert set(chosen) == set(ALL)
        versions = {b.version for b in chosen.values()}
        assert len(versions) == 1 and next(iter(versions)).release[:2] == Version(python).release
        for platform, b in chosen.items():
            assert len(b.sha256) == 64 and b.url.startswith(DEFAULT_PREFIX + "/")
            assert b.filename.endswith("-install_only_stripped.tar.gz")
            _system, arch = PBS_TARGETS[platform]
            assert arch in b.filename
            assert f"/{b.build}/" in b.url


def test_the_real_table_pins_an_exact_version() -> None:
    builds = standalone_builds()
    newest = choose(builds, "3.11", ["linux-64"])["linux-64"].version
    older = [b.version for b in builds if b.platform == "linux-64" and b.version < newest]
    pin = str(max(v for v in older if v.release[:2] == (3, 11)))
    assert choose(builds, pin, ["linux-64"])["linux-64"].version == Version(pin)


def test_the_mirror_rewrite_keeps_build_and_file_of_the_real_table() -> None:
    b = choose(standalone_builds(), "3.11", ["osx-arm64"])["osx-arm64"]
    url = mirrored(b, "https://mirror.example/pbs/")
    assert url == "https://mirror.example/pbs" + b.url[len(DEFAULT_PREFIX) :]
    assert url.endswith(f"/{b.build}/" + b.url.rsplit("/", 1)[1])
    assert mirrored(b, None) == b.url
    assert mirrored(b, "file:///srv/pbs").startswith("file:///srv/pbs/" + b.build + "/")
    with pytest.raises(SpecError, match="must be an http"):
        mirrored(b, "ftp://x")


def test_newest_version_common_to_all_platforms() -> None:
    builds = [
        fake("linux-64", "3.11.9", "20240814"),
        fake("win-64", "3.11.9", "20240814"),
        fake("linux-64", "3.11.10", "20241008"),  # not built for win-64
        fake("linux-64", "3.12.7", "20241008"),
        fake("win-64", "3.12.7", "20241008"),
    ]
    chosen = choose(builds, "3.11", ["linux-64", "win-64"])
    assert {b.version for b in chosen.values()} == {Version("3.11.9")}
    assert choose(builds, "3.11", ["linux-64"])["linux-64"].version == Version("3.11.10")


def test_exclude_newer_ignores_later_builds_and_the_newest_build_wins() -> None:
    builds = [
        fake("linux-64", "3.11.9", "20240726"),
        fake("linux-64", "3.11.9", "20240814"),
        fake("linux-64", "3.11.10", "20241008"),
    ]
    cutoff = datetime(2024, 9, 1, tzinfo=timezone.utc)
    chosen = choose(builds, "3.11", ["linux-64"], exclude_newer=cutoff)["linux-64"]
    assert (chosen.version, chosen.build) == (Version("3.11.9"), "20240814")


@pytest.mark.parametrize(
    ("python", "platforms", "message"),
    [
        ("3.11", ["win-64"], "no python-build-standalone build of CPython 3.11"),
        ("3.11.1", ["linux-64"], "no python-build-standalone build of CPython 3.11.1"),
        ("3.11", ["linux-64", "win-64"], "lacks win-64"),
        ("3", ["linux-64"], 'needs "3.X" or "3.X.Y"'),
        ("3.11.*", ["linux-64"], 'needs "3.X" or "3.X.Y"'),
        ("3.11", ["linux-ppc64le"], "no bundled interpreter exists for linux-ppc64le"),
    ],
)
def test_what_cannot_be_chosen_is_a_spec_error(python, platforms, message) -> None:
    builds = [fake("linux-64", "3.11.9", "20240814")]
    with pytest.raises(SpecError, match=message.replace(".", r"\.").replace("*", r"\*")):
        choose(builds, python, platforms)


def test_table_rows_that_are_not_usable_builds_are_skipped() -> None:
    good = fake("linux-64", "3.11.9", "20240814")
    rows = [
        ("3.11.9", "linux", "x86_64", good.url, good.sha256.upper()),
        ("3.11.9", "linux", "x86_64", good.url, None),  # no sha256
        ("3.11.9", "linux", "riscv64", good.url, good.sha256),  # not an envlock platform
        ("3.11.9", "linux", "x86_64", good.url.replace("install_only_stripped", "full"), "ab" * 32),
    ]
    (only,) = builds_from_table(rows)
    assert only == good


# -- plan: what a bundled environment locks -------------------------------------------------------


def _env(
    python: str = "3.11",
    platforms: tuple[str, ...] = ("linux-64", "win-64"),
    sources: dict[str, InterpreterSource] | None = None,
) -> EnvironmentSpec:
    return EnvironmentSpec(
        name=None,
        python=python,
        platforms=platforms,
        dependencies=(),
        indexes=(),
        interpreter="bundled",
        interpreter_sources=sources or {},
    )


BUILDS = [
    fake("linux-64", "3.11.9", "20240814"),
    fake("win-64", "3.11.9", "20240814"),
    fake("linux-64", "3.11.10", "20241008"),
    fake("win-64", "3.11.10", "20241008"),
]


def test_plan_takes_the_newest_and_keeps_a_previous_choice_until_upgrade() -> None:
    fresh = plan(_env(), {}, lambda: BUILDS)
    assert {i.version for i in fresh.values()} == {"3.11.10"}
    assert fresh["win-64"].url == BUILDS[3].url and fresh["win-64"].size is None
    old = {
        p: replace(locked(b), size=123) for p, b in (("linux-64", BUILDS[0]), ("win-64", BUILDS[1]))
    }
    kept = plan(_env(), old, lambda: BUILDS)
    assert kept == old  # same builds, and the size learned before is kept
    assert {i.version for i in plan(_env(), old, lambda: BUILDS, upgrade=True).values()} == {
        "3.11.10"
    }
    # A previous version the spec no longer allows is not kept.
    assert plan(_env("3.11.10"), old, lambda: BUILDS)["linux-64"].version == "3.11.10"


def test_plan_uses_interpreter_sources_without_reading_the_table() -> None:
    src = InterpreterSource("http://127.0.0.1:1/files/my-python.tar.gz", "cd" * 32, "3.11.4")

    def no_table() -> list[InterpreterBuild]:
        raise AssertionError("the table is not needed")

    chosen = plan(_env(platforms=("linux-64",), sources={"linux-64": src}), {}, no_table)
    entry = chosen["linux-64"]
    assert (entry.version, entry.build, entry.name, entry.sha256) == (
        "3.11.4",
        "",
        "my-python.tar.gz",
        "cd" * 32,
    )
    # The other platforms take the same version from the table, or fail saying so.
    mixed = plan(_env(sources={"linux-64": replace(src, version="3.11.9")}), {}, lambda: BUILDS)
    assert mixed["win-64"].version == "3.11.9" and mixed["linux-64"].build == ""
    with pytest.raises(SpecError, match=r"3\.11\.4"):
        plan(_env(sources={"linux-64": src}), {}, lambda: BUILDS)


@pytest.mark.parametrize(
    ("python", "source", "message"),
    [
        (
            "3.11",
            InterpreterSource("http://h/x.tar.gz", "cd" * 32),
            "cannot tell the CPython version",
        ),
        ("3.12", InterpreterSource("http://h/x.tar.gz", "cd" * 32, "3.11.4"), "does not fit"),
        ("3.11.5", InterpreterSource("http://h/x.tar.gz", "cd" * 32, "3.11.4"), "does not fit"),
    ],
)
def test_a_source_whose_version_is_unknown_or_wrong_is_a_spec_error(
    python: str, source: InterpreterSource, message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        plan(_env(python, ("linux-64",), {"linux-64": source}), {}, lambda: BUILDS)


def test_a_source_version_comes_from_a_pbs_file_name_or_an_exact_python() -> None:
    pbs_named = InterpreterSource(
        "http://h/cpython-3.11.7+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz", "cd" * 32
    )
    entry = plan(_env("3.11", ("linux-64",), {"linux-64": pbs_named}), {}, lambda: [])["linux-64"]
    assert (entry.version, entry.build) == ("3.11.7", "20240107")
    bare = InterpreterSource("http://h/x.tar.gz", "cd" * 32)
    assert (
        plan(_env("3.11.2", ("linux-64",), {"linux-64": bare}), {}, lambda: [])["linux-64"].version
        == "3.11.2"
    )


def test_sources_that_disagree_on_the_version_are_refused() -> None:
    a = InterpreterSource("http://h/a.tar.gz", "cd" * 32, "3.11.4")
    b = InterpreterSource("http://h/b.tar.gz", "ef" * 32, "3.11.5")
    with pytest.raises(SpecError, match="different versions"):
        plan(_env(sources={"linux-64": a, "win-64": b}), {}, lambda: [])


def test_mirror_rewrites_only_python_build_standalone_urls() -> None:
    b = BUILDS[0]
    assert (
        mirror_url(b.url, "https://m.example/pbs/")
        == "https://m.example/pbs" + b.url[len(DEFAULT_PREFIX) :]
    )
    own = "https://files.example/python.tar.gz"
    assert mirror_url(own, "https://m.example/pbs") == own
    assert mirror_url(b.url, None) == b.url
