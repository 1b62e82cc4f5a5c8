"""Resolutions -> PEP 751 lock: markers, per-platform versions, selection, bytes, staleness."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.pylock import Pylock, PylockValidationError
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from envlock._toml import tomllib
from envlock.errors import MissingLockError, UsageError
from envlock.index.simple import DistFile
from envlock.lock import lockfile
from envlock.lock.document import build_lock, requires_python, target_marker
from envlock.lock.lockfile import HEADER, render, write_lock
from envlock.lock.staleness import check, staleness
from envlock.platforms import PLATFORM_NAMES, Target
from envlock.resolve import Resolution, ResolvedPackage
from envlock.spec import EnvironmentSpec
from envlock.spec_indexes import Index

INDEX = "https://pkgs.example.com/simple/"
UPLOADED = datetime(2024, 2, 3, 4, 5, 6, tzinfo=timezone.utc)


def _targets(*platforms: str, python: str = "3.11") -> list[Target]:
    return [Target(p, python) for p in platforms]


def _env(
    tmp_path: Path,
    platforms: Sequence[str] = ("linux-64", "osx-arm64", "win-64"),
    dependencies: Sequence[str] = ("numpy", "pure"),
    python: str = "3.11",
    name: str | None = None,
) -> EnvironmentSpec:
    return EnvironmentSpec(
        name=name,
        python=python,
        platforms=tuple(platforms),
        dependencies=tuple(dependencies),
        indexes=(Index("pypi", INDEX),),
        spec_dir=tmp_path,
    )


def _wheel(
    filename: str, size: int | None = 1000, sha: str | None = None, url: str | None = None
) -> DistFile:
    name, version, _, tags = parse_wheel_filename(filename)
    return DistFile(
        filename=filename,
        url=url or f"https://files.example.com/{filename}",
        name=name,
        version=version,
        is_wheel=True,
        tags=frozenset(tags),
        sha256=sha if sha is not None else hashlib.sha256(filename.encode()).hexdigest(),
        size=size,
        upload_time=UPLOADED,
        index=INDEX,
    )


def _pkg(filename: str, requires_python: str | None = None, **kw: object) -> ResolvedPackage:
    f = _wheel(filename, **kw)  # type: ignore[arg-type]
    spec = SpecifierSet(requires_python) if requires_python else None
    return ResolvedPackage(f.name, f.version, f, spec)


def _resolution(target: Target, *packages: ResolvedPackage) -> Resolution:
    return Resolution(target, {p.name: p for p in sorted(packages, key=lambda p: p.name)})


PURE = "pure-1.0-py3-none-any.whl"
NUMPY_LINUX = "numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl"
NUMPY_MAC = "numpy-2.0.0-cp311-cp311-macosx_11_0_arm64.whl"
NUMPY_WIN = "numpy-1.26.4-cp311-cp311-win_amd64.whl"
COLORAMA = "colorama-0.4.6-py2.py3-none-any.whl"


def _three_platform_resolutions() -> list[Resolution]:
    linux, mac, win = _targets("linux-64", "osx-arm64", "win-64")
    return [
        _resolution(linux, _pkg(PURE), _pkg(NUMPY_LINUX, requires_python=">=3.9")),
        _resolution(mac, _pkg(PURE), _pkg(NUMPY_MAC, requires_python=">=3.9")),
        _resolution(win, _pkg(PURE), _pkg(NUMPY_WIN, requires_python=">=3.9"), _pkg(COLORAMA)),
    ]


def _load(data: bytes) -> Pylock:
    return Pylock.from_dict(tomllib.loads(data.decode("utf-8")))


def _selected(lock: Pylock, target: Target) -> dict[str, tuple[str, str]]:
    """name -> (version, filename) of what an installer picks for ``target``."""
    out = {}
    for package, dist in lock.select(environment=target.environment, tags=target.tags):
        out[str(package.name)] = (str(package.version), dist.name)
    return out


def _expected(res: Resolution) -> dict[str, tuple[str, str]]:
    return {str(n): (str(p.version), p.file.filename) for n, p in res.packages.items()}


# --- target_marker --------------------------------------------------------------------------------


def test_target_marker_is_none_when_needed_on_every_target() -> None:
    every = _targets("linux-64", "osx-arm64", "win-64")
    assert target_marker(every, every) is None
    assert target_marker(list(reversed(every)), every) is None


def test_target_marker_for_one_target_sharing_its_os_is_its_full_marker() -> None:
    every = _targets("linux-64", "linux-aarch64", "win-64")
    marker = target_marker(_targets("linux-aarch64"), every)
    assert marker == "sys_platform == 'linux' and platform_machine == 'aarch64'"


def test_target_marker_for_the_only_target_of_its_os_is_sys_platform() -> None:
    every = _targets("linux-64", "osx-arm64", "win-64")
    assert target_marker(_targets("win-64"), every) == "sys_platform == 'win32'"


def test_both_osx_targets_collapse_to_darwin() -> None:
    every = _targets("linux-64", "osx-64", "osx-arm64")
    assert target_marker(_targets("osx-64", "osx-arm64"), every) == "sys_platform == 'darwin'"


def test_one_of_two_osx_targets_keeps_machine() -> None:
    every = _targets("linux-64", "osx-64", "osx-arm64")
    assert target_marker(_targets("osx-64"), every) == (
        "sys_platform == 'darwin' and platform_machine == 'x86_64'"
    )


@pytest.mark.parametrize(
    "chosen",
    [
        ("linux-64",),
        ("linux-64", "win-64"),
        ("osx-64", "linux-aarch64"),
        ("osx-arm64", "linux-64", "win-64"),
        ("linux-64", "linux-aarch64", "osx-64", "osx-arm64"),
    ],
)
def test_target_marker_is_true_for_exactly_the_chosen_targets(chosen: tuple[str, ...]) -> None:
    every = _targets(*PLATFORM_NAMES)
    text = target_marker(_targets(*chosen), every)
    assert text is not None
    marker = Marker(text)
    for t in every:
        assert marker.evaluate(t.environment) is (t.platform in chosen), t.platform


# --- build_lock -----------------------------------------------------------------------------------


def test_requires_python_of_lock() -> None:
    assert requires_python("3.11") == "==3.11.*"
    assert requires_python("3.11.7") == "==3.11.7"


def test_package_with_different_versions_gets_one_entry_per_version_with_markers(
    tmp_path: Path,
) -> None:
    doc = build_lock(_env(tmp_path), _three_platform_resolutions(), {})
    entries = [(p["name"], p["version"], p.get("marker")) for p in doc["packages"]]
    assert entries == [
        ("colorama", "0.4.6", 'sys_platform == "win32"'),
        ("numpy", "1.26.4", 'sys_platform == "win32"'),
        ("numpy", "2.0.0", 'sys_platform == "darwin" or sys_platform == "linux"'),
        ("pure", "1.0", None),
    ]


def test_wheels_list_exactly_the_files_the_targets_need(tmp_path: Path) -> None:
    doc = build_lock(_env(tmp_path), _three_platform_resolutions(), {})
    wheels = {(p["name"], p["version"]): [w["name"] for w in p["wheels"]] for p in doc["packages"]}
    assert wheels == {
        ("colorama", "0.4.6"): [COLORAMA],
        ("numpy", "1.26.4"): [NUMPY_WIN],
        ("numpy", "2.0.0"): [NUMPY_MAC, NUMPY_LINUX],
        ("pure", "1.0"): [PURE],
    }


def test_wheel_tables_carry_url_hash_size_and_upload_time(tmp_path: Path) -> None:
    doc = build_lock(_env(tmp_path), _three_platform_resolutions(), {})
    pure = next(p for p in doc["packages"] if p["name"] == "pure")
    (wheel,) = pure["wheels"]
    f = _wheel(PURE)
    assert wheel == {
        "name": PURE,
        "url": f.url,
        "upload-time": UPLOADED,
        "size": 1000,
        "hashes": {"sha256": f.sha256},
    }
    assert pure["index"] == INDEX


def test_top_level_fields_and_tool_table(tmp_path: Path) -> None:
    env = _env(tmp_path)
    doc = build_lock(env, _three_platform_resolutions(), {})
    assert doc["lock-version"] == "1.0"
    assert doc["created-by"] == "envlock"
    assert doc["requires-python"] == "==3.11.*"
    assert doc["environments"] == [t.marker for t in _targets("linux-64", "osx-arm64", "win-64")]
    tool = doc["tool"]["envlock"]
    assert tool["spec-hash"] == env.content_hash()
    assert tool["environment"] == "default"
    assert [t["platform"] for t in tool["targets"]] == ["linux-64", "osx-arm64", "win-64"]
    assert tool["targets"][0]["python"] == "3.11.0"
    assert tool["targets"][0]["best-tag"] == "cp311-cp311-manylinux_2_28_x86_64"
    assert tool["targets"][0]["tag-floor"] == "glibc 2.28"


def test_package_requires_python_is_recorded(tmp_path: Path) -> None:
    doc = build_lock(_env(tmp_path), _three_platform_resolutions(), {})
    numpy = [p for p in doc["packages"] if p["name"] == "numpy"]
    assert {p["requires-python"] for p in numpy} == {">=3.9"}
    assert "requires-python" not in next(p for p in doc["packages"] if p["name"] == "pure")


def test_size_from_digests_when_index_has_none(tmp_path: Path) -> None:
    target = Target("linux-64", "3.11")
    pkg = _pkg(PURE, size=None)
    digests = {pkg.file.url: (pkg.file.sha256 or "", 4242)}
    doc = build_lock(_env(tmp_path, platforms=["linux-64"]), [_resolution(target, pkg)], digests)
    assert doc["packages"][0]["wheels"][0]["size"] == 4242


def test_sha256_from_digests_when_index_lists_none(tmp_path: Path) -> None:
    target = Target("linux-64", "3.11")
    pkg = _pkg(PURE, sha="")
    digests = {pkg.file.url: ("e" * 64, 1000)}
    doc = build_lock(_env(tmp_path, platforms=["linux-64"]), [_resolution(target, pkg)], digests)
    assert doc["packages"][0]["wheels"][0]["hashes"] == {"sha256": "e" * 64}


def test_file_without_a_known_sha256_is_refused(tmp_path: Path) -> None:
    target = Target("linux-64", "3.11")
    pkg = _pkg(PURE, sha="")
    with pytest.raises(ValueError, match=re.escape("pure-1.0-py3-none-any.whl: no sha256")):
        build_lock(_env(tmp_path, platforms=["linux-64"]), [_resolution(target, pkg)], {})


def test_digest_that_contradicts_the_index_is_refused(tmp_path: Path) -> None:
    target = Target("linux-64", "3.11")
    pkg = _pkg(PURE, size=None)
    digests = {pkg.file.url: ("0" * 64, 1000)}
    with pytest.raises(ValueError, match="do not match the index's sha256"):
        build_lock(_env(tmp_path, platforms=["linux-64"]), [_resolution(target, pkg)], digests)


def test_each_package_records_the_dependencies_its_files_declared(tmp_path: Path) -> None:
    linux, win = _targets("linux-64", "win-64")
    lin = replace(_pkg(NUMPY_LINUX), requires_dist=("a>=1",))
    win_pkg = replace(_pkg("numpy-2.0.0-cp311-cp311-win_amd64.whl"), requires_dist=("b",))
    doc = build_lock(
        _env(tmp_path, platforms=["linux-64", "win-64"]),
        [_resolution(linux, lin), _resolution(win, win_pkg)],
        {},
    )
    (numpy,) = doc["packages"]
    assert numpy["tool"]["envlock"]["metadata"] == [
        {"files": [NUMPY_LINUX], "requires-dist": ["a>=1"]},
        {"files": ["numpy-2.0.0-cp311-cp311-win_amd64.whl"], "requires-dist": ["b"]},
    ]
    lock = lockfile.parse(tmp_path / "pylock.toml", render(doc))
    assert lock.requires_dist("numpy", "2.0.0", NUMPY_LINUX) == ("a>=1",)
    assert lock.requires_dist("numpy", "2.0.0", "numpy-2.0.0-cp311-cp311-win_amd64.whl") == ("b",)
    assert lock.requires_dist("numpy", "2.0.0", "other.whl") is None


def test_credentials_in_file_urls_are_not_written(tmp_path: Path) -> None:
    target = Target("linux-64", "3.11")
    pkg = _pkg(PURE, url="https://user:s3cret@files.example.com/pure-1.0-py3-none-any.whl")
    doc = build_lock(_env(tmp_path, platforms=["linux-64"]), [_resolution(target, pkg)], {})
    rendered = render(doc).decode()
    assert "s3cret" not in rendered
    assert doc["packages"][0]["wheels"][0]["url"] == (
        "https://files.example.com/pure-1.0-py3-none-any.whl"
    )


# --- render + PEP 751 selection -------------------------------------------------------------------


def test_rendered_lock_loads_and_validates(tmp_path: Path) -> None:
    data = render(build_lock(_env(tmp_path), _three_platform_resolutions(), {}))
    assert data.decode().startswith(HEADER)
    lock = _load(data)
    lock.validate()
    assert str(lock.lock_version) == "1.0"
    assert lock.created_by == "envlock"


def test_select_for_each_target_gives_exactly_its_resolution(tmp_path: Path) -> None:
    resolutions = _three_platform_resolutions()
    lock = _load(render(build_lock(_env(tmp_path), resolutions, {})))
    for res in resolutions:
        assert _selected(lock, res.target) == _expected(res), res.target.platform


def test_select_with_all_five_platforms_and_two_osx_versions(tmp_path: Path) -> None:
    linux, aarch, osx, arm, win = _targets(*PLATFORM_NAMES)
    shared = _pkg(PURE)
    mac_only = "appnope-0.1.4-py3-none-any.whl"
    resolutions = [
        _resolution(linux, shared, _pkg("lib-3.0-cp311-cp311-manylinux_2_28_x86_64.whl")),
        _resolution(aarch, shared, _pkg("lib-3.0-cp311-cp311-manylinux_2_17_aarch64.whl")),
        _resolution(
            osx, shared, _pkg(mac_only), _pkg("lib-2.5-cp311-cp311-macosx_10_9_x86_64.whl")
        ),
        _resolution(arm, shared, _pkg(mac_only), _pkg("lib-3.0-cp311-cp311-macosx_11_0_arm64.whl")),
        _resolution(win, shared, _pkg("lib-3.0-cp311-cp311-win_amd64.whl")),
    ]
    doc = build_lock(_env(tmp_path, platforms=PLATFORM_NAMES), resolutions, {})
    markers = {(p["name"], p["version"]): p.get("marker") for p in doc["packages"]}
    assert markers[("appnope", "0.1.4")] == 'sys_platform == "darwin"'
    assert markers[("pure", "1.0")] is None
    lock = _load(render(doc))
    for res in resolutions:
        assert _selected(lock, res.target) == _expected(res), res.target.platform


def test_select_with_full_python_version(tmp_path: Path) -> None:
    linux, win = _targets("linux-64", "win-64", python="3.11.7")
    resolutions = [
        _resolution(linux, _pkg(PURE), _pkg(NUMPY_LINUX)),
        _resolution(win, _pkg(PURE), _pkg(NUMPY_WIN)),
    ]
    doc = build_lock(
        _env(tmp_path, platforms=["linux-64", "win-64"], python="3.11.7"), resolutions, {}
    )
    assert doc["requires-python"] == "==3.11.7"
    lock = _load(render(doc))
    for res in resolutions:
        assert _selected(lock, res.target) == _expected(res)


def test_rendering_twice_gives_identical_bytes(tmp_path: Path) -> None:
    env = _env(tmp_path)
    first = render(build_lock(env, _three_platform_resolutions(), {}))
    second = render(build_lock(env, _three_platform_resolutions(), {}))
    assert first == second


def test_resolution_order_does_not_change_bytes(tmp_path: Path) -> None:
    env = _env(tmp_path)
    forward = render(build_lock(env, _three_platform_resolutions(), {}))
    backward = render(build_lock(env, list(reversed(_three_platform_resolutions())), {}))
    assert forward == backward


def test_render_refuses_an_invalid_document(tmp_path: Path) -> None:
    doc = build_lock(_env(tmp_path), _three_platform_resolutions(), {})
    doc["lock-version"] = "not-a-version"
    with pytest.raises(PylockValidationError):
        render(doc)


# --- locked_versions ------------------------------------------------------------------------------


def _lockfile(tmp_path: Path, doc: dict[str, object]) -> lockfile.LockFile:
    return lockfile.parse(tmp_path / "pylock.toml", render(doc))


def test_locked_versions_honour_markers_per_target(tmp_path: Path) -> None:
    resolutions = _three_platform_resolutions()
    lock = _lockfile(tmp_path, build_lock(_env(tmp_path), resolutions, {}))
    linux, mac, win = (r.target for r in resolutions)
    assert lock.locked_versions(linux) == {"numpy": Version("2.0.0"), "pure": Version("1.0")}
    assert lock.locked_versions(mac) == {"numpy": Version("2.0.0"), "pure": Version("1.0")}
    assert lock.locked_versions(win) == {
        "colorama": Version("0.4.6"),
        "numpy": Version("1.26.4"),
        "pure": Version("1.0"),
    }
    assert lock.indexes() == {"colorama": INDEX, "numpy": INDEX, "pure": INDEX}


def test_locked_versions_for_a_target_not_in_the_lock_uses_unmarked_packages(
    tmp_path: Path,
) -> None:
    lock = _lockfile(tmp_path, build_lock(_env(tmp_path), _three_platform_resolutions(), {}))
    assert lock.locked_versions(Target("linux-aarch64", "3.11")) == {
        "numpy": Version("2.0.0"),  # its marker is sys_platform == 'linux'
        "pure": Version("1.0"),
    }


# --- io: write / read / staleness -----------------------------------------------------------------


def _write_default_lock(tmp_path: Path) -> EnvironmentSpec:
    env = _env(tmp_path)
    write_lock(env.lock_path, build_lock(env, _three_platform_resolutions(), {}))
    return env


def test_write_lock_is_idempotent(tmp_path: Path) -> None:
    env = _env(tmp_path)
    doc = build_lock(env, _three_platform_resolutions(), {})
    assert write_lock(env.lock_path, doc) is True
    first = env.lock_path.read_bytes()
    assert write_lock(env.lock_path, doc) is False
    assert env.lock_path.read_bytes() == first
    read = lockfile.read(env.lock_path)
    assert read is not None and read.data == tomllib.loads(first.decode())


def test_named_environment_lock_path(tmp_path: Path) -> None:
    assert _env(tmp_path, name="ci").lock_path == tmp_path / "pylock.ci.toml"


def test_staleness_reports_missing_lock(tmp_path: Path) -> None:
    env = _env(tmp_path)
    for call in (staleness, check):
        with pytest.raises(MissingLockError) as info:
            call(env, _targets(*env.platforms))
        assert info.value.exit_code == 1
        assert str(info.value) == (
            f"{env.lock_path} does not exist: environment 'default' is not locked yet"
        )


def test_staleness_is_none_for_fresh_lock(tmp_path: Path) -> None:
    env = _write_default_lock(tmp_path)
    assert staleness(env, _targets(*env.platforms)) is None
    check(env, _targets(*env.platforms))  # does not raise


def test_staleness_reports_spec_change(tmp_path: Path) -> None:
    env = _write_default_lock(tmp_path)
    changed = replace(env, dependencies=(*env.dependencies, "rich"))
    reason = staleness(changed, _targets(*changed.platforms))
    assert reason == (
        "pylock.toml is stale: the spec of environment 'default' changed since it was locked"
    )


def test_staleness_reports_added_platform(tmp_path: Path) -> None:
    env = _write_default_lock(tmp_path)
    wider = env.with_platforms([*env.platforms, "linux-aarch64"])
    reason = staleness(wider, _targets(*wider.platforms))
    assert reason == "pylock.toml is stale: platform(s) linux-aarch64 not locked"


def test_staleness_reports_removed_platform(tmp_path: Path) -> None:
    env = _write_default_lock(tmp_path)
    narrower = env.with_platforms(["linux-64"])
    reason = staleness(narrower, _targets("linux-64"))
    assert reason == (
        "pylock.toml is stale: locks platform(s) osx-arm64, win-64 the spec no longer asks for"
    )


def test_staleness_reports_corrupt_lock(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env.lock_path.write_text("lock-version = [\n", encoding="utf-8")
    reason = staleness(env, _targets(*env.platforms))
    assert reason is not None
    assert reason.startswith(f"{env.lock_path}: not a valid PEP 751 lock: ")
    with pytest.raises(UsageError):
        lockfile.read(env.lock_path)


def test_read_lock_of_missing_file_is_none(tmp_path: Path) -> None:
    assert lockfile.read(tmp_path / "pylock.toml") is None


def test_canonical_names_in_lock(tmp_path: Path) -> None:
    target = Target("linux-64", "3.11")
    pkg = _pkg("Typing_Extensions-4.9.0-py3-none-any.whl")
    doc = build_lock(_env(tmp_path, platforms=["linux-64"]), [_resolution(target, pkg)], {})
    assert doc["packages"][0]["name"] == canonicalize_name("Typing_Extensions")
