"""``file://`` URLs in a lock are read like downloads: only regular files, streamed, never past
the locked size. A lock naming ``/dev/zero``, a FIFO, a directory or a file larger than it says
fails ``fetch`` at once in one line, and nothing reaches the cache."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from integration.helpers import Result, load_lock, write_spec
from integration.test_hostile_lock import _file_index
from support.interpreter import fake_interpreter_archive, interpreter_sources_toml

VERSION = "3.11.9"
# The memory a run may take: reading /dev/zero or a huge file whole would pass it at once.
_MEMORY = 2 << 30


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_MEMORY, _MEMORY))


def _run(cwd: Path, *args: str) -> Result:
    """``envlock ARGS`` with bounded memory and time: a hang or a runaway read fails the test
    quickly instead of taking the machine with it."""
    proc = subprocess.run(
        [sys.executable, "-m", "envlock", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=60,
        preexec_fn=_limited,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _artifacts(cache: Path) -> list[str]:
    root = cache / "artifacts"
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _bundled_lock(index, project: Path, tmp_path: Path) -> Path:
    """A bundled linux-64 lock whose interpreter comes from ``[interpreter-sources]``."""
    server = index([])
    fake = fake_interpreter_archive(tmp_path / "pbs", "linux-64", VERSION)
    url = server.publish_file(fake.filename, fake.data)
    write_spec(
        project,
        None,
        f'python = "{VERSION}"\ninterpreter = "bundled"\nplatforms = ["linux-64"]\n\n'
        + interpreter_sources_toml("linux-64", url, fake.sha256, None),
    )
    r = _run(project, "lock")
    assert r.code == 0, r.stderr
    return project / "pylock.toml"


def _point_interpreter_at(lock: Path, url: str, size: int | None) -> None:
    doc = load_lock(lock)
    entry = doc["tool"]["envlock"]["targets"][0]["interpreter"]
    entry["url"] = url
    entry.pop("size", None)
    if size is not None:
        entry["size"] = size
    lock.write_bytes(tomli_w.dumps(doc).encode())


def _one_error(r: Result) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "directory", "larger"])
def test_fetch_refuses_a_locked_interpreter_url_that_is_not_the_locked_file(
    kind, index, project, cache, tmp_path
):
    lock = _bundled_lock(index, project, tmp_path)
    size: int | None = None
    if kind == "dev-zero":
        target = Path("/dev/zero")
    elif kind == "fifo":
        target = tmp_path / "pipe.tar.gz"
        os.mkfifo(target)
    elif kind == "directory":
        target = tmp_path / "dir.tar.gz"
        target.mkdir()
    else:
        target = tmp_path / "huge.tar.gz"
        with target.open("wb") as f:
            f.truncate(4 << 30)  # sparse: 4 GiB that take no disk
        size = 1000
    _point_interpreter_at(lock, target.as_uri(), size)

    r = _run(project, "fetch")

    assert r.code != 0
    error = _one_error(r)
    if kind == "larger":
        assert "more than the 1000 bytes the lock records" in error, error
    else:
        what = {"dev-zero": "a character device", "fifo": "a FIFO", "directory": "a directory"}
        assert f"{target.as_uri()} is {what[kind]}, not a regular file" in error, error
    assert _artifacts(cache) == []


@pytest.mark.timeout(120)
def test_fetch_refuses_a_fifo_in_place_of_a_file_index_wheel(project, cache, tmp_path):
    index_url = _file_index(tmp_path / "local-index")
    write_spec(
        project, index_url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["alpha"]\n'
    )
    assert _run(project, "lock").code == 0
    wheel = tmp_path / "local-index" / "files" / "alpha-1.0-py3-none-any.whl"
    wheel.unlink()
    os.mkfifo(wheel)

    r = _run(project, "fetch")

    assert r.code == 3, r.stderr
    assert "alpha-1.0-py3-none-any.whl is a FIFO, not a regular file" in _one_error(r)
    assert _artifacts(cache) == []
