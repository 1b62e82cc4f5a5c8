"""``envlock materialize`` with a bundled interpreter, end to end through the real CLI.

The interpreter is a real CPython (Debian's python3.11 in python-build-standalone's layout,
``support.interpreter``) served on 127.0.0.1 through ``[interpreter-sources]``: locked, fetched
and materialized with the packages. The environment is the interpreter's tree with the packages
in its own site-packages; ``verify`` checks the interpreter's files too; archives are
byte-reproducible and run elsewhere; ``--compile`` uses the environment's own interpreter.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from integration.helpers import Result, envlock, write_spec
from support.interpreter import (
    BuiltInterpreter,
    bundled_python,
    fake_interpreter_archive,
    interpreter_sources_toml,
)
from support.wheels import Dist

__all__ = ["bundled_python"]  # the session fixture these tests use

CLI = b"import sys\n\n\ndef main():\n    print('hello from bpkg', *sys.argv[1:])\n"
PROBE = (
    "import sys, bpkg, bdep; print(bpkg.__version__, bdep.__version__); print(sys.prefix); "
    "print(bpkg.__file__)"
)


def bpkg() -> Dist:
    """A package with a dependency, a console script and a ``.data`` script."""
    return Dist(
        "bpkg",
        "1.0",
        requires=["bdep"],
        files={
            "bpkg/cli.py": CLI,
            "bpkg-1.0.data/scripts/bpkg-raw": b"#!python\nimport bpkg\n"
            b"print('raw', bpkg.__version__)\n",
        },
        console_scripts={"bpkg-hello": "bpkg.cli:main"},
    )


def bdep() -> Dist:
    return Dist("bdep", "2.0")


def setup(
    index,
    project: Path,
    interp: BuiltInterpreter,
    dists: list[Dist] | None = None,
    deps: tuple[str, ...] = ("bpkg",),
):
    """Lock and fetch a bundled linux-64 spec whose interpreter comes from the loopback."""
    server = index(dists if dists is not None else [bpkg(), bdep()])
    url = server.publish_file(interp.filename, interp.data)
    body = (
        f'python = "{interp.version}"\ninterpreter = "bundled"\nplatforms = ["linux-64"]\n'
        f"dependencies = {json.dumps(list(deps))}\n\n"
        + interpreter_sources_toml("linux-64", url, interp.sha256, interp.version)
    )
    write_spec(project, server.url, body)
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    r = envlock(project, "fetch")
    assert r.code == 0, r.stderr
    return server


def materialize(project: Path, *args: str) -> Result:
    return envlock(project, "materialize", "--platform", "linux-64", *args)


def run(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    """Run with no PYTHON* variables and no byte code written."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=120
    )


def assert_runs(env: Path) -> None:
    r = run(env / "bin" / "python", "-c", PROBE)
    assert r.returncode == 0, r.stderr
    versions, prefix, where = r.stdout.splitlines()
    assert versions == "1.0 2.0"
    assert Path(prefix) == env
    assert Path(where).is_relative_to(env / "lib" / "python3.11" / "site-packages")
    r = run(env / "bin" / "bpkg-hello", "one", "two")
    assert (r.returncode, r.stdout) == (0, "hello from bpkg one two\n"), r.stderr
    r = run(env / "bin" / "bpkg-raw")
    assert (r.returncode, r.stdout) == (0, "raw 1.0\n"), r.stderr


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def unpacked_tree(cache: Path, interp: BuiltInterpreter) -> Path:
    return cache / "unpacked" / "sha256" / interp.sha256[:2] / interp.sha256[2:]


def test_environment_is_the_interpreter_tree_and_records_it(
    index, project, tmp_path, cache, bundled_python: BuiltInterpreter
):
    setup(index, project, bundled_python)
    out = tmp_path / "env"
    r = materialize(project, "--output", str(out))
    assert r.code == 0, r.stderr
    assert_runs(out)
    assert not (out / "pyvenv.cfg").exists()
    assert os.readlink(out / "bin" / "python") == "python3.11"
    assert os.readlink(out / "bin" / "python3") == "python3.11"

    meta = json.loads((out / "envlock.json").read_text())
    assert "base-python" not in meta
    assert meta["python"] == bundled_python.version
    assert meta["interpreter"] == {
        "build": "",
        "name": bundled_python.filename,
        "sha256": bundled_python.sha256,
        "version": bundled_python.version,
    }
    record = (out / "envlock-interpreter.RECORD").read_text().splitlines()
    python = (out / "bin" / "python3.11").read_bytes()
    digest = hashlib.sha256(python).digest()
    b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert f"bin/python3.11,sha256={b64},{len(python)}" in record
    assert "bin/python,symlink=python3.11," in record

    # Running it writes byte code for the stdlib into the environment's own directories (never
    # through the links into the cache); verify does not count byte code as drift.
    r = subprocess.run(
        [str(out / "bin" / "python"), "-c", "import json, email.parser, bpkg"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert list((out / "lib" / "python3.11" / "json" / "__pycache__").glob("*.pyc"))
    assert list(unpacked_tree(cache, bundled_python).rglob("__pycache__")) == []
    r = envlock(project, "verify", str(out))
    assert r.code == 0, (r.stdout, r.stderr)

    # The relocatable activate script puts the environment's python first.
    r = subprocess.run(
        ["bash", "-c", f'. "{out}/bin/activate" && python -c "import sys; print(sys.prefix)"'],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=60,
    )
    assert (r.returncode, r.stdout.strip()) == (0, str(out)), r.stderr


def test_verify_reports_interpreter_drift_and_a_rebuild_heals_the_cache(
    index, project, tmp_path, cache, bundled_python: BuiltInterpreter
):
    setup(index, project, bundled_python)
    env = tmp_path / "env"
    assert materialize(project, "--output", str(env)).code == 0
    stdlib = env / "lib" / "python3.11"
    original = (stdlib / "json" / "__init__.py").read_bytes()
    with (stdlib / "json" / "__init__.py").open("ab") as f:  # through the hard link
        f.write(b"\nimport os  # tampered\n")
    (env / "bin" / "python3.11").rename(env / "python-moved-away")
    (stdlib / "injected.py").write_text("print('not from the lock')\n")
    (env / "bin" / "python3").unlink()
    os.symlink("/usr/bin/python3", env / "bin" / "python3")

    r = envlock(project, "verify", str(env))
    assert r.code == 1, (r.stdout, r.stderr)
    problems = r.stdout.splitlines()
    for expected in [
        "modified file lib/python3.11/json/__init__.py (interpreter)",
        "missing file bin/python3.11 (interpreter)",
        "modified link bin/python3 (interpreter)",
        "unrecorded file lib/python3.11/injected.py",
        "unrecorded file python-moved-away",
    ]:
        assert expected in problems, problems

    # The edit went through the link into the cache: the next build notices (the cached copy
    # changed since it was unpacked), unpacks the verified archive again and is clean.
    fresh = tmp_path / "fresh"
    r = materialize(project, "--output", str(fresh))
    assert r.code == 0, r.stderr
    assert (fresh / "lib" / "python3.11" / "json" / "__init__.py").read_bytes() == original
    r = envlock(project, "verify", str(fresh))
    assert r.code == 0, (r.stdout, r.stderr)
    assert envlock(project, "cache", "verify").code == 0


def test_archive_is_reproducible_keeps_links_and_runs_elsewhere(
    index, project, tmp_path, bundled_python: BuiltInterpreter
):
    setup(index, project, bundled_python)
    first, second = tmp_path / "one.tar.gz", tmp_path / "two.tar.gz"
    r1 = materialize(project, "--archive", str(first))
    r2 = materialize(project, "--archive", str(second))
    assert r1.code == 0 and r2.code == 0, (r1.stderr, r2.stderr)
    assert first.read_bytes() == second.read_bytes()
    sha = hashlib.sha256(first.read_bytes()).hexdigest()
    assert f"sha256:{sha}" in r1.stdout

    with tarfile.open(first) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin/python3"].issym() and members["bin/python3"].linkname == "python3.11"
    assert members["bin/python"].issym()
    assert members["bin/python3.11"].isreg() and members["bin/python3.11"].mode == 0o755
    assert "pyvenv.cfg" not in members
    assert not [n for n in members if "site-packages/pip" in n or n.startswith("bin/pip")]

    where = tmp_path / "somewhere else" / "env"
    where.mkdir(parents=True)
    with tarfile.open(first) as tar:
        tar.extractall(where, filter="data")
    assert_runs(where)
    r = envlock(project, "verify", str(where))
    assert r.code == 0, (r.stdout, r.stderr)


def test_compile_uses_the_bundled_interpreter_for_site_packages_only(
    index, project, tmp_path, cache, bundled_python: BuiltInterpreter
):
    setup(index, project, bundled_python)
    out = tmp_path / "env"
    r = materialize(project, "--output", str(out), "--compile")
    assert r.code == 0, r.stderr
    assert "byte-compiled" in r.stderr
    assert json.loads((out / "envlock.json").read_text())["compiled"] is True
    site = out / "lib" / "python3.11" / "site-packages"
    pycs = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.pyc"))
    assert "bpkg/__pycache__/cli.cpython-311.pyc" in pycs
    # checked-hash pycs (flags = 3): valid wherever the tree is and whatever its times are
    pyc = (site / "bpkg" / "__pycache__" / "cli.cpython-311.pyc").read_bytes()
    assert int.from_bytes(pyc[4:8], "little") == 3
    # The compiler's own imports wrote nothing into the stdlib (or, through links, the cache).
    outside = [p for p in out.rglob("*.pyc") if not p.is_relative_to(site)]
    assert outside == []
    assert list(unpacked_tree(cache, bundled_python).rglob("*.pyc")) == []
    assert_runs(out)
    r = envlock(project, "verify", str(out))
    assert r.code == 0, (r.stdout, r.stderr)


def test_base_python_is_refused_for_a_bundled_lock(
    index, project, tmp_path, bundled_python: BuiltInterpreter
):
    setup(index, project, bundled_python)
    out = tmp_path / "env"
    r = materialize(project, "--output", str(out), "--base-python", "/usr/bin/python3.11")
    assert r.code == 2, (r.stdout, r.stderr)
    [line] = error_lines(r.stderr)
    assert "--base-python" in line and 'interpreter = "system"' in line
    assert not out.exists()


def test_missing_interpreter_archive_is_reported_like_a_missing_wheel(
    index, project, tmp_path, cache, bundled_python: BuiltInterpreter
):
    setup(index, project, bundled_python)
    sha = bundled_python.sha256
    stored = cache / "artifacts" / "sha256" / sha[:2] / sha[2:] / bundled_python.filename
    assert stored.is_file()
    stored.unlink()
    out = tmp_path / "env"
    r = materialize(project, "--output", str(out))
    assert r.code == 1, (r.stdout, r.stderr)
    [line] = error_lines(r.stderr)
    assert bundled_python.filename in line and "not in the cache" in line
    assert "envlock fetch" in r.stderr
    assert not out.exists()


def test_a_wheel_writing_into_the_interpreter_is_refused(
    index, project, tmp_path, bundled_python: BuiltInterpreter
):
    clash = Dist(
        "clash",
        "1.0",
        files={"clash-1.0.data/data/lib/python3.11/os.py": b"print('hijacked')\n"},
    )
    setup(index, project, bundled_python, [clash], ("clash",))
    out = tmp_path / "env"
    r = materialize(project, "--output", str(out))
    assert r.code == 4, (r.stdout, r.stderr)
    [line] = error_lines(r.stderr)
    assert "clash" in line and "lib/python3.11/os.py" in line
    assert "part of the bundled interpreter" in line
    assert not out.exists()


def test_cache_verify_checks_the_unpacked_interpreter(
    index, project, tmp_path, cache, bundled_python: BuiltInterpreter
):
    setup(index, project, bundled_python)
    assert materialize(project, "--output", str(tmp_path / "env")).code == 0
    tree = unpacked_tree(cache, bundled_python)
    os_py = tree / "lib" / "python3.11" / "os.py"
    original = os_py.read_bytes()
    os_py.unlink()  # a new file: the environment's link still holds the original
    os_py.write_bytes(original + b"\n# damaged\n")

    r = envlock(project, "cache", "verify")
    assert r.code == 1, (r.stdout, r.stderr)
    assert str(os_py.resolve()) in r.stdout
    assert not tree.exists()
    r = materialize(project, "--output", str(tmp_path / "again"))
    assert r.code == 0, r.stderr
    assert (tmp_path / "again" / "lib" / "python3.11" / "os.py").read_bytes() == original
    assert os_py.read_bytes() == original


def test_verify_notices_the_lock_now_pins_another_interpreter(
    index, project, tmp_path, bundled_python: BuiltInterpreter
):
    server = setup(index, project, bundled_python)
    env = tmp_path / "env"
    assert materialize(project, "--output", str(env)).code == 0

    # The same tree with another sha256 (a second gzip member holding tar padding): a team
    # swapped its interpreter build; the lock follows the spec.
    other = bundled_python.data + gzip.compress(bytes(1024), mtime=0)
    other_sha = hashlib.sha256(other).hexdigest()
    name = "cpython-other-linux-64.tar.gz"
    server.publish_file(name, other)
    spec = project / "envlock.toml"
    text = spec.read_text()
    assert text.count(bundled_python.sha256) == 1
    spec.write_text(
        text.replace(bundled_python.sha256, other_sha).replace(
            f"/files/{bundled_python.filename}", f"/files/{name}"
        )
    )
    assert envlock(project, "lock").code == 0
    r = envlock(project, "verify", str(env))
    assert r.code == 1, (r.stdout, r.stderr)
    assert any(
        line.startswith(f"interpreter {bundled_python.filename}") and name in line
        for line in r.stdout.splitlines()
    ), r.stdout

    assert envlock(project, "fetch").code == 0
    fresh = tmp_path / "fresh"
    assert materialize(project, "--output", str(fresh)).code == 0
    assert json.loads((fresh / "envlock.json").read_text())["interpreter"]["sha256"] == other_sha
    r = envlock(project, "verify", str(fresh))
    assert r.code == 0, (r.stdout, r.stderr)


@pytest.mark.parametrize("platform", ["win-64", "osx-arm64"])
def test_foreign_bundled_environment_verifies_and_archives_reproducibly(
    platform, index, project, tmp_path
):
    """Built on Linux for another platform: verify checks its interpreter files, and its
    archive is byte-reproducible (the look-alike interpreters cannot run here)."""
    fake = fake_interpreter_archive(tmp_path / "pbs", platform, "3.11.9")
    server = index([bpkg(), bdep()])
    url = server.publish_file(fake.filename, fake.data)
    write_spec(
        project,
        server.url,
        f'python = "3.11.9"\ninterpreter = "bundled"\nplatforms = ["{platform}"]\n'
        'dependencies = ["bpkg"]\n\n' + interpreter_sources_toml(platform, url, fake.sha256, None),
    )
    assert envlock(project, "lock").code == 0
    assert envlock(project, "fetch").code == 0
    out = tmp_path / "env"
    r = envlock(project, "materialize", "--platform", platform, "--output", str(out))
    assert r.code == 0, r.stderr
    r = envlock(project, "verify", str(out))
    assert r.code == 0, (r.stdout, r.stderr)

    python = "python.exe" if platform == "win-64" else "bin/python3.11"
    scripts = "Scripts" if platform == "win-64" else "bin"
    if platform == "win-64":
        assert b'"%~dp0..\\python.exe"' in (out / scripts / "bpkg-hello.cmd").read_bytes()
        assert (out / "Lib" / "site-packages" / "bpkg" / "cli.py").read_bytes() == CLI
    (out / python).unlink()
    (out / python).write_bytes(b"not the locked interpreter")
    r = envlock(project, "verify", str(out))
    assert r.code == 1
    assert f"modified file {python} (interpreter)" in r.stdout.splitlines()

    archives = [tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"]
    for archive in archives:
        r = envlock(project, "materialize", "--platform", platform, "--archive", str(archive))
        assert r.code == 0, r.stderr
    assert archives[0].read_bytes() == archives[1].read_bytes()
    with tarfile.open(archives[0]) as tar:
        names = tar.getnames()
    assert python in names and "envlock-interpreter.RECORD" in names
    assert "pyvenv.cfg" not in names


def test_copy_mode_makes_an_independent_environment(
    index, project, tmp_path, cache, bundled_python: BuiltInterpreter
):
    setup(index, project, bundled_python)
    out = tmp_path / "env"
    r = materialize(project, "--output", str(out), "--link-mode", "copy")
    assert r.code == 0, r.stderr
    os_py = out / "lib" / "python3.11" / "os.py"
    cached = unpacked_tree(cache, bundled_python) / "lib" / "python3.11" / "os.py"
    assert os_py.stat().st_nlink == 1
    assert os_py.stat().st_mtime == cached.stat().st_mtime  # the stdlib's .pyc files need it
    assert_runs(out)
    r = envlock(project, "verify", str(out))
    assert r.code == 0, (r.stdout, r.stderr)


def test_a_bundled_lock_stays_pep_751_that_uv_installs(
    index, project, tmp_path, bundled_python: BuiltInterpreter
):
    """The interpreter lives in [tool.envlock]: the packages are plain PEP 751, and uv installs
    them into a virtual environment of the locked interpreter (its exact requires-python)."""
    from packaging.pylock import Pylock

    from integration.helpers import load_lock

    setup(index, project, bundled_python)
    Pylock.from_dict(load_lock(project / "pylock.toml")).validate()
    out = tmp_path / "env"
    assert materialize(project, "--output", str(out)).code == 0
    uv = [sys.executable, "-m", "uv"]
    venv = tmp_path / "uv-venv"
    env = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_NO_CONFIG": "1"}
    r = subprocess.run(
        [*uv, "venv", "--python", str(out / "bin" / "python3"), str(venv)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [
            *uv,
            "pip",
            "install",
            "--python",
            str(venv / "bin" / "python"),
            "-r",
            str(project / "pylock.toml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    probe = run(venv / "bin" / "python", "-c", "import bpkg, bdep; print(bpkg.__version__)")
    assert (probe.returncode, probe.stdout) == (0, "1.0\n"), probe.stderr
