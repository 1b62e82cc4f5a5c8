"""``envlock run`` end to end: the real CLI, the loopback index, real environments.

The first run checks the lock, fetches and builds the host's environment into the cache; the
next ones reuse it (no rebuild, no request) through the warm path of ``cli/fast.py``, which must
still refuse a stale lock. The command's stdout, exit code and environment are its own.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from envlock.actions.run import fast_cache_dir, fast_host_platform, lock_sha256
from envlock.cli.output import cache_dir
from envlock.platforms import host_platform
from integration.helpers import Result, envlock, write_spec
from support.interpreter import BuiltInterpreter, bundled_python, interpreter_sources_toml
from support.wheels import Dist

__all__ = ["bundled_python"]  # the session fixture the bundled test uses

CLI = b"import sys\n\n\ndef main():\n    print('hello from alpha', *sys.argv[1:])\n"
PROBE = "import sys, alpha, beta; print(alpha.__version__, beta.__version__); print(sys.prefix)"
BUILT = "packages →"  # the line materialize prints once per build


def alpha() -> Dist:
    return Dist(
        "alpha",
        "1.0",
        requires=["beta"],
        files={"alpha/cli.py": CLI},
        console_scripts={"alpha-hello": "alpha.cli:main"},
    )


def beta() -> Dist:
    return Dist("beta", "2.0")


def setup(index, project: Path, *, platforms: tuple[str, ...] = ("linux-64",), deps=("alpha",)):
    server = index([alpha(), beta()])
    write_spec(
        project,
        server.url,
        f'python = "3.11"\nplatforms = {list(platforms)!r}\n'
        f"dependencies = {list(deps)!r}\n".replace("'", '"'),
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    server.reset_counts()
    return server


def run(project: Path, *args: str) -> Result:
    return envlock(project, "run", *args)


def envs_of(cache: Path) -> list[Path]:
    """The environment directories ``run`` made in the cache."""
    root = cache / "envs"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


needs_linux = pytest.mark.skipif(host_platform() != "linux-64", reason="linux-64 host only")


@needs_linux
def test_first_run_builds_and_the_next_reuses_without_rebuild_or_request(index, project, cache):
    server = setup(index, project)
    r = run(project, "--", "python", "-c", PROBE)
    assert r.code == 0, r.stderr
    [env] = envs_of(cache)
    assert r.stdout == f"1.0 2.0\n{env}\n"  # stdout is the command's alone
    assert BUILT in r.stderr
    lock_sha = env.name.removesuffix("-linux-64")
    assert len(lock_sha) == 64 and env.name.endswith("-linux-64")
    assert server.count() > 0  # the first run fetched
    meta = env / "envlock.json"
    before = (meta.stat().st_ino, meta.stat().st_mtime_ns, env.stat().st_ino)

    server.reset_counts()
    r = run(project, "--", "python", "-c", PROBE)
    assert r.code == 0, r.stderr
    assert r.stdout == f"1.0 2.0\n{env}\n"
    assert r.stderr == ""  # nothing built, nothing said
    assert server.count() == 0, server.requests
    assert (meta.stat().st_ino, meta.stat().st_mtime_ns, env.stat().st_ino) == before
    assert envs_of(cache) == [env]

    # The warm path also works with the index gone.
    server.stop()
    r = run(project, "alpha-hello", "x")  # no `--` needed
    assert (r.code, r.stdout) == (0, "hello from alpha x\n"), r.stderr


@needs_linux
def test_environment_variables_and_path(index, project, cache):
    setup(index, project)
    probe = (
        "import os, shutil; print(os.environ['VIRTUAL_ENV']); "
        "print(os.environ['PATH'].split(os.pathsep)[0]); print(shutil.which('alpha-hello')); "
        "print(os.environ.get('PYTHONHOME'))"
    )
    for _ in range(2):  # the full path, then the warm one
        r = run(project, "--", "python", "-c", probe)
        assert r.code == 0, r.stderr
        [env] = envs_of(cache)
        assert r.stdout.splitlines() == [
            str(env),
            str(env / "bin"),
            str(env / "bin" / "alpha-hello"),
            "None",
        ]


@needs_linux
def test_exit_code_is_the_commands(index, project):
    setup(index, project)
    for _ in range(2):
        r = run(project, "--", "python", "-c", "raise SystemExit(7)")
        assert r.code == 7, r.stderr
    r = run(project, "--", "sh", "-c", "kill -TERM $$")
    assert r.code == -15  # the command itself ended by the signal: exec, not a child


@needs_linux
def test_command_gets_default_sigpipe(index, project):
    """CPython ignores SIGPIPE; ``exec`` would pass that on to the command unless reset."""
    setup(index, project)
    r = run(project, "--", "grep", "SigIgn", "/proc/self/status")
    assert r.code == 0, r.stderr
    ignored = int(r.stdout.split()[1], 16)
    assert not ignored & (1 << (13 - 1)), r.stdout  # SIGPIPE is 13


@needs_linux
def test_stale_lock_is_refused_warm_or_cold_and_frozen_runs_it(index, project, cache):
    setup(index, project)
    r = run(project, "--", "python", "-c", "print('ok')")
    assert (r.code, r.stdout) == (0, "ok\n"), r.stderr
    spec = project / "envlock.toml"
    spec.write_text(spec.read_text().replace('["alpha"]', '["alpha", "beta"]'))

    r = run(project, "--", "python", "-c", "print('ran')")
    assert r.code == 1
    assert r.stdout == ""
    assert "pylock.toml is stale" in r.stderr and "--frozen" in r.stderr

    r = run(project, "--frozen", "--", "python", "-c", "print('ran')")
    assert (r.code, r.stdout) == (0, "ran\n"), r.stderr
    assert len(envs_of(cache)) == 1  # the same lock, the same environment
    assert (project / "pylock.toml").read_text().count("[[packages]]") == 2  # never re-locked

    # Putting the spec back makes the lock fresh again.
    spec.write_text(spec.read_text().replace('["alpha", "beta"]', '["alpha"]'))
    r = run(project, "--", "python", "-c", "print('again')")
    assert (r.code, r.stdout) == (0, "again\n"), r.stderr


@needs_linux
def test_missing_lock_is_stale(index, project):
    setup(index, project)
    (project / "pylock.toml").unlink()
    r = run(project, "--", "python", "-c", "pass")
    assert r.code == 1 and "pylock.toml does not exist" in r.stderr


@needs_linux
def test_lock_without_the_host_platform_names_the_locked_ones(index, project, cache):
    setup(index, project, platforms=("osx-arm64", "win-64"))
    r = run(project, "--", "python", "-c", "pass")
    assert r.code == 2
    [line] = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert "linux-64" in line and "osx-arm64, win-64" in line
    assert envs_of(cache) == []


@needs_linux
def test_command_not_found_is_127_cold_and_warm(index, project):
    setup(index, project)
    for _ in range(2):
        r = run(project, "--", "no-such-command-xyz", "arg")
        assert r.code == 127
        assert r.stdout == ""
        assert "error: no-such-command-xyz: command not found" in r.stderr
    r = run(project, "--", "./not-here.sh")
    assert r.code == 127 and "cannot run it" in r.stderr
    script = project / "not-executable.sh"
    script.write_text("echo hi\n")
    r = run(project, "--", str(script))
    assert r.code == 126 and "Permission denied" in r.stderr


@needs_linux
def test_two_concurrent_runs_build_once(index, project, cache):
    server = setup(index, project)
    # Slow downloads, so the second run arrives while the first is building.
    server.trickle("/files/", 0.002)
    cmd = [sys.executable, "-m", "envlock", "run", "--", "python", "-c", PROBE]
    env = {**os.environ, "COLUMNS": "200"}
    procs = [
        subprocess.Popen(
            cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    [env_dir] = envs_of(cache)
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out == f"1.0 2.0\n{env_dir}\n"
    stderr = "".join(err for _, err in outs)
    assert stderr.count(BUILT) == 1, stderr
    assert "waiting for another `envlock run`" in stderr  # they did overlap
    assert not [p for p in (cache / "envs").iterdir() if p.name.startswith(".")]  # no staging


@needs_linux
def test_removed_environment_is_rebuilt(index, project, cache):
    import shutil

    setup(index, project)
    assert run(project, "--", "python", "-c", "pass").code == 0
    [env] = envs_of(cache)
    shutil.rmtree(env)  # as a cache cleanup would
    r = run(project, "--", "python", "-c", "import alpha")
    assert r.code == 0, r.stderr
    assert BUILT in r.stderr and envs_of(cache) == [env]


@needs_linux
def test_named_environment_spec_and_cache_options(index, project, cache, tmp_path):
    server = index([alpha(), beta()])
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["beta"]\n'
        '[environments.tools]\ndependencies = ["alpha"]\n',
    )
    assert envlock(project, "lock").code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    my_cache = tmp_path / "my cache"
    args = ("--spec", str(project / "envlock.toml"), "-e", "tools", "--cache-dir", str(my_cache))
    for i in range(2):
        r = run(elsewhere, *args, "--", "alpha-hello", "y")
        assert (r.code, r.stdout) == (0, "hello from alpha y\n"), r.stderr
        assert (r.stderr == "") == (i == 1)  # built, then warm
    assert len(envs_of(my_cache)) == 1 and envs_of(cache) == []
    r = run(elsewhere, "--spec", str(project / "envlock.toml"), "-e", "nope", "--", "true")
    assert r.code == 2 and "no environment named 'nope'" in r.stderr


def test_fast_helpers_agree_with_the_full_cli(monkeypatch, tmp_path):
    """The warm path's own host platform, cache directory and sha256 are the full CLI's."""
    data = os.urandom(100_000)
    (tmp_path / "lock").write_bytes(data)
    assert lock_sha256(str(tmp_path / "lock")) == hashlib.sha256(data).hexdigest()
    fast = fast_host_platform()
    assert fast is None or fast == host_platform()
    for xdg in (None, str(tmp_path / "xdg"), "  "):
        for explicit in (None, str(tmp_path / "c")):
            monkeypatch.delenv("ENVLOCK_CACHE_DIR", raising=False)
            if xdg is None:
                monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
            else:
                monkeypatch.setenv("XDG_CACHE_HOME", xdg)
            if explicit is not None:
                monkeypatch.setenv("ENVLOCK_CACHE_DIR", explicit)
            got = fast_cache_dir(None)
            assert got is None or got == str(cache_dir(None))
            assert fast_cache_dir("~/x") == str(cache_dir(Path("~/x")))


@needs_linux
def test_bundled_interpreter_environment_runs(index, project, cache, bundled_python):
    interp: BuiltInterpreter = bundled_python
    server = index([alpha(), beta()])
    url = server.publish_file(interp.filename, interp.data)
    write_spec(
        project,
        server.url,
        f'python = "{interp.version}"\ninterpreter = "bundled"\nplatforms = ["linux-64"]\n'
        'dependencies = ["alpha"]\n\n'
        + interpreter_sources_toml("linux-64", url, interp.sha256, interp.version),
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    probe = "import sys, platform, alpha; print(platform.python_version()); print(sys.prefix)"
    r = run(project, "--", "python", "-c", probe)
    assert r.code == 0, r.stderr
    [env] = envs_of(cache)
    assert r.stdout == f"{interp.version}\n{env}\n"
    server.stop()
    r = run(project, "--", "python", "-c", probe)
    assert (r.code, r.stdout, r.stderr) == (0, f"{interp.version}\n{env}\n", "")


@needs_linux
def test_warm_run_imports_no_cli_framework(index, project):
    """The warm path execs before typer, rich, packaging or the network stack load."""
    setup(index, project)
    assert run(project, "--", "python", "-c", "pass").code == 0
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "envlock", "run", "--", "true"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "envlock.actions.run" in imported
    assert not {m.split(".")[0] for m in imported} & {"typer", "rich", "packaging", "httpx"}


@needs_linux
def test_prune_removes_run_environments_of_old_locks_but_not_one_in_use(index, project, cache):
    """A command still running in an old lock's environment keeps it (its in-use lock survives
    exec); once it ends, prune removes it. The current lock's environment always stays."""
    setup(index, project)
    r = run(project, "--", "python", "-c", "pass")
    assert r.code == 0, r.stderr
    [old] = envs_of(cache)
    ready = project / "ready"
    # A long command in the old environment (warm path: exec with the in-use lock held).
    job = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "envlock",
            "run",
            "--",
            "python",
            "-c",
            f"import pathlib, time; pathlib.Path({str(ready)!r}).touch(); time.sleep(60)",
        ],
        cwd=project,
    )
    try:
        for _ in range(300):
            if ready.exists():
                break
            time.sleep(0.05)
        assert ready.exists()
        spec = (project / "envlock.toml").read_text()
        (project / "envlock.toml").write_text(spec.replace('["alpha"]', '["beta"]'))
        assert envlock(project, "lock").code == 0
        assert run(project, "--", "python", "-c", "pass").code == 0
        assert len(envs_of(cache)) == 2
        r = envlock(project, "cache", "prune")
        assert r.code == 0, r.stderr
        assert old in envs_of(cache)  # in use
    finally:
        job.kill()
        job.wait()
    r = envlock(project, "cache", "prune")
    assert r.code == 0, r.stderr
    assert "1 `envlock run` environment(s) of old locks" in r.stderr
    [current] = envs_of(cache)
    assert current != old and not old.exists()
    assert not Path(f"{old}.in-use").exists() and not Path(f"{old}.fresh").exists()
    r = run(project, "--", "python", "-c", "import beta")
    assert r.code == 0 and r.stderr == "", r.stderr  # still warm
