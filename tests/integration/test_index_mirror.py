"""``ENVLOCK_INDEX_URL``: a mirror of the first index is where pages and files are fetched, never
a change of the spec. Locks stay fresh through it and keep the canonical index URL."""

from __future__ import annotations

from pathlib import Path

from integration.helpers import envlock, load_lock
from support.index import IndexServer
from support.wheels import Dist

DISTS = [Dist("app", "1.0", requires=["lib"]), Dist("lib", "1.0"), Dist("lib", "2.0")]


def _spec(project: Path, deps: list[str], *indexes: IndexServer) -> None:
    text = 'interpreter = "system"\npython = "3.11"\nplatforms = ["linux-64"]\n'
    text += "dependencies = [" + ", ".join(f'"{d}"' for d in deps) + "]\n"
    for n, server in enumerate(indexes):
        text += f'\n[[index]]\nname = "index{n}"\nurl = "{server.url}"\n'
    (project / "envlock.toml").write_text(text)


def _indexes(project: Path) -> dict[str, str]:
    return {p["name"]: p["index"] for p in load_lock(project / "pylock.toml")["packages"]}


def test_a_lock_stays_fresh_through_a_mirror_and_a_relock_records_the_canonical_index(
    index, project
):
    canonical, mirror = index(DISTS), index(DISTS)  # the same files, byte for byte
    _spec(project, ["app"], canonical)
    assert envlock(project, "lock").code == 0
    through_mirror = {"ENVLOCK_INDEX_URL": mirror.url}

    r = envlock(project, "lock", "--check", env=through_mirror)
    assert r.code == 0, r.stderr
    canonical.reset_counts()
    r = envlock(project, "lock", "--check", "--online", env=through_mirror)
    assert r.code == 0, r.stderr
    assert canonical.count() == 0 and mirror.count("/simple/") > 0

    # A re-lock through the mirror (a new dependency) reads only the mirror, records the
    # index the spec names, and the files the mirror serves.
    mirror.add(Dist("extra", "1.0"))
    _spec(project, ["app", "extra"], canonical)
    canonical.reset_counts()
    r = envlock(project, "lock", env=through_mirror)
    assert r.code == 0, r.stderr
    assert canonical.count() == 0
    assert set(_indexes(project).values()) == {canonical.url}
    files = [p["wheels"][0]["url"] for p in load_lock(project / "pylock.toml")["packages"]]
    assert files and all(url.startswith(mirror.base_url) for url in files)
    assert envlock(project, "lock", "--check").code == 0  # and fresh without the mirror


def test_a_package_locked_from_the_mirrored_index_stays_on_it(index, project):
    canonical, mirror = index(DISTS), index([Dist("lib", "1.0"), Dist("lib", "2.0")])
    other = index([Dist("app", "9.0", requires=["lib"])])  # a look-alike on the second index
    _spec(project, ["app"], canonical, other)
    assert envlock(project, "lock").code == 0
    assert _indexes(project)["app"] == canonical.url
    # The mirror lacks app: the locked package is not taken from the other index instead.
    r = envlock(project, "lock", env={"ENVLOCK_INDEX_URL": mirror.url})
    assert r.code == 1
    assert f"app is locked from {canonical.url}, but {mirror.url} does not list it" in r.stderr
    assert _indexes(project)["app"] == canonical.url
