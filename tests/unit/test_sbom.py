"""``audit.sbom``: a lock as CycloneDX 1.6 JSON, valid against the schema, deterministic, with
purls, every file's sha256, licenses and the dependency graph."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

import envlock
from envlock.audit.inventory import rows
from envlock.audit.sbom import cyclonedx
from envlock.lock import lockfile
from envlock.lock.document import build_lock
from envlock.lock.lockfile import LockFile, render
from envlock.platforms import Target
from envlock.resolve import Resolution
from envlock.spec import EnvironmentSpec
from unit.test_inventory import PRIVATE, make_lock


def _sbom(lock: LockFile, platforms: tuple[str, ...] = (), **kw: Any) -> str:
    return cyclonedx(lock, rows(lock, platforms), platforms=platforms, **kw)


def _valid(text: str) -> dict[str, Any]:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, str(error)
    data: dict[str, Any] = json.loads(text)
    return data


def _components(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in data["components"]}


def _graph(data: dict[str, Any]) -> dict[str, list[str]]:
    return {d["ref"]: d.get("dependsOn", []) for d in data["dependencies"]}


@pytest.mark.parametrize("bundled", [False, True])
def test_sbom_validates_against_the_strict_1_6_schema(tmp_path: Path, bundled: bool) -> None:
    data = _valid(_sbom(make_lock(tmp_path, bundled=bundled)))
    assert data["specVersion"] == "1.6" and data["bomFormat"] == "CycloneDX"
    assert list(data)[:3] == ["$schema", "bomFormat", "specVersion"]
    assert data["metadata"]["component"]["name"] == "envlock-default"
    tools = {t["name"]: t for t in data["metadata"]["tools"]["components"]}
    assert tools["envlock"]["version"] == envlock.__version__


def test_purls_and_repository_url_only_for_a_private_index(tmp_path: Path) -> None:
    data = _valid(_sbom(make_lock(tmp_path)))
    purls = sorted(c["purl"] for c in data["components"] if c["type"] == "library")
    assert purls == [
        "pkg:pypi/app@1.0",
        "pkg:pypi/colorama@0.4.6",
        "pkg:pypi/lib@1.0",
        "pkg:pypi/lib@2.0",
        f"pkg:pypi/pure@1.0?repository_url={PRIVATE}",
        "pkg:pypi/pysocks@1.7.1",
    ]


def test_every_file_is_a_distribution_reference_with_its_sha256(tmp_path: Path) -> None:
    lock = make_lock(tmp_path)
    components = _components(_valid(_sbom(lock)))
    expected = {
        (art.url, art.sha256) for art in lock.all_artifacts()
    }  # every file the lock installs anywhere
    found = {
        (ref["url"], ref["hashes"][0]["content"])
        for c in components.values()
        for ref in c["externalReferences"]
        if ref["type"] == "distribution"
    }
    assert found == expected and len(found) == 7
    for ref in (r for c in components.values() for r in c["externalReferences"]):
        assert ref["hashes"][0]["alg"] == "SHA-256"
    # One file: its hash is the component's; a wheel and an sdist: only per reference.
    app = components["pkg:pypi/app@1.0"]
    assert app["hashes"] == app["externalReferences"][0]["hashes"]
    assert "hashes" not in components["pkg:pypi/pure@1.0"]
    assert len(components["pkg:pypi/pure@1.0"]["externalReferences"]) == 2


def test_licenses_spdx_id_expression_name_or_none(tmp_path: Path) -> None:
    components = _components(_valid(_sbom(make_lock(tmp_path))))
    assert components["pkg:pypi/app@1.0"]["licenses"] == [
        {"license": {"id": "MIT", "acknowledgement": "declared"}}
    ]
    assert components["pkg:pypi/lib@2.0"]["licenses"] == [
        {"expression": "Apache-2.0 OR MIT", "acknowledgement": "declared"}
    ]
    assert components["pkg:pypi/colorama@0.4.6"]["licenses"] == [
        {"license": {"name": "Custom terms", "acknowledgement": "declared"}}
    ]
    assert "licenses" not in components["pkg:pypi/lib@1.0"]


def test_dependency_graph_follows_each_platform(tmp_path: Path) -> None:
    graph = _graph(_valid(_sbom(make_lock(tmp_path))))
    # app: lib 2.0 on linux, lib 1.0 and colorama on windows, pysocks through the used extra.
    assert graph["pkg:pypi/app@1.0"] == [
        "pkg:pypi/colorama@0.4.6",
        "pkg:pypi/lib@1.0",
        "pkg:pypi/lib@2.0",
        "pkg:pypi/pysocks@1.7.1",
    ]
    # pure needs lib only in its windows sdist: lib 1.0, never linux's 2.0.
    assert graph["pkg:pypi/pure@1.0"] == ["pkg:pypi/lib@1.0"]
    assert graph["pkg:pypi/lib@2.0"] == []
    # The environment depends on what nothing else requires.
    assert graph["envlock-environment"] == ["pkg:pypi/app@1.0", "pkg:pypi/pure@1.0"]


def test_one_platform_only(tmp_path: Path) -> None:
    lock = make_lock(tmp_path, bundled=True)
    data = _valid(_sbom(lock, ("linux-64",)))
    refs = sorted(_components(data))
    assert refs == [
        "cpython@3.11.9/cpython-3.11.9+20240814-linux-64-install_only_stripped.tar.gz",
        "pkg:pypi/app@1.0",
        "pkg:pypi/lib@2.0",
        "pkg:pypi/pure@1.0",
        "pkg:pypi/pysocks@1.7.1",
    ]
    assert _graph(data)["pkg:pypi/pure@1.0"] == []
    # A different selection is a different document: a different serial number.
    assert data["serialNumber"] != json.loads(_sbom(lock))["serialNumber"]


def test_bundled_interpreter_is_a_platform_component_with_its_archive(tmp_path: Path) -> None:
    lock = make_lock(tmp_path, bundled=True)
    data = _valid(_sbom(lock))
    interpreters = [c for c in data["components"] if c["type"] == "platform"]
    assert sorted(c["externalReferences"][0]["url"] for c in interpreters) == sorted(
        i.url for i in lock.interpreters()
    )
    for c in interpreters:
        assert c["name"] == "cpython" and c["version"] == "3.11.9"
        assert c["hashes"][0]["content"] in {i.sha256 for i in lock.interpreters()}
        assert "purl" not in c
        assert c["bom-ref"] in _graph(data)["envlock-environment"]


def test_no_timestamp_unless_asked(tmp_path: Path) -> None:
    lock = make_lock(tmp_path)
    assert "timestamp" not in json.loads(_sbom(lock))["metadata"]
    when = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    stamped = _valid(_sbom(lock, timestamp=when))
    assert stamped["metadata"]["timestamp"] == "2025-03-04T05:06:07+00:00"


def test_serial_number_derives_from_the_lock(tmp_path: Path) -> None:
    one = json.loads(_sbom(make_lock(tmp_path / "a")))["serialNumber"]
    same = json.loads(_sbom(make_lock(tmp_path / "b")))["serialNumber"]
    other = json.loads(_sbom(make_lock(tmp_path / "c", bundled=True)))["serialNumber"]
    assert one.startswith("urn:uuid:") and one == same and one != other


def test_same_lock_gives_byte_identical_output_in_separate_processes(tmp_path: Path) -> None:
    make_lock(tmp_path, bundled=True)
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from envlock.audit.inventory import rows
        from envlock.audit.sbom import cyclonedx
        from envlock.lock import lockfile
        lock = lockfile.load(Path({str(tmp_path / "pylock.toml")!r}))
        sys.stdout.write(cyclonedx(lock, rows(lock)))
        """
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            check=True,
            # Different hash seeds: no output may depend on set or dict iteration order.
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        ).stdout
        for seed in ("1", "2")
    ]
    assert outputs[0] == outputs[1]
    _valid(outputs[0].decode())


def test_a_lock_with_no_packages_is_still_a_valid_sbom(tmp_path: Path) -> None:
    env = EnvironmentSpec(
        name="empty",
        python="3.11",
        platforms=("linux-64",),
        dependencies=(),
        indexes=(),
        spec_dir=Path("/nonexistent"),
    )
    path = tmp_path / "pylock.empty.toml"
    path.write_bytes(render(build_lock(env, [Resolution(Target("linux-64", "3.11"), {})], {})))
    lock = lockfile.load(path)
    data = _valid(_sbom(lock))
    assert data["metadata"]["component"]["name"] == "envlock-empty"
    assert data.get("components", []) == []
