"""Where each package comes from: recorded, pinned, kept on re-lock, checked online."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration.helpers import envlock, load_lock
from support.wheels import Dist


def _spec(project: Path, deps: list[str], indexes: list[tuple[str, str, list[str] | None]]) -> None:
    # The system interpreter: --check --online would ask GitHub for a bundled one's archive.
    listed = repr(deps).replace("'", '"')
    text = 'interpreter = "system"\npython = "3.11"\nplatforms = ["linux-64"]\n'
    text += f"dependencies = {listed}\n"
    for name, url, packages in indexes:
        text += f'\n[[index]]\nname = "{name}"\nurl = "{url}"\n'
        if packages is not None:
            text += f"packages = {packages!r}\n".replace("'", '"')
    (project / "envlock.toml").write_text(text)


def _packages(project: Path) -> dict[str, dict[str, object]]:
    return {p["name"]: p for p in load_lock(project / "pylock.toml")["packages"]}


def test_each_package_records_its_index(index, project) -> None:
    private = index([Dist("internal", "1.0", requires=["common"])])
    public = index([Dist("common", "2.0")])
    _spec(project, ["internal"], [("private", private.url, None), ("public", public.url, None)])
    assert envlock(project, "lock").code == 0
    pkgs = _packages(project)
    assert pkgs["internal"]["index"] == private.url
    assert pkgs["common"]["index"] == public.url


@pytest.mark.parametrize("pinned_first", [True, False])
def test_pinned_packages_come_only_from_their_index_whatever_the_order(
    index, project, pinned_first: bool
) -> None:
    # The public index also has "internal" (a dependency-confusion attempt, newer version).
    private = index([Dist("internal", "1.0")])
    public = index([Dist("internal", "99.0"), Dist("common", "2.0")])
    pinned = ("private", private.url, ["internal"])
    general = ("public", public.url, None)
    _spec(project, ["internal", "common"], [pinned, general] if pinned_first else [general, pinned])
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    pkgs = _packages(project)
    assert pkgs["internal"]["version"] == "1.0"
    assert pkgs["internal"]["index"] == private.url
    assert pkgs["common"]["index"] == public.url
    assert public.count("/simple/internal/") == 0  # never even asked
    assert private.count("/simple/common/") == 0  # a pinned index serves only its packages


def test_pinned_package_missing_from_its_index_is_an_error(index, project) -> None:
    private = index([Dist("other", "1.0")])
    public = index([Dist("internal", "99.0")])
    _spec(
        project,
        ["internal"],
        [("private", private.url, ["internal"]), ("public", public.url, None)],
    )
    r = envlock(project, "lock")
    assert r.code == 1
    assert f"internal is pinned to index 'private' in the spec, but {private.url} does not " in (
        r.stderr
    )
    assert not (project / "pylock.toml").exists()


def test_same_package_pinned_to_two_indexes_is_a_spec_error(index, project) -> None:
    a, b = index([Dist("x", "1.0")]), index([Dist("x", "1.0")])
    _spec(project, ["x"], [("a", a.url, ["x"]), ("b", b.url, ["X"])])
    r = envlock(project, "lock")
    assert r.code == 2 and "'x' is already pinned to index 'a'" in r.stderr


def test_relock_never_falls_through_to_another_index(index, project) -> None:
    private = index([Dist("internal", "1.0")])
    public = index([Dist("internal", "5.0")])
    _spec(project, ["internal"], [("private", private.url, None), ("public", public.url, None)])
    assert envlock(project, "lock").code == 0
    before = (project / "pylock.toml").read_bytes()
    assert _packages(project)["internal"]["index"] == private.url

    private.fail("/simple/internal/", 404, times=100)  # gone from the private index
    r = envlock(project, "lock", "--upgrade-package", "other")
    assert r.code == 1
    assert (
        f"error: internal is locked from {private.url}, but {private.url} does not list it "
        "(HTTP 404)"
    ) in r.stderr
    assert "envlock lock --upgrade-package internal" in r.stderr
    assert public.count("/simple/internal/") == 0
    assert (project / "pylock.toml").read_bytes() == before

    # An outage of the recorded index is an error too, never a reason to look elsewhere.
    private.clear_failures()
    private.fail("/simple/internal/", 503, times=100)
    r = envlock(project, "lock", env={"ENVLOCK_HTTP_RETRIES": "0"})
    assert r.code == 3 and "HTTP 503" in r.stderr
    assert public.count("/simple/internal/") == 0

    # Moving it takes an explicit --upgrade-package, and the summary says so.
    private.clear_failures()
    private.fail("/simple/internal/", 404, times=100)
    r = envlock(project, "lock", "--upgrade-package", "internal")
    assert r.code == 0, r.stderr
    assert _packages(project)["internal"]["index"] == public.url
    assert f"~ internal 1.0 -> 5.0 (upgraded; index {private.url} -> {public.url})" in r.stderr


def test_relock_summary_lists_version_changes(index, project) -> None:
    server = index([Dist("a", "1.0"), Dist("b", "1.0")])
    _spec(project, ["a"], [("local", server.url, None)])
    assert envlock(project, "lock").code == 0
    server.add(Dist("a", "2.0", requires=["b"]))
    r = envlock(project, "lock", "--upgrade")
    assert r.code == 0
    # --upgrade ignores the old lock for resolution; the summary still compares with it
    assert "    ~ a 1.0 -> 2.0 (upgraded)\n    + b 1.0\n" in r.stderr
    r = envlock(project, "lock")
    assert "changes since the last lock" not in r.stderr  # nothing changed


def test_summary_shows_added_removed_and_upgraded(index, project) -> None:
    server = index([Dist("a", "1.0", requires=["gone"]), Dist("gone", "1.0")])
    _spec(project, ["a"], [("local", server.url, None)])
    assert envlock(project, "lock").code == 0
    server.add(Dist("a", "2.0", requires=["new"]))
    server.add(Dist("new", "1.0"))
    r = envlock(project, "lock", "--upgrade-package", "a")
    assert r.code == 0, r.stderr
    assert "  changes since the last lock:" in r.stderr
    assert "    ~ a 1.0 -> 2.0 (upgraded)" in r.stderr
    assert "    + new 1.0" in r.stderr
    assert "    - gone 1.0" in r.stderr


# --- lock --check --online ------------------------------------------------------------------


def test_check_online_confirms_every_file_with_its_index(index, project) -> None:
    server = index([Dist("a", "1.0", requires=["b"]), Dist("b", "1.0")])
    _spec(project, ["a"], [("local", server.url, None)])
    assert envlock(project, "lock").code == 0
    r = envlock(project, "lock", "--check", "--online")
    assert r.code == 0, r.stderr
    assert "2 locked file(s) match their indexes" in r.stderr


def test_check_online_catches_a_file_pointed_at_another_host(index, project) -> None:
    server = index([Dist("a", "1.0")])
    _spec(project, ["a"], [("local", server.url, None)])
    assert envlock(project, "lock").code == 0
    lock = project / "pylock.toml"
    good = server.file_url("a-1.0-py3-none-any.whl")
    lock.write_text(lock.read_text().replace(good, "https://evil.example/a-1.0-py3-none-any.whl"))
    # The offline check cannot see it: the spec did not change.
    assert envlock(project, "lock", "--check").code == 0
    r = envlock(project, "lock", "--check", "--online")
    assert r.code == 1
    assert (
        "pylock.toml: a 1.0: a-1.0-py3-none-any.whl: the lock says "
        f"https://evil.example/a-1.0-py3-none-any.whl, the index lists {good}"
    ) in r.stdout
    assert "1 locked file(s) do not match their index" in r.stderr


def test_check_online_catches_a_changed_hash_and_a_file_the_index_dropped(index, project) -> None:
    server = index([Dist("a", "1.0", requires=["b"]), Dist("b", "1.0")])
    _spec(project, ["a"], [("local", server.url, None)])
    assert envlock(project, "lock").code == 0
    lock = project / "pylock.toml"
    sha = server.sha256("a-1.0-py3-none-any.whl")
    lock.write_text(lock.read_text().replace(sha, "f" * 64))
    server.fail("/simple/b/", 404, times=10)
    r = envlock(project, "lock", "--check", "--online")
    assert r.code == 1
    assert f"a-1.0-py3-none-any.whl: sha256 {'f' * 64} in the lock, {sha} on the index" in r.stdout
    assert f"pylock.toml: b 1.0: {server.url} no longer lists b" in r.stdout


def test_online_without_check_is_a_usage_error(project) -> None:
    (project / "envlock.toml").write_text('python = "3.11"\n')
    r = envlock(project, "lock", "--online")
    assert r.code == 2 and "--online only goes with --check" in r.stderr
