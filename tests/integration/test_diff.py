"""``envlock diff`` end to end: two real locks made against the loopback index (a version
published, one package upgraded, one downgraded, one added, one removed, one only on win-64), a
tampered copy for the red flag, git mode in a throwaway repository, and JSON for machines."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from envlock.lock.lockfile import MAX_LOCK_BYTES
from integration.helpers import envlock, write_spec
from support.wheels import Dist

WIN = "cp311-cp311-win_amd64"
SPEC_V1 = """
    python = "3.11"
    platforms = ["linux-64", "win-64"]
    dependencies = ["lib", "six", "attrs"]
    """
SPEC_V2 = """
    python = "3.11"
    platforms = ["linux-64", "win-64"]
    dependencies = ["lib", "attrs<23", "click", 'colorama; sys_platform == "win32"']
    """
CHANGES = [
    "~ attrs 23.1.0 -> 22.2.0 (downgraded)",
    "+ click 8.1.7",
    "+ colorama 0.4.6 (win-64)",
    "~ lib 1.0 -> 2.0 (upgraded)",
    "- six 1.16.0",
]


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture
def two_locks(index, project):
    """old.toml (SPEC_V1) and pylock.toml (SPEC_V2 after lib 2.0 was published)."""
    server = index(
        [
            Dist("lib", "1.0"),
            Dist("six", "1.16.0"),
            Dist("attrs", "23.1.0"),
            Dist("attrs", "22.2.0"),
            Dist("click", "8.1.7"),
            Dist("colorama", "0.4.6"),
        ]
    )
    write_spec(project, server.url, SPEC_V1)
    assert envlock(project, "lock").code == 0
    shutil.copy(project / "pylock.toml", project / "old.toml")
    server.add(Dist("lib", "2.0"))
    write_spec(project, server.url, SPEC_V2)
    r = envlock(project, "lock", "--upgrade-package", "lib")
    assert r.code == 0, r.stderr
    return server


def _lines(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines()]


def test_diff_of_two_lock_files(two_locks, project):
    r = envlock(project, "diff", "old.toml", "pylock.toml")
    assert r.code == 0, r.stderr
    assert _lines(r.stdout) == ["old.toml -> pylock.toml", *CHANGES]
    back = envlock(project, "diff", "pylock.toml", "old.toml")
    assert _lines(back.stdout)[1:] == [
        "~ attrs 22.2.0 -> 23.1.0 (upgraded)",
        "- click 8.1.7",
        "- colorama 0.4.6 (win-64)",
        "~ lib 2.0 -> 1.0 (downgraded)",
        "+ six 1.16.0",
    ]
    same = envlock(project, "diff", "--exit-code", "pylock.toml", "pylock.toml")
    assert (same.code, _lines(same.stdout)[1:]) == (0, ["no changes"])
    changed = envlock(project, "diff", "--exit-code", "old.toml", "pylock.toml")
    assert changed.code == 1


def test_same_file_with_other_bytes_is_a_red_flag(two_locks, project):
    lock = project / "pylock.toml"
    good = two_locks.sha256("lib-2.0-py3-none-any.whl")
    bad = "f" * 64
    (project / "tampered.toml").write_text(lock.read_text().replace(good, bad))
    r = envlock(project, "diff", "pylock.toml", "tampered.toml")
    assert r.code == 0, r.stderr
    assert _lines(r.stdout) == [
        "pylock.toml -> tampered.toml",
        "! lib 2.0: same version, different files: "
        f"lib-2.0-py3-none-any.whl sha256 {good[:12]}… -> {bad[:12]}…",
    ]
    assert "1 locked file(s) changed bytes without changing name or version" in r.stderr
    assert envlock(project, "diff", "--exit-code", "pylock.toml", "tampered.toml").code == 1


def test_git_mode_compares_head_with_the_working_tree(index, project):
    server = index([Dist("lib", "1.0"), Dist("six", "1.16.0"), Dist("attrs", "23.1.0")])
    write_spec(project, server.url, SPEC_V1)
    assert envlock(project, "lock").code == 0
    _git(project, "init", "-q")
    r = envlock(project, "diff")
    assert r.code == 0, r.stderr  # no commit yet: every package is new
    assert _lines(r.stdout) == [
        "pylock.toml (default): HEAD -> working tree",
        "not in HEAD: everything is new",
        "+ platform linux-64",
        "+ platform win-64",
        "+ attrs 23.1.0",
        "+ lib 1.0",
        "+ six 1.16.0",
    ]
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "lock")
    r = envlock(project, "diff", "--exit-code")
    assert (r.code, _lines(r.stdout)) == (
        0,
        ["pylock.toml (default): HEAD -> working tree", "no changes"],
    )
    server.add(Dist("lib", "2.0"))
    assert envlock(project, "lock", "--upgrade-package", "lib").code == 0
    expected = ["~ lib 1.0 -> 2.0 (upgraded)"]
    r = envlock(project, "diff")
    assert _lines(r.stdout)[1:] == expected
    # one lock named, from a subdirectory: found in the repository all the same
    (project / "sub").mkdir()
    r = envlock(project / "sub", "diff", "../pylock.toml")
    assert _lines(r.stdout) == ["../pylock.toml: HEAD -> working tree", *expected]
    _git(project, "commit", "-q", "-am", "upgrade lib")
    assert _lines(envlock(project, "diff", "--rev", "HEAD~1").stdout)[1:] == expected
    assert _lines(envlock(project, "diff").stdout)[1:] == ["no changes"]


def test_git_mode_named_environments_and_json(index, project):
    server = index([Dist("lib", "1.0"), Dist("six", "1.16.0")])
    write_spec(
        project,
        server.url,
        """
        python = "3.11"
        platforms = ["linux-64"]
        dependencies = ["lib"]

        [environments.dev]
        dependencies = ["lib", "six"]
        """,
    )
    assert envlock(project, "lock").code == 0
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "lock")
    server.add(Dist("six", "1.17.0"))
    assert envlock(project, "lock", "--upgrade").code == 0
    r = envlock(project, "diff", "--env", "dev")
    assert _lines(r.stdout) == [
        "pylock.dev.toml (dev): HEAD -> working tree",
        "~ six 1.16.0 -> 1.17.0 (upgraded)",
    ]
    r = envlock(project, "diff", "--format", "json")
    assert r.code == 0, r.stderr
    data = json.loads(r.stdout)
    assert r.stdout == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert [lock["header"] for lock in data["locks"]] == [
        "pylock.toml (default): HEAD -> working tree",
        "pylock.dev.toml (dev): HEAD -> working tree",
    ]
    default, dev = data["locks"]
    assert default["changes"] == [] and default["red_flags"] == 0
    assert dev["old"] == "HEAD:pylock.dev.toml"
    (change,) = dev["changes"]
    assert change == {
        "name": "six",
        "kind": "upgraded",
        "old": "1.16.0",
        "new": "1.17.0",
        "old_index": server.url,
        "new_index": server.url,
        "detail": None,
        "red_flag": False,
        "platforms": ["linux-64"],
    }
    again = envlock(project, "diff", "--format", "json")
    assert again.stdout == r.stdout


def test_clear_one_line_errors(two_locks, project, tmp_path):
    def error(*args: str, cwd: Path = project) -> str:
        r = envlock(cwd, "diff", *args)
        assert r.code == 2, (r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
        (line, *_) = r.stderr.splitlines()
        return line

    assert re.fullmatch(r"error: .*: not in a git repository", error())
    assert "missing.toml does not exist" in error("missing.toml", "pylock.toml")
    (project / "bad.toml").write_text("lock-version = [")
    assert error("bad.toml", "pylock.toml").startswith("error: bad.toml: not a valid PEP 751 lock")
    assert "at most two locks" in error("a", "b", "c")
    assert "--env picks locks from the spec" in error("--env", "dev", "pylock.toml")
    assert "--format" in error("--format", "xml", "old.toml", "pylock.toml")
    _git(project, "init", "-q")
    assert "'nope' is not a commit" in error("--rev", "nope")
    assert "--rev compares with git" in error("--rev", "HEAD~1", "old.toml", "pylock.toml")


def _padded(lock: bytes) -> bytes:
    """A valid lock just over the cap: TOML comments after the real content."""
    line = b"#" * 1023 + b"\n"
    need = MAX_LOCK_BYTES + 1 - len(lock) - 1
    return lock + b"\n" + line * (need // len(line)) + b"#" * (need % len(line))


@pytest.mark.parametrize("where", ["committed", "file"])
def test_a_lock_over_the_size_cap_is_refused_unread(where, index, project):
    server = index([Dist("lib", "1.0"), Dist("six", "1.16.0"), Dist("attrs", "23.1.0")])
    write_spec(project, server.url, SPEC_V1)
    assert envlock(project, "lock").code == 0
    good = (project / "pylock.toml").read_bytes()
    huge = _padded(good)
    assert len(huge) == MAX_LOCK_BYTES + 1
    if where == "committed":
        _git(project, "init", "-q")
        (project / "pylock.toml").write_bytes(huge)
        _git(project, "add", "-A")
        _git(project, "commit", "-q", "-m", "a lock of 64 MiB")
        (project / "pylock.toml").write_bytes(good)
        r = envlock(project, "diff")
        shown = ":pylock.toml: "
    else:
        (project / "old.toml").write_bytes(huge)
        r = envlock(project, "diff", "old.toml", "pylock.toml")
        shown = "old.toml: "
    assert r.code == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"{shown}{MAX_LOCK_BYTES + 1} bytes, more than the 64 MiB a lock may have" in errors[0]
