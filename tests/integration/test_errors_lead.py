"""Errors that lead the way: one message for a missing lock from every command, the spec found
by walking up (``--spec DIR`` too), credentials never printed whatever input carried them, and
a system-interpreter archive that says where it can run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from integration.helpers import envlock, write_spec
from integration.test_materialize import alpha, beta, materialize, setup

SECRET = "p/ss#w?rd"
SECRET_PARTS = ("p/ss", "w?rd", "s3kr1t", "tok3n")

# Every command that needs the environment's lock, with what makes it reach the lock.
NEEDS_LOCK = [
    ("lock", "--check"),
    ("fetch",),
    ("build",),
    ("run", "--", "python", "-c", "pass"),
    ("run", "--frozen", "--", "python", "-c", "pass"),
    ("audit",),
    ("export", "--format", "requirements"),
    ("push", "--snapshot", "file:///nonexistent/snapshot"),
    ("pull", "--snapshot", "file:///nonexistent/snapshot", "--platform", "linux-64"),
]


@pytest.mark.parametrize("args", NEEDS_LOCK, ids=lambda a: " ".join(a[:2]))
def test_missing_lock_is_one_message_and_exit_1_from_every_command(project, args, tmp_path):
    write_spec(project, None, 'python = "3.11"\nplatforms = ["linux-64"]\n')
    r = envlock(project, *args)
    assert r.code == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines == [
        "error: pylock.toml does not exist: environment 'default' is not locked yet",
        "hint: run `envlock lock` to write it (and commit it)",
    ]
    assert "--frozen" not in r.stderr


def test_spec_is_found_in_a_parent_directory(index, project):
    server = index([alpha(), beta()])
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["alpha"]\n'
    )
    deep = project / "src" / "pkg"
    deep.mkdir(parents=True)
    r = envlock(deep, "lock")
    assert r.code == 0, r.stderr
    assert (project / "pylock.toml").is_file() and not (deep / "pylock.toml").exists()
    r = envlock(deep, "lock", "--check")  # the fast path walks up the same way
    assert r.code == 0, r.stderr
    assert "up to date" in r.stderr


def test_spec_option_may_name_the_directory(index, project, tmp_path):
    server = index([alpha(), beta()])
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["alpha"]\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = envlock(elsewhere, "lock", "--spec", str(project))
    assert r.code == 0, r.stderr
    assert (project / "pylock.toml").is_file()
    r = envlock(elsewhere, "lock", "--check", "--spec", str(project))
    assert r.code == 0, r.stderr


def test_no_spec_anywhere_points_at_init(tmp_path):
    empty = tmp_path / "empty" / "deeper"
    empty.mkdir(parents=True)
    for args in (("lock",), ("lock", "--check"), ("audit",), ("run", "--", "true")):
        r = envlock(empty, *args)
        assert r.code == 2, (args, r.stderr)
        assert r.stderr.splitlines() == [
            f"error: no envlock.toml in {empty} or any parent directory",
            "hint: run `envlock init` to start one here, or pass --spec PATH",
        ]


@pytest.mark.timeout(60)
def test_a_fifo_or_directory_where_the_spec_or_lock_belongs_is_one_line(project):
    fifo = project / "spec.toml"
    os.mkfifo(fifo)  # no writer: a plain open() would block forever
    for args in (("lock", "--check"), ("lock",), ("audit",)):
        r = envlock(project, *args, "--spec", str(fifo))
        assert r.code == 2, r.stderr
        assert r.stderr.splitlines()[0] == f"error: {fifo}: cannot read spec: not a regular file"
    write_spec(project, None, 'python = "3.11"\nplatforms = ["linux-64"]\n')
    os.mkfifo(project / "pylock.toml")
    # lock --check reports any unreadable lock as not up to date (exit 1), the others exit 2.
    for args, code in ((("lock", "--check"), 1), (("audit",), 2), (("export",), 2)):
        r = envlock(project, *args)
        assert r.code == code, (args, r.stderr)
        assert "pylock.toml: cannot read: not a regular file" in r.stderr.splitlines()[0]


def test_init_writes_into_a_spec_directory_and_never_walks_up(project):
    (project / "envlock.toml").write_text('python = "3.11"\n')
    sub = project / "sub"
    sub.mkdir()
    r = envlock(sub, "init", "--python", "3.11")
    assert r.code == 0, r.stderr
    assert (sub / "envlock.toml").is_file()
    other = project / "other"
    other.mkdir()
    r = envlock(project, "init", "--python", "3.11", "--spec", str(other))
    assert r.code == 0, r.stderr
    assert (other / "envlock.toml").is_file()


def _all_output(project: Path, results: list) -> str:
    """Everything printed, and every file written under ``project``."""
    text = "".join(r.stdout + r.stderr for r in results)
    for dirpath, _, files in os.walk(project):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                text += path.read_bytes().decode("utf-8", "replace")
    return text


def test_credentials_in_any_url_input_are_never_printed_or_written(index, project):
    server = index([alpha(), beta()])
    spec = write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["alpha"]\n'
    )
    assert envlock(project, "lock").code == 0
    base = spec.read_text()
    results = []
    # The snapshot URL, from each of its three sources, with a wrong scheme and with credentials.
    for url in (f"ftp://user:{SECRET}@host/x", "s3://key:s3kr1t@bucket/prefix"):
        for args, env in (
            (("push", "--snapshot", url), {}),
            (("fetch", "--from-snapshot", "--snapshot", url), {}),
            (("pull", "--platform", "linux-64"), {"ENVLOCK_SNAPSHOT_URL": url}),
            (("push",), {"ENVLOCK_SNAPSHOT_URL": url}),
        ):
            r = envlock(project, *args, env=env)
            assert r.code != 0, (args, r.stderr)
            results.append(r)
        spec.write_text(f'snapshot = "{url}"\n' + base)
        r = envlock(project, "push")
        assert r.code == 2, r.stderr
        results.append(r)
        spec.write_text(base)
    # The interpreter mirror, from the environment and from the spec.
    mirror = "ftp://user:tok3n@mirror.example/python"
    spec.write_text(base.replace('interpreter = "system"', 'interpreter = "bundled"'))
    r = envlock(project, "lock", env={"ENVLOCK_PYTHON_MIRROR": mirror})
    results.append(r)
    spec.write_text(f'python-mirror = "{mirror}"\n' + base)
    r = envlock(project, "lock")
    assert r.code == 2, r.stderr
    results.append(r)
    # An index URL with credentials in the spec, and an OSV server.
    spec.write_text(base.replace(server.url, server.url.replace("://", f"://u:{SECRET}@")))
    results.append(envlock(project, "lock"))
    spec.write_text(base)
    results.append(
        envlock(
            project,
            "audit",
            "--vulnerabilities",
            env={"ENVLOCK_OSV_URL": "http://user:tok3n@127.0.0.1:9/"},
        )
    )
    everything = _all_output(project, results)
    assert "error:" in everything
    for part in SECRET_PARTS:
        assert part not in everything, part


def test_system_archive_says_it_needs_the_build_machines_python(index, project, tmp_path):
    setup(index, project, [alpha(), beta()], ["alpha"])
    r = materialize(project, "linux-64", "--archive", str(tmp_path / "env.tar.gz"))
    assert r.code == 0, r.stderr
    assert "warning: interpreter = \"system\": the archive's python is the build machine's" in (
        r.stderr.replace("\n", " ")
    )
    assert 'interpreter = "bundled"' in r.stderr
    out = tmp_path / "dir"
    r = materialize(project, "linux-64", "--output", str(out))
    assert r.code == 0 and "the archive's python" not in r.stderr
