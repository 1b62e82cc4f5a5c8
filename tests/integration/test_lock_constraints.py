"""The spec's ``constraints`` through the real CLI: they hold versions back without adding a
package, a change makes the lock stale, a clash is one line, and ``init`` imports ``-c`` files."""

from __future__ import annotations

from envlock.actions.init import host_python
from envlock.spec import load_spec
from integration.helpers import envlock, load_lock, selected, write_spec
from support.wheels import Dist

DISTS = [
    Dist("app", "1.0", requires=["lib>=1"]),
    Dist("lib", "1.0"),
    Dist("lib", "1.5"),
    Dist("lib", "2.0"),
    Dist("unrelated", "1.0"),
]
BODY = """\
python = "3.11"
platforms = ["linux-64", "win-64"]
dependencies = ["app"]
constraints = [{constraints}]
"""


def test_a_constraint_pins_a_transitive_dependency_and_a_change_makes_the_lock_stale(
    index, project
):
    server = index(DISTS)
    write_spec(project, server.url, BODY.format(constraints="\"lib<2; sys_platform == 'linux'\""))
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.toml", "linux-64") == {"app": "1.0", "lib": "1.5"}
    assert selected(project / "pylock.toml", "win-64") == {"app": "1.0", "lib": "2.0"}
    assert "excluded by the constraint" in r.stdout + r.stderr  # why linux-64 is older
    assert envlock(project, "lock", "--check").code == 0
    write_spec(project, server.url, BODY.format(constraints='"lib<1.5"'))
    r = envlock(project, "lock", "--check")
    assert r.code == 1 and "the spec of environment 'default' changed" in r.stderr
    assert envlock(project, "lock").code == 0
    assert selected(project / "pylock.toml", "win-64") == {"app": "1.0", "lib": "1.0"}


def test_a_constraint_on_a_package_nobody_requires_adds_nothing(index, project):
    server = index(DISTS)
    write_spec(project, server.url, BODY.format(constraints='"unrelated==1.0", "ghost<1"'))
    assert envlock(project, "lock").code == 0
    names = {p["name"] for p in load_lock(project / "pylock.toml")["packages"]}
    assert names == {"app", "lib"}


def test_a_constraint_against_a_requirement_is_a_one_line_error_naming_both(index, project):
    server = index(DISTS)
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["lib>=2"]\n'
        'constraints = ["lib<2"]\n',
    )
    r = envlock(project, "lock")
    assert r.code == 1
    error = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    assert "lib>=2" in error[0] and "excluded by the constraint 'lib<2'" in error[0]
    assert not (project / "pylock.toml").exists()


def test_init_imports_an_airflow_style_constraints_file_and_the_lock_follows_it(index, project):
    server = index([*DISTS, Dist("apache-airflow", "2.10.5", requires=["app", "lib"])])
    pins = [f"apache-airflow-providers-{i}==1.{i}.0" for i in range(725)]
    pins += ["lib==1.0", "app==1.0", "apache-airflow==2.10.5"]
    (project / "constraints-3.11.txt").write_text(
        "#\n# This constraints file was automatically generated\n#\n" + "\n".join(pins) + "\n"
    )
    (project / "requirements.txt").write_text(
        f"--index-url {server.url}\napache-airflow==2.10.5\n-c constraints-3.11.txt\n"
    )
    r = envlock(
        project, "init", "--from", "requirements.txt", "--interpreter", "system", "-p", "linux-64"
    )
    assert r.code == 0, r.stderr
    assert "728 constraints" in r.stdout + r.stderr
    spec = load_spec(project / "envlock.toml")
    assert len(spec.root.constraints) == 728 and spec.root.dependencies == (
        "apache-airflow==2.10.5",
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.toml", "linux-64", host_python()) == {
        "apache-airflow": "2.10.5",
        "app": "1.0",
        "lib": "1.0",
    }
