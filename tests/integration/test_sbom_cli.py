"""``envlock audit --format cyclonedx`` end to end: a lock made against the loopback index, its
SBOM checked against the CycloneDX 1.6 schema and against the lock itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from envlock.lock.lockfile import load as load_locked
from integration.helpers import envlock, write_spec
from support.wheels import Dist

LINUX = "cp311-cp311-manylinux_2_17_x86_64"
WIN = "cp311-cp311-win_amd64"


def _index(index: Any) -> Any:
    return index(
        [
            Dist(
                "app",
                "1.0",
                requires=["lib>=1", 'winonly; sys_platform == "win32"'],
                metadata=["License-Expression: MIT"],
            ),
            *(
                Dist("lib", "1.5", tag=t, metadata=["License-Expression: Apache-2.0"])
                for t in (LINUX, WIN)
            ),
            Dist("winonly", "0.2"),
        ],
        auth=("alice", "s3cret-pw"),
    )


def _locked(index: Any, project: Path) -> tuple[Any, Path]:
    server = _index(index)
    write_spec(
        project,
        server.url.replace("http://", "http://alice:s3cret-pw@"),
        'python = "3.11"\nplatforms = ["linux-64", "win-64"]\ndependencies = ["app"]\n',
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    return server, project / "pylock.toml"


def _sbom(project: Path, *args: str) -> tuple[str, dict[str, Any]]:
    r = envlock(project, "audit", "--format", "cyclonedx", *args)
    assert r.code == 0, r.stderr
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(r.stdout)
    assert error is None, str(error)
    data: dict[str, Any] = json.loads(r.stdout)
    return r.stdout, data


def test_sbom_of_an_index_lock_names_every_file_license_and_edge(index, project):
    server, lock_path = _locked(index, project)
    text, data = _sbom(project)
    lock = load_locked(lock_path)
    components = {c["bom-ref"]: c for c in data["components"]}
    assert sorted(components) == ["pkg:pypi/app@1.0", "pkg:pypi/lib@1.5", "pkg:pypi/winonly@0.2"]
    # Every file the lock pins, with the sha256 the index served.
    files = {
        ref["url"]: ref["hashes"][0]["content"]
        for c in components.values()
        for ref in c["externalReferences"]
    }
    assert files == {a.url: a.sha256 for a in lock.all_artifacts()}
    for url, sha in files.items():
        assert sha == server.sha256(url.rsplit("/", 1)[1])
    assert len(components["pkg:pypi/lib@1.5"]["externalReferences"]) == 2  # linux + windows
    # A private index: the purl says where from, without the credentials the spec holds.
    purl = components["pkg:pypi/app@1.0"]["purl"]
    assert purl.startswith("pkg:pypi/app@1.0?repository_url=http")
    assert "127.0.0.1" in purl
    assert "s3cret-pw" not in text and "alice" not in text
    # Licenses as the metadata declared them, recorded in the lock.
    assert components["pkg:pypi/app@1.0"]["licenses"][0]["license"]["id"] == "MIT"
    assert components["pkg:pypi/lib@1.5"]["licenses"][0]["license"]["id"] == "Apache-2.0"
    graph = {d["ref"]: d.get("dependsOn", []) for d in data["dependencies"]}
    assert graph["pkg:pypi/app@1.0"] == ["pkg:pypi/lib@1.5", "pkg:pypi/winonly@0.2"]
    assert graph["envlock-environment"] == ["pkg:pypi/app@1.0"]
    assert "timestamp" not in data["metadata"]


def test_sbom_is_byte_identical_for_the_same_lock(index, project):
    _locked(index, project)
    first, data = _sbom(project)
    second, _ = _sbom(project)
    assert first == second
    assert data["serialNumber"].startswith("urn:uuid:")
    # A timestamp only when asked for, and then the document still validates.
    _, stamped = _sbom(project, "--timestamp")
    assert "timestamp" in stamped["metadata"]


def test_sbom_of_one_platform(index, project):
    _locked(index, project)
    _, data = _sbom(project, "--platform", "linux-64")
    components = {c["bom-ref"]: c for c in data["components"]}
    assert sorted(components) == ["pkg:pypi/app@1.0", "pkg:pypi/lib@1.5"]
    lib_files = [r["comment"] for r in components["pkg:pypi/lib@1.5"]["externalReferences"]]
    assert lib_files == [f"lib-1.5-{LINUX}.whl"]
    assert components["pkg:pypi/lib@1.5"]["hashes"][0]["alg"] == "SHA-256"  # its one file
