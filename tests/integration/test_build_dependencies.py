"""Build dependencies of locked sdists: pinned in the lock, fetched and snapshotted, and the wheel
built once, offline, from the cache alone.

The sdists here name a PEP 517 backend that is *not* in their tree: ``mini_backend``, a tiny
backend published as a wheel on the loopback index (like setuptools on PyPI), whose
``get_requires_for_build_wheel`` asks for one more package from the index (``mini-helper``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from envlock.platforms import host_platform
from integration.helpers import envlock, load_lock, selected, write_spec
from support.s3 import Bucket, bucket, s3_server
from support.wheels import Dist

__all__ = ["bucket", "s3_server"]  # the fixtures these tests use

BACKEND = b'''\
"""mini_backend: a PEP 517 backend for the tests (stdlib only)."""

import base64, hashlib, importlib.util, os, sys, zipfile

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib


def _config():
    with open("pyproject.toml", "rb") as f:
        return tomllib.load(f).get("tool", {}).get("mini", {})


def _pkg_info():
    fields = {}
    with open("PKG-INFO", encoding="utf-8") as f:
        text = f.read()
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        fields.setdefault(key, value)
    return fields["Name"], fields["Version"], text.encode()


def get_requires_for_build_wheel(config_settings=None):
    return list(_config().get("extra-requires", []))


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    config = _config()
    if config.get("fail"):
        print("compiling the extension ...", file=sys.stderr)
        raise RuntimeError(config["fail"])
    name, version, metadata = _pkg_info()
    import mini_helper  # the dynamic build requirement is installed

    stem = name.replace("-", "_") + "-" + version
    tag = config.get("tag", "py3-none-any")
    info = stem + ".dist-info"
    body = {}
    top = name.replace("-", "_")
    for root, _, files in sorted(os.walk(top)):
        for fn in sorted(files):
            path = os.path.join(root, fn)
            with open(path, "rb") as f:
                body[path.replace(os.sep, "/")] = f.read()
    # What the build saw: its clock and whether anything but the build packages was importable.
    body[top + "/_build.txt"] = (
        "SOURCE_DATE_EPOCH=" + os.environ.get("SOURCE_DATE_EPOCH", "") + "\\n"
        + "httpx=" + str(importlib.util.find_spec("httpx") is not None) + "\\n"
        + "helper=" + mini_helper.WHO + "\\n"
    ).encode()
    body[info + "/METADATA"] = metadata
    body[info + "/WHEEL"] = (
        "Wheel-Version: 1.0\\nGenerator: mini_backend\\nRoot-Is-Purelib: "
        + ("true" if tag.endswith("-any") else "false") + "\\nTag: " + tag + "\\n"
    ).encode()
    rows = []
    for path, data in sorted(body.items()):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(path + ",sha256=" + digest + "," + str(len(data)))
    rows.append(info + "/RECORD,,")
    body[info + "/RECORD"] = ("\\n".join(rows) + "\\n").encode()
    filename = stem + "-" + tag + ".whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as zf:
        for path, data in body.items():
            zf.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return filename
'''

BACKEND_DISTS = [
    Dist("mini-backend", "1.0", files={"mini_backend/__init__.py": BACKEND}),
    Dist("mini-helper", "1.0", files={"mini_helper/__init__.py": b"WHO = 'mini-helper 1.0'\n"}),
]
HOST_TAG = "cp311-cp311-manylinux_2_17_x86_64"


def source(name: str, version: str = "1.0", **mini: object) -> Dist:
    """An sdist built by ``mini_backend`` from the index; ``mini`` is its ``[tool.mini]``."""
    lines = [
        "[build-system]",
        'requires = ["mini-backend>=1"]',
        'build-backend = "mini_backend"',
        "",
        "[tool.mini]",
        'extra-requires = ["mini-helper"]',
        *(f"{k} = {v!r}".replace("'", '"') for k, v in mini.items()),
    ]
    return Dist(
        name,
        version,
        kind="sdist",
        pyproject=("\n".join(lines) + "\n").encode(),
        files={f"{name}/cli.py": b"def main():\n    print('hi')\n"},
    )


def spec(project: Path, url: str, deps: list[str], platforms: str = '["linux-64"]') -> None:
    write_spec(
        project,
        url,
        f'python = "3.11"\nplatforms = {platforms}\ndependencies = {deps!r}\n'.replace("'", '"')
        + "allow-sdist = true\n",
    )


def built(cache: Path, sdist_sha: str) -> list[Path]:
    return sorted((cache / "built" / "sha256" / sdist_sha[:2] / sdist_sha[2:]).glob("*.whl"))


def sdist_of(lock: dict, name: str) -> dict:  # type: ignore[type-arg]
    return next(p for p in lock["packages"] if p["name"] == name)["sdist"]


# -- the lock ------------------------------------------------------------------------------------


def test_lock_pins_each_sdists_build_dependencies_with_hashes_per_target(index, project, cache):
    server = index([source("srcpkg"), *BACKEND_DISTS])
    spec(project, server.url, ["srcpkg"], '["linux-64", "win-64"]')
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    lock = load_lock(project / "pylock.toml")
    table = lock["tool"]["envlock"]
    sdist = sdist_of(lock, "srcpkg")
    wheels = ["mini_backend-1.0-py3-none-any.whl", "mini_helper-1.0-py3-none-any.whl"]
    assert table["builds"] == [
        {
            "name": "srcpkg",
            "version": "1.0",
            "sdist": "srcpkg-1.0.tar.gz",
            "sdist-sha256": sdist["hashes"]["sha256"],
            "backend": "mini_backend",
            "requires": ["mini-backend>=1"],
            "backend-requires": ["mini-helper"],  # the backend's get_requires_for_build_wheel
            "platforms": {"linux-64": wheels, "win-64": wheels},
        }
    ]
    files = {f["name"]: f for f in table["build-files"]}
    assert sorted(files) == wheels
    for name, f in files.items():
        assert f["hashes"]["sha256"] == server.sha256(name)
        assert f["size"] == server.file_path(name).stat().st_size
        assert f["url"].endswith("/" + name) and f["url"].startswith("http://127.0.0.1:")
    assert files["mini_backend-1.0-py3-none-any.whl"]["package"] == "mini-backend"
    # Still a valid PEP 751 lock, and installers select no build package.
    Pylock.from_dict(lock).validate()
    assert selected(project / "pylock.toml", "linux-64") == {"srcpkg": "1.0"}
    assert selected(project / "pylock.toml", "win-64") == {"srcpkg": "1.0"}
    assert envlock(project, "lock", "--check").code == 0


def test_lock_with_build_dependencies_is_byte_identical_across_runs(index, project, cache):
    server = index([source("srcpkg"), source("other", "2.0"), *BACKEND_DISTS])
    spec(project, server.url, ["srcpkg", "other"], '["linux-64", "osx-arm64"]')
    assert envlock(project, "lock").code == 0
    first = (project / "pylock.toml").read_bytes()
    (project / "pylock.toml").unlink()
    # A second run from nothing: no cached backend answer, no previous lock.
    r = envlock(project, "lock", env={"ENVLOCK_CACHE_DIR": str(cache.parent / "other-cache")})
    assert r.code == 0, r.stderr
    assert (project / "pylock.toml").read_bytes() == first
    assert b"[[tool.envlock.build-files]]" in first


def test_hostile_build_table_is_a_one_line_error(index, project, cache):
    server = index([source("srcpkg"), *BACKEND_DISTS])
    spec(project, server.url, ["srcpkg"])
    assert envlock(project, "lock").code == 0
    path = project / "pylock.toml"
    text = path.read_text()
    head, tail = text.split("[[tool.envlock.build-files]]", 1)
    sha = server.sha256("mini_backend-1.0-py3-none-any.whl")
    cases = {
        sha: ("../../etc", "tool.envlock.build-files[0].hashes.sha256"),
        server.url.rstrip("/") + "/": (
            "http://user:secret@127.0.0.1/",
            "tool.envlock.build-files[0].index",
        ),
        'package = "mini-backend"': ('package = "evil"', "tool.envlock.build-files[0].name"),
    }
    for old, (new, where) in cases.items():
        assert old in tail
        path.write_text(head + "[[tool.envlock.build-files]]" + tail.replace(old, new, 1))
        r = envlock(project, "fetch")
        assert r.code == 2, r.stderr
        assert f"pylock.toml: {where}:" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and "secret" not in r.stderr


# -- fetch and build -----------------------------------------------------------------------------


def test_fetch_and_build_build_the_sdist_offline_from_the_cache(index, project, cache, tmp_path):
    server = index([source("srcpkg"), *BACKEND_DISTS])
    spec(project, server.url, ["srcpkg"])
    assert envlock(project, "lock").code == 0
    sdist_sha = sdist_of(load_lock(project / "pylock.toml"), "srcpkg")["hashes"]["sha256"]
    assert envlock(project, "fetch").code == 0
    assert [w.name for w in built(cache, sdist_sha)] == ["srcpkg-1.0-py3-none-any.whl"]

    # Start again from a cache holding only the locked files: the build itself asks no index.
    import shutil

    shutil.rmtree(cache / "built")
    server.reset_counts()
    r = envlock(project, "fetch")
    assert r.code == 0, r.stderr
    assert server.count() == 0  # every request counted: none
    wheels = built(cache, sdist_sha)
    assert [w.name for w in wheels] == ["srcpkg-1.0-py3-none-any.whl"]
    with zipfile.ZipFile(wheels[0]) as zf:
        said = zf.read("srcpkg/_build.txt").decode()
    # SOURCE_DATE_EPOCH fixed, the dynamic build requirement installed, nothing else importable.
    assert said == "SOURCE_DATE_EPOCH=315532800\nhttpx=False\nhelper=mini-helper 1.0\n"

    shutil.rmtree(cache / "built")
    server.stop()
    out = tmp_path / "env"
    r = envlock(project, "build", "--output", str(out))
    assert r.code == 0, r.stderr
    assert (out / "lib" / "python3.11" / "site-packages" / "srcpkg" / "cli.py").is_file()
    assert not list((out / "lib" / "python3.11" / "site-packages").glob("mini_backend*"))


def test_failing_build_names_the_package_and_shows_the_backends_last_line(index, project):
    failing = source("broken", fail="cc: fatal error: Python.h: no such file")
    server = index([failing, *BACKEND_DISTS])
    spec(project, server.url, ["broken"])
    assert envlock(project, "lock").code == 0
    r = envlock(project, "fetch")
    assert r.code == 1, r.stderr
    assert "error: building broken 1.0 (broken-1.0.tar.gz) failed" in r.stderr
    assert "cc: fatal error: Python.h: no such file" in r.stderr
    assert "compiling the extension ..." in r.stderr  # the lines before it, in the hint
    assert "Traceback" not in r.stderr.split("hint:")[0]


def test_native_build_for_a_foreign_target_says_where_to_build_it(index, project, cache):
    server = index([source("native", tag=HOST_TAG), *BACKEND_DISTS])
    spec(project, server.url, ["native"], '["linux-64", "win-64"]')
    assert envlock(project, "lock").code == 0
    r = envlock(project, "fetch", "--platform", "linux-64")
    assert r.code == 0, r.stderr
    r = envlock(project, "fetch", "--platform", "win-64")
    assert r.code == 1, r.stderr
    assert "native 1.0 (native-1.0.tar.gz) builds a platform-specific wheel" in r.stderr
    assert "it must be built on a win-64 machine" in r.stderr
    assert "envlock fetch --platform win-64` on a win-64 machine, then `envlock push`" in r.stderr


@pytest.mark.skipif(host_platform() != "linux-64", reason="builds a linux_x86_64 wheel here")
def test_a_plain_linux_wheel_built_here_serves_this_hosts_platform(index, project, tmp_path):
    """A Linux build without auditwheel is tagged linux_x86_64 (pip's and uv's local builds
    are too): it serves a linux-64 target on a linux-64 host, not a manylinux index tag."""
    server = index([source("localbuild", tag="cp311-cp311-linux_x86_64"), *BACKEND_DISTS])
    spec(project, server.url, ["localbuild"], '["linux-64", "osx-arm64"]')
    assert envlock(project, "lock").code == 0
    out = tmp_path / "env"
    r = envlock(project, "build", "--platform", "linux-64", "--output", str(out))
    assert r.code == 0, r.stderr
    assert (out / "lib" / "python3.11" / "site-packages" / "localbuild").is_dir()
    r = envlock(project, "fetch", "--platform", "osx-arm64")
    assert r.code == 1, r.stderr
    assert "it must be built on a osx-arm64 machine" in r.stderr


def test_lock_downloads_an_sdist_once_for_its_metadata_and_its_build_dependencies(
    index, project, cache
):
    """The sdist read for its metadata goes into the artifact store, where locking its build
    dependencies (and fetch) find it: a 455 MB pyspark was downloaded twice by one lock."""
    server = index([source("srcpkg"), *BACKEND_DISTS])
    spec(project, server.url, ["srcpkg"])
    assert envlock(project, "lock").code == 0
    assert server.count("/files/srcpkg-1.0.tar.gz") == 1
    server.reset_counts()
    assert envlock(project, "fetch").code == 0
    assert server.count("/files/srcpkg-1.0.tar.gz") == 0


# -- snapshots -----------------------------------------------------------------------------------


def test_snapshot_carries_build_packages_and_the_built_wheel(
    index, project, bucket: Bucket, tmp_path
):
    server = index([source("srcpkg"), *BACKEND_DISTS])
    spec(project, server.url, ["srcpkg"])
    assert envlock(project, "lock").code == 0
    r = envlock(project, "push", "--snapshot", bucket.url, env=bucket.env)
    assert r.code == 0, r.stderr
    lock = load_lock(project / "pylock.toml")
    sdist_sha = sdist_of(lock, "srcpkg")["hashes"]["sha256"]
    keys = set(bucket.list_keys())
    for f in lock["tool"]["envlock"]["build-files"]:
        sha = f["hashes"]["sha256"]
        assert f"artifacts/sha256/{sha[:2]}/{sha}/{f['name']}" in keys
    built_key = f"built/sha256/{sdist_sha[:2]}/{sdist_sha}/srcpkg-1.0-py3-none-any.whl"
    assert built_key in keys

    server.stop()
    fresh = tmp_path / "fresh"
    r = envlock(
        project, "fetch", "--from-snapshot", "--snapshot", bucket.url, "--cache-dir", str(fresh),
        env=bucket.env,
    )  # fmt: skip
    assert r.code == 0, r.stderr
    assert [w.read_bytes() for w in built(fresh, sdist_sha)] == [bucket.get(built_key)]
    for f in lock["tool"]["envlock"]["build-files"]:
        sha = f["hashes"]["sha256"]
        assert (fresh / "artifacts" / "sha256" / sha[:2] / sha[2:] / f["name"]).is_file()


# -- audit and SBOM ------------------------------------------------------------------------------


def test_audit_and_sbom_list_build_packages_as_build_time_only(index, project):
    import json

    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    server = index([source("srcpkg"), *BACKEND_DISTS])
    spec(project, server.url, ["srcpkg"])
    assert envlock(project, "lock").code == 0

    r = envlock(project, "audit", "--format", "json")
    assert r.code == 0, r.stderr
    env = json.loads(r.stdout)["environments"][0]
    assert [p["name"] for p in env["packages"]] == ["srcpkg"]
    builds = {b["name"]: b for b in env["build-packages"]}
    assert sorted(builds) == ["mini-backend", "mini-helper"]
    backend = builds["mini-backend"]
    assert backend["needed-by"] == ["srcpkg 1.0"] and backend["platforms"] == ["linux-64"]
    assert backend["files"][0]["sha256"] == server.sha256("mini_backend-1.0-py3-none-any.whl")

    r = envlock(project, "audit")
    assert r.code == 0, r.stderr
    assert "mini-backend" in r.stdout and "build (srcpkg 1.0)" in r.stdout

    r = envlock(project, "audit", "--format", "cyclonedx")
    assert r.code == 0, r.stderr
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(r.stdout) is None
    components = {c["bom-ref"]: c for c in json.loads(r.stdout)["components"]}
    backend_c = components["build/pkg:pypi/mini-backend@1.0"]
    assert backend_c["scope"] == "excluded"
    assert backend_c["purl"].startswith("pkg:pypi/mini-backend@1.0")
    assert {"name": "envlock:build-dependency-of", "value": "srcpkg 1.0"} in backend_c["properties"]
    assert components["pkg:pypi/srcpkg@1.0"].get("scope") != "excluded"


def test_uv_installs_a_lock_that_pins_build_dependencies(index, project, tmp_path):
    import os
    import subprocess
    import sys

    server = index([source("srcpkg"), *BACKEND_DISTS, Dist("beta", "2.0")])
    spec(project, server.url, ["srcpkg", "beta"])
    assert envlock(project, "lock").code == 0
    uv = [sys.executable, "-m", "uv"]
    env = {
        **os.environ,
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
        "UV_NO_CONFIG": "1",
        "UV_INDEX_URL": server.url,  # uv builds the sdist itself, its backend from the index
    }
    venv = tmp_path / "uv-venv"
    r = subprocess.run(
        [*uv, "venv", "--python", sys.executable, str(venv)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [*uv, "pip", "install", "--python", str(venv / "bin" / "python"),
         "-r", str(project / "pylock.toml")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import srcpkg, beta, importlib.util as u;"
         "print(u.find_spec('mini_backend') is None)"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (r.returncode, r.stdout) == (0, "True\n"), r.stderr


def test_cache_prune_keeps_the_build_packages_a_lock_pins(index, project, cache):
    server = index([source("srcpkg"), *BACKEND_DISTS])
    spec(project, server.url, ["srcpkg"])
    assert envlock(project, "lock").code == 0
    assert envlock(project, "fetch").code == 0
    r = envlock(project, "cache", "prune")
    assert r.code == 0, r.stderr
    for f in load_lock(project / "pylock.toml")["tool"]["envlock"]["build-files"]:
        sha = f["hashes"]["sha256"]
        assert (cache / "artifacts" / "sha256" / sha[:2] / sha[2:] / f["name"]).is_file()
