"""The proof that a bundled environment is self-contained.

A real CPython (Debian's python3.11, packed in python-build-standalone's layout at test time and
served on 127.0.0.1 through ``[interpreter-sources]``) is locked, fetched and materialized with
the packages. The environment archive is then unpacked into a root file system that holds only
the environment and the shared libraries its ELF files load (plus ``/bin/sh``, ``dirname`` and
``realpath`` for the launchers), and its python and console script run there chrooted, with
the network off. An ``--output`` tree keeps working after a move and names no build path.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from integration.helpers import Result, envlock, load_lock, write_spec
from support.interpreter import (
    BuiltInterpreter,
    bundled_python,
    interpreter_sources_toml,
    minimal_root,
    run_in_root,
)
from support.wheels import Dist

__all__ = ["bundled_python"]  # the session fixture these tests use

CLI = b"import sys\n\n\ndef main():\n    print('hello from sctool', *sys.argv[1:])\n"
IMPORT_PROBE = (
    "import sys, sctool, schelper; print(sctool.__version__, schelper.__version__); "
    "print(sys.prefix); print(sctool.__file__); print(*sys.path, sep='\\n')"
)


def sctool() -> Dist:
    """A package with a dependency and a console script."""
    return Dist(
        "sctool",
        "1.0",
        requires=["schelper"],
        files={"sctool/cli.py": CLI},
        console_scripts={"sctool-hello": "sctool.cli:main"},
    )


def schelper() -> Dist:
    return Dist("schelper", "2.0")


def bundled_project(index, project: Path, interp: BuiltInterpreter, *, fetch: bool = True):
    """Lock (and fetch) a bundled linux-64 spec whose interpreter comes from the loopback."""
    server = index([sctool(), schelper()])
    url = server.publish_file(interp.filename, interp.data)
    body = (
        f'python = "{interp.version}"\ninterpreter = "bundled"\nplatforms = ["linux-64"]\n'
        'dependencies = ["sctool"]\n\n'
        + interpreter_sources_toml("linux-64", url, interp.sha256, interp.version)
    )
    write_spec(project, server.url, body)
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    if fetch:
        r = envlock(project, "fetch")
        assert r.code == 0, r.stderr
    return server


def materialize(project: Path, *args: str) -> Result:
    return envlock(project, "materialize", "--platform", "linux-64", *args)


def host_run(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    """Run with a scrubbed environment: no PYTHON* variables, no byte code written (a .pyc
    records its source's absolute path, which would spoil the no-build-path check)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=120
    )


def grep_paths(tree: Path, needles: list[str]) -> list[str]:
    """``grep -rlF`` each needle over ``tree``: the files that name it (symlinks not followed,
    so link targets are checked separately)."""
    found = []
    for needle in needles:
        r = subprocess.run(
            ["grep", "-rlF", "--", needle, str(tree)], capture_output=True, text=True, timeout=120
        )
        assert r.returncode in (0, 1), r.stderr
        found += r.stdout.splitlines()
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink() and any(n in os.readlink(path) for n in needles):
                found.append(f"{path} -> {os.readlink(path)}")
    return sorted(set(found))


def assert_env_runs(env: Path, interp: BuiltInterpreter) -> None:
    """The environment's own python imports the packages from itself; its launcher runs."""
    r = host_run(env / "bin" / "python3", "-c", IMPORT_PROBE)
    assert r.returncode == 0, r.stderr
    versions, prefix, where, *path = r.stdout.splitlines()
    assert versions == "1.0 2.0"
    assert Path(prefix) == env
    assert Path(where).is_relative_to(env / "lib" / "python3.11" / "site-packages")
    assert [p for p in path if p and not Path(p).is_relative_to(env)] == []
    r = host_run(env / "bin" / "python", "-c", "import platform; print(platform.python_version())")
    assert r.returncode == 0 and r.stdout.strip() == interp.version, r.stderr
    r = host_run(env / "bin" / "sctool-hello", "one", "two")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from sctool one two\n"


def test_lock_records_the_interpreter_from_interpreter_sources(
    index, project, bundled_python: BuiltInterpreter
):
    server = bundled_project(index, project, bundled_python, fetch=False)
    lock = load_lock(project / "pylock.toml")
    tool = lock["tool"]["envlock"]
    assert tool["interpreter"] == "bundled"
    (target,) = tool["targets"]
    assert target["platform"] == "linux-64" and target["python"] == bundled_python.version
    entry = target["interpreter"]
    assert entry["version"] == bundled_python.version
    assert entry["sha256"] == bundled_python.sha256
    assert entry["url"] == server.file_url(bundled_python.filename)
    assert entry.get("size", bundled_python.size) == bundled_python.size
    assert lock["requires-python"] == f"=={bundled_python.version}"


def test_archive_runs_in_a_bare_root_without_any_other_python(
    index, project, tmp_path, bundled_python: BuiltInterpreter
):
    server = bundled_project(index, project, bundled_python)
    server.stop()  # everything needed is in the cache now
    archive = tmp_path / "env.tar.gz"
    r = materialize(project, "--archive", str(archive))
    assert r.code == 0, r.stderr

    root = tmp_path / "root"
    env = root / "opt" / "env"
    env.mkdir(parents=True)
    with tarfile.open(archive) as tf:
        tf.extractall(env, filter="data")  # also: nothing in it points outside the tree
    assert not (env / "pyvenv.cfg").exists()
    assert (env / "bin" / "python3").exists()
    minimal_root(root, env)

    # No Python but the environment's own anywhere in the root file system.
    pythons = sorted(p.relative_to(root).as_posix() for p in root.rglob("python*"))
    assert pythons and all(p.startswith("opt/env/") for p in pythons), pythons
    stdlibs = sorted(p.relative_to(root).as_posix() for p in root.rglob("os.py"))
    assert stdlibs == ["opt/env/lib/python3.11/os.py"]

    r = run_in_root(root, "/opt/env/bin/python3", "-c", IMPORT_PROBE)
    assert r.returncode == 0, r.stderr
    versions, prefix, where, *path = r.stdout.splitlines()
    assert versions == "1.0 2.0"
    assert prefix == "/opt/env"
    assert where.startswith("/opt/env/lib/python3.11/site-packages/sctool/")
    assert [p for p in path if p and not p.startswith("/opt/env/")] == []

    r = run_in_root(root, "/opt/env/bin/sctool-hello", "in", "the", "root")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from sctool in the root\n"
    # ... and through a symlink to the launcher, from elsewhere (the prologue resolves it)
    os.symlink("/opt/env/bin/sctool-hello", root / "bin" / "hello")
    r = run_in_root(root, "/bin/hello", "linked")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from sctool linked\n"


def test_output_env_runs_moves_and_names_no_build_path(
    index, project, tmp_path, bundled_python: BuiltInterpreter
):
    bundled_project(index, project, bundled_python)
    out = tmp_path / "build-output" / "env"
    r = materialize(project, "--output", str(out))
    assert r.code == 0, r.stderr
    assert not (out / "pyvenv.cfg").exists()
    cache = tmp_path / "cache"
    needles = sorted({str(tmp_path), str(tmp_path.resolve()), str(cache), str(out), str(project)})
    assert grep_paths(out, needles) == []
    # Interpreter files come hard-linked from the unpacked copy in the cache, as wheels do.
    assert (out / "bin" / "python3.11").stat().st_nlink > 1
    assert (out / "lib" / "python3.11" / "json" / "__init__.py").stat().st_nlink > 1
    assert_env_runs(out, bundled_python)
    r = envlock(project, "verify", str(out))
    assert r.code == 0, (r.stdout, r.stderr)

    moved = tmp_path / "moved here" / "deeper" / "env2"
    moved.parent.mkdir(parents=True)
    os.rename(out, moved)
    assert not out.exists()
    assert_env_runs(moved, bundled_python)
    assert grep_paths(moved, needles) == []
    r = envlock(project, "verify", str(moved))
    assert r.code == 0, (r.stdout, r.stderr)


def test_verify_notices_a_changed_interpreter_file(
    index, project, tmp_path, bundled_python: BuiltInterpreter
):
    bundled_project(index, project, bundled_python)
    out = tmp_path / "env"
    assert materialize(project, "--output", str(out)).code == 0
    target = out / "lib" / "python3.11" / "json" / "__init__.py"
    data = target.read_bytes()
    target.unlink()  # break the hard link: never write through into the cache
    target.write_bytes(data + b"\n# tampered\n")
    r = envlock(project, "verify", str(out))
    assert r.code == 1, (r.stdout, r.stderr)
    assert "json/__init__.py" in r.stdout + r.stderr


def test_archive_pip_is_left_out_of_the_environment(
    index, project, tmp_path, bundled_python: BuiltInterpreter
):
    # python-build-standalone ships pip in site-packages and bin/pip*: the environment holds
    # exactly the locked packages, so envlock leaves them out.
    bundled_project(index, project, bundled_python)
    out = tmp_path / "env"
    assert materialize(project, "--output", str(out)).code == 0
    site = out / "lib" / "python3.11" / "site-packages"
    assert not (site / "pip").exists()
    assert not list(site.glob("pip-*.dist-info"))
    assert not [p.name for p in (out / "bin").iterdir() if p.name.startswith("pip")]
    r = host_run(out / "bin" / "python3", "-c", "import pip")
    assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr


@pytest.mark.parametrize("corrupt", ["bytes", "sha256"])
def test_a_wrong_interpreter_archive_is_refused(
    index, project, tmp_path, bundled_python: BuiltInterpreter, corrupt: str
):
    """The archive is hash-checked before it is unpacked: a swapped file never gets in."""
    server = bundled_project(index, project, bundled_python, fetch=False)
    if corrupt == "bytes":
        server.publish_file(bundled_python.filename, bundled_python.data[:-10] + bytes(10))
    else:
        spec = project / "envlock.toml"
        spec.write_text(spec.read_text().replace(bundled_python.sha256, "0" * 64))
        assert envlock(project, "lock").code == 0
    r = envlock(project, "fetch")
    assert r.code == 4, (r.stdout, r.stderr)
    assert len([ln for ln in r.stderr.splitlines() if ln.startswith("error:")]) == 1
    out = tmp_path / "env"
    r = materialize(project, "--output", str(out))
    assert r.code != 0 and not out.exists()
