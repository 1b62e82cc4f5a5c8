"""``envlock materialize`` and ``envlock build`` end to end: real CLI, real index, real envs.

Environments built for linux-64 (the host) are run: their ``bin/python`` imports the locked
packages and their console scripts run, also after the tree is moved, copied or archived and
unpacked elsewhere. Foreign platforms (osx-arm64, win-64) are checked for their layout.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from integration.helpers import Result, envlock, load_lock, write_spec
from support.evil import publish_raw, with_record, zip_bytes
from support.wheels import Dist, build_wheel, record_hash

LINUX = "cp311-cp311-manylinux_2_17_x86_64"
MAC = "cp311-cp311-macosx_11_0_arm64"
WIN = "cp311-cp311-win_amd64"
MAC_PYTHON = "/usr/local/bin/python3.11"
WIN_PYTHON = "C:\\Python311\\python.exe"

CLI = b"import sys\n\n\ndef main():\n    print('hello from alpha', *sys.argv[1:])\n"


def alpha(version: str = "1.0", requires: tuple[str, ...] = ("beta",)) -> Dist:
    """A package with a dependency, a console script and ``.data`` scheme directories."""
    files = {
        "alpha/cli.py": CLI,
        f"alpha-{version}.data/scripts/alpha-raw": b"#!python\nimport alpha\n"
        b"print('raw', alpha.__version__)\n",
        f"alpha-{version}.data/data/share/alpha/readme.txt": b"shared data\n",
        f"alpha-{version}.data/headers/alpha.h": b"/* alpha */\n",
    }
    return Dist(
        "alpha",
        version,
        requires=list(requires),
        files=files,
        console_scripts={"alpha-hello": "alpha.cli:main"},
    )


def beta() -> Dist:
    return Dist("beta", "2.0")


def clean_env() -> dict[str, str]:
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONNOUSERSITE"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, env=clean_env(), timeout=60
    )


def assert_runs(env: Path, *, version: str = "1.0") -> None:
    """The environment's python imports the packages from itself; console scripts run."""
    r = run(
        env / "bin" / "python",
        "-c",
        "import sys, alpha, beta; print(alpha.__version__, beta.__version__); "
        "print(sys.prefix); print(alpha.__file__)",
    )
    assert r.returncode == 0, r.stderr
    versions, prefix, where = r.stdout.splitlines()
    assert versions == f"{version} 2.0"
    assert Path(prefix) == env
    assert Path(where).is_relative_to(env / "lib" / "python3.11" / "site-packages")
    r = run(env / "bin" / "alpha-hello", "one", "two")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from alpha one two\n"
    r = run(env / "bin" / "alpha-raw")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"raw {version}\n"


def files_naming(root: Path, needles: list[str]) -> list[str]:
    """Files under ``root`` whose bytes (or symlink target) contain one of ``needles``."""
    found = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
            if any(n.encode() in data for n in needles):
                found.append(path.relative_to(root).as_posix())
    return found


def beside(path: Path) -> list[str]:
    """Staging or backup trees left next to an output path."""
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def materialize(project: Path, platform: str, *args: str) -> Result:
    return envlock(project, "materialize", "--platform", platform, *args)


def setup(
    index,
    project: Path,
    dists: list[Dist],
    deps: list[str],
    platforms: tuple[str, ...] = ("linux-64",),
    extra: str = "",
    fetch: bool = True,
):
    server = index(dists)
    write_spec(
        project,
        server.url,
        f'python = "3.11"\nplatforms = {list(platforms)!r}\n'
        f"dependencies = {deps!r}\n{extra}".replace("'", '"'),
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    if fetch:
        r = envlock(project, "fetch")
        assert r.code == 0, r.stderr
    return server


# -- linux-64: run it, verify it, move it, copy it ----------------------------------------------


def test_linux_env_runs_verifies_and_contains_no_build_path(index, project, tmp_path):
    setup(index, project, [alpha(), beta()], ["alpha"])
    out = tmp_path / "build-output" / "env"
    r = materialize(project, "linux-64", "--output", str(out))
    assert r.code == 0, r.stderr
    assert "2 packages" in r.stderr
    assert_runs(out)

    r = envlock(project, "verify", str(out))
    assert r.code == 0, (r.stdout, r.stderr)

    site = out / "lib" / "python3.11" / "site-packages"
    assert (site / "alpha-1.0.dist-info" / "INSTALLER").read_bytes() == b"envlock\n"
    record = (site / "alpha-1.0.dist-info" / "RECORD").read_text()
    assert f"alpha/cli.py,{record_hash(CLI)},{len(CLI)}" in record.splitlines()
    assert "alpha-1.0.dist-info/RECORD,," in record.splitlines()
    assert not (site / "alpha-1.0.data").exists()
    assert (out / "share" / "alpha" / "readme.txt").read_bytes() == b"shared data\n"
    assert (out / "include" / "site" / "python3.11" / "alpha" / "alpha.h").is_file()
    assert os.access(out / "bin" / "alpha-hello", os.X_OK)
    assert (out / "bin" / "python").is_symlink()

    # No absolute path of the build machine's output (or the project) inside the tree.
    needles = sorted({str(tmp_path), str(tmp_path.resolve()), str(out), str(out.resolve())})
    assert files_naming(out, needles) == []
    cfg = (out / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in cfg
    home = next(
        line.split("=", 1)[1].strip() for line in cfg.splitlines() if line.startswith("home")
    )
    assert Path(os.readlink(out / "bin" / "python")).parent == Path(home)


def test_env_keeps_working_after_move_and_copy(index, project, tmp_path):
    setup(index, project, [alpha(), beta()], ["alpha"])
    out = tmp_path / "first" / "env"
    assert materialize(project, "linux-64", "--output", str(out)).code == 0

    moved = tmp_path / "elsewhere" / "deeper" / "moved-env"
    moved.parent.mkdir(parents=True)
    shutil.move(str(out), str(moved))
    assert not out.exists()
    assert_runs(moved)
    assert envlock(project, "verify", str(moved)).code == 0

    copied = tmp_path / "copy of env"  # a space in the path, too
    shutil.copytree(moved, copied, symlinks=True)
    shutil.rmtree(moved)
    assert_runs(copied)
    r = envlock(project, "verify", str(copied))
    assert r.code == 0, r.stdout

    # The relocatable activate script finds the environment from its own location.
    r = run(
        "bash",
        "-c",
        f'. "{copied}/bin/activate" && echo "$VIRTUAL_ENV" && '
        "command -v alpha-hello && alpha-hello x",
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert Path(lines[0]) == copied
    assert Path(lines[1]) == copied / "bin" / "alpha-hello"
    assert lines[2] == "hello from alpha x"


def test_default_link_mode_hardlinks_from_the_cache_and_copy_mode_copies(index, project, tmp_path):
    setup(index, project, [alpha(), beta()], ["alpha"])
    linked, copied = tmp_path / "linked", tmp_path / "copied"
    assert materialize(project, "linux-64", "--output", str(linked)).code == 0
    r = materialize(project, "linux-64", "--output", str(copied), "--link-mode", "copy")
    assert r.code == 0, r.stderr
    rel = Path("lib/python3.11/site-packages/alpha/cli.py")
    assert (linked / rel).stat().st_nlink > 1
    assert (copied / rel).stat().st_nlink == 1
    assert_runs(copied)
    r = materialize(project, "linux-64", "--output", str(tmp_path / "x"), "--link-mode", "sym")
    assert r.code == 2 and "--link-mode" in r.stderr


def test_editing_a_hardlinked_env_does_not_leak_into_the_next_one(index, project, tmp_path):
    setup(index, project, [alpha(), beta()], ["alpha"])
    first = tmp_path / "first"
    assert materialize(project, "linux-64", "--output", str(first)).code == 0
    init = first / "lib/python3.11/site-packages/alpha/__init__.py"
    with init.open("a") as f:  # through the hard link, into the cache's unpacked tree
        f.write("__version__ = 'patched'\n")
    r = envlock(project, "verify", str(first))
    assert r.code == 1 and "modified file alpha/__init__.py" in r.stdout

    second = tmp_path / "second"
    r = materialize(project, "linux-64", "--output", str(second))
    assert r.code == 0, r.stderr
    assert_runs(second)
    assert envlock(project, "verify", str(second)).code == 0


# -- offline ---------------------------------------------------------------------------------


def test_materialize_makes_no_request_and_works_with_the_index_down(index, project, tmp_path):
    server = setup(index, project, [alpha(), beta()], ["alpha"])
    server.reset_counts()
    r = materialize(project, "linux-64", "--output", str(tmp_path / "env1"))
    assert r.code == 0, r.stderr
    assert server.count() == 0, server.requests
    server.stop()
    out = tmp_path / "env2"
    r = materialize(project, "linux-64", "--output", str(out))
    assert r.code == 0, r.stderr
    assert_runs(out)
    r = materialize(project, "linux-64", "--archive", str(tmp_path / "env.tar.gz"))
    assert r.code == 0, r.stderr
    assert server.count() == 0


def test_materialize_with_an_empty_cache_lists_what_is_missing(index, project, tmp_path):
    server = setup(index, project, [alpha(), beta()], ["alpha"], fetch=False)
    server.reset_counts()
    out = tmp_path / "env"
    r = materialize(project, "linux-64", "--output", str(out))
    assert r.code == 1, r.stderr
    assert "2 artifact(s)" in r.stderr
    assert "alpha-1.0-py3-none-any.whl" in r.stderr and "beta-2.0-py3-none-any.whl" in r.stderr
    assert "envlock fetch --platform linux-64" in r.stderr
    assert len(error_lines(r.stderr)) == 1
    assert not out.exists() and beside(out) == []
    archive = tmp_path / "env.tar.gz"
    r = materialize(project, "linux-64", "--archive", str(archive))
    assert r.code == 1 and not archive.exists() and beside(archive) == []
    assert server.count() == 0

    # Half a cache: only the missing one is listed.
    assert envlock(project, "fetch").code == 0
    lock = load_lock(project / "pylock.toml")
    beta_sha = next(p for p in lock["packages"] if p["name"] == "beta")["wheels"][0]["hashes"][
        "sha256"
    ]
    shutil.rmtree(tmp_path / "cache" / "artifacts" / "sha256" / beta_sha[:2] / beta_sha[2:])
    r = materialize(project, "linux-64", "--output", str(out))
    assert r.code == 1
    assert "1 artifact(s)" in r.stderr and "beta-2.0" in r.stderr and "alpha-1.0" not in r.stderr
    assert not out.exists()


def test_fetch_hint_names_the_environment(index, project, tmp_path):
    setup(
        index,
        project,
        [alpha(), beta()],
        ["alpha"],
        fetch=False,
        extra='[environments.tools]\ndependencies = ["beta"]\n',
    )
    r = envlock(
        project,
        "materialize",
        "-p",
        "linux-64",
        "--env",
        "tools",
        "--output",
        str(tmp_path / "env"),
    )
    assert r.code == 1
    assert "envlock fetch --platform linux-64 --env tools" in r.stderr


# -- archives --------------------------------------------------------------------------------


def printed_sha(stdout: str) -> str:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("sha256:"))
    return line.split()[0].removeprefix("sha256:")


def test_archive_is_byte_reproducible_and_runs_after_unpacking(index, project, tmp_path):
    setup(index, project, [alpha(), beta()], ["alpha"])
    first, second = tmp_path / "a.tar.gz", tmp_path / "out" / "b.tar.gz"
    r1 = materialize(project, "linux-64", "--archive", str(first))
    assert r1.code == 0, r1.stderr
    r2 = materialize(project, "linux-64", "--archive", str(second))
    assert r2.code == 0, r2.stderr
    assert printed_sha(r1.stdout) == sha256_of(first)
    assert printed_sha(r2.stdout) == sha256_of(second) == sha256_of(first)
    assert str(first) in r1.stdout

    # Existing archive: an error without --force, the same bytes with it.
    r = materialize(project, "linux-64", "--archive", str(first))
    assert r.code == 2 and "--force" in r.stderr
    r = materialize(project, "linux-64", "--archive", str(first), "--force")
    assert r.code == 0 and printed_sha(r.stdout) == sha256_of(second)
    assert beside(first) == [] and beside(second) == []

    # A second cache, filled by a fresh fetch, gives the very same archive.
    other = tmp_path / "other-cache"
    assert envlock(project, "fetch", "--cache-dir", str(other)).code == 0
    third = tmp_path / "c.tar.gz"
    r = materialize(project, "linux-64", "--archive", str(third), "--cache-dir", str(other))
    assert r.code == 0, r.stderr
    assert sha256_of(third) == sha256_of(first)

    with tarfile.open(first) as tf:
        members = tf.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names)
        assert all(not n.startswith(("/", "..")) and "/../" not in n for n in names)
        assert {m.mtime for m in members} == {members[0].mtime}
        assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
        assert "bin/alpha-hello" in names and "envlock.json" in names
        for m in members:
            if m.isfile():
                data = tf.extractfile(m).read()  # type: ignore[union-attr]
                assert str(tmp_path).encode() not in data, m.name
            if m.issym():
                assert str(tmp_path) not in m.linkname
        unpacked = tmp_path / "unpacked" / "opt-env"
        tf.extractall(unpacked, filter="tar")
    assert_runs(unpacked)
    r = envlock(project, "verify", str(unpacked))
    assert r.code == 0, r.stdout


def test_compiled_archive_is_reproducible_too(index, project, tmp_path):
    setup(index, project, [alpha(), beta()], ["alpha"])
    a, b = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    assert materialize(project, "linux-64", "--archive", str(a), "--compile").code == 0
    assert materialize(project, "linux-64", "--archive", str(b), "--compile").code == 0
    assert sha256_of(a) == sha256_of(b)
    with tarfile.open(a) as tf:
        assert any(n.endswith(".cpython-311.pyc") for n in tf.getnames())


# -- foreign platforms -----------------------------------------------------------------------


def native_dists() -> list[Dist]:
    return [
        Dist("nat", "1.0", tag=t, files={"nat/which.py": f"TAG = {t!r}\n".encode()})
        for t in (LINUX, MAC, WIN)
    ]


def test_osx_arm64_layout(index, project, tmp_path):
    setup(
        index,
        project,
        [alpha(requires=("beta", "nat")), beta(), *native_dists()],
        ["alpha"],
        platforms=("linux-64", "osx-arm64", "win-64"),
    )
    out = tmp_path / "mac"
    r = materialize(project, "osx-arm64", "--output", str(out), "--base-python", MAC_PYTHON)
    assert r.code == 0, r.stderr
    site = out / "lib" / "python3.11" / "site-packages"
    assert (site / "alpha" / "cli.py").read_bytes() == CLI
    assert (site / "nat" / "which.py").read_text() == f"TAG = {MAC!r}\n"
    assert (site / "nat-1.0.dist-info").is_dir() and (site / "beta-2.0.dist-info").is_dir()
    assert os.readlink(out / "bin" / "python") == MAC_PYTHON
    assert os.readlink(out / "bin" / "python3.11") == MAC_PYTHON
    launcher = (out / "bin" / "alpha-hello").read_text()
    assert launcher.startswith("#!/bin/sh\n") and "from alpha.cli import main" in launcher
    assert os.access(out / "bin" / "alpha-hello", os.X_OK)
    assert (out / "bin" / "alpha-raw").is_file()
    assert not (out / "Scripts").exists() and not (out / "Lib").exists()
    cfg = (out / "pyvenv.cfg").read_text().splitlines()
    assert "home = /usr/local/bin" in cfg
    assert f"executable = {MAC_PYTHON}" in cfg
    assert any(line.startswith("version = 3.11") for line in cfg)
    r = envlock(project, "verify", str(out))
    assert r.code == 0, r.stdout


def test_win_64_layout(index, project, tmp_path):
    setup(
        index,
        project,
        [alpha(requires=("beta", "nat")), beta(), *native_dists()],
        ["alpha"],
        platforms=("linux-64", "osx-arm64", "win-64"),
    )
    out = tmp_path / "win"
    r = materialize(project, "win-64", "--output", str(out), "--base-python", WIN_PYTHON)
    assert r.code == 0, r.stderr
    site = out / "Lib" / "site-packages"
    assert (site / "alpha" / "cli.py").read_bytes() == CLI
    assert (site / "nat" / "which.py").read_text() == f"TAG = {WIN!r}\n"
    scripts = out / "Scripts"
    cmd = (scripts / "alpha-hello.cmd").read_bytes()
    assert b"python.exe" in cmd and b"alpha-hello-script.py" in cmd and b"\r\n" in cmd
    script = (scripts / "alpha-hello-script.py").read_text()
    assert "from alpha.cli import main" in script and not script.startswith("#!/bin/sh")
    assert (scripts / "alpha-raw").read_text().startswith("import alpha")  # no #!python line
    assert not (out / "bin").exists() and not (out / "lib").exists()
    assert not any(p.is_symlink() for p in out.rglob("*"))
    cfg = (out / "pyvenv.cfg").read_text().splitlines()
    assert "home = C:\\Python311" in cfg
    assert f"executable = {WIN_PYTHON}" in cfg
    record = (site / "alpha-1.0.dist-info" / "RECORD").read_text().splitlines()
    assert any(row.startswith("../../Scripts/alpha-hello.cmd,sha256=") for row in record)
    r = envlock(project, "verify", str(out))
    assert r.code == 0, r.stdout


def test_base_python_and_platform_errors(index, project, tmp_path):
    setup(index, project, [alpha(), beta()], ["alpha"], platforms=("linux-64", "osx-arm64"))
    out = tmp_path / "env"

    r = materialize(project, "osx-arm64", "--output", str(out))
    assert r.code == 2
    assert len(error_lines(r.stderr)) == 1
    assert "--base-python is required for osx-arm64" in r.stderr
    assert not out.exists() and beside(out) == []

    r = materialize(project, "win-64", "--output", str(out), "--base-python", WIN_PYTHON)
    assert r.code == 2
    assert "no win-64 resolution" in r.stderr and "locked: linux-64, osx-arm64" in r.stderr
    assert not out.exists()

    # A path that exists only on the machines that will run the environment (a CI host building
    # for a python:3.11-slim image): accepted on trust, with a note saying so.
    elsewhere = tmp_path / "nowhere" / "python3.11"
    r = materialize(project, "linux-64", "--output", str(out), "--base-python", str(elsewhere))
    assert r.code == 0, r.stderr
    assert "does not exist here, so it was not checked" in r.stderr
    assert f"home = {elsewhere.parent}\n" in (out / "pyvenv.cfg").read_text()
    assert os.readlink(out / "bin" / "python") == str(elsewhere)
    shutil.rmtree(out)

    fake = tmp_path / "fakepy" / "python3.10"  # a "CPython 3.10" for the mismatch check
    fake.parent.mkdir()
    fake.write_text(
        f'#!/bin/sh\necho \'{{"version": "3.10.9", "impl": "cpython", "executable": "{fake}"}}\'\n'
    )
    fake.chmod(0o755)
    r = materialize(project, "linux-64", "--output", str(out), "--base-python", str(fake))
    assert r.code == 2
    assert "3.10.9" in r.stderr and "3.11" in r.stderr and not out.exists()

    r = materialize(
        project, "linux-64", "--output", str(out), "--archive", str(tmp_path / "x.tar.gz")
    )
    assert r.code == 2 and not out.exists()


# -- safety: malicious wheels ----------------------------------------------------------------


def evil_wheel(case: str, tmp_path: Path) -> tuple[Dist, bytes | None, str]:
    """(dist to publish, raw wheel bytes or None to build ``dist``, expected error text)."""
    marker = f"envlock-evil-{os.getpid()}-{tmp_path.name}.py"
    if case == "traversal":
        return (
            Dist("evil", "1.0", files={f"../{marker}": b"print('pwned')\n"}),
            None,
            "not a normalised path",
        )
    if case == "absolute":
        return (
            Dist("evil", "1.0", files={f"/tmp/{marker}": b"print('pwned')\n"}),
            None,
            "absolute member name",
        )
    if case == "record-mismatch":
        body = b"__version__ = '1.0'\n"
        wrong = record_hash(b"something else")
        record = (f"evil/__init__.py,{wrong},{len(body)}\nevil-1.0.dist-info/RECORD,,\n").encode()
        return (
            Dist(
                "evil", "1.0", files={"evil/__init__.py": body, "evil-1.0.dist-info/RECORD": record}
            ),
            None,
            "RECORD",
        )
    if case == "symlink":
        members = with_record(
            "evil-1.0.dist-info",
            {
                "evil/__init__.py": b"",
                "evil/passwd": b"../../../../../../etc/passwd",
                "evil-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
                "evil-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n"
                b"Tag: py3-none-any\n",
            },
        )
        return (
            Dist("evil", "1.0"),
            zip_bytes(members, frozenset({"evil/passwd"})),
            "is a symbolic link",
        )
    other = {"name-mismatch": Dist("other", "1.0"), "version-mismatch": Dist("evil", "6.6")}[case]
    wheel = build_wheel(other, tmp_path / "evil-build")
    return Dist("evil", "1.0"), wheel.read_bytes(), "the lock says evil 1.0"


EVIL_CASES = [
    "traversal",
    "absolute",
    "symlink",
    "record-mismatch",
    "name-mismatch",
    "version-mismatch",
]


@pytest.mark.parametrize("case", EVIL_CASES)
def test_malicious_wheel_is_rejected_and_nothing_is_written(index, project, tmp_path, case):
    server = index([beta()])
    dist, raw, expected = evil_wheel(case, tmp_path)
    if raw is None:
        server.add(dist)
    else:
        publish_raw(server, dist, raw)
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["beta", "evil"]\n',
    )
    assert envlock(project, "lock").code == 0
    assert envlock(project, "fetch").code == 0  # the bytes are the locked ones

    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "env"
    r = materialize(project, "linux-64", "--output", str(out))
    assert r.code != 0
    errors = error_lines(r.stderr)
    assert len(errors) == 1, r.stderr
    assert "evil-1.0-py3-none-any.whl" in errors[0] and expected in errors[0], errors[0]
    assert "Traceback" not in r.stderr
    assert not out.exists() and not out.is_symlink()
    assert list(outdir.iterdir()) == []
    cache_tmp = tmp_path / "cache" / "tmp"
    assert not cache_tmp.exists() or list(cache_tmp.iterdir()) == []
    # Nothing escaped anywhere: not beside the env, not in /tmp, not in the cache.
    assert not list(tmp_path.rglob("envlock-evil-*"))
    assert not list(Path("/tmp").glob(f"envlock-evil-{os.getpid()}-*"))
    assert not (tmp_path / "cache" / "etc").exists()

    archive = outdir / "env.tar.gz"
    r = materialize(project, "linux-64", "--archive", str(archive))
    assert r.code != 0 and expected in r.stderr
    assert list(outdir.iterdir()) == []

    # A later build of the same lock still refuses (nothing half-trusted was cached).
    r = envlock(project, "build", "--output", str(out))
    assert r.code != 0 and expected in r.stderr and not out.exists()


@pytest.mark.parametrize("script", ["..", "."])
def test_entry_point_named_like_a_directory_is_rejected_cleanly(index, project, tmp_path, script):
    # An entry point called ".." would be written to bin/.. (the environment root itself).
    setup(index, project, [Dist("evil", "1.0", console_scripts={script: "evil:main"})], ["evil"])
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "env"
    r = materialize(project, "linux-64", "--output", str(out))
    assert r.code != 0
    assert "Traceback" not in r.stderr, r.stderr
    errors = error_lines(r.stderr)
    assert len(errors) == 1 and "evil" in errors[0], r.stderr
    assert list(outdir.iterdir()) == []


# -- atomic output ---------------------------------------------------------------------------


def test_existing_output_needs_force_and_is_replaced_with_it(index, project, tmp_path):
    setup(index, project, [alpha(), beta()], ["alpha"])
    out = tmp_path / "env"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")

    # Not an environment envlock made: refused, with or without --force.
    for extra in ((), ("--force",)):
        r = materialize(project, "linux-64", "--output", str(out), *extra)
        assert r.code == 2
        assert "not an envlock environment" in r.stderr and "refusing" in r.stderr
        assert [p.name for p in out.iterdir()] == ["precious.txt"]
        assert (out / "precious.txt").read_text() == "keep me"

    (out / "precious.txt").unlink()  # an empty directory is fine
    r = materialize(project, "linux-64", "--output", str(out))
    assert r.code == 0, r.stderr
    assert_runs(out)
    assert beside(out) == []

    # An envlock environment: replaced with --force only (materialize).
    r = materialize(project, "linux-64", "--output", str(out))
    assert r.code == 2 and "--force" in r.stderr
    inode = (out / "envlock.json").stat().st_ino
    r = materialize(project, "linux-64", "--output", str(out), "--force")
    assert r.code == 0 and beside(out) == []
    assert (out / "envlock.json").stat().st_ino != inode  # rebuilt
    assert envlock(project, "verify", str(out)).code == 0


def big_dists(count: int = 30, modules: int = 120) -> list[Dist]:
    return [
        Dist(
            f"bulk{i}",
            "1.0",
            files={
                f"bulk{i}/mod{j}.py": (
                    f"VALUE = {j}\n" + "def f(x):\n    return x * 2\n" * 20
                ).encode()
                for j in range(modules)
            },
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_materialize_leaves_nothing_behind(index, project, tmp_path, sig):
    dists = big_dists()
    setup(index, project, dists, [d.name for d in dists])
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "env"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "envlock",
            "materialize",
            "--platform",
            "linux-64",
            "--output",
            str(out),
            "--link-mode",
            "copy",
            "--compile",
        ],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not beside(out):
        assert proc.poll() is None, "materialize finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert list(outdir.iterdir()) == []

    # The cache is still sound: the next run builds a complete, clean environment.
    r = materialize(project, "linux-64", "--output", str(out))
    assert r.code == 0, r.stderr
    assert envlock(project, "verify", str(out)).code == 0


def test_interrupted_forced_rebuild_keeps_the_old_environment(index, project, tmp_path):
    dists = big_dists()
    setup(index, project, dists, [d.name for d in dists])
    out = tmp_path / "env"
    assert materialize(project, "linux-64", "--output", str(out)).code == 0
    (out / "old.txt").write_text("old env")  # an envlock environment: --force may replace it
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "envlock",
            "materialize",
            "--platform",
            "linux-64",
            "--output",
            str(out),
            "--force",
            "--link-mode",
            "copy",
            "--compile",
        ],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not beside(out):
        assert proc.poll() is None, "materialize finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert (out / "old.txt").read_text() == "old env"  # the old environment, intact
    assert envlock(project, "verify", str(out)).code == 0
    assert beside(out) == []


# -- locked sdists ---------------------------------------------------------------------------


def test_locked_sdist_is_built_once_at_fetch_and_materialize_stays_offline(
    index, project, tmp_path, cache
):
    src = Dist(
        "srcpkg",
        "0.3",
        kind="sdist",
        console_scripts={"srcpkg-hi": "srcpkg.cli:main"},
        files={"srcpkg/cli.py": b"def main():\n    print('hi from source')\n"},
    )
    server = setup(
        index,
        project,
        [src, beta()],
        ["srcpkg", "beta"],
        platforms=("linux-64", "win-64"),
        extra='allow-sdist = ["srcpkg"]\n',
        fetch=False,
    )
    lock = load_lock(project / "pylock.toml")
    sdist = next(p for p in lock["packages"] if p["name"] == "srcpkg")["sdist"]
    sha = sdist["hashes"]["sha256"]
    assert sdist["name"] == "srcpkg-0.3.tar.gz"

    r = envlock(project, "fetch")
    assert r.code == 0, r.stderr
    built_dir = cache / "built" / "sha256" / sha[:2] / sha[2:]
    wheels = sorted(built_dir.glob("*.whl"))
    assert [w.name for w in wheels] == ["srcpkg-0.3-py3-none-any.whl"]
    stamp = wheels[0].stat().st_mtime_ns
    r = envlock(project, "cache", "info")
    assert "built from sdists: 1" in r.stdout

    server.reset_counts()
    r = envlock(project, "fetch")  # already built: no rebuild, no request
    assert r.code == 0, r.stderr
    assert wheels[0].stat().st_mtime_ns == stamp
    assert server.count() == 0

    server.stop()
    out = tmp_path / "env"
    r = materialize(project, "linux-64", "--output", str(out))
    assert r.code == 0, r.stderr
    r = run(out / "bin" / "python", "-c", "import srcpkg, beta; print(srcpkg.__version__)")
    assert r.returncode == 0 and r.stdout == "0.3\n", r.stderr
    r = run(out / "bin" / "srcpkg-hi")
    assert r.returncode == 0 and r.stdout == "hi from source\n", r.stderr
    assert envlock(project, "verify", str(out)).code == 0
    # A pure-Python build serves the other locked platform, too.
    win = tmp_path / "win"
    r = materialize(project, "win-64", "--output", str(win), "--base-python", WIN_PYTHON)
    assert r.code == 0, r.stderr
    assert (win / "Lib" / "site-packages" / "srcpkg" / "cli.py").is_file()
    assert (win / "Scripts" / "srcpkg-hi.cmd").is_file()

    # Without the built wheel, materialize says what to do instead of building it itself.
    shutil.rmtree(built_dir)
    r = materialize(project, "linux-64", "--output", str(tmp_path / "env2"))
    assert r.code == 1
    assert "srcpkg-0.3.tar.gz" in r.stderr and "envlock fetch --platform linux-64" in r.stderr
    assert not (tmp_path / "env2").exists()


# -- build -----------------------------------------------------------------------------------


def test_build_defaults_to_host_platform_and_envlock_envs(index, project):
    server = setup(index, project, [alpha(), beta()], ["alpha"], fetch=False)
    r = envlock(project, "build")
    assert r.code == 0, r.stderr
    out = project / ".envlock" / "envs" / "default-linux-64"
    assert out.is_dir()
    assert "2 downloaded" in r.stderr
    assert_runs(out)
    r = envlock(project, "verify", str(out))
    assert r.code == 0, r.stdout

    server.reset_counts()
    inode = (out / "envlock.json").stat().st_ino
    r = envlock(project, "build")
    assert r.code == 0, r.stderr
    assert "up to date" in r.stderr
    assert (out / "envlock.json").stat().st_ino == inode  # nothing was rebuilt
    r = envlock(project, "build", "--force")
    assert r.code == 0, r.stderr
    assert (out / "envlock.json").stat().st_ino != inode
    assert server.count() == 0  # everything was cached
    assert_runs(out)

    r = envlock(project, "build", "--archive", str(project / "env.tar.gz"))
    assert r.code == 0 and r.stdout.startswith("sha256:")


def test_build_compile_writes_pyc_and_verify_still_passes(index, project, tmp_path):
    setup(index, project, [alpha(), beta()], ["alpha"], fetch=False)
    r = envlock(project, "build", "--compile")
    assert r.code == 0, r.stderr
    assert "byte-compiled" in r.stderr
    out = project / ".envlock" / "envs" / "default-linux-64"
    site = out / "lib" / "python3.11" / "site-packages"
    pycs = sorted(p.relative_to(site).as_posix() for p in site.rglob("__pycache__/*.pyc"))
    assert "alpha/__pycache__/__init__.cpython-311.pyc" in pycs
    assert "alpha/__pycache__/cli.cpython-311.pyc" in pycs
    assert "beta/__pycache__/__init__.cpython-311.pyc" in pycs
    assert files_naming(out, [str(tmp_path), str(tmp_path.resolve())]) == []
    r = envlock(project, "verify", str(out))
    assert r.code == 0, r.stdout
    assert_runs(out)
    moved = tmp_path / "moved"
    shutil.move(str(out), str(moved))
    assert_runs(moved)
    assert envlock(project, "verify", str(moved)).code == 0


def test_wheels_that_ship_the_same_path_with_other_bytes_are_an_error(index, project, tmp_path):
    server = index(
        [
            Dist("aaa", "1.0", files={"shared/__init__.py": b"owner = 'aaa'\n"}),
            Dist("zzz", "1.0", files={"shared/__init__.py": b"owner = 'zzz'\n"}),
        ]
    )
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["zzz", "aaa"]\n',
    )
    assert envlock(project, "lock").code == 0
    assert envlock(project, "fetch").code == 0
    out = tmp_path / "env"
    r = materialize(project, "linux-64", "--output", str(out))
    assert r.code == 4, r.stderr
    (line,) = error_lines(r.stderr)
    assert "aaa and zzz both install lib/python3.11/site-packages/shared/__init__.py" in line
    assert not out.exists() and beside(out) == []


def test_identical_shared_files_install_once_and_reproducibly(index, project, tmp_path):
    shared = {"ns/__init__.py": b"# namespace\n"}
    server = index(
        [
            Dist("aaa", "1.0", files={**shared, "ns/a.py": b"A = 1\n"}),
            Dist("zzz", "1.0", files={**shared, "ns/z.py": b"Z = 1\n"}),
        ]
    )
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["zzz", "aaa"]\n',
    )
    assert envlock(project, "lock").code == 0
    assert envlock(project, "fetch").code == 0
    shas = set()
    for i in range(2):
        out = tmp_path / f"env{i}"
        r = materialize(project, "linux-64", "--output", str(out))
        assert r.code == 0, r.stderr
        site = out / "lib" / "python3.11" / "site-packages"
        assert (site / "ns" / "__init__.py").read_bytes() == b"# namespace\n"
        assert envlock(project, "verify", str(out)).code == 0
        r = run(out / "bin" / "python", "-c", "import ns.a, ns.z; print(ns.a.A + ns.z.Z)")
        assert r.stdout == "2\n", r.stderr
        r = materialize(project, "linux-64", "--archive", str(tmp_path / f"a{i}.tar.gz"))
        assert r.code == 0, r.stderr
        shas.add(sha256_of(tmp_path / f"a{i}.tar.gz"))
    assert len(shas) == 1
