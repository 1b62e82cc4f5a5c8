"""Snapshots on object storage end to end: ``push``, ``fetch --from-snapshot``, ``pull``.

The store is a real S3 server (SeaweedFS, ``support.s3``) on 127.0.0.1, or a ``file://``
directory; the package index is the loopback index, stopped or counting requests once the
snapshot is published. Objects are read and tampered with out of band through obstore.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from integration.helpers import Result, envlock, load_lock, write_spec
from support.interpreter import BuiltInterpreter, bundled_python, interpreter_sources_toml
from support.s3 import ACCESS_KEY, SECRET_KEY, Bucket, bucket, s3_server
from support.tars import cve_2025_4517
from support.wheels import Dist

__all__ = ["bucket", "bundled_python", "s3_server"]  # the fixtures these tests use

PROBE = "import alpha, beta; print(alpha.__version__, beta.__version__)"
ARTIFACT_KEY = re.compile(r"^artifacts/sha256/([0-9a-f]{2})/([0-9a-f]{64})/([^/]+)$")
FLEET_N = int(os.environ.get("ENVLOCK_FLEET_N", "20"))


def blob(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def artifact_key(sha: str, filename: str) -> str:
    """The layout contract: ``artifacts/sha256/<ab>/<sha256>/<file name>``."""
    return f"artifacts/sha256/{sha[:2]}/{sha}/{filename}"


def lock_files(lock_path: Path) -> dict[str, tuple[str, int]]:
    """filename -> (sha256, size) of every file in a lock."""
    out = {}
    for pkg in load_lock(lock_path)["packages"]:
        for f in [*pkg.get("wheels", []), *([pkg["sdist"]] if "sdist" in pkg else [])]:
            out[f["name"]] = (f["hashes"]["sha256"], f["size"])
    return out


def cached(cache: Path) -> dict[str, str]:
    """filename -> sha256 of the bytes of every artifact in a local cache."""
    root = cache / "artifacts" / "sha256"
    if not root.is_dir():
        return {}
    return {
        p.name: sha256(p.read_bytes())
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def tree_hash(root: Path) -> str:
    """One hash over every path, mode, symlink target and file content under ``root``."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if "__pycache__" in rel:
            continue  # running the environment may write bytecode
        st = path.lstat()
        h.update(f"{rel}\0{st.st_mode:o}\0".encode())
        if path.is_symlink():
            h.update(os.readlink(path).encode())
        elif path.is_file():
            h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def clean_env() -> dict[str, str]:
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def runs(env_dir: Path) -> str:
    """What the environment's own python prints for :data:`PROBE` (asserting it worked)."""
    r = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", PROBE],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def setup(
    index, project: Path, dists: list[Dist] | None = None, deps: tuple[str, ...] = ("alpha",)
):
    """A locked project on the loopback index (alpha -> beta unless told otherwise)."""
    server = index(
        dists if dists is not None else [Dist("alpha", "1.0", ["beta"]), Dist("beta", "2.0")]
    )
    write_spec(
        project,
        server.url,
        f'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = {list(deps)!r}\n'.replace(
            "'", '"'
        ),
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    return server


def snap(
    project: Path, where: Bucket | str, *args: str, env: dict[str, str] | None = None
) -> Result:
    """``envlock ARGS --snapshot URL`` with the S3 client environment of the bucket."""
    if isinstance(where, Bucket):
        url, base = where.url, where.env
    else:
        url, base = where, {}
    return envlock(project, *args, "--snapshot", url, env={**base, **(env or {})})


def assert_artifacts_match(where: Bucket, files: dict[str, tuple[str, int]]) -> None:
    """Every locked file is in the bucket under its content key, with the locked bytes."""
    keys = set(where.list_keys())
    for name, (sha, size) in files.items():
        key = artifact_key(sha, name)
        assert key in keys, (key, sorted(keys))
        data = where.get(key)
        assert (sha256(data), len(data)) == (sha, size)


# -- push, then fetch from the snapshot alone ---------------------------------------------------


def test_push_then_fetch_from_snapshot_with_the_index_stopped(index, project, bucket, tmp_path):
    server = setup(index, project)
    files = lock_files(project / "pylock.toml")
    r = snap(project, bucket, "push")
    assert r.code == 0, r.stderr
    assert re.search(r"uploaded 2 artifact", r.stderr), r.stderr
    assert SECRET_KEY not in r.stdout + r.stderr
    assert_artifacts_match(bucket, files)
    present = bucket.list_keys()
    assert all(ARTIFACT_KEY.match(k) for k in present), present

    server.stop()
    fresh = tmp_path / "fresh-cache"
    r = snap(project, bucket, "fetch", "--from-snapshot", "--cache-dir", str(fresh))
    assert r.code == 0, r.stderr
    assert cached(fresh) == {name: sha for name, (sha, _) in files.items()}

    out = tmp_path / "env"
    r = envlock(
        project,
        "materialize",
        "--platform",
        "linux-64",
        "--cache-dir",
        str(fresh),
        "--output",
        str(out),
    )
    assert r.code == 0, r.stderr
    assert runs(out) == "1.0 2.0"


def test_build_from_snapshot_makes_no_index_request(index, project, bucket, tmp_path):
    server = setup(index, project)
    assert snap(project, bucket, "push").code == 0
    server.reset_counts()
    out = tmp_path / "built"
    r = snap(
        project,
        bucket,
        "build",
        "--from-snapshot",
        "--platform",
        "linux-64",
        "--output",
        str(out),
        env={"ENVLOCK_CACHE_DIR": str(tmp_path / "c2")},
    )
    assert r.code == 0, r.stderr
    assert server.count() == 0
    assert runs(out) == "1.0 2.0"


def test_wheels_built_from_locked_sdists_travel_with_the_snapshot(index, project, bucket, tmp_path):
    src = Dist("srcpkg", "0.3", kind="sdist")
    server = index([src, Dist("beta", "2.0")])
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["srcpkg", "beta"]\n'
        'allow-sdist = ["srcpkg"]\n',
    )
    assert envlock(project, "lock").code == 0
    r = snap(project, bucket, "push")  # fetches, which builds the sdist's wheel
    assert r.code == 0, r.stderr
    sdist_sha = lock_files(project / "pylock.toml")["srcpkg-0.3.tar.gz"][0]
    built_key = f"built/sha256/{sdist_sha[:2]}/{sdist_sha}/srcpkg-0.3-py3-none-any.whl"
    assert built_key in bucket.list_keys(), bucket.list_keys()
    assert artifact_key(sdist_sha, "srcpkg-0.3.tar.gz") in bucket.list_keys()

    server.stop()
    fresh = tmp_path / "fresh-cache"
    r = snap(project, bucket, "fetch", "--from-snapshot", "--cache-dir", str(fresh))
    assert r.code == 0, r.stderr
    built = fresh / "built" / "sha256" / sdist_sha[:2] / sdist_sha[2:]
    wheels = sorted(built.glob("*.whl"))
    assert [w.name for w in wheels] == ["srcpkg-0.3-py3-none-any.whl"]
    assert wheels[0].read_bytes() == bucket.get(built_key)  # downloaded, not rebuilt
    out = tmp_path / "env"
    r = envlock(
        project, "materialize", "--platform", "linux-64", "--cache-dir", str(fresh),
        "--output", str(out),
    )  # fmt: skip
    assert r.code == 0, r.stderr
    r = subprocess.run(
        [str(out / "bin" / "python"), "-c", "import srcpkg, beta; print(srcpkg.__version__)"],
        capture_output=True, text=True, env=clean_env(), timeout=60,
    )  # fmt: skip
    assert (r.returncode, r.stdout) == (0, "0.3\n"), r.stderr


def test_snapshot_url_from_the_environment_and_the_spec(index, project, bucket, tmp_path):
    setup(index, project)
    r = envlock(project, "push", env={**bucket.env, "ENVLOCK_SNAPSHOT_URL": bucket.url})
    assert r.code == 0, r.stderr
    spec = project / "envlock.toml"
    spec.write_text(f'snapshot = "{bucket.url}"\n' + spec.read_text())
    r = envlock(
        project, "fetch", "--from-snapshot", "--cache-dir", str(tmp_path / "c2"), env=bucket.env
    )
    assert r.code == 0, r.stderr
    assert len(cached(tmp_path / "c2")) == 2


def test_push_twice_uploads_nothing_the_second_time(index, project, bucket):
    setup(index, project)
    r = snap(project, bucket, "push")
    assert r.code == 0, r.stderr
    before = bucket.objects()
    assert len(before) == 2
    time.sleep(1.1)  # S3 modification times have one-second resolution
    r = snap(project, bucket, "push")
    assert r.code == 0, r.stderr
    assert re.search(r"uploaded 0 artifact", r.stderr), r.stderr
    assert re.search(r"\b2 already there", r.stderr), r.stderr
    assert bucket.objects() == before  # same keys, sizes, etags and modification times


def test_push_replaces_an_object_with_the_right_size_but_wrong_bytes(
    index, project, bucket, tmp_path
):
    """Same key and size is not enough: the ETag (an MD5) gives the wrong bytes away, the
    object is replaced and the report says so; ``--verify`` re-reads everything."""
    server = setup(index, project)
    assert snap(project, bucket, "push", "--archives").code == 0
    files = lock_files(project / "pylock.toml")
    alpha = next(name for name in files if name.startswith("alpha-"))
    beta = next(name for name in files if name.startswith("beta-"))
    archive, _ = archive_keys(bucket, project / "pylock.toml")

    def spoil(key: str) -> bytes:
        good = bucket.get(key)
        bucket.put(key, bytes([good[0] ^ 0xFF]) + good[1:])
        return good

    good_alpha = spoil(artifact_key(files[alpha][0], alpha))
    good_archive = spoil(archive)
    r = snap(project, bucket, "push", "--archives")
    assert r.code == 0, r.stderr
    assert re.search(r"uploaded 1 artifact.*\(1 replaced", r.stderr), r.stderr
    assert "1 already there" in r.stderr and "replaced (the snapshot held" in r.stderr, r.stderr
    assert bucket.get(artifact_key(files[alpha][0], alpha)) == good_alpha
    assert bucket.get(archive) == good_archive

    # An object whose ETag proves nothing (a store that is not S3, server-side encryption):
    # --verify hashes what is there.
    spoil(artifact_key(files[beta][0], beta))
    r = snap(project, bucket, "push", "--verify")
    assert r.code == 0, r.stderr
    assert re.search(r"uploaded 1 artifact.*\(1 replaced", r.stderr), r.stderr
    r = snap(project, bucket, "push", "--verify")
    assert r.code == 0 and re.search(r"uploaded 0 artifact", r.stderr), r.stderr

    server.stop()
    fresh = tmp_path / "fresh-cache"
    r = snap(project, bucket, "fetch", "--from-snapshot", "--cache-dir", str(fresh))
    assert r.code == 0, r.stderr
    assert cached(fresh) == {name: sha for name, (sha, _) in files.items()}
    out = tmp_path / "pulled"
    r = snap(project, bucket, "pull", "--platform", "linux-64", "--output", str(out))
    assert r.code == 0, r.stderr
    assert runs(out) == "1.0 2.0"


def test_push_archives_of_a_system_lock_for_another_platform_names_what_works(
    index, project, bucket
):
    server = index([Dist("alpha", "1.0", ["beta"]), Dist("beta", "2.0")])
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64", "win-64"]\ndependencies = ["alpha"]\n',
    )
    assert envlock(project, "lock").code == 0
    r = snap(project, bucket, "push", "--archives", "--platform", "win-64")
    assert r.code == 2, r.stderr
    (line,) = error_lines(r.stderr)
    assert "win-64" in line and 'interpreter = "system"' in line, line
    assert "envlock build --from-snapshot --platform win-64 --base-python PATH" in r.stderr
    assert 'interpreter = "bundled"' in r.stderr
    assert "--base-python is required" not in r.stderr, r.stderr


# -- a snapshot that is incomplete or tampered with --------------------------------------------


def test_missing_object_is_an_error_naming_the_file_and_push(index, project, bucket, tmp_path):
    server = setup(index, project)
    assert snap(project, bucket, "push").code == 0
    files = lock_files(project / "pylock.toml")
    beta = next(name for name in files if name.startswith("beta-"))
    bucket.delete(artifact_key(files[beta][0], beta))
    server.reset_counts()

    fresh = tmp_path / "fresh-cache"
    r = snap(project, bucket, "fetch", "--from-snapshot", "--cache-dir", str(fresh))
    assert r.code == 1, r.stderr
    errors = error_lines(r.stderr)
    assert len(errors) == 1, r.stderr
    assert beta in r.stderr and "envlock push" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert server.count() == 0  # no silent fallback to the index
    assert beta not in cached(fresh)


@pytest.mark.parametrize("same_size", [True, False])
def test_corrupted_object_is_refused_and_never_cached(index, project, bucket, tmp_path, same_size):
    server = setup(index, project)
    assert snap(project, bucket, "push").code == 0
    files = lock_files(project / "pylock.toml")
    alpha = next(name for name in files if name.startswith("alpha-"))
    key = artifact_key(files[alpha][0], alpha)
    good = bucket.get(key)
    evil = bytes([good[0] ^ 0xFF]) + good[1:] if same_size else good + b"trailing junk"
    bucket.put(key, evil)
    server.reset_counts()

    fresh = tmp_path / "fresh-cache"
    r = snap(project, bucket, "fetch", "--from-snapshot", "--cache-dir", str(fresh))
    assert r.code == 4, r.stderr
    assert alpha in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert alpha not in cached(fresh)
    leftovers = [
        p for p in fresh.rglob("*") if p.is_file() and sha256(p.read_bytes()) == sha256(evil)
    ]
    assert leftovers == []
    assert server.count() == 0


def test_interrupted_push_leaves_no_bad_object_and_a_rerun_completes(
    index, project, bucket, tmp_path
):
    # More incompressible wheels than push uploads at once (8), so that when the first object
    # appears most of them are not even started: the kill lands mid-push.
    dists = [
        Dist(f"big{i}", "1.0", files={f"big{i}/blob.bin": blob(i, 3_000_000)}) for i in range(20)
    ]
    setup(index, project, dists, deps=tuple(f"big{i}" for i in range(20)))
    r = envlock(project, "fetch")  # the push below only uploads
    assert r.code == 0, r.stderr
    files = lock_files(project / "pylock.toml")

    proc = subprocess.Popen(
        [sys.executable, "-m", "envlock", "push", "--snapshot", bucket.url],
        cwd=project,
        env={**os.environ, **bucket.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None and not bucket.list_keys():
            time.sleep(0.02)
        interrupted = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    # Requests whose bodies were already sent may still complete on the server: let them land.
    time.sleep(1.0)
    present = bucket.list_keys()
    assert interrupted and len(present) < len(files), "the push finished before the kill"

    # Under a final key, only whole objects whose bytes hash to the key.
    for key in present:
        m = ARTIFACT_KEY.match(key)
        assert m, f"unexpected object {key}"
        data = bucket.get(key)
        assert sha256(data) == m.group(2), f"{key} holds other bytes"
        assert (m.group(2), len(data)) == files[m.group(3)]

    r = snap(project, bucket, "push")
    assert r.code == 0, r.stderr
    done = re.search(r"uploaded (\d+) artifact.*?(\d+) already there", r.stderr)
    assert done, r.stderr
    assert int(done.group(1)) + int(done.group(2)) == len(files)
    assert int(done.group(2)) >= len(present) and int(done.group(1)) > 0
    assert_artifacts_match(bucket, files)
    r = snap(project, bucket, "fetch", "--from-snapshot", "--cache-dir", str(tmp_path / "fresh"))
    assert r.code == 0, r.stderr
    assert cached(tmp_path / "fresh") == {name: sha for name, (sha, _) in files.items()}


# -- environment archives: push --archives, pull ------------------------------------------------


def archive_keys(where: Bucket, lock: Path, env: str = "default", platform: str = "linux-64"):
    lock_sha = sha256(lock.read_bytes())
    base = f"envs/{lock_sha}/{env}/{platform}"
    return f"{base}.tar.gz", f"{base}.json"


def test_push_archives_then_pull_into_a_fresh_dir_that_runs(index, project, bucket, tmp_path):
    server = setup(index, project)
    r = snap(project, bucket, "push", "--archives")
    assert r.code == 0, r.stderr
    archive, manifest_key = archive_keys(bucket, project / "pylock.toml")
    assert {archive, manifest_key} <= set(bucket.list_keys()), bucket.list_keys()
    data = bucket.get(archive)
    manifest = json.loads(bucket.get(manifest_key))
    assert manifest["sha256"] == sha256(data) and manifest["size"] == len(data)
    assert manifest["platform"] == "linux-64" and manifest["environment"] == "default"
    assert manifest["lock-sha256"] == sha256((project / "pylock.toml").read_bytes())
    assert manifest["envlock"]

    server.stop()
    out = tmp_path / "deploy" / "env"
    r = snap(
        project,
        bucket,
        "pull",
        "--platform",
        "linux-64",
        "--output",
        str(out),
        env={"ENVLOCK_CACHE_DIR": str(tmp_path / "empty-cache")},
    )
    assert r.code == 0, r.stderr
    assert runs(out) == "1.0 2.0"
    assert (out / "envlock.json").is_file()
    r = envlock(project, "verify", str(out))
    assert r.code == 0, r.stdout + r.stderr

    # An existing directory is not replaced without --force.
    marker = out / "marker"
    marker.write_text("mine")
    r = snap(project, bucket, "pull", "--platform", "linux-64", "--output", str(out))
    assert r.code != 0 and len(error_lines(r.stderr)) == 1, r.stderr
    assert "--force" in r.stderr and marker.exists()
    r = snap(project, bucket, "pull", "--platform", "linux-64", "--output", str(out), "--force")
    assert r.code == 0, r.stderr
    assert not marker.exists() and runs(out) == "1.0 2.0"


def test_pull_refuses_a_tampered_archive(index, project, bucket, tmp_path):
    setup(index, project)
    assert snap(project, bucket, "push", "--archives").code == 0
    archive, _ = archive_keys(bucket, project / "pylock.toml")
    data = bucket.get(archive)
    bucket.put(archive, data[:-1] + bytes([data[-1] ^ 0x01]))
    out = tmp_path / "env"
    r = snap(project, bucket, "pull", "--platform", "linux-64", "--output", str(out))
    assert r.code == 4, r.stderr
    assert len(error_lines(r.stderr)) == 1 and "Traceback" not in r.stderr, r.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".env")] == []


def test_pull_refuses_an_archive_that_writes_through_a_link(index, project, bucket, tmp_path):
    """Whoever controls the bucket can forge an archive and a manifest that agree: unpacking
    still never writes outside the output (an absolute link is kept as a link, never followed)."""
    import io
    import tarfile

    setup(index, project)
    assert snap(project, bucket, "push", "--archives").code == 0
    archive, manifest_key = archive_keys(bucket, project / "pylock.toml")
    outside = tmp_path / "outside"
    outside.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        link = tarfile.TarInfo("escape")
        link.type, link.linkname = tarfile.SYMTYPE, str(outside)
        tar.addfile(link)
        payload = tarfile.TarInfo("escape/owned.txt")
        payload.size = 5
        tar.addfile(payload, io.BytesIO(b"owned"))
    forged = buf.getvalue()
    manifest = json.loads(bucket.get(manifest_key))
    manifest.update(sha256=sha256(forged), size=len(forged))
    bucket.put(archive, forged)
    bucket.put(manifest_key, json.dumps(manifest).encode())
    out = tmp_path / "env"
    r = snap(project, bucket, "pull", "--platform", "linux-64", "--output", str(out))
    assert r.code == 4, r.stderr
    assert len(error_lines(r.stderr)) == 1 and "Traceback" not in r.stderr, r.stderr
    assert list(outside.iterdir()) == [] and not out.exists()


def test_pull_refuses_the_cve_2025_4517_layout_on_this_python(index, project, bucket, tmp_path):
    """Nested links past PATH_MAX pass tarfile's data filter on Pythons without the 2025 fixes
    (3.11.7 among them): pull checks every member itself, so nothing lands beside --output and
    a file there is not overwritten through a hard link."""
    setup(index, project)
    assert snap(project, bucket, "push", "--archives").code == 0
    archive, manifest_key = archive_keys(bucket, project / "pylock.toml")
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    victim = deploy / "victim.txt"
    victim.write_text("precious")
    forged = cve_2025_4517("victim.txt", "planted.txt", b"owned")
    manifest = json.loads(bucket.get(manifest_key))
    manifest.update(sha256=sha256(forged), size=len(forged))
    bucket.put(archive, forged)
    bucket.put(manifest_key, json.dumps(manifest).encode())
    out = deploy / "env"
    r = snap(project, bucket, "pull", "--platform", "linux-64", "--output", str(out))
    assert r.code == 4, r.stderr
    assert len(error_lines(r.stderr)) == 1 and "Traceback" not in r.stderr, r.stderr
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in deploy.iterdir()) == ["victim.txt"]
    assert not list(tmp_path.rglob("planted.txt")) and not out.exists()


def test_an_oversized_manifest_is_refused_before_it_is_read(index, project, bucket, tmp_path):
    """A manifest is capped at 16 MiB: a bigger object is one IntegrityError naming its key,
    checked from its size (no 17 MiB read into memory, no "unknown error")."""
    setup(index, project)
    assert snap(project, bucket, "push", "--archives").code == 0
    _, manifest_key = archive_keys(bucket, project / "pylock.toml")
    big = json.dumps({"padding": "x" * (17 << 20)}).encode()
    bucket.put(manifest_key, big)
    out = tmp_path / "env"
    for args in (("--output", str(out)), ("--print-url",)):
        r = snap(project, bucket, "pull", "--platform", "linux-64", *args)
        assert r.code == 4, r.stderr
        (line,) = error_lines(r.stderr)
        assert manifest_key in line and f"more than the {16 << 20}" in line, line
        assert "Traceback" not in r.stderr
    assert not out.exists()


def test_pull_without_archive_names_push_archives(index, project, bucket, tmp_path):
    setup(index, project)
    assert snap(project, bucket, "push").code == 0
    out = tmp_path / "env"
    r = snap(project, bucket, "pull", "--platform", "linux-64", "--output", str(out))
    assert r.code == 1, r.stderr
    assert "push --archives" in r.stderr, r.stderr
    assert not out.exists()


def test_print_url_is_a_presigned_url_of_the_archive(index, project, bucket, tmp_path):
    setup(index, project)
    assert snap(project, bucket, "push", "--archives").code == 0
    r = snap(project, bucket, "pull", "--platform", "linux-64", "--print-url")
    assert r.code == 0, r.stderr
    # Two lines: the URL, then a `sha256sum -c` line for the archive.
    url, check_line = r.stdout.strip().splitlines()
    digest, name = check_line.split()
    assert url.startswith("http://127.0.0.1:") and re.fullmatch(r"[0-9a-f]{64}", digest)
    assert SECRET_KEY not in r.stdout + r.stderr
    response = httpx.get(url, timeout=30)  # no credentials: the signature is the permission
    assert response.status_code == 200
    assert sha256(response.content) == digest
    archive, _ = archive_keys(bucket, project / "pylock.toml")
    assert response.content == bucket.get(archive)

    # The no-envlock path: curl, sha256sum -c, tar -x.
    (tmp_path / name).write_bytes(response.content)
    (tmp_path / "SHA256SUMS").write_text(check_line + "\n")
    check = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    dest = tmp_path / "untarred"
    dest.mkdir()
    untar = subprocess.run(
        ["tar", "-xzf", str(tmp_path / name), "-C", str(dest)], capture_output=True, text=True
    )
    assert untar.returncode == 0, untar.stderr
    assert runs(dest) == "1.0 2.0"

    # A tampered object no longer matches the printed sha256.
    bucket.put(archive, response.content + b"x")
    assert sha256(httpx.get(url, timeout=30).content) != digest


def test_bundled_environment_pushed_and_pulled_runs(
    index, project, bucket, tmp_path, bundled_python: BuiltInterpreter
):
    server = index([Dist("alpha", "1.0", ["beta"]), Dist("beta", "2.0")])
    interp_url = server.publish_file(bundled_python.filename, bundled_python.data)
    body = (
        f'python = "{bundled_python.version}"\ninterpreter = "bundled"\n'
        'platforms = ["linux-64"]\ndependencies = ["alpha"]\n\n'
        + interpreter_sources_toml(
            "linux-64", interp_url, bundled_python.sha256, bundled_python.version
        )
    )
    write_spec(project, server.url, body)
    assert envlock(project, "lock").code == 0
    r = snap(project, bucket, "push", "--archives")
    assert r.code == 0, r.stderr
    # The interpreter is an artifact of the snapshot like the wheels.
    interp_key = artifact_key(bundled_python.sha256, bundled_python.filename)
    assert interp_key in bucket.list_keys()
    assert sha256(bucket.get(interp_key)) == bundled_python.sha256

    server.stop()
    fresh = tmp_path / "fresh-cache"
    r = snap(project, bucket, "fetch", "--from-snapshot", "--cache-dir", str(fresh))
    assert r.code == 0, r.stderr
    assert cached(fresh).get(bundled_python.filename) == bundled_python.sha256
    out = tmp_path / "pulled"
    r = snap(project, bucket, "pull", "--platform", "linux-64", "--output", str(out))
    assert r.code == 0, r.stderr
    assert runs(out) == "1.0 2.0"
    assert not (out / "pyvenv.cfg").exists()  # the interpreter travels inside


# -- file:// snapshots ---------------------------------------------------------------------------


def test_file_snapshot_works_the_same(index, project, tmp_path):
    server = setup(index, project)
    files = lock_files(project / "pylock.toml")
    root = tmp_path / "shared" / "snap"
    url = root.as_uri()
    r = snap(project, url, "push", "--archives")
    assert r.code == 0, r.stderr
    for name, (sha, size) in files.items():
        stored = root / artifact_key(sha, name)
        assert stored.is_file() and stored.stat().st_size == size
    r = snap(project, url, "push", "--archives")
    assert r.code == 0 and re.search(r"uploaded 0 artifact", r.stderr), r.stderr

    server.stop()
    fresh = tmp_path / "fresh-cache"
    r = snap(project, url, "fetch", "--from-snapshot", "--cache-dir", str(fresh))
    assert r.code == 0, r.stderr
    assert cached(fresh) == {name: sha for name, (sha, _) in files.items()}
    out = tmp_path / "pulled"
    r = snap(project, url, "pull", "--platform", "linux-64", "--output", str(out))
    assert r.code == 0, r.stderr
    assert runs(out) == "1.0 2.0"

    # Tampering with a file on the shared file system is caught like in a bucket.
    alpha = next(name for name in files if name.startswith("alpha-"))
    victim = root / artifact_key(files[alpha][0], alpha)
    victim.write_bytes(b"not a wheel")
    r = snap(project, url, "fetch", "--from-snapshot", "--cache-dir", str(tmp_path / "c3"))
    assert r.code == 4, r.stderr
    assert alpha not in cached(tmp_path / "c3")


# -- the optional extra and credentials ----------------------------------------------------------


def test_without_the_s3_extra_a_snapshot_url_names_the_extra(index, project, tmp_path):
    setup(index, project)
    stub = tmp_path / "stub"
    (stub / "obstore").mkdir(parents=True)
    (stub / "obstore" / "__init__.py").write_text(
        "raise ImportError('obstore hidden by the test')\n"
    )
    for args in (
        ("push",),
        ("fetch", "--from-snapshot"),
        ("pull", "--platform", "linux-64", "--output", str(tmp_path / "o")),
    ):
        r = snap(project, "s3://bucket/prefix", *args, env={"PYTHONPATH": str(stub)})
        assert r.code != 0, (args, r.stderr)
        assert "pip install 'pyenvlock[s3]'" in r.stderr, r.stderr
        assert len(error_lines(r.stderr)) == 1 and "Traceback" not in r.stderr, r.stderr


def test_wrong_credentials_fail_in_one_line_without_showing_them(index, project, bucket, tmp_path):
    setup(index, project)
    wrong = "wrong-secret-Zq8XkP2mV7"
    for args in (
        ("push",),
        ("fetch", "--from-snapshot", "--cache-dir", str(tmp_path / "c")),
        ("pull", "--platform", "linux-64", "--output", str(tmp_path / "o")),
    ):
        r = snap(project, bucket, *args, env={"AWS_SECRET_ACCESS_KEY": wrong})
        assert r.code != 0, (args, r.stderr)
        text = r.stdout + r.stderr
        assert wrong not in text and SECRET_KEY not in text and ACCESS_KEY not in text, text
        assert len(error_lines(r.stderr)) == 1 and "Traceback" not in r.stderr, r.stderr
    assert ACCESS_KEY not in (project / "pylock.toml").read_text()


def test_object_storage_mistakes_are_one_line_in_envlocks_words(index, project, bucket, tmp_path):
    """Not obstore's "builder error", an XML 403 or "failed to parse", and never a secret."""
    setup(index, project)
    wrong = "wrong-secret-Zq8XkP2mV7"
    base = {k: v for k, v in bucket.env.items() if k != "AWS_ALLOW_HTTP"}
    no_keys = {
        k: v
        for k, v in bucket.env.items()
        if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    url = bucket.url
    cases = [
        (base, 2, f"snapshot {url}: the endpoint {bucket.server.endpoint} is plain http; set "
         "AWS_ALLOW_HTTP=true to allow it"),
        ({**base, "AWS_ALLOW_HTTP": ""}, 2, "AWS_ALLOW_HTTP must be true or false (it is '')"),
        ({**bucket.env, "AWS_SECRET_ACCESS_KEY": wrong}, 3,
         f"snapshot {url}: access denied (403): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"),
        (no_keys, 2, f"snapshot {url}: no AWS credentials are set, and AWS_EC2_METADATA_DISABLED "
         "forbids asking the instance metadata service for them"),
    ]  # fmt: skip
    for env, code, message in cases:
        for args in (
            ("push",),
            ("fetch", "--from-snapshot", "--cache-dir", str(tmp_path / "c")),
            ("pull", "--platform", "linux-64", "--output", str(tmp_path / "o")),
        ):
            full = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            proc = subprocess.run(
                [sys.executable, "-m", "envlock", *args, "--snapshot", url],
                cwd=project, env={**full, **env, "COLUMNS": "300"},
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert proc.returncode == code, (args, proc.stderr)
            assert error_lines(proc.stderr) == [f"error: {message}"], (args, proc.stderr)
            text = proc.stdout + proc.stderr
            assert wrong not in text and SECRET_KEY not in text and "Traceback" not in text


def test_credentials_in_the_url_are_refused(index, project, bucket):
    setup(index, project)
    url = f"s3://{ACCESS_KEY}:{SECRET_KEY}@{bucket.name}/snap"
    r = envlock(project, "push", "--snapshot", url, env=bucket.env)
    assert r.code == 2, r.stderr
    assert SECRET_KEY not in r.stdout + r.stderr


# -- a fleet -------------------------------------------------------------------------------------


def test_fleet_pulls_concurrently_with_zero_index_requests(index, project, bucket, tmp_path):
    server = setup(index, project)
    assert snap(project, bucket, "push", "--archives").code == 0
    server.reset_counts()

    def machine(i: int) -> tuple[int, str, str]:
        home = tmp_path / f"machine-{i}"
        home.mkdir()
        out = home / "env"
        r = snap(
            project,
            bucket,
            "pull",
            "--platform",
            "linux-64",
            "--output",
            str(out),
            env={"ENVLOCK_CACHE_DIR": str(home / "cache")},
        )
        meta = (out / "envlock.json").read_text() if r.code == 0 else ""
        return r.code, r.stderr if r.code else tree_hash(out), meta

    with ThreadPoolExecutor(FLEET_N) as pool:
        results = list(pool.map(machine, range(FLEET_N)))
    failures = [(i, err) for i, (code, err, _) in enumerate(results) if code != 0]
    assert failures == []
    assert server.count() == 0
    assert len({tree for _, tree, _ in results}) == 1
    assert len({meta for _, _, meta in results}) == 1
    assert runs(tmp_path / "machine-0" / "env") == "1.0 2.0"
