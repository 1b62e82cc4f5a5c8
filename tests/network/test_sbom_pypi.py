"""The CycloneDX SBOM of a real lock made against PyPI validates with cyclonedx-python-lib's own
validator and describes the lock exactly (marked ``network``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from envlock.lock.lockfile import load as load_locked
from integration.helpers import envlock

pytestmark = pytest.mark.network


def test_sbom_of_a_real_lock_validates_and_matches_the_lock(tmp_path: Path) -> None:
    # The default bundled interpreter: its python-build-standalone archives are components too.
    (tmp_path / "envlock.toml").write_text(
        'python = "3.11"\nplatforms = ["linux-64", "win-64"]\n'
        'dependencies = ["requests==2.32.3", "numpy==2.1.3", "rich==13.9.4",'
        ' "colorama==0.4.6; sys_platform == \\"win32\\""]\n'
        'exclude-newer = "2025-01-01T00:00:00Z"\n'
    )
    r = envlock(tmp_path, "lock")
    assert r.code == 0, r.stderr
    sbom = envlock(tmp_path, "audit", "--format", "cyclonedx")
    assert sbom.code == 0, sbom.stderr
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(sbom.stdout, all_errors=True)
    assert errors is None, "\n".join(str(e) for e in errors)
    data: dict[str, Any] = json.loads(sbom.stdout)
    lock = load_locked(tmp_path / "pylock.toml")

    libraries = {c["name"]: c for c in data["components"] if c["type"] == "library"}
    assert {"requests", "numpy", "rich", "colorama", "urllib3", "idna"} <= set(libraries)
    for name, c in libraries.items():
        assert c["purl"] == f"pkg:pypi/{name}@{c['version']}"  # PyPI: no repository_url
        if lock.license(name, c["version"]) is not None:
            assert c["licenses"], name
    assert libraries["requests"]["licenses"]  # Apache-2.0, however its metadata says it
    # Every file of the lock with its sha256: numpy has one wheel per platform.
    files = {
        (ref["url"], ref["hashes"][0]["content"])
        for c in libraries.values()
        for ref in c["externalReferences"]
    }
    assert files == {(a.url, a.sha256) for a in lock.all_artifacts()}
    assert len(libraries["numpy"]["externalReferences"]) == 2
    interpreters = [c for c in data["components"] if c["type"] == "platform"]
    assert sorted(c["hashes"][0]["content"] for c in interpreters) == sorted(
        i.sha256 for i in lock.interpreters()
    )

    graph = {d["ref"]: set(d.get("dependsOn", [])) for d in data["dependencies"]}
    requests = graph[f"pkg:pypi/requests@{libraries['requests']['version']}"]
    assert {ref.split("@")[0] for ref in requests} == {
        "pkg:pypi/certifi",
        "pkg:pypi/charset-normalizer",
        "pkg:pypi/idna",
        "pkg:pypi/urllib3",
    }
    assert any(ref.startswith("pkg:pypi/markdown-it-py@") for ref in graph["pkg:pypi/rich@13.9.4"])
    roots = {ref.split("@")[0] for ref in graph["envlock-environment"]}
    assert {"pkg:pypi/requests", "pkg:pypi/numpy", "pkg:pypi/rich", "cpython"} <= roots

    again = envlock(tmp_path, "audit", "--format", "cyclonedx")
    assert again.stdout == sbom.stdout  # the same lock, the same bytes
