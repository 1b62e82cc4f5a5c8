"""Targets: the PEP 508 marker environment and the ordered wheel tags of each platform."""

from __future__ import annotations

import pytest
from packaging.markers import Marker
from packaging.tags import Tag, parse_tag

from envlock.platforms import PLATFORM_NAMES, PLATFORMS, PlatformOptions, Target, describe


def _tag_strings(target: Target) -> list[str]:
    return [str(t) for t in target.tags]


def _platform_parts(target: Target) -> set[str]:
    return {t.platform for t in target.tags}


def test_platform_names_are_the_five_documented_ones() -> None:
    assert PLATFORM_NAMES == ("linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64")


# --- marker environment ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "sys_platform", "machine", "system", "os_name"),
    [
        ("linux-64", "linux", "x86_64", "Linux", "posix"),
        ("linux-aarch64", "linux", "aarch64", "Linux", "posix"),
        ("osx-64", "darwin", "x86_64", "Darwin", "posix"),
        ("osx-arm64", "darwin", "arm64", "Darwin", "posix"),
        ("win-64", "win32", "AMD64", "Windows", "nt"),
    ],
)
def test_marker_environment_describes_the_target_not_the_host(
    platform: str, sys_platform: str, machine: str, system: str, os_name: str
) -> None:
    env = Target(platform, "3.11").environment
    assert env["sys_platform"] == sys_platform
    assert env["platform_machine"] == machine
    assert env["platform_system"] == system
    assert env["os_name"] == os_name
    assert env["implementation_name"] == "cpython"
    assert env["platform_python_implementation"] == "CPython"
    assert env["python_version"] == "3.11"
    assert env["python_full_version"] == "3.11.0"


def test_major_minor_python_resolves_as_patch_zero() -> None:
    target = Target("linux-64", "3.11")
    assert target.python_full_version == "3.11.0"
    assert target.environment["implementation_version"] == "3.11.0"


def test_full_python_version_is_kept() -> None:
    env = Target("win-64", "3.11.7").environment
    assert env["python_full_version"] == "3.11.7"
    assert env["python_version"] == "3.11"


def test_marker_environment_evaluates_requirement_markers() -> None:
    marker = Marker("sys_platform == 'win32' and python_full_version >= '3.11.5'")
    assert not marker.evaluate(Target("win-64", "3.11").environment)
    assert marker.evaluate(Target("win-64", "3.11.7").environment)
    assert not marker.evaluate(Target("linux-64", "3.11.7").environment)


def test_marker_matches_with_and_without_extras() -> None:
    target = Target("osx-arm64", "3.12")
    marker = Marker("platform_machine == 'arm64' and extra == 'gpu'")
    assert not target.marker_matches(marker)
    assert target.marker_matches(marker, frozenset({"gpu"}))
    assert target.marker_matches(None)


@pytest.mark.parametrize("platform", PLATFORM_NAMES)
def test_target_marker_is_true_only_for_its_own_platform(platform: str) -> None:
    marker = Marker(Target(platform, "3.11").marker)
    for other in PLATFORM_NAMES:
        assert marker.evaluate(Target(other, "3.11").environment) is (other == platform)


def test_label_names_platform_and_abi() -> None:
    assert Target("linux-64", "3.11.7").label == "linux-64 / cp311"


# --- tags: linux ----------------------------------------------------------------------------------


def test_linux_64_best_tag_is_cp311_manylinux_2_28() -> None:
    target = Target("linux-64", "3.11")
    assert str(target.tags[0]) == "cp311-cp311-manylinux_2_28_x86_64"
    assert Tag("cp311", "cp311", "manylinux_2_17_x86_64") in target.tags
    assert Tag("cp311", "cp311", "manylinux_2_5_x86_64") in target.tags


def test_linux_64_default_floor_excludes_newer_glibc() -> None:
    parts = _platform_parts(Target("linux-64", "3.11"))
    assert "manylinux_2_29_x86_64" not in parts
    assert "manylinux_2_28_x86_64" in parts


def test_linux_64_excludes_musllinux_by_default() -> None:
    parts = _platform_parts(Target("linux-64", "3.11"))
    assert not any(p.startswith("musllinux") for p in parts)


def test_legacy_manylinux_aliases_are_accepted_by_default_as_pip_and_uv_do() -> None:
    target = Target("linux-64", "3.11")
    parts = target.platform_tags
    assert "manylinux2014_x86_64" in parts
    assert "manylinux2010_x86_64" in parts
    assert "manylinux1_x86_64" in parts
    # each alias ranks right after the glibc version it stands for (PEP 600)
    assert parts.index("manylinux2014_x86_64") == parts.index("manylinux_2_17_x86_64") + 1
    assert parts.index("manylinux2010_x86_64") == parts.index("manylinux_2_12_x86_64") + 1
    assert parts.index("manylinux1_x86_64") == parts.index("manylinux_2_5_x86_64") + 1
    assert Tag("cp311", "cp311", "manylinux2014_x86_64") in target.tags


def test_legacy_aliases_stay_within_the_glibc_floor() -> None:
    parts = Target("linux-64", "3.11", PlatformOptions(glibc=(2, 12))).platform_tags
    assert "manylinux2010_x86_64" in parts and "manylinux1_x86_64" in parts
    assert "manylinux2014_x86_64" not in parts  # manylinux2014 = glibc 2.17 > 2.12


def test_legacy_aliases_can_be_turned_off() -> None:
    target = Target("linux-64", "3.11", PlatformOptions(manylinux_legacy_aliases=False))
    parts = _platform_parts(target)
    assert not any(p.startswith(("manylinux1", "manylinux2010", "manylinux2014")) for p in parts)
    assert "manylinux_2_17_x86_64" in parts


def test_legacy_aliases_on_aarch64_stop_at_manylinux2014() -> None:
    target = Target("linux-aarch64", "3.11")
    parts = target.platform_tags
    assert "manylinux2014_aarch64" in parts
    assert "manylinux2010_aarch64" not in parts
    assert parts[-1] == "manylinux2014_aarch64"


def test_musllinux_added_when_asked() -> None:
    target = Target("linux-64", "3.11", PlatformOptions(musllinux=(1, 2)))
    parts = _platform_parts(target)
    assert {"musllinux_1_2_x86_64", "musllinux_1_1_x86_64", "musllinux_1_0_x86_64"} <= parts
    assert "musllinux_1_3_x86_64" not in parts
    assert Tag("cp311", "cp311", "musllinux_1_2_x86_64") in target.tags
    # glibc wheels are still preferred
    assert str(target.tags[0]) == "cp311-cp311-manylinux_2_28_x86_64"


def test_glibc_floor_2_17_excludes_manylinux_2_28() -> None:
    target = Target("linux-64", "3.11", PlatformOptions(glibc=(2, 17)))
    parts = _platform_parts(target)
    assert "manylinux_2_28_x86_64" not in parts
    assert "manylinux_2_18_x86_64" not in parts
    assert "manylinux_2_17_x86_64" in parts
    assert str(target.tags[0]) == "cp311-cp311-manylinux_2_17_x86_64"


def test_linux_aarch64_tags_start_at_manylinux_2_17() -> None:
    target = Target("linux-aarch64", "3.11")
    parts = target.platform_tags
    assert str(target.tags[0]) == "cp311-cp311-manylinux_2_28_aarch64"
    assert parts[-2:] == ("manylinux_2_17_aarch64", "manylinux2014_aarch64")
    assert not any("x86_64" in p for p in parts)


# --- tags: macOS ----------------------------------------------------------------------------------


def test_osx_64_default_floor_is_13_0_as_uv() -> None:
    target = Target("osx-64", "3.11")
    parts = _platform_parts(target)
    assert str(target.tags[0]) == "cp311-cp311-macosx_13_0_x86_64"
    assert {"macosx_13_0_x86_64", "macosx_12_0_x86_64", "macosx_11_0_x86_64"} <= parts
    assert {"macosx_10_13_x86_64", "macosx_10_9_x86_64"} <= parts
    assert "macosx_14_0_x86_64" not in parts
    assert not any(p.endswith("_arm64") for p in parts)


def test_osx_64_floor_is_configurable() -> None:
    parts = _platform_parts(Target("osx-64", "3.11", PlatformOptions(macos_x86_64=(10, 13))))
    assert "macosx_10_13_x86_64" in parts
    assert "macosx_10_14_x86_64" not in parts
    assert "macosx_11_0_x86_64" not in parts


def test_osx_arm64_default_floor_is_13_0_with_universal2() -> None:
    target = Target("osx-arm64", "3.11")
    parts = _platform_parts(target)
    assert str(target.tags[0]) == "cp311-cp311-macosx_13_0_arm64"
    assert {"macosx_12_0_arm64", "macosx_11_0_arm64", "macosx_11_0_universal2"} <= parts
    assert Tag("cp311", "cp311", "macosx_10_9_universal2") in target.tags
    assert "macosx_14_0_arm64" not in parts
    assert not any(p.endswith("_x86_64") for p in parts)


def test_osx_arm64_floor_never_drops_below_11() -> None:
    target = Target("osx-arm64", "3.11", PlatformOptions(macos_arm64=(10, 15)))
    assert str(target.tags[0]) == "cp311-cp311-macosx_11_0_arm64"
    assert "macosx_10_15_arm64" not in _platform_parts(target)


# --- tags: Windows --------------------------------------------------------------------------------


def test_win_64_tags() -> None:
    target = Target("win-64", "3.11")
    tags = _tag_strings(target)
    assert tags[0] == "cp311-cp311-win_amd64"
    assert "py3-none-any" in tags
    assert "cp311-none-win_amd64" in tags
    assert _platform_parts(target) == {"win_amd64", "any"}


# --- tags: general --------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORM_NAMES)
def test_every_target_accepts_pure_wheels_after_binary_ones(platform: str) -> None:
    target = Target(platform, "3.11")
    tags = _tag_strings(target)
    assert "py3-none-any" in tags
    assert "py311-none-any" in tags
    assert tags.index("py3-none-any") > tags.index(f"cp311-cp311-{target.platform_tags[0]}")


def test_abi3_tags_of_older_pythons_are_accepted() -> None:
    tags = set(Target("linux-64", "3.11").tags)
    assert parse_tag("cp39-abi3-manylinux_2_17_x86_64") <= tags
    assert parse_tag("cp311-abi3-manylinux_2_28_x86_64") <= tags
    assert Tag("cp32", "abi3", "manylinux_2_17_x86_64") in tags


def test_abi3_of_newer_python_is_not_accepted() -> None:
    tags = set(Target("linux-64", "3.11").tags)
    assert Tag("cp312", "abi3", "manylinux_2_17_x86_64") not in tags


def test_cp312_wheel_is_not_in_a_311_target() -> None:
    for platform in PLATFORM_NAMES:
        target = Target(platform, "3.11")
        plat = target.platform_tags[0]
        assert Tag("cp312", "cp312", plat) not in target.tags
        assert Tag("cp311", "cp311", plat) in target.tags


def test_tags_follow_the_target_python() -> None:
    target = Target("win-64", "3.12.1")
    assert str(target.tags[0]) == "cp312-cp312-win_amd64"
    assert Tag("cp311", "cp311", "win_amd64") not in target.tags


def test_tags_are_unique() -> None:
    for platform in PLATFORM_NAMES:
        tags = Target(platform, "3.11", PlatformOptions(musllinux=(1, 2))).tags
        assert len(tags) == len(set(tags))


# --- options / describe ---------------------------------------------------------------------------


def test_platform_options_as_dict_only_lists_departures_from_the_defaults() -> None:
    assert PlatformOptions().as_dict() == {
        "glibc": "2.28",
        "macos-x86_64": "13.0",
        "macos-arm64": "13.0",
    }
    changed = PlatformOptions(musllinux=(1, 2), manylinux_legacy_aliases=False).as_dict()
    assert changed["musllinux"] == "1.2"
    assert changed["manylinux-legacy-aliases"] is False


def test_floor_descriptions() -> None:
    options = PlatformOptions(musllinux=(1, 1), macos_arm64=(10, 9))
    assert options.floor_for(PLATFORMS["linux-64"]) == "glibc 2.28, musl 1.1"
    assert options.floor_for(PLATFORMS["osx-64"]) == "macOS 13.0"
    assert options.floor_for(PLATFORMS["osx-arm64"]) == "macOS 11.0"
    assert options.floor_for(PLATFORMS["win-64"]) == "any"


def test_platform_records_describe_each_platform() -> None:
    assert [p.os for p in PLATFORMS.values()] == ["linux", "linux", "macos", "macos", "windows"]
    assert PLATFORMS["win-64"].windows and not PLATFORMS["osx-arm64"].windows
    assert PLATFORMS["win-64"].description == "Windows x86_64"
    assert PLATFORMS["osx-arm64"].description == "macOS arm64"
    assert PLATFORMS["linux-aarch64"].marker == (
        "sys_platform == 'linux' and platform_machine == 'aarch64'"
    )


def test_describe_has_one_row_per_platform_with_best_tag() -> None:
    rows = describe(PlatformOptions())
    assert [r["platform"] for r in rows] == list(PLATFORM_NAMES)
    best = {r["platform"]: r["best"] for r in rows}
    assert best == {
        "linux-64": "manylinux_2_28_x86_64",
        "linux-aarch64": "manylinux_2_28_aarch64",
        "osx-64": "macosx_13_0_x86_64",
        "osx-arm64": "macosx_13_0_arm64",
        "win-64": "win_amd64",
    }
    assert {r["platform"]: r["count"] for r in rows}["win-64"] == "1"
