"""A hostile lock through the real CLI: every command refuses it in one line (exit 2) before
touching the cache, the network, or anything the lock's values point at."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import tomli_w

from integration.helpers import envlock, load_lock, write_spec
from support.wheels import Dist, build_wheel

SHA_KEY = "packages[0].wheels[0].hashes.sha256"


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` and its bytes (what a command must leave alone); the cache's
    empty lock files (``locks/``) are how commands take turns, not content."""
    if not root.exists():
        return {}
    files = {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file()}
    return {name: p.read_bytes() for name, p in files.items() if not name.startswith("locks/")}


def _locked_and_fetched(index, project: Path) -> Path:
    server = index([Dist("alpha", "1.0")])
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["alpha"]\n',
    )
    assert envlock(project, "lock").code == 0
    fetched = envlock(project, "fetch")
    assert fetched.code == 0, fetched.stderr
    return project / "pylock.toml"


@pytest.mark.parametrize(
    ("key", "value", "location"),
    [
        ("sha256", "../../../victim", SHA_KEY),
        ("sha256", "0" * 63, SHA_KEY),
        ("name", "../../victim/alpha-1.0-py3-none-any.whl", "packages[0].wheels[0]"),
        ("url", "file:///etc/passwd", "packages[0].wheels[0].url"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [
        ["fetch"],
        ["materialize", "--platform", "linux-64"],
        ["build"],
        ["cache", "prune"],
        ["lock", "--check"],
    ],
    ids=" ".join,
)
def test_every_command_refuses_a_hostile_lock_in_one_line(
    index, project, cache, tmp_path, command, key, value, location
):
    lock_path = _locked_and_fetched(index, project)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    doc = load_lock(lock_path)
    wheel = doc["packages"][0]["wheels"][0]
    if key == "sha256":
        wheel["hashes"]["sha256"] = value
    else:
        wheel[key] = value
    lock_path.write_bytes(tomli_w.dumps(doc).encode())
    before = _tree(cache)

    r = envlock(project, *command)

    # ``lock --check`` answers "is the lock up to date?": a corrupt one is not (exit 1).
    assert r.code == (1 if command == ["lock", "--check"] else 2), (r.stdout, r.stderr)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    assert re.search(rf"pylock\.toml: {re.escape(location)}", errors[0]), errors[0]
    assert "Traceback" not in r.stderr
    # The hint: how to get a good lock back (prune: how to go on without it).
    assert ("--forget-lock" if command == ["cache", "prune"] else "envlock lock") in r.stderr
    assert _tree(cache) == before
    assert _tree(victim) == {"keep.txt": b"mine"}
    assert not (project / ".envlock").exists()


def test_a_lock_edited_back_to_its_values_works_again(index, project):
    lock_path = _locked_and_fetched(index, project)
    good = lock_path.read_bytes()
    doc = load_lock(lock_path)
    doc["packages"][0]["wheels"][0]["size"] = -1
    lock_path.write_bytes(tomli_w.dumps(doc).encode())
    assert envlock(project, "fetch").code == 2
    lock_path.write_bytes(good)
    r = envlock(project, "fetch")
    assert r.code == 0, r.stderr


def _file_index(root: Path) -> str:
    """A PEP 503 tree on disk (``file://`` index) serving one wheel of ``alpha``."""
    wheel = build_wheel(Dist("alpha", "1.0"), root / "files")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    page = root / "simple" / "alpha"
    page.mkdir(parents=True)
    (page / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="../../files/{wheel.name}#sha256={sha}">'
        f"{wheel.name}</a></body></html>"
    )
    (root / "simple" / "index.html").write_text('<a href="alpha/">alpha</a>')
    return (root / "simple").as_uri() + "/"


def test_a_file_index_lock_loads_and_its_file_urls_are_used(project, cache, tmp_path):
    index_url = _file_index(tmp_path / "local-index")
    write_spec(
        project, index_url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["alpha"]\n'
    )
    locked = envlock(project, "lock")
    assert locked.code == 0, locked.stderr
    wheel = load_lock(project / "pylock.toml")["packages"][0]["wheels"][0]
    assert wheel["url"].startswith("file:///")
    fetched = envlock(project, "fetch")
    assert fetched.code == 0, fetched.stderr

    # The same file URL under an https index is refused: a lock cannot read local files.
    doc = load_lock(project / "pylock.toml")
    doc["packages"][0]["index"] = "https://pkgs.example.com/simple/"
    (project / "pylock.toml").write_bytes(tomli_w.dumps(doc).encode())
    r = envlock(project, "fetch")
    assert r.code == 2
    assert "packages[0].wheels[0].url: file URLs are allowed only from a file:// index" in r.stderr
