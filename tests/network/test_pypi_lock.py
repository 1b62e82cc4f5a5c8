"""Against the real PyPI (marked ``network``; runs in CI, deselect with -m "not network")."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration.helpers import envlock, load_lock, selected

pytestmark = pytest.mark.network

PLATFORMS = ["linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64"]


def test_lock_real_packages_for_every_platform(tmp_path: Path) -> None:
    (tmp_path / "envlock.toml").write_text(
        f'python = "3.11"\nplatforms = {PLATFORMS!r}\n'.replace("'", '"')
        + 'dependencies = ["requests==2.32.3", "numpy==2.1.3", "rich==13.9.4",'
        ' "colorama==0.4.6; sys_platform == \\"win32\\""]\n'
        'exclude-newer = "2025-01-01T00:00:00Z"\n'
    )
    r = envlock(tmp_path, "lock")
    assert r.code == 0, r.stderr
    lock_path = tmp_path / "pylock.toml"
    for platform in PLATFORMS:
        chosen = selected(lock_path, platform)
        assert chosen["numpy"] == "2.1.3"
        assert chosen["requests"] == "2.32.3"
        assert ("colorama" in chosen) == (platform == "win-64")
    numpy = next(p for p in load_lock(lock_path)["packages"] if p["name"] == "numpy")
    names = sorted(w["name"] for w in numpy["wheels"])
    assert len(names) == 5  # one native wheel per platform, nothing more
    assert any("win_amd64" in n for n in names) and any(
        "macosx" in n and "arm64" in n for n in names
    )
    # Deterministic against the real index: a fresh cache gives the same bytes.
    first = lock_path.read_bytes()
    lock_path.unlink()
    assert envlock(tmp_path, "lock", "--cache-dir", str(tmp_path / "other-cache")).code == 0
    assert lock_path.read_bytes() == first
    assert envlock(tmp_path, "lock", "--check").code == 0


def test_real_source_only_release_with_allow_sdist(tmp_path: Path) -> None:
    (tmp_path / "envlock.toml").write_text(
        'python = "3.11"\ninterpreter = "system"\nplatforms = ["linux-64"]\n'
        'dependencies = ["fancyimpute==0.7.0"]\nallow-sdist = ["fancyimpute", "knnimpute"]\n'
        'exclude-newer = "2025-06-01T00:00:00Z"\n'
    )
    r = envlock(tmp_path, "lock")
    assert r.code == 0, r.stderr
    entry = next(
        p for p in load_lock(tmp_path / "pylock.toml")["packages"] if p["name"] == "fancyimpute"
    )
    assert entry["sdist"]["name"].startswith("fancyimpute-0.7.0")
    chosen = selected(tmp_path / "pylock.toml", "linux-64")
    assert "knnimpute" in chosen  # a dependency read from the sdist's metadata
    assert "Warning" not in r.stderr  # the backend's own chatter stays out of our output


def test_source_only_release_is_refused_with_allow_sdist_false(tmp_path: Path) -> None:
    (tmp_path / "envlock.toml").write_text(
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["fancyimpute==0.7.0"]\n'
        "allow-sdist = false\n"
    )
    r = envlock(tmp_path, "lock")
    assert r.code == 1
    assert (
        "error: no version of fancyimpute==0.7.0 can be installed on linux-64 / cp311: "
        "fancyimpute 0.7.0: it has only a source distribution, and allow-sdist = false refuses "
        "its sdist"
    ) in r.stderr
    assert 'hint: set allow-sdist = ["fancyimpute"] (or true) in the spec' in r.stderr


def test_bundled_interpreter_entries_come_from_pbs_installers_table(tmp_path: Path) -> None:
    """python = "3.11" with the default bundled interpreter: each platform's entry is the
    newest 3.11 python-build-standalone build pbs-installer lists, URL and sha256 verbatim."""
    from envlock.interpreters import choose, standalone_builds

    platforms = ["linux-64", "osx-arm64", "win-64"]
    (tmp_path / "envlock.toml").write_text(
        'python = "3.11"\ninterpreter = "bundled"\n'
        'platforms = ["linux-64", "osx-arm64", "win-64"]\ndependencies = ["six"]\n'
    )
    r = envlock(tmp_path, "lock")
    assert r.code == 0, r.stderr
    lock = load_lock(tmp_path / "pylock.toml")
    expected = choose(standalone_builds(), "3.11", platforms)
    targets = {t["platform"]: t for t in lock["tool"]["envlock"]["targets"]}
    assert sorted(targets) == platforms
    from pbs_installer._versions import get_python_versions

    table = {
        (url, sha) for files in get_python_versions().values() for url, sha in files.values() if sha
    }
    for platform in platforms:
        entry = targets[platform]["interpreter"]
        build = expected[platform]
        assert (entry["url"], entry["sha256"]) in table
        assert entry["url"] == build.url and entry["sha256"] == build.sha256
        assert entry["version"] == str(build.version) == targets[platform]["python"]
        assert entry["name"].endswith("-install_only_stripped.tar.gz")
    assert lock["requires-python"] == f"=={expected['linux-64'].version}"
    assert envlock(tmp_path, "lock", "--check").code == 0
