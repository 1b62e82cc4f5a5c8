"""The resolver against an in-memory index: preferences, lookahead, explanations."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envlock.errors import ResolutionError
from envlock.platforms import PlatformOptions, Target
from envlock.resolve import Policy, Resolution, resolve
from support.memory import MemoryRepository
from support.wheels import Dist

LINUX = Target("linux-64", "3.11")


def _resolve(
    dists: list[Dist],
    *reqs: str,
    target: Target = LINUX,
    policy: Policy | None = None,
    **kw: object,
) -> tuple[Resolution, MemoryRepository]:
    repo = MemoryRepository(dists, kw.pop("metadata", None))  # type: ignore[arg-type]
    res = resolve([Requirement(r) for r in reqs], target, repo, policy or Policy(), **kw)  # type: ignore[arg-type]
    return res, repo


def _pins(res: Resolution) -> dict[str, str]:
    return {str(n): str(p.version) for n, p in res.packages.items()}


def _error(dists: list[Dist], *reqs: str, **kw: object) -> ResolutionError:
    with pytest.raises(ResolutionError) as info:
        _resolve(dists, *reqs, **kw)  # type: ignore[arg-type]
    return info.value


# --- basics ---------------------------------------------------------------------------------------


def test_newest_versions_win_and_dependencies_follow() -> None:
    res, _ = _resolve(
        [
            Dist("a", "1.0", requires=["b"]),
            Dist("a", "2.0", requires=["b>=2"]),
            Dist("b", "1.0"),
            Dist("b", "2.0"),
            Dist("b", "3.0"),
        ],
        "a",
    )
    assert _pins(res) == {"a": "2.0", "b": "3.0"}
    assert res.packages["b"].required_by == (("a 2.0", "b>=2"),)
    assert res.packages["a"].requires_dist == ("b>=2",)


def _plugins(core: str = "core") -> list[Dist]:
    """A core released ahead of its plugins: ``fast`` has caught up with core 1.2, ``slow``
    pins core 1.1 in its newest release, and only its ancient 0.1 pins nothing."""
    return [
        Dist(core, "1.0"),
        Dist(core, "1.1"),
        Dist(core, "1.2"),
        Dist("fast", "5.1", requires=[f"{core}==1.1"]),
        Dist("fast", "5.2", requires=[f"{core}==1.2"]),
        Dist("slow", "0.1"),
        *(Dist("slow", f"3.{i}", requires=[f"{core}==1.0"]) for i in range(8)),
        Dist("slow", "3.8", requires=[f"{core}==1.1"]),
    ]


@pytest.mark.parametrize(
    "order", [("core", "fast", "slow"), ("slow", "fast", "core"), ("fast", "core", "slow")]
)
def test_a_plugin_that_lags_behind_its_core_decides_the_core(order: tuple[str, ...]) -> None:
    """As uv: the core steps back to what the lagging plugin pins, the plugin that caught up
    steps back one release, rather than the laggard falling back years to a release without
    the pin (whatever order the spec lists them in)."""
    res, _ = _resolve(_plugins(), *order)
    assert _pins(res) == {"core": "1.1", "fast": "5.1", "slow": "3.8"}


def test_an_unusable_dependency_is_named_not_the_python_requirements_that_hold() -> None:
    """The one version a root needs has metadata that cannot be read (a backend that fails):
    that is the cause, not "a 1.0 requires Python >=3.9, the target is 3.11.0"."""
    dists = [
        Dist("a", "1.0", requires=["b==2.0"], requires_python=">=3.9"),
        Dist("c", "1.0", requires=["b==2.0"], requires_python=">=3.10"),
        Dist("b", "2.0", requires_python=">=3.8"),
    ]
    err = _error(dists, "a", "c", metadata={"b-2.0-py3-none-any.whl": b"garbage\x00"})
    assert "b 2.0: its metadata is unusable" in str(err)
    assert "requires Python" not in str(err)


def test_preferences_keep_locked_versions() -> None:
    dists = [Dist("a", "1.0"), Dist("a", "2.0")]
    res, _ = _resolve(dists, "a", preferences={"a": Version("1.0")})
    assert _pins(res) == {"a": "1.0"}


def test_constraints_hold_versions_back_without_requiring_anything() -> None:
    dists = [Dist("a", "1.0", requires=["b"]), Dist("b", "1.0"), Dist("b", "2.0"), Dist("c", "1")]
    res, _ = _resolve(dists, "a", constraints={"b": SpecifierSet("<=1.0"), "c": SpecifierSet()})
    assert _pins(res) == {"a": "1.0", "b": "1.0"}


def test_yanked_version_pinned_with_double_equals_is_locked_with_a_warning() -> None:
    dists = [Dist("a", "1.0", yanked="CVE-2026-1: broken"), Dist("a", "0.9")]
    res, _ = _resolve(dists, "a")
    assert _pins(res) == {"a": "0.9"} and not res.warnings
    res, _ = _resolve(dists, "a==1.0")
    assert _pins(res) == {"a": "1.0"}
    assert res.warnings == (
        "a 1.0 is yanked: CVE-2026-1: broken (locked because it is pinned with ==)",
    )


# --- conflicts explained --------------------------------------------------------------------------


def _httpx_like() -> list[Dist]:
    """httpx needs httpcore 1.x; every httpcore 1.x needs an h11 >= 0.13."""
    dists = [Dist("h11", v) for v in ("0.8.0", "0.9.0", "0.12.0", "0.14.0", "0.16.0")]
    dists += [Dist("httpcore", f"1.0.{i}", requires=["h11<0.15,>=0.13"]) for i in range(9)]
    dists.append(Dist("httpcore", "1.0.9", requires=["h11>=0.16"]))
    dists.append(Dist("httpcore", "0.9.0", requires=["h11<0.10"]))
    dists += [
        Dist("httpx", v, requires=["httpcore==1.*", "idna"])
        for v in ("0.27.0", "0.27.2", "0.28.0", "0.28.1")
    ]
    dists.append(Dist("idna", "3.10"))
    return dists


def test_unsatisfiable_spec_fails_with_the_clashing_chain() -> None:
    err = _error(_httpx_like(), "httpx>=0.27", "h11<0.10")
    assert str(err).splitlines() == [
        "cannot resolve for linux-64 / cp311:",
        "  the spec requires httpx>=0.27",
        "  httpx 0.27.0 … 0.28.1 require httpcore==1.*",
        "  httpcore 1.0.9 requires h11>=0.16",
        "  httpcore 1.0.0 … 1.0.8 require h11<0.15,>=0.13",
        "  but the spec requires h11<0.10",
    ]
    assert err.hint == "relax one of these requirements"


def test_the_lookahead_settles_a_clash_without_trying_combinations() -> None:
    repo = MemoryRepository(_httpx_like())
    with pytest.raises(ResolutionError):
        resolve([Requirement("httpx>=0.27"), Requirement("h11<0.10")], LINUX, repo, Policy())
    # Each httpx and httpcore version read once: 4 + 10, nothing retried.
    assert repo.asked["metadata:httpx"] <= 4
    assert repo.asked["metadata:httpcore"] <= 10


def test_clash_between_two_dependencies_names_both_requirements() -> None:
    err = _error(
        [
            Dist("a", "1.0", requires=["c<2"]),
            Dist("b", "1.0", requires=["c>=2"]),
            Dist("c", "1.0"),
            Dist("c", "2.0"),
        ],
        "a",
        "b",
    )
    lines = str(err).splitlines()
    assert "  a 1.0 (in the spec) requires c<2" in lines
    assert "  b 1.0 (in the spec) requires c>=2" in lines
    assert lines[-1] == "  no version of c satisfies all of them (newest: 2.0)"


def test_requirement_on_a_version_that_does_not_exist() -> None:
    err = _error([Dist("a", "1.0")], "a>=5")
    assert (
        str(err).splitlines()[1]
        == "  the spec requires a>=5, but a has no such version (newest: 1.0)"
    )


def test_python_requirement_clash_names_the_target_python() -> None:
    err = _error(
        [Dist("a", "1.0", requires=["b"]), Dist("b", "1.0", requires_python=">=3.12")], "a"
    )
    assert "b 1.0: requires Python >=3.12, the target is 3.11.0" in str(err)


def test_missing_project_is_named_with_who_wants_it() -> None:
    err = _error([Dist("a", "1.0", requires=["nope"])], "a")
    assert str(err).startswith("no project named 'nope' on https://memory.example/simple/")
    assert "(a 1.0 requires nope)" in str(err)


def test_backtracking_over_many_releases_finds_the_compatible_pair() -> None:
    # boto3 / aiobotocore in miniature: each "client" release pins one "core" release;
    # "addon" only works with an older core.
    dists = [Dist("core", f"1.{i}.0") for i in range(120)]
    dists += [Dist("client", f"1.{i}.0", requires=[f"core==1.{i}.0"]) for i in range(120)]
    dists += [Dist("addon", "2.0", requires=["core<1.40,>=1.37"])]
    res, repo = _resolve(dists, "client", "addon")
    assert _pins(res) == {"addon": "2.0", "client": "1.39.0", "core": "1.39.0"}
    # A binary search over client's releases, not one try per release (80 would be needed).
    assert repo.asked["metadata:client"] <= 12


def test_jumping_is_only_an_ordering_when_requirements_are_not_monotone() -> None:
    # client's requirement on core zig-zags: the search cannot rely on it, every release is
    # still offered in order, and the answer is the newest that works.
    dists = [Dist("core", f"1.{i}.0") for i in range(30)]
    dists += [Dist("client", f"1.{i}.0", requires=[f"core==1.{(i * 7) % 30}.0"]) for i in range(30)]
    dists.append(Dist("addon", "2.0", requires=["core==1.21.0"]))
    res, _ = _resolve(dists, "client", "addon")
    # i * 7 % 30 == 21 for i == 3 (and i == 3 + 30k): client 1.3.0 is the only fit.
    assert _pins(res) == {"addon": "2.0", "client": "1.3.0", "core": "1.21.0"}


# --- no usable file: the cause and the one setting that changes it -------------------------------

GLIBC_234 = "cp311-cp311-manylinux_2_34_x86_64"


@pytest.mark.parametrize(
    ("dists", "target", "detail", "hint"),
    [
        (
            [Dist("x", "1.0", tag=GLIBC_234)],
            LINUX,
            "its Linux x86_64 wheels need glibc 2.34 (the floor is 2.28)",
            'set [platform-tags] glibc = "2.34", if your machines have it',
        ),
        (
            [Dist("x", "1.0", tag="cp311-cp311-macosx_14_0_arm64")],
            Target("osx-arm64", "3.11"),
            "its macOS arm64 wheels need macOS 14.0 (the floor is 13.0)",
            'set [platform-tags] macos-arm64 = "14.0", if your machines have it',
        ),
        (
            [Dist("x", "1.0", tag="cp311-cp311-macosx_15_0_universal2")],
            Target("osx-64", "3.11"),
            "its macOS x86_64 wheels need macOS 15.0 (the floor is 13.0)",
            'set [platform-tags] macos-x86_64 = "15.0", if your machines have it',
        ),
        (
            [Dist("x", "1.0", tag="cp311-cp311-manylinux2014_x86_64")],
            Target("linux-64", "3.11", PlatformOptions(manylinux_legacy_aliases=False)),
            "its Linux x86_64 wheels use the legacy manylinux tags, which the spec turned off",
            "set [platform-tags] manylinux-legacy-aliases = true",
        ),
        (
            [Dist("x", "1.0", tag="cp311-cp311-manylinux2014_x86_64")],
            Target("linux-64", "3.11", PlatformOptions(glibc=(2, 12))),
            "its Linux x86_64 wheels need glibc 2.17 (the floor is 2.12)",
            'set [platform-tags] glibc = "2.17", if your machines have it',
        ),
        (
            [Dist("x", "1.0", tag="cp311-cp311-musllinux_1_2_x86_64")],
            LINUX,
            "its Linux x86_64 wheels are for musl libc (musllinux_1_2) only",
            'set [platform-tags] musllinux = "1.2", if your machines use musl',
        ),
        (
            [
                Dist("x", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64"),
                Dist("x", "1.0", tag="cp313-cp313-manylinux_2_17_x86_64"),
            ],
            LINUX,
            "its Linux x86_64 wheels are for cp312, cp313, not cp311",
            'set a python in the spec that it has wheels for (e.g. python = "3.13")',
        ),
        (
            [Dist("x", "1.0", tag="cp311-cp311-win_amd64")],
            LINUX,
            "it has no wheel for Linux x86_64 (wheels for: win_amd64)",
            "pin a version of x that has such a wheel, or drop linux-64 from the spec's platforms",
        ),
        (
            [Dist("x", "1.0", requires_python=">=3.13")],
            LINUX,
            "requires Python >=3.13, the target is 3.11.0",
            "set a python in the spec that it supports",
        ),
        (
            [Dist("x", "1.0", yanked="bad build")],
            LINUX,
            "yanked (bad build)",
            "pin it exactly: x==1.0",
        ),
        (
            [Dist("x", "1.0b1")],
            LINUX,
            "a pre-release",
            'set prerelease = "allow" in the spec, or a requirement that names a pre-release',
        ),
    ],
)
def test_no_usable_file_names_the_cause_and_the_setting(
    dists: list[Dist], target: Target, detail: str, hint: str
) -> None:
    err = _error(dists, "x", target=target)
    assert str(err) == (
        f"no version of x can be installed on {target.label}: x {dists[0].version}: {detail}"
    )
    assert err.hint == hint


# --- sdists: used like pip and uv, unless the spec turns them off --------------------------------

WHEELS_OFF = Policy(sdist_refused_by=lambda name: "allow-sdist = false")


def _pendulum_like() -> list[Dist]:
    """An old release with a universal wheel; the newest has an sdist and wheels for old
    Pythons only (pendulum 0.4 vs 2.1.2)."""
    old = [Dist("clock", "0.4")]
    newest = [Dist("clock", "2.1.2", tag=f"cp3{i}-cp3{i}-manylinux1_x86_64") for i in range(5, 10)]
    return [*old, *newest, Dist("clock", "2.1.2", kind="sdist")]


def test_sdist_of_the_newest_version_is_chosen_over_an_old_wheel_by_default() -> None:
    res, _ = _resolve(_pendulum_like(), "clock<3")
    assert _pins(res) == {"clock": "2.1.2"}
    assert res.packages["clock"].file.filename == "clock-2.1.2.tar.gz"


def test_a_compatible_wheel_wins_over_the_sdist_of_the_same_version() -> None:
    res, _ = _resolve([Dist("x", "1.0", kind="sdist"), Dist("x", "1.0")], "x")
    assert res.packages["x"].file.filename == "x-1.0-py3-none-any.whl"


def test_with_sdists_off_the_old_wheel_is_locked() -> None:
    res, _ = _resolve(_pendulum_like(), "clock<3", policy=WHEELS_OFF)
    assert _pins(res) == {"clock": "0.4"}


@pytest.mark.parametrize(
    ("refused", "detail", "hint"),
    [
        (
            "allow-sdist = false",
            "it has only a source distribution, and allow-sdist = false refuses its sdist",
            'set allow-sdist = ["x"] (or true) in the spec',
        ),
        (
            "allow-sdist (a list without 'x')",
            "it has only a source distribution, and allow-sdist (a list without 'x') refuses "
            "its sdist",
            'add "x" to allow-sdist in the spec',
        ),
        (
            "[policy] no-build = true",
            "it has only a source distribution, and [policy] no-build = true refuses its sdist",
            "pin a version of x with a wheel for this platform, or lift [policy] no-build = true",
        ),
    ],
)
def test_a_refused_sdist_names_the_package_and_the_setting(
    refused: str, detail: str, hint: str
) -> None:
    policy = Policy(sdist_refused_by=lambda name: refused)
    err = _error([Dist("x", "1.0", kind="sdist")], "x", policy=policy)
    assert str(err) == f"no version of x can be installed on linux-64 / cp311: x 1.0: {detail}"
    assert err.hint == hint


def test_a_refused_sdist_beside_wheels_for_other_pythons_names_both() -> None:
    err = _error(_pendulum_like(), "clock==2.1.2", policy=WHEELS_OFF)
    assert str(err) == (
        "no version of clock==2.1.2 can be installed on linux-64 / cp311: clock 2.1.2: its Linux "
        "x86_64 wheels are for cp35-cp39, not cp311, and allow-sdist = false refuses its sdist"
    )


def test_an_unusable_pin_is_named_not_a_package_that_agrees_with_it() -> None:
    # djj asks jinja2>=3, which the spec's jinja2==3.1.6 satisfies: no clash. What fails is
    # that jinja2 3.1.6 has no file for this target.
    old = [
        Dist("jinja2", "3.1.6", tag=f"cp3{i}-cp3{i}-manylinux_2_17_x86_64") for i in range(6, 10)
    ]
    dists = [
        Dist("djj", "1.0", requires=["jinja2>=3"]),
        Dist("djj", "0.9", requires=["jinja2>=3"]),
        *old,
        Dist("jinja2", "3.1.5"),
    ]
    err = _error(dists, "djj", "jinja2==3.1.6")
    assert str(err) == (
        "no version of jinja2==3.1.6 can be installed on linux-64 / cp311: jinja2 3.1.6: its "
        "Linux x86_64 wheels are for cp36-cp39, not cp311"
    )
    assert "djj" not in str(err) and err.hint != "relax one of these requirements"


def test_a_transitive_unusable_version_both_requirements_allow_is_not_called_a_clash() -> None:
    old = [Dist("lib", "2.0", tag=f"cp3{i}-cp3{i}-manylinux_2_17_x86_64") for i in range(6, 10)]
    dists = [Dist("app", "1.0", requires=["mid"]), Dist("mid", "1.0", requires=["lib>=2"]), *old]
    dists.append(Dist("lib", "1.0"))
    err = _error(dists, "app", "lib>=1.5")
    assert "lib 2.0: its Linux x86_64 wheels are for cp36-cp39, not cp311" in str(err)
    assert "but the spec requires" not in str(err)
    assert err.hint == 'set a python in the spec that it has wheels for (e.g. python = "3.9")'


def test_a_transitive_sdist_only_dependency_names_the_package_and_the_setting() -> None:
    dists = [
        Dist("top", "1.0", requires=["app"]),
        Dist("app", "1.0", requires=["lib"]),
        Dist("lib", "1.0", kind="sdist"),
    ]
    err = _error(dists, "top", policy=WHEELS_OFF)
    assert (
        "  lib 1.0: it has only a source distribution, and allow-sdist = false refuses its sdist"
        in str(err).splitlines()
    )
    assert err.hint == 'set allow-sdist = ["lib"] (or true) in the spec'


def test_a_deny_rule_that_blocks_a_needed_package_is_named_in_a_few_lines() -> None:
    dists = [Dist("app", f"1.{i}", requires=[f"mid>=1.{i}"]) for i in range(30)]
    dists += [Dist("mid", f"1.{i}", requires=[f"lib>={i % 5 + 1}"]) for i in range(30)]
    dists += [Dist("lib", f"{i}.0") for i in range(1, 6)]
    err = _error(dists, "app", policy=Policy(deny=(Requirement("lib"),)))
    lines = str(err).splitlines()
    assert (
        lines[0]
        == "cannot resolve for linux-64 / cp311: a [policy] deny rule blocks a package it needs:"
    )
    assert lines[-1].endswith(": denied by the [policy] deny rule 'lib'")
    assert len(lines) <= 5
    assert err.hint == "change the [policy] deny rule 'lib' if this version is acceptable"


# --- known confusions ----------------------------------------------------------------------------


def test_a_confusable_name_is_warned_about_with_the_right_one() -> None:
    res, _ = _resolve(
        [Dist("sklearn", "0.0", requires=["scikit-learn"]), Dist("scikit-learn", "1.5")], "sklearn"
    )
    assert res.warnings == (
        "sklearn is often confused for scikit-learn: did you mean scikit-learn? (the spec "
        "requires sklearn)",
    )


def test_a_confusable_name_that_fails_to_resolve_gets_the_hint() -> None:
    err = _error([Dist("sklearn", "0.0.post12", kind="sdist")], "sklearn", policy=WHEELS_OFF)
    assert err.hint == "sklearn is often confused for scikit-learn: did you mean scikit-learn?"


def test_exclude_newer_is_named_as_the_cause() -> None:
    cutoff = datetime(2023, 1, 1, tzinfo=timezone.utc)
    err = _error([Dist("x", "1.0")], "x", policy=Policy(exclude_newer=cutoff))
    assert str(err).endswith("x 1.0: uploaded after exclude-newer (2023-01-01T00:00:00Z)")
    assert err.hint == "set a later exclude-newer in the spec (or --exclude-newer)"


def test_legacy_manylinux_wheels_install_by_default() -> None:
    res, _ = _resolve([Dist("x", "1.0", tag="cp311-cp311-manylinux2014_x86_64")], "x")
    assert res.packages["x"].file.filename == "x-1.0-cp311-cp311-manylinux2014_x86_64.whl"


def test_older_versions_in_range_are_counted_in_the_message() -> None:
    err = _error(
        [Dist("x", "2.0", tag=GLIBC_234), Dist("x", "1.0", tag="cp311-cp311-win_amd64")], "x"
    )
    assert "x 2.0: its Linux x86_64 wheels need glibc 2.34" in str(err)
    assert str(err).endswith("(1 older version in range: none usable)")


def test_version_with_unusable_metadata_is_skipped_and_named() -> None:
    broken = b"Metadata-Version: 2.1\nName: x\nVersion: 2.0\nRequires-Dist: not a [valid req\n"
    repo = MemoryRepository(
        [Dist("x", "2.0"), Dist("x", "1.0")], metadata={"x-2.0-py3-none-any.whl": broken}
    )
    res = resolve([Requirement("x")], LINUX, repo, Policy())
    assert _pins(res) == {"x": "1.0"}
    repo = MemoryRepository([Dist("x", "2.0")], metadata={"x-2.0-py3-none-any.whl": broken})
    with pytest.raises(ResolutionError) as info:
        resolve([Requirement("x")], LINUX, repo, Policy())
    assert "x 2.0: its metadata is unusable (invalid Requires-Dist" in str(info.value)
