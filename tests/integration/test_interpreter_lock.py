"""The bundled interpreter in the lock: chosen, pinned, hashed, checked, fetched and kept.

The archives here are small stand-ins served from ``file://`` URLs (the pbs layout and a real
interpreter are tested where environments are built); what matters is the lock and the cache.
"""

from __future__ import annotations

import hashlib
import io
import re
import socket
import tarfile
from pathlib import Path

import pytest
import tomli_w

from envlock.cache.store import ArtifactStore
from envlock.interpreters import standalone_builds
from integration.helpers import envlock, load_lock, write_spec
from integration.test_cache import stored
from support.wheels import Dist


def stand_in(directory: Path, name: str = "my-python-3.11.4.tar.gz", body: bytes = b"x") -> Path:
    """A small tar.gz in the python-build-standalone layout."""
    directory.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("python/bin/python3.11")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    path = directory / name
    path.write_bytes(buf.getvalue())
    return path


def sources(archive: Path, platform: str = "linux-64", version: str = "3.11.4") -> str:
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    return (
        f'[interpreter-sources.{platform}]\nurl = "{archive.as_uri()}"\nsha256 = "{sha}"\n'
        f'version = "{version}"\n'
    )


def bundled_spec(project: Path, url: str, archive: Path, extra: str = "") -> None:
    write_spec(
        project,
        url,
        'interpreter = "bundled"\npython = "3.11"\nplatforms = ["linux-64"]\n'
        'dependencies = ["alpha"]\n' + extra + sources(archive),
    )


def test_lock_records_the_interpreter_and_resolves_for_its_exact_version(
    index, project: Path, tmp_path: Path
) -> None:
    server = index(
        [
            Dist("alpha", "1.0", requires=["beta; python_full_version >= '3.11.4'"]),
            Dist("beta", "1.0"),
        ]
    )
    archive = stand_in(tmp_path / "pythons")
    bundled_spec(project, server.url, archive)
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert "interpreter: CPython 3.11.4 (bundled)" in r.stderr
    lock = load_lock(project / "pylock.toml")
    assert lock["requires-python"] == "==3.11.4"
    assert lock["tool"]["envlock"]["interpreter"] == "bundled"
    (target,) = lock["tool"]["envlock"]["targets"]
    assert target["python"] == "3.11.4"
    assert target["interpreter"] == {
        "version": "3.11.4",
        "build": "",
        "name": archive.name,
        "url": archive.as_uri(),
        "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
        "size": archive.stat().st_size,
    }
    # python_full_version is the interpreter's: the 3.11.4 marker held, beta is locked.
    assert sorted(p["name"] for p in lock["packages"]) == ["alpha", "beta"]
    assert envlock(project, "lock", "--check").code == 0
    # The audit lists the interpreter archive beside the packages.
    audit = envlock(project, "audit")
    assert audit.code == 0, audit.stderr
    assert re.search(r"cpython\s+.\s+3\.11\.4\s+.\s+all\s+.\s+-\s+.\s+interpreter", audit.stdout)
    # Same inputs, same bytes.
    first = (project / "pylock.toml").read_bytes()
    assert envlock(project, "lock").code == 0
    assert (project / "pylock.toml").read_bytes() == first


def test_lock_check_notices_a_changed_interpreter(index, project: Path, tmp_path: Path) -> None:
    server = index([Dist("alpha", "1.0")])
    archive = stand_in(tmp_path / "pythons")
    bundled_spec(project, server.url, archive)
    assert envlock(project, "lock").code == 0
    other = stand_in(tmp_path / "pythons", "my-python-3.11.5.tar.gz", b"newer")
    bundled_spec(project, server.url, other)
    r = envlock(project, "lock", "--check")
    assert r.code == 1 and "stale" in r.stderr
    spec = (project / "envlock.toml").read_text()
    (project / "envlock.toml").write_text(spec.replace('"bundled"', '"system"'))
    r = envlock(project, "lock", "--check")
    assert r.code == 1
    assert "the spec asks for the system interpreter, the lock has the bundled one" in r.stderr
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert "~ python CPython 3.11.4 -> 3.11 (system interpreter)" in r.stderr
    assert "interpreter" not in load_lock(project / "pylock.toml")["tool"]["envlock"]["targets"][0]


def test_sources_that_do_not_fit_the_spec_are_one_line_errors(
    index, project: Path, tmp_path: Path
) -> None:
    server = index([Dist("alpha", "1.0")])
    archive = stand_in(tmp_path / "pythons")
    write_spec(
        project,
        server.url,
        'interpreter = "bundled"\npython = "3.12"\nplatforms = ["linux-64"]\n'
        'dependencies = ["alpha"]\n' + sources(archive),
    )
    r = envlock(project, "lock")
    assert r.code == 2
    assert "interpreter-sources.linux-64: version 3.11.4 does not fit python" in r.stderr
    assert "Traceback" not in r.stderr and not (project / "pylock.toml").exists()


def test_fetch_stores_the_interpreter_hash_checked_and_prune_keeps_it(
    index, project: Path, tmp_path: Path, cache: Path
) -> None:
    server = index([Dist("alpha", "1.0")])
    archive = stand_in(tmp_path / "pythons")
    bundled_spec(project, server.url, archive)
    assert envlock(project, "lock").code == 0
    r = envlock(project, "fetch")
    assert r.code == 0, r.stderr
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert ArtifactStore(cache).get(sha, archive.name, archive.stat().st_size) is not None
    assert archive.name in stored(cache)
    # Warm: nothing fetched again, not even the file:// archive is read.
    archive.unlink()
    r = envlock(project, "fetch")
    assert r.code == 0, r.stderr
    # Prune keeps what the lock needs, the interpreter included.
    r = envlock(project, "cache", "prune")
    assert r.code == 0, r.stderr
    assert archive.name in stored(cache)


def test_an_interpreter_with_other_bytes_never_enters_the_cache(
    index, project: Path, tmp_path: Path, cache: Path
) -> None:
    server = index([Dist("alpha", "1.0")])
    archive = stand_in(tmp_path / "pythons")
    bundled_spec(project, server.url, archive)
    assert envlock(project, "lock").code == 0
    stand_in(tmp_path / "pythons", body=b"tampered")  # same name, other bytes
    r = envlock(project, "fetch")
    assert r.code == 4, r.stderr
    assert archive.name in r.stderr and "Traceback" not in r.stderr
    assert archive.name not in stored(cache)


def test_a_python_mirror_replaces_the_download_prefix_at_fetch_time(
    index, project: Path, tmp_path: Path, cache: Path
) -> None:
    """python-build-standalone URLs from pbs-installer's table, fetched through a mirror (here
    a directory with the release layout whose copy is corrupt): the sha256 decides."""
    server = index([Dist("alpha", "1.0")])
    write_spec(
        project,
        server.url,
        'interpreter = "bundled"\npython = "3.11"\nplatforms = ["linux-64"]\n'
        'dependencies = ["alpha"]\n',
    )
    r = envlock(project, "lock")  # the download host is out of reach here: no size
    assert r.code == 0, r.stderr
    entry = load_lock(project / "pylock.toml")["tool"]["envlock"]["targets"][0]["interpreter"]
    assert entry["url"].startswith(
        "https://github.com/astral-sh/python-build-standalone/releases/download/"
    )
    mirror = tmp_path / "mirror"
    copy = mirror / entry["build"] / entry["name"]
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"not the real archive")
    r = envlock(project, "fetch", env={"ENVLOCK_PYTHON_MIRROR": mirror.as_uri()})
    assert r.code == 4, r.stderr  # read from the mirror (not GitHub), refused by its sha256
    assert entry["name"] in r.stderr
    assert entry["name"] not in stored(cache)
    # The mirror is where bytes come from, not what they are: the lock stays fresh.
    spec = (project / "envlock.toml").read_text()
    (project / "envlock.toml").write_text(f'python-mirror = "{mirror.as_uri()}"\n' + spec)
    assert envlock(project, "lock", "--check").code == 0
    r = envlock(project, "fetch")
    assert r.code == 4 and entry["name"] in r.stderr


def _swap_interpreter(project: Path, **values: str) -> None:
    lock_path = project / "pylock.toml"
    doc = load_lock(lock_path)
    doc["tool"]["envlock"]["targets"][0]["interpreter"].update(values)
    lock_path.write_bytes(tomli_w.dumps(doc).encode())


def test_lock_check_refuses_an_interpreter_swapped_for_another_source_archive(
    index, project: Path, tmp_path: Path
) -> None:
    server = index([Dist("alpha", "1.0")])
    archive = stand_in(tmp_path / "pythons")
    bundled_spec(project, server.url, archive)
    assert envlock(project, "lock").code == 0
    assert envlock(project, "lock", "--check").code == 0
    other = stand_in(tmp_path / "elsewhere", archive.name, b"other bytes")
    _swap_interpreter(
        project, url=other.as_uri(), sha256=hashlib.sha256(other.read_bytes()).hexdigest()
    )
    r = envlock(project, "lock", "--check")
    assert r.code == 1, r.stderr
    assert "pylock.toml is stale: the interpreter of linux-64 is not the one the spec" in r.stderr
    assert f"url {other.as_uri()} in the lock, {archive.as_uri()} in " in r.stderr
    assert "[interpreter-sources.linux-64]" in r.stderr


def _table_lock(index, project: Path, tmp_path: Path) -> dict[str, str]:
    """A bundled lock from python-build-standalone's table (sizes unknown: the mirror given
    while locking has no copies), and its interpreter entry."""
    server = index([Dist("alpha", "1.0")])
    write_spec(
        project,
        server.url,
        'interpreter = "bundled"\npython = "3.11"\nplatforms = ["linux-64"]\n'
        'dependencies = ["alpha"]\n',
    )
    mirror = {"ENVLOCK_PYTHON_MIRROR": (tmp_path / "empty-mirror").as_uri()}
    assert envlock(project, "lock", env=mirror).code == 0
    assert envlock(project, "lock", "--check").code == 0
    entry: dict[str, str] = load_lock(project / "pylock.toml")["tool"]["envlock"]["targets"][0][
        "interpreter"
    ]
    return entry


@pytest.mark.parametrize("swapped", ["url and sha256", "sha256"])
def test_lock_check_refuses_an_interpreter_that_is_not_the_table_s(
    swapped, index, project: Path, tmp_path: Path
) -> None:
    entry = _table_lock(index, project, tmp_path)
    other = next(
        b
        for b in standalone_builds()
        if b.platform == "linux-64" and b.url != entry["url"] and b.sha256 != entry["sha256"]
    )
    if swapped == "sha256":
        _swap_interpreter(project, sha256=other.sha256)
        detail = f"sha256 {other.sha256} in the lock, {entry['sha256']} in python-build-"
    else:
        _swap_interpreter(project, url=other.url, sha256=other.sha256)
        detail = f"name {entry['name']} in the lock, {other.filename} in python-build-"
    r = envlock(project, "lock", "--check")
    assert r.code == 1, r.stderr
    assert "the interpreter of linux-64 is not the one the spec gives it" in r.stderr
    assert detail in r.stderr
    assert len([line for line in r.stderr.splitlines() if line.startswith("error:")]) == 1


def test_lock_check_online_asks_the_interpreter_url_and_its_size(
    index, project: Path, tmp_path: Path
) -> None:
    server = index([Dist("alpha", "1.0")])
    archive = stand_in(tmp_path / "pythons")
    url = server.publish_file(archive.name, archive.read_bytes())
    write_spec(
        project,
        server.url,
        'interpreter = "bundled"\npython = "3.11"\nplatforms = ["linux-64"]\n'
        'dependencies = ["alpha"]\n' + sources(archive).replace(archive.as_uri(), url),
    )
    assert envlock(project, "lock").code == 0
    assert envlock(project, "lock", "--check", "--online").code == 0
    server.publish_file(archive.name, archive.read_bytes() + b"more")
    r = envlock(project, "lock", "--check", "--online")
    assert r.code == 1, r.stderr
    size = archive.stat().st_size
    assert (
        f"the interpreter of linux-64: {archive.name}: {size} bytes in the lock, {size + 4} at "
        in r.stdout + r.stderr
    )
    server.override(f"/files/{archive.name}", 404)
    r = envlock(project, "lock", "--check", "--online")
    assert r.code == 1, r.stderr
    assert (
        f"the interpreter of linux-64: {archive.name}: HTTP 404 from {url}" in r.stdout + r.stderr
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("command", [["fetch"], ["build", "--output", "env"]], ids=" ".join)
def test_an_unreachable_bundled_interpreter_names_the_ways_round_it(
    command, index, project: Path, tmp_path: Path, cache: Path
) -> None:
    server = index([Dist("alpha", "1.0")])
    archive = stand_in(tmp_path / "pythons")
    bundled_spec(project, server.url, archive)
    assert envlock(project, "lock").code == 0
    _swap_interpreter(project, url=f"http://127.0.0.1:{_closed_port()}/{archive.name}")
    r = envlock(
        project,
        *command,
        "--frozen" if command[0] == "build" else "-q",
        env={"ENVLOCK_HTTP_RETRIES": "0"},
    )
    assert r.code == 3, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"downloading the bundled CPython 3.11.4 ({archive.name}) failed: " in errors[0]
    assert "ENVLOCK_PYTHON_MIRROR" in r.stderr and "python-mirror" in r.stderr
    assert "[interpreter-sources]" in r.stderr and 'interpreter = "system"' in r.stderr
    assert archive.name not in stored(cache)
