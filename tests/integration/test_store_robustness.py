"""The cache under stress, through the real CLI: busy locks, killed and interrupted fetches,
umask, read-only caches, a cache path that is a file, and servers sending too many bytes."""

from __future__ import annotations

import hashlib
import http.server
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from envlock.cache.store import ArtifactStore
from envlock.errors import UsageError
from integration.helpers import envlock, load_lock, write_spec
from support.index import IndexServer
from support.wheels import Dist

_HOLD_LOCK = """
import sys, time
from pathlib import Path
from envlock.cache.store import ArtifactStore
store = ArtifactStore(Path(sys.argv[1]))
with store.lock(sys.argv[2]):
    if len(sys.argv) > 3:
        store.scratch_file(sys.argv[2])
    print("held", flush=True)
    time.sleep(120)
"""


def blob(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def lock_one(server: IndexServer, project: Path, dist: Dist) -> tuple[str, str, int, str]:
    """Publish ``dist``, lock it; (filename, sha256, size, url) of its locked wheel."""
    server.add(dist)
    write_spec(
        project,
        server.url,
        f'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["{dist.name}"]\n',
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    (pkg,) = load_lock(project / "pylock.toml")["packages"]
    (wheel,) = pkg["wheels"]
    return wheel["name"], wheel["hashes"]["sha256"], wheel["size"], wheel["url"]


def cached(cache: Path, sha256: str, filename: str) -> Path:
    return cache / "artifacts" / "sha256" / sha256[:2] / sha256[2:] / filename


def tmp_entries(cache: Path) -> list[str]:
    tmp = cache / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else []


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def start_fetch(project: Path, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "envlock", "fetch"],
        cwd=project,
        env={**os.environ, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


def wait_for(condition: object, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.05)


def parts(cache: Path) -> list[str]:
    return [n for n in tmp_entries(cache) if n.endswith(".part")]


def stop_trickling(server: IndexServer) -> None:
    # The fixture has no public way to undo trickle(); later requests must be fast again.
    with server._lock:
        server._trickles.clear()


@pytest.fixture
def holder(cache: Path) -> Iterator[object]:
    """``holder(key, scratch=False)``: a process that holds ``lock(key)`` (and, with scratch,
    a scratch file made under it) until the test ends."""
    procs: list[subprocess.Popen[str]] = []

    def hold(key: str, scratch: bool = False) -> subprocess.Popen[str]:
        args = [sys.executable, "-c", _HOLD_LOCK, str(cache), key] + (
            ["scratch"] if scratch else []
        )
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_lock_held_too_long_fails_with_cache_busy_naming_the_holder(
    index, project, cache, holder
):
    server = index()
    name, sha, _, _ = lock_one(server, project, Dist("alpha", "1.0"))
    proc = holder(sha)
    start = time.monotonic()
    r = envlock(project, "fetch", env={"ENVLOCK_LOCK_TIMEOUT": "1"})
    took = time.monotonic() - start
    assert r.code == 1, r.stderr
    (line,) = error_lines(r.stderr)
    assert f"the cache lock {sha} is held by another envlock process (pid {proc.pid})" in line
    assert "more than 1 s" in line and "ENVLOCK_LOCK_TIMEOUT" in r.stderr
    assert "Traceback" not in r.stderr
    assert took < 5
    assert not cached(cache, sha, name).exists()

    r = envlock(project, "fetch", env={"ENVLOCK_LOCK_TIMEOUT": "later"})
    assert r.code == 2 and error_lines(r.stderr) == [
        "error: ENVLOCK_LOCK_TIMEOUT must be a number of seconds (0 or more), got 'later'"
    ]


def test_a_killed_fetch_leaves_a_part_that_the_next_fetch_removes(index, project, cache):
    server = index()
    name, sha, _, _ = lock_one(
        server, project, Dist("big", "1.0", files={"big/data.bin": blob(1, 4000)})
    )
    server.trickle("/files/", 0.01)
    proc = start_fetch(project)
    try:
        wait_for(lambda: parts(cache))
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    (part,) = parts(cache)
    assert part.startswith(f"{sha}@")

    stop_trickling(server)
    r = envlock(project, "fetch")
    assert r.code == 0, r.stderr
    assert tmp_entries(cache) == []
    assert hashlib.sha256(cached(cache, sha, name).read_bytes()).hexdigest() == sha


def test_the_part_of_a_live_lock_holder_is_kept(index, project, cache, holder):
    server = index()
    name, sha, _, _ = lock_one(server, project, Dist("alpha", "1.0"))
    other = "ab" * 32
    holder(other, scratch=True)
    (live,) = tmp_entries(cache)
    old = time.time() - 10 * 3600
    os.utime(cache / "tmp" / live, (old, old))  # however old it looks

    r = envlock(project, "fetch")
    assert r.code == 0, r.stderr
    assert tmp_entries(cache) == [live]
    assert cached(cache, sha, name).is_file()


@pytest.mark.parametrize("umask", [0o002, 0o022])
def test_cached_files_follow_the_umask(index, project, cache, umask):
    server = index()
    name, sha, _, _ = lock_one(server, project, Dist("alpha", "1.0"))
    proc = start_fetch(project, preexec_fn=lambda: os.umask(umask))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert cached(cache, sha, name).stat().st_mode & 0o777 == 0o666 & ~umask
    seen = 0
    # What the fetch made (the lock before it made the index metadata cache, umask 022).
    walks = [os.walk(cache / "artifacts"), os.walk(cache / "locks")]
    for dirpath, dirnames, filenames in (step for walk in walks for step in walk):
        for d in dirnames:
            assert os.stat(os.path.join(dirpath, d)).st_mode & 0o777 == 0o777 & ~umask, d
        for f in filenames:
            seen += 1
            path = os.path.join(dirpath, f)
            assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask, path
    assert seen >= 2  # the artifact, its lock file


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "mnt"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)])
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def remount_read_only(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)


def test_a_read_only_cache_serves_what_it_has_and_says_it_cannot_be_written(index, project, tmpfs):
    server = index()
    name, sha, size, _ = lock_one(server, project, Dist("alpha", "1.0"))
    ro = tmpfs / "cache"
    assert envlock(project, "fetch", "--cache-dir", str(ro)).code == 0
    remount_read_only(tmpfs)

    store = ArtifactStore(ro)
    assert not store.writable
    with store.lock(sha):  # nothing to coordinate: nobody can write here
        assert store.get(sha, name, size) == cached(ro, sha, name)
    assert store.clean_leftovers(grace=0) == 0
    with pytest.raises(UsageError, match=f"the cache {ro} is read-only") as info:
        store.tmpdir()
    assert "\n" not in str(info.value)
    with pytest.raises(UsageError, match=f"cannot create the cache directory {tmpfs}/new/cache"):
        ArtifactStore(tmpfs / "new" / "cache").tmpdir()
    assert not (tmpfs / "new").exists()

    r = envlock(project, "fetch", "--cache-dir", str(ro))
    assert r.code == 0, r.stderr
    server.add(Dist("beta", "1.0"))
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["alpha", "beta"]\n',
    )
    assert envlock(project, "lock").code == 0
    r = envlock(project, "fetch", "--cache-dir", str(ro))
    assert r.code == 2, r.stderr
    assert error_lines(r.stderr) == [
        f"error: the cache {ro} is read-only; envlock cannot write to it"
    ]


def test_a_cache_dir_that_is_a_file_is_a_one_line_error(index, project, tmp_path):
    server = index()
    lock_one(server, project, Dist("alpha", "1.0"))
    file = tmp_path / "not-a-dir"
    file.write_text("x")
    for where, reason in ((file, "is not a directory"), (file / "sub", f"is under {file}, a file")):
        r = envlock(project, "fetch", "--cache-dir", str(where))
        assert r.code == 2, r.stderr
        assert error_lines(r.stderr) == [f"error: the cache directory {where} {reason}"]
        assert "Traceback" not in r.stderr
    assert file.read_text() == "x"


class _Endless(http.server.BaseHTTPRequestHandler):
    """Sends a file and then more, with no Content-Length (the body ends when the server
    closes), for as long as the client reads."""

    body = b""
    metadata = b""
    sent = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.endswith(".metadata"):  # PEP 658, asked for by the lock
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.metadata)))
            self.end_headers()
            self.wfile.write(self.metadata)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.wfile.write(self.body)
            for _ in range(8192):  # 512 MiB at most
                self.wfile.write(b"\0" * 65536)
                type(self).sent += 65536
        except OSError:
            pass


def test_a_download_stops_at_the_first_byte_beyond_the_locked_size(index, project, cache):
    server = index()
    dist = Dist("alpha", "1.0", files={"alpha/data.bin": blob(2, 50_000)})
    path = server.add(dist)
    endless = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    _Endless.body = path.read_bytes()
    _Endless.metadata = Path(f"{path}.metadata").read_bytes()
    threading.Thread(target=endless.serve_forever, daemon=True).start()
    try:
        server.list_at(path.name, f"http://127.0.0.1:{endless.server_address[1]}/{path.name}")
        name, sha, size, _ = lock_one(server, project, dist)
        r = envlock(project, "fetch")
    finally:
        endless.shutdown()
        endless.server_close()
    assert r.code == 4, r.stderr
    assert error_lines(r.stderr) == [
        f"error: {name}: got more than the {size} bytes the lock records"
    ]
    # It stopped reading and hung up: the server could send no more than the socket buffers
    # (a few MiB on loopback) hold.
    assert _Endless.sent < 64 << 20
    assert not cached(cache, sha, name).exists()
    assert tmp_entries(cache) == []


def test_a_content_length_beyond_the_locked_size_is_refused_before_the_body(index, project, cache):
    server = index()
    name, sha, size, _ = lock_one(server, project, Dist("alpha", "1.0"))
    served = server.file_path(name).read_bytes()
    server.override("/files/" + name, 200, served + b"more")
    r = envlock(project, "fetch")
    assert r.code == 4, r.stderr
    assert error_lines(r.stderr) == [
        f"error: {name}: the server announces {size + 4} bytes, more than the {size} bytes "
        "the lock records"
    ]
    assert not cached(cache, sha, name).exists()
    assert tmp_entries(cache) == []


def interrupt(proc: subprocess.Popen[str], ready: Callable[[], bool]) -> None:
    """Ctrl-C ``proc`` once ``ready()`` (and 0.3 s more); it must exit 130 within 2 s, saying
    ``interrupted`` without a traceback."""
    try:
        wait_for(ready)
        time.sleep(0.3)
        assert proc.poll() is None, "finished before it could be interrupted"
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - start
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert took < 2, took
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "interrupted"


@pytest.mark.parametrize("seconds_per_byte", [0.05, 30.0], ids=["trickling", "stalled"])
def test_ctrl_c_stops_a_fetch_within_a_second(index, project, cache, seconds_per_byte):
    server = index()
    dists = [Dist(f"p{i}", "1.0", files={f"p{i}/d.bin": blob(i, 3000)}) for i in range(3)]
    for d in dists:
        server.add(d)
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["p0", "p1", "p2"]\n',
    )
    assert envlock(project, "lock").code == 0
    server.trickle("/files/", seconds_per_byte)
    interrupt(start_fetch(project), lambda: len(parts(cache)) == 3)
    assert parts(cache) == []


def test_ctrl_c_during_a_retry_wait_stops_within_a_second(index, project, cache):
    """The file host answers 503 with Retry-After: 8: the fetch waits to retry, and Ctrl-C
    ends that wait at once instead of after it."""
    server = index([Dist("slowpoke", "1.0")])
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["slowpoke"]\n',
    )
    assert envlock(project, "lock").code == 0
    server.override(
        "/files/slowpoke-1.0-py3-none-any.whl", status=503, headers={"Retry-After": "8"}
    )
    server.reset_counts()  # locking read the wheel's metadata
    interrupt(start_fetch(project), lambda: server.count("/files/") >= 1)  # then backing off
    assert server.count("/files/") == 1  # no retry was sent after the interrupt
