"""Platforms of one environment: ecosystem defaults, version splits explained, uniform-versions."""

from __future__ import annotations

import time
from pathlib import Path

from integration.helpers import envlock, selected, write_spec
from support.wheels import Dist

LINUX = "cp311-cp311-manylinux_2_17_x86_64"
MAC = "cp311-cp311-macosx_11_0_arm64"
MAC14 = "cp311-cp311-macosx_14_0_arm64"
WIN = "cp311-cp311-win_amd64"


def _spec(project: Path, url: str, deps: str, extra: str = "") -> None:
    write_spec(
        project,
        url,
        f'python = "3.11"\nplatforms = ["linux-64", "osx-arm64", "win-64"]\n'
        f"dependencies = {deps}\n{extra}",
    )


def _lib(version: str, *tags: str) -> list[Dist]:
    return [Dist("lib", version, tag=t) for t in tags]


def test_legacy_manylinux_wheels_lock_by_default_and_can_be_refused(index, project) -> None:
    server = index([Dist("old", "1.0", tag="cp311-cp311-manylinux2014_x86_64")])
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["old"]\n'
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.toml", "linux-64") == {"old": "1.0"}
    (project / "envlock.toml").write_text(
        (project / "envlock.toml").read_text()
        + "\n[platform-tags]\nmanylinux-legacy-aliases = false\n"
    )
    r = envlock(project, "lock")
    assert r.code == 1
    assert "its Linux x86_64 wheels use the legacy manylinux tags, which the spec turned off" in (
        r.stderr
    )
    assert "hint: set [platform-tags] manylinux-legacy-aliases = true" in r.stderr


def test_summary_lists_versions_that_differ_between_platforms_with_the_reason(
    index, project
) -> None:
    server = index([*_lib("2.0", LINUX, MAC14, WIN), *_lib("1.0", LINUX, MAC, WIN)])
    _spec(project, server.url, '["lib"]')
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert "  versions that differ between platforms:\n" in r.stderr
    assert "    lib 2.0 (linux-64, win-64) | 1.0 (osx-arm64)\n" in r.stderr
    assert (
        "      osx-arm64: lib 2.0: its macOS arm64 wheels need macOS 14.0 (the floor is 13.0)\n"
    ) in r.stderr


def test_summary_names_the_requirement_that_held_a_platform_back(index, project) -> None:
    server = index(
        [
            *_lib("2.0", LINUX, MAC, WIN),
            *_lib("1.0", LINUX, MAC, WIN),
            Dist("winhelper", "1.0", requires=["lib<2"]),
        ]
    )
    _spec(project, server.url, '["lib", "winhelper; sys_platform == \\"win32\\""]')
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert "    lib 2.0 (linux-64, osx-arm64) | 1.0 (win-64)\n" in r.stderr
    assert "      win-64: winhelper 1.0 requires lib<2\n" in r.stderr


def test_uniform_versions_picks_the_newest_version_that_works_everywhere(index, project) -> None:
    server = index(
        [
            *_lib("3.0", LINUX, WIN),  # no macOS wheel
            *_lib("2.0", LINUX, MAC14, WIN),  # macOS 14 only
            *_lib("1.5", LINUX, MAC, WIN),
            *_lib("1.0", LINUX, MAC, WIN),
        ]
    )
    _spec(project, server.url, '["lib"]', "uniform-versions = true\n")
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    for platform in ("linux-64", "osx-arm64", "win-64"):
        assert selected(project / "pylock.toml", platform) == {"lib": "1.5"}
    assert "differ between platforms" not in r.stderr


def test_uniform_versions_is_inherited_and_can_be_switched_off(index, project) -> None:
    server = index([*_lib("2.0", LINUX, WIN), *_lib("1.0", LINUX, MAC, WIN)])
    _spec(
        project,
        server.url,
        '["lib"]',
        "uniform-versions = true\n[environments.free]\nuniform-versions = false\n"
        "[environments.same]\ndependencies = []\n",
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.same.toml", "linux-64") == {"lib": "1.0"}
    assert selected(project / "pylock.free.toml", "linux-64") == {"lib": "2.0"}


def test_uniform_versions_error_names_the_platform_that_prevents_it(index, project) -> None:
    server = index([*_lib("2.0", LINUX), *_lib("1.0", WIN)])
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64", "win-64"]\ndependencies = ["lib"]\n'
        "uniform-versions = true\n",
    )
    r = envlock(project, "lock")
    assert r.code == 1
    assert (
        "error: uniform-versions: linux-64 cannot use the versions the other platforms allow "
        "(lib<=1.0 (from win-64))"
    ) in r.stderr
    assert not (project / "pylock.toml").exists()


def test_unsatisfiable_spec_ends_in_seconds_with_the_chain(index, project) -> None:
    dists = [Dist("h11", v) for v in ("0.8.0", "0.9.0", "0.14.0", "0.16.0")]
    dists += [Dist("httpcore", f"1.0.{i}", requires=["h11<0.15,>=0.13"]) for i in range(9)]
    dists.append(Dist("httpcore", "1.0.9", requires=["h11>=0.16"]))
    dists += [Dist("httpx", v, requires=["httpcore==1.*"]) for v in ("0.27.0", "0.28.1")]
    server = index(dists)
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["httpx>=0.27", "h11<0.10"]\n',
    )
    started = time.monotonic()
    r = envlock(project, "lock")
    assert time.monotonic() - started < 10
    assert r.code == 1
    assert r.stderr.splitlines()[-7:] == [
        "error: cannot resolve for linux-64 / cp311:",
        "  the spec requires httpx>=0.27",
        "  httpx 0.27.0 … 0.28.1 require httpcore==1.*",
        "  httpcore 1.0.9 requires h11>=0.16",
        "  httpcore 1.0.0 … 1.0.8 require h11<0.15,>=0.13",
        "  but the spec requires h11<0.10",
        "hint: relax one of these requirements",
    ]
    assert "gave up" not in r.stderr
