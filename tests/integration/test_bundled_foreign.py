"""Bundled interpreters for foreign platforms, and hostile interpreter archives.

osx-arm64 and win-64 environments are made on this Linux host from small look-alike archives
in python-build-standalone's layout (served on 127.0.0.1 through ``[interpreter-sources]``):
the interpreter sits where the platform expects it and the launchers point at it. Archives
with traversal, absolute paths, outward links, device files or no ``python/`` top directory
are refused with one error line, leaving neither an output nor an unpacked tree behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from integration.helpers import Result, envlock, write_spec
from support.interpreter import (
    EVIL_ABSOLUTE,
    EVIL_ESCAPE,
    EVIL_KINDS,
    EVIL_MARKER,
    BuiltInterpreter,
    evil_interpreter_archive,
    fake_interpreter_archive,
    interpreter_sources_toml,
    sha256_file,
)
from support.wheels import Dist

VERSION = "3.11.9"
CLI = b"import sys\n\n\ndef main():\n    print('hello from ftool', *sys.argv[1:])\n"


def ftool() -> Dist:
    return Dist(
        "ftool",
        "1.0",
        requires=["fhelper"],
        files={"ftool/cli.py": CLI},
        console_scripts={"ftool-hello": "ftool.cli:main"},
    )


def fhelper() -> Dist:
    return Dist("fhelper", "2.0")


def spec_body(platforms: list[str], sources: str) -> str:
    return (
        f'python = "{VERSION}"\ninterpreter = "bundled"\nplatforms = {platforms!r}\n'.replace(
            "'", '"'
        )
        + 'dependencies = ["ftool"]\n\n'
        + sources
    )


def unpack(fake: BuiltInterpreter, dest: Path) -> Path:
    with tarfile.open(fake.path) as tf:
        tf.extractall(dest, filter="data")
    return dest / "python"


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def materialize(project: Path, platform: str, *args: str) -> Result:
    return envlock(project, "materialize", "--platform", platform, *args)


@pytest.fixture
def foreign(index, project, tmp_path) -> dict[str, BuiltInterpreter]:
    """A locked and fetched osx-arm64 + win-64 project with look-alike interpreters."""
    server = index([ftool(), fhelper()])
    fakes = {
        p: fake_interpreter_archive(tmp_path / "pbs", p, VERSION) for p in ("osx-arm64", "win-64")
    }
    sources = ""
    for platform, fake in fakes.items():
        url = server.publish_file(fake.filename, fake.data)
        # no version: it comes from the exact python and the pbs-style file name
        sources += interpreter_sources_toml(platform, url, fake.sha256, None) + "\n"
    write_spec(project, server.url, spec_body(["osx-arm64", "win-64"], sources))
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    r = envlock(project, "fetch")
    assert r.code == 0, r.stderr
    return fakes


def test_osx_arm64_environment_carries_its_interpreter(foreign, project, tmp_path):
    out = tmp_path / "osx"
    r = materialize(project, "osx-arm64", "--output", str(out))
    assert r.code == 0, r.stderr
    fake = foreign["osx-arm64"]
    py = unpack(fake, tmp_path / "unpacked")

    assert (out / "bin" / "python3.11").read_bytes() == (py / "bin" / "python3.11").read_bytes()
    assert os.access(out / "bin" / "python3.11", os.X_OK)
    for link in ("python", "python3"):
        path = out / "bin" / link
        assert os.path.realpath(path) == str((out / "bin" / "python3.11").resolve())
        if path.is_symlink():  # relative, so the tree can move
            assert not os.path.isabs(os.readlink(path))
    assert (out / "lib" / "libpython3.11.dylib").is_file()
    assert (out / "lib" / "python3.11" / "os.py").is_file()
    assert not (out / "pyvenv.cfg").exists()
    site = out / "lib" / "python3.11" / "site-packages"
    assert (site / "ftool" / "cli.py").read_bytes() == CLI
    assert (site / "fhelper" / "__init__.py").is_file()
    assert not (site / "pip").exists()
    assert not [p.name for p in (out / "bin").iterdir() if p.name.startswith("pip")]

    # The launcher is a /bin/sh prologue that execs the `python` beside it: swap that python
    # for a stub (it cannot run here) and see the launcher call it with itself and the args.
    launcher = out / "bin" / "ftool-hello"
    assert launcher.read_bytes().startswith(b"#!/bin/sh\n")
    assert os.access(launcher, os.X_OK)
    copy = tmp_path / "osx copy"
    shutil.copytree(out, copy, symlinks=True)
    (copy / "bin" / "python").unlink()
    (copy / "bin" / "python").write_text('#!/bin/sh\necho "stub python: $*"\n')
    (copy / "bin" / "python").chmod(0o755)
    r = subprocess.run(
        [str(copy / "bin" / "ftool-hello"), "a", "b"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"stub python: {copy / 'bin' / 'ftool-hello'} a b\n"


def test_win_64_environment_carries_its_interpreter(foreign, project, tmp_path):
    out = tmp_path / "win"
    r = materialize(project, "win-64", "--output", str(out))
    assert r.code == 0, r.stderr
    fake = foreign["win-64"]
    py = unpack(fake, tmp_path / "unpacked")

    for rel in ("python.exe", "pythonw.exe", "python311.dll", "DLLs/_ssl.pyd", "Lib/os.py"):
        assert (out / rel).read_bytes() == (py / rel).read_bytes(), rel
    assert not (out / "pyvenv.cfg").exists()
    assert not (out / "Scripts" / "python.exe").exists()
    site = out / "Lib" / "site-packages"
    assert (site / "ftool" / "cli.py").read_bytes() == CLI
    assert (site / "fhelper" / "__init__.py").is_file()
    assert not (site / "pip").exists()
    assert not [p.name for p in (out / "Scripts").iterdir() if p.name.startswith("pip")]

    cmd = (out / "Scripts" / "ftool-hello.cmd").read_bytes()
    assert b'"%~dp0..\\python.exe"' in cmd, cmd
    assert b'"%~dp0ftool-hello-script.py" %*' in cmd, cmd
    script = (out / "Scripts" / "ftool-hello-script.py").read_text()
    assert "from ftool.cli import main" in script


def test_interpreter_archives_of_the_lock_are_its_own(foreign, project, tmp_path):
    """Each platform gets its own interpreter: an osx tree holds no Windows files and back."""
    osx, win = tmp_path / "osx", tmp_path / "win"
    assert materialize(project, "osx-arm64", "--output", str(osx)).code == 0
    assert materialize(project, "win-64", "--output", str(win)).code == 0
    assert not (osx / "python.exe").exists() and not (osx / "Lib").exists()
    assert not (win / "bin").exists() and not (win / "lib" / "python3.11").exists()


@pytest.mark.parametrize("platform", ["osx-64", "linux-aarch64"])
def test_the_other_posix_platforms_carry_their_interpreter_too(platform, index, project, tmp_path):
    """osx-64 and linux-aarch64 (not the host): the interpreter at bin/python3.11 with its
    links, the packages in its site-packages, launchers running the python beside them."""
    server = index([ftool(), fhelper()])
    fake = fake_interpreter_archive(tmp_path / "pbs", platform, VERSION)
    url = server.publish_file(fake.filename, fake.data)
    sources = interpreter_sources_toml(platform, url, fake.sha256, None)
    write_spec(project, server.url, spec_body([platform], sources))
    assert envlock(project, "lock").code == 0
    assert envlock(project, "fetch").code == 0
    out = tmp_path / "env"
    r = materialize(project, platform, "--output", str(out))
    assert r.code == 0, r.stderr
    py = unpack(fake, tmp_path / "unpacked")
    assert (out / "bin" / "python3.11").read_bytes() == (py / "bin" / "python3.11").read_bytes()
    assert os.path.realpath(out / "bin" / "python") == str((out / "bin" / "python3.11").resolve())
    site = out / "lib" / "python3.11" / "site-packages"
    assert (site / "ftool" / "cli.py").read_bytes() == CLI
    assert not (out / "pyvenv.cfg").exists()
    launcher = (out / "bin" / "ftool-hello").read_text()
    assert launcher.startswith("#!/bin/sh\n") and '/python" "$0" "$@"' in launcher
    assert envlock(project, "verify", str(out)).code == 0


# -- hostile archives ----------------------------------------------------------------------


def leftovers(tmp_path: Path) -> list[str]:
    """Traces of an unpack: the marker (written before the evil member) or an escapee."""
    found = [
        p.relative_to(tmp_path).as_posix()
        for p in tmp_path.rglob("*")
        if p.name in (EVIL_MARKER, EVIL_ESCAPE)
    ]
    for p in (tmp_path.parent / EVIL_ESCAPE, Path(EVIL_ABSOLUTE)):
        if os.path.lexists(p):
            found.append(str(p))
    return found


def unpacked_trees(cache: Path, sha256: str) -> list[str]:
    """Anything in the cache keyed by the archive's sha256, besides the archive itself and
    the lock files that serialize work on it."""
    if not cache.exists():
        return []
    return [
        p.relative_to(cache).as_posix()
        for p in cache.rglob("*")
        if sha256[2:] in p.as_posix()
        and p.relative_to(cache).parts[0] not in ("artifacts", "locks")
    ]


@pytest.mark.parametrize("kind", EVIL_KINDS)
def test_hostile_interpreter_archive_is_refused(kind, index, project, tmp_path):
    archive = evil_interpreter_archive(tmp_path / "evil", kind)
    server = index([ftool(), fhelper()])
    url = server.publish_file(archive.name, archive.read_bytes())
    sources = interpreter_sources_toml("linux-64", url, sha256_file(archive), VERSION)
    write_spec(project, server.url, spec_body(["linux-64"], sources))
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    r = envlock(project, "fetch")
    out = tmp_path / "env"
    if r.code == 0:  # the archive is hash-correct: refusing it is the unpacker's job
        r = materialize(project, "linux-64", "--output", str(out))
    assert r.code in (2, 4), (r.code, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert len(error_lines(r.stderr)) == 1, r.stderr
    assert not os.path.lexists(out)
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".env.")] == []
    assert leftovers(tmp_path) == []
    assert unpacked_trees(tmp_path / "cache", sha256_file(archive)) == []
    if os.path.lexists(Path(EVIL_ABSOLUTE)):  # pragma: no cover - clean up an escape
        os.unlink(EVIL_ABSOLUTE)

    # And again with --archive: nothing written either.
    tarball = tmp_path / "env.tar.gz"
    r = materialize(project, "linux-64", "--archive", str(tarball))
    assert r.code in (1, 2, 4) and not tarball.exists()
    assert leftovers(tmp_path) == []
