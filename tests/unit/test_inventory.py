"""``audit.inventory``: the rows of a lock, read from a lock made by envlock's own writer."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from packaging.utils import parse_sdist_filename, parse_wheel_filename

from envlock.audit.inventory import interpreter_rows, rows
from envlock.errors import UsageError
from envlock.index.simple import DistFile
from envlock.lock import lockfile
from envlock.lock.document import build_lock
from envlock.lock.lockfile import LockFile, render
from envlock.lock.model import LockedInterpreter
from envlock.platforms import Target
from envlock.resolve import Resolution, ResolvedPackage
from envlock.spec import EnvironmentSpec
from envlock.spec_indexes import Index

PYPI = "https://pypi.org/simple/"
PRIVATE = "https://pkgs.example.com/simple/"
LINUX_TAG = "cp311-cp311-manylinux_2_17_x86_64"
WIN_TAG = "cp311-cp311-win_amd64"


def _file(filename: str, index: str = PYPI, day: int = 1) -> DistFile:
    if filename.endswith(".whl"):
        name, version, _, tags = parse_wheel_filename(filename)
    else:
        (name, version), tags = parse_sdist_filename(filename), frozenset()
    return DistFile(
        filename=filename,
        url=f"https://files.example.com/{filename}",
        name=name,
        version=version,
        is_wheel=filename.endswith(".whl"),
        tags=frozenset(tags),
        sha256=hashlib.sha256(filename.encode()).hexdigest(),
        size=1000,
        upload_time=datetime(2024, 1, day, tzinfo=timezone.utc),
        index=index,
    )


def _pkg(
    filename: str, *requires: str, license: str | None = None, index: str = PYPI, day: int = 1
) -> ResolvedPackage:
    f = _file(filename, index, day)
    return ResolvedPackage(f.name, f.version, f, None, requires, license=license)


APP_REQUIRES = (
    "lib>=1",
    'colorama; sys_platform == "win32"',
    'pysocks; extra == "socks"',
    'pytest; extra == "test"',
)


def make_lock(tmp_path: Path, *, bundled: bool = False) -> LockFile:
    """Two platforms: app (pure) needs lib (2.0 on linux, 1.0 on windows), colorama on Windows,
    pysocks through an extra (installed on linux); pure is a linux wheel and an sdist on
    windows, from a private index; nothing at all records a license for lib 1.0."""
    env = EnvironmentSpec(
        name=None,
        python="3.11",
        platforms=("linux-64", "win-64"),
        dependencies=("app[socks]", "pure"),
        indexes=(Index("pypi", PYPI),),
        spec_dir=Path("/nonexistent"),
    )
    python = "3.11.9" if bundled else "3.11"
    linux, win = Target("linux-64", python), Target("win-64", python)
    app = _pkg("app-1.0-py3-none-any.whl", *APP_REQUIRES, license="MIT")
    resolutions = [
        Resolution(
            linux,
            {
                "app": app,
                "lib": _pkg(f"lib-2.0-{LINUX_TAG}.whl", license="Apache-2.0 OR MIT", day=5),
                "pysocks": _pkg("pysocks-1.7.1-py3-none-any.whl", license="BSD-3-Clause"),
                "pure": _pkg(f"pure-1.0-{LINUX_TAG}.whl", index=PRIVATE, day=2),
            },
        ),
        Resolution(
            win,
            {
                "app": app,
                "lib": _pkg(f"lib-1.0-{WIN_TAG}.whl"),
                "colorama": _pkg("colorama-0.4.6-py3-none-any.whl", license="Custom terms"),
                "pure": _pkg("pure-1.0.tar.gz", "lib", index=PRIVATE, day=9),
            },
        ),
    ]
    interpreters = None
    if bundled:
        interpreters = {
            p: LockedInterpreter(
                "3.11.9",
                "20240814",
                f"cpython-3.11.9+20240814-{p}-install_only_stripped.tar.gz",
                f"https://pbs.example/cpython-3.11.9%2B20240814-{p}-install_only_stripped.tar.gz",
                f"{i + 1}" * 64,
                40_000_000,
            )
            for i, p in enumerate(("linux-64", "win-64"))
        }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "pylock.toml"
    path.write_bytes(render(build_lock(env, resolutions, {}, interpreters)))
    return lockfile.load(path)


def test_one_row_per_name_and_version_with_the_platforms_installing_it(tmp_path: Path) -> None:
    table = {(r.name, r.version): r.platforms for r in rows(make_lock(tmp_path))}
    assert table == {
        ("app", "1.0"): ("linux-64", "win-64"),
        ("colorama", "0.4.6"): ("win-64",),
        ("lib", "1.0"): ("win-64",),
        ("lib", "2.0"): ("linux-64",),
        ("pure", "1.0"): ("linux-64", "win-64"),
        ("pysocks", "1.7.1"): ("linux-64",),
    }
    assert list(table) == sorted(table)  # (name, version) order


def test_rows_for_asked_platforms_only(tmp_path: Path) -> None:
    out = rows(make_lock(tmp_path), ["win-64"])
    assert [(r.name, r.version) for r in out] == [
        ("app", "1.0"),
        ("colorama", "0.4.6"),
        ("lib", "1.0"),
        ("pure", "1.0"),
    ]
    pure = next(r for r in out if r.name == "pure")
    # Only what windows installs: the sdist, not the linux wheel.
    assert pure.kinds == ("sdist",)
    assert [f.filename for f in pure.files] == ["pure-1.0.tar.gz"]
    assert pure.platforms == ("win-64",)


def test_unknown_platform_is_the_usual_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="has no osx-arm64 resolution"):
        rows(make_lock(tmp_path), ["osx-arm64"])


def test_files_kinds_index_and_newest_upload_time(tmp_path: Path) -> None:
    pure = next(r for r in rows(make_lock(tmp_path)) if r.name == "pure")
    assert [f.filename for f in pure.files] == [f"pure-1.0-{LINUX_TAG}.whl", "pure-1.0.tar.gz"]
    assert pure.kinds == ("sdist", "wheel")
    assert pure.index == PRIVATE
    assert pure.upload_time == datetime(2024, 1, 9, tzinfo=timezone.utc)
    for f in pure.files:
        assert f.sha256 == hashlib.sha256(f.filename.encode()).hexdigest()
    app = next(r for r in rows(make_lock(tmp_path)) if r.name == "app")
    assert app.index == PYPI and app.kinds == ("wheel",) and len(app.files) == 1


def test_licenses_as_recorded(tmp_path: Path) -> None:
    licenses = {(r.name, r.version): r.license for r in rows(make_lock(tmp_path))}
    assert licenses[("app", "1.0")] == "MIT"
    assert licenses[("lib", "2.0")] == "Apache-2.0 OR MIT"
    assert licenses[("colorama", "0.4.6")] == "Custom terms"
    assert licenses[("lib", "1.0")] is None


def test_requires_are_the_dependencies_each_platform_installs(tmp_path: Path) -> None:
    requires = {(r.name, r.version): r.requires for r in rows(make_lock(tmp_path))}
    # colorama only where its marker holds (windows); pysocks through the extra that was used
    # (installed); pytest's extra was not used (not installed): no edge.
    assert requires[("app", "1.0")] == ("colorama", "lib", "pysocks")
    assert requires[("pure", "1.0")] == ("lib",)  # the windows sdist's metadata
    assert requires[("lib", "2.0")] == ()
    linux_only = {(r.name, r.version): r.requires for r in rows(make_lock(tmp_path), ["linux-64"])}
    assert linux_only[("app", "1.0")] == ("lib", "pysocks")
    assert linux_only[("pure", "1.0")] == ()  # the linux wheel declares nothing


def test_interpreter_rows_of_a_bundled_lock(tmp_path: Path) -> None:
    lock = make_lock(tmp_path, bundled=True)
    found = interpreter_rows(lock)
    assert [(r.interpreter.name, r.platforms) for r in found] == [
        ("cpython-3.11.9+20240814-linux-64-install_only_stripped.tar.gz", ("linux-64",)),
        ("cpython-3.11.9+20240814-win-64-install_only_stripped.tar.gz", ("win-64",)),
    ]
    assert [r.platforms for r in interpreter_rows(lock, ["win-64"])] == [("win-64",)]
    assert interpreter_rows(make_lock(tmp_path / "system")) == []
