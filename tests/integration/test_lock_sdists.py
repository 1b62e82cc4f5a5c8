"""Sdists in ``envlock lock`` as pip and uv use them: locked by default when no wheel fits,
refused by ``allow-sdist = false`` or ``[policy] no-build`` with the setting named, and the
summary says what is built from source and which newer version was skipped, and why. The real
CLI against a loopback index that serves sdists built at test time."""

from __future__ import annotations

import pytest

from integration.helpers import envlock, load_lock, selected, write_spec
from support.wheels import Dist

BASE = 'python = "3.11"\nplatforms = ["linux-64"]\n'


def _pendulum_like() -> list[Dist]:
    """pendulum in miniature: 0.4 has a universal wheel; 2.1.2 an sdist and wheels for
    CPython 3.5-3.9 only."""
    wheels = [Dist("clock", "2.1.2", tag=f"cp3{i}-cp3{i}-manylinux1_x86_64") for i in range(5, 10)]
    return [Dist("clock", "0.4"), *wheels, Dist("clock", "2.1.2", kind="sdist")]


def test_sdist_only_package_is_locked_by_default(index, project):
    server = index([Dist("src", "1.0", kind="sdist", requires=["dep"]), Dist("dep", "1.0")])
    write_spec(project, server.url, BASE + 'dependencies = ["src"]\n')
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.toml", "linux-64") == {"src": "1.0", "dep": "1.0"}
    entry = next(p for p in load_lock(project / "pylock.toml")["packages"] if p["name"] == "src")
    assert entry["sdist"]["name"] == "src-1.0.tar.gz"
    assert "built from source (at fetch time, once):\n" in r.stderr
    assert "    src 1.0 (linux-64): it has only a source distribution\n" in r.stderr


@pytest.mark.parametrize(
    ("setting", "named", "hint"),
    [
        ("allow-sdist = false\n", "allow-sdist = false", 'set allow-sdist = ["src"] (or true)'),
        ('allow-sdist = ["other"]\n', "allow-sdist (a list without 'src')", 'add "src" to'),
        ("[policy]\nno-build = true\n", "[policy] no-build = true", "or lift [policy] no-build"),
    ],
)
def test_refused_sdist_fails_in_one_line_naming_the_package_and_the_setting(
    index, project, setting, named, hint
):
    server = index([Dist("src", "1.0", kind="sdist")])
    write_spec(project, server.url, BASE + 'dependencies = ["src"]\n' + setting)
    r = envlock(project, "lock")
    assert r.code == 1
    error, hint_line = r.stderr.strip().splitlines()[-2:]
    assert error == (
        "error: no version of src can be installed on linux-64 / cp311: src 1.0: it has only a "
        f"source distribution, and {named} refuses its sdist"
    )
    assert hint_line.startswith("hint: ") and hint in hint_line
    assert not (project / "pylock.toml").exists()


def test_newest_version_with_only_an_sdist_for_this_python_wins_over_an_old_wheel(index, project):
    server = index(_pendulum_like())
    write_spec(project, server.url, BASE + 'dependencies = ["clock<3.0"]\n')
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.toml", "linux-64") == {"clock": "2.1.2"}
    assert (
        "    clock 2.1.2 (linux-64): its Linux x86_64 wheels are for cp35-cp39, not cp311\n"
        in r.stderr
    )
    assert "older than the newest in range" not in r.stderr


def test_with_sdists_off_the_summary_names_the_skipped_newest_version_and_why(index, project):
    server = index(_pendulum_like())
    write_spec(project, server.url, BASE + 'dependencies = ["clock<3.0"]\nallow-sdist = false\n')
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.toml", "linux-64") == {"clock": "0.4"}
    assert (
        "  older than the newest in range:\n"
        "    clock 0.4, not 2.1.2: its Linux x86_64 wheels are for cp35-cp39, not cp311, and "
        "allow-sdist = false refuses its sdist\n"
    ) in r.stderr


def test_summary_names_the_deny_rule_that_held_a_package_back(index, project):
    server = index([Dist("lib", "1.0"), Dist("lib", "2.0"), Dist("lib", "3.0")])
    write_spec(project, server.url, BASE + 'dependencies = ["lib"]\n[policy]\ndeny = ["lib>=2"]\n')
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert "    lib 1.0, not 3.0: denied by the [policy] deny rule 'lib>=2'\n" in r.stderr


def test_audit_finds_an_sdist_a_target_would_build_under_no_build(index, project):
    server = index([Dist("src", "1.0", kind="sdist"), Dist("whl", "1.0")])
    write_spec(project, server.url, BASE + 'dependencies = ["src", "whl"]\n')
    assert envlock(project, "lock").code == 0
    write_spec(
        project, server.url, BASE + 'dependencies = ["src", "whl"]\n[policy]\nno-build = true\n'
    )
    r = envlock(project, "audit")
    assert r.code == 1
    assert (
        "src 1.0: src-1.0.tar.gz would be built on linux-64, which [policy] no-build = true forbids"
    ) in r.stderr
    assert "whl 1.0" not in r.stderr
    assert envlock(project, "lock", "--check").code == 1  # the policy is part of the spec


def test_policy_violations_of_every_environment_are_listed_in_one_run(index, project):
    gpl = ["License-Expression: GPL-3.0-only"]
    server = index([Dist("a", "1.0", metadata=gpl), Dist("b", "1.0", metadata=gpl)])
    write_spec(
        project,
        server.url,
        # dev inherits the top level's "a" and adds "b"
        BASE + 'dependencies = ["a"]\n[environments.dev]\ndependencies = ["b"]\n'
        '[policy]\nallowed-licenses = ["MIT"]\n',
    )
    r = envlock(project, "lock")
    assert r.code == 1
    lines = r.stderr.strip().splitlines()
    at = lines.index("error: the lock would break the [policy] (3 violations):")
    assert lines[at + 1 : at + 4] == [
        "  default: a 1.0: license GPL-3.0-only is not in allowed-licenses",
        "  dev: a 1.0: license GPL-3.0-only is not in allowed-licenses",
        "  dev: b 1.0: license GPL-3.0-only is not in allowed-licenses",
    ]
    assert not list(project.glob("pylock*.toml"))


def test_a_confusable_project_name_is_warned_about_with_the_right_name(index, project):
    server = index([Dist("sklearn", "0.0", requires=["scikit-learn"]), Dist("scikit-learn", "1.5")])
    write_spec(project, server.url, BASE + 'dependencies = ["sklearn"]\n')
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert "sklearn is often confused for scikit-learn: did you mean scikit-learn?" in r.stderr


def test_failing_build_backend_is_named_with_its_last_line(index, project):
    broken = b"raise RuntimeError('this backend cannot run here')\n"
    server = index(
        [Dist("bad", "1.0", kind="sdist", sdist_dynamic=True, files={"tiny_backend.py": broken})]
    )
    write_spec(project, server.url, BASE + 'dependencies = ["bad"]\n')
    r = envlock(project, "lock")
    assert r.code == 1
    assert "Traceback" not in r.stderr
    line = next(ln for ln in r.stderr.splitlines() if "bad-1.0.tar.gz" in ln)
    assert "bad 1.0" in line and "this backend cannot run here" in line
