"""Choosing bundled interpreters from pbs-installer's table (pure; the real table, no network)."""

from __future__ import annotations

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
    mirrored,
    standalone_builds,
)

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
