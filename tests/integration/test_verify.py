"""``envlock verify DIR``: drift detection of a built environment against its lock."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from integration.helpers import Result, envlock, write_spec
from support.wheels import Dist, record_hash

SITE = "lib/python3.11/site-packages"


@pytest.fixture
def built(index, project: Path, tmp_path: Path) -> Path:
    """A clean linux-64 environment of alpha 1.0 (+ beta 2.0), built with --link-mode copy."""
    server = index(
        [
            Dist(
                "alpha",
                "1.0",
                requires=["beta"],
                console_scripts={"alpha-hello": "alpha:main"},
                files={
                    "alpha/__init__.py": b"def main():\n    print('hi')\n",
                    "alpha/util.py": b"X = 1\n",
                },
            ),
            Dist("beta", "2.0"),
        ]
    )
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["alpha"]\n'
    )
    assert envlock(project, "lock").code == 0
    out = tmp_path / "env"
    r = envlock(project, "build", "--output", str(out), "--link-mode", "copy")
    assert r.code == 0, r.stderr
    r = envlock(project, "verify", str(out))
    assert r.code == 0, r.stdout
    assert r.stdout == ""
    assert "2 packages" in r.stderr and "match pylock.toml" in r.stderr
    return out


def verify(project: Path, env: Path, *args: str) -> Result:
    return envlock(project, "verify", str(env), *args)


def test_environment_records_the_lock_it_was_built_from(built, project):
    meta = json.loads((built / "envlock.json").read_text())
    assert meta["lock"] == "pylock.toml"
    assert meta["lock-sha256"] == hashlib.sha256((project / "pylock.toml").read_bytes()).hexdigest()
    assert meta["platform"] == "linux-64"
    assert meta["packages"] == {"alpha": "1.0", "beta": "2.0"}


def test_modified_file_is_named(built, project):
    (built / SITE / "alpha" / "util.py").write_text("X = 2\n")
    r = verify(project, built)
    assert r.code == 1
    assert r.stdout.splitlines() == ["modified file alpha/util.py (alpha-1.0.dist-info)"]
    assert "1 difference(s)" in r.stderr


def test_modified_console_script_is_named(built, project):
    script = built / "bin" / "alpha-hello"
    script.write_text(script.read_text() + "# patched\n")
    r = verify(project, built)
    assert r.code == 1
    assert "alpha-hello" in r.stdout and "modified file" in r.stdout


def test_deleted_file_is_reported(built, project):
    (built / SITE / "alpha" / "util.py").unlink()
    r = verify(project, built)
    assert r.code == 1
    assert r.stdout.splitlines() == ["missing file alpha/util.py (alpha-1.0.dist-info)"]


def test_deleted_package_is_a_missing_package(built, project):
    shutil.rmtree(built / SITE / "beta-2.0.dist-info")
    r = verify(project, built)
    assert r.code == 1
    assert "missing package beta 2.0" in r.stdout.splitlines()
    # beta's files are now accounted for by no RECORD.
    assert f"unrecorded file {SITE}/beta/__init__.py" in r.stdout.splitlines()


def test_extra_dist_info_is_an_extra_package(built, project):
    extra = built / SITE / "intruder-0.1.dist-info"
    extra.mkdir()
    metadata = b"Metadata-Version: 2.1\nName: intruder\nVersion: 0.1\n"
    (extra / "METADATA").write_bytes(metadata)
    (extra / "RECORD").write_text(
        f"intruder-0.1.dist-info/METADATA,{record_hash(metadata)},{len(metadata)}\n"
        "intruder-0.1.dist-info/RECORD,,\n"
    )
    r = verify(project, built)
    assert r.code == 1
    assert r.stdout.splitlines() == ["extra package intruder 0.1"]


def test_stray_module_is_an_unrecorded_file(built, project):
    (built / SITE / "sneaky.py").write_text("import os\n")
    (built / SITE / "alpha" / "__pycache__").mkdir()
    (built / SITE / "alpha" / "__pycache__" / "util.cpython-311.pyc").write_bytes(b"pyc")
    r = verify(project, built)
    assert r.code == 1
    assert r.stdout.splitlines() == [f"unrecorded file {SITE}/sneaky.py"]  # __pycache__ aside


def test_other_version_installed(built, project):
    site = built / SITE
    (site / "beta-2.0.dist-info").rename(site / "beta-3.0.dist-info")
    r = verify(project, built)
    assert r.code == 1
    assert "beta is 3.0, the lock says 2.0" in r.stdout.splitlines()


def test_several_differences_are_all_listed(built, project):
    (built / SITE / "alpha" / "util.py").write_text("X = 3\n")
    shutil.rmtree(built / SITE / "beta-2.0.dist-info")
    (built / SITE / "stray.py").write_text("")
    r = verify(project, built)
    assert r.code == 1
    lines = r.stdout.splitlines()
    assert "modified file alpha/util.py (alpha-1.0.dist-info)" in lines
    assert "missing package beta 2.0" in lines
    assert f"unrecorded file {SITE}/stray.py" in lines
    assert f"{len(lines)} difference(s)" in r.stderr


def test_relocked_spec_is_reported_as_another_lock(built, project, index):
    spec = project / "envlock.toml"
    spec.write_text(spec.read_text().replace('["alpha"]', '["alpha", "beta"]'))
    assert envlock(project, "lock").code == 0
    r = verify(project, built)
    assert r.code == 1
    assert "built from a different lock" in r.stdout
    # Against the package list recorded at build time (no lock beside a spec) it is clean.
    elsewhere = project.parent / "elsewhere"
    elsewhere.mkdir()
    r = verify(elsewhere, built)
    assert r.code == 0, r.stdout
    assert "recorded at build time" in r.stderr
    r = verify(elsewhere, built, "--lock", str(project / "pylock.toml"))
    assert r.code == 1 and "built from a different lock" in r.stdout


def test_verify_of_something_that_is_not_an_environment(project, tmp_path):
    d = tmp_path / "plain"
    d.mkdir()
    r = envlock(project, "verify", str(d))
    assert r.code == 2
    assert "not an envlock environment" in r.stderr
    assert "Traceback" not in r.stderr


def test_an_emptied_record_does_not_pass(built, project):
    (built / SITE / "alpha-1.0.dist-info" / "RECORD").write_text("")
    r = verify(project, built)
    assert r.code == 1
    lines = r.stdout.splitlines()
    assert "alpha-1.0.dist-info: RECORD lists no file with a hash" in lines
    assert "unrecorded file lib/python3.11/site-packages/alpha/util.py" in lines


def test_a_record_row_without_hash_is_reported(built, project):
    record = built / SITE / "beta-2.0.dist-info" / "RECORD"
    rows = record.read_text().splitlines()
    rows = [",".join([r.split(",")[0], "", ""]) if r.startswith("beta/") else r for r in rows]
    record.write_text("\n".join(rows) + "\n")
    r = verify(project, built)
    assert r.code == 1
    assert "unhashed file beta/__init__.py (beta-2.0.dist-info)" in r.stdout.splitlines()
