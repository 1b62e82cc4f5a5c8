"""``envlock audit --vulnerabilities`` through the real CLI: a lock made against the loopback
index, OSV data from a loopback OSV server (``ENVLOCK_OSV_URL``) or an offline all.zip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from integration.helpers import envlock, write_spec
from support.osv import OsvServer, write_osv_zip
from support.wheels import Dist


def _record(
    rid: str, name: str, events: list[dict[str, str]], versions: list[str], **extra: Any
) -> dict[str, Any]:
    return {
        "schema_version": "1.6.0",
        "id": rid,
        "modified": "2024-05-01T00:00:00Z",
        "summary": f"{name} is broken",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
                # osv.dev enumerates the affected versions too; its API answers from them.
                "versions": versions,
            }
        ],
        **extra,
    }


RECORDS = [
    # yaml-lib 5.3 is affected (fixed in 5.4), and the same advisory under two ids.
    _record(
        "PYSEC-2021-1",
        "Yaml_Lib",
        [{"introduced": "0"}, {"fixed": "5.4"}],
        ["5.2", "5.3"],
        aliases=["CVE-2021-1", "GHSA-aaaa-bbbb-cccc"],
    ),
    _record(
        "GHSA-aaaa-bbbb-cccc",
        "yaml-lib",
        [{"introduced": "0"}, {"fixed": "5.4"}],
        ["5.2", "5.3"],
        aliases=["CVE-2021-1", "PYSEC-2021-1"],
    ),
    # safe 2.0 is past last_affected 1.9: not reported.
    _record(
        "PYSEC-2020-9", "safe", [{"introduced": "1.0"}, {"last_affected": "1.9"}], ["1.0", "1.9"]
    ),
    # A withdrawn advisory never counts.
    _record(
        "PYSEC-2019-3", "safe", [{"introduced": "0"}], ["2.0"], withdrawn="2020-01-01T00:00:00Z"
    ),
]


@pytest.fixture
def locked(index, project: Path) -> Path:
    server = index([Dist("yaml-lib", "5.3"), Dist("safe", "2.0")])
    write_spec(
        project,
        server.url,
        """
        python = "3.11"
        platforms = ["linux-64"]
        dependencies = ["yaml-lib", "safe"]
        """,
    )
    assert envlock(project, "lock").code == 0
    return project


def _check_report(data: dict[str, Any]) -> None:
    (vuln,) = data["vulnerabilities"]
    assert vuln["id"] == "PYSEC-2021-1"
    assert vuln["aliases"] == ["CVE-2021-1", "GHSA-aaaa-bbbb-cccc"]
    assert (vuln["package"], vuln["version"], vuln["fixed-in"]) == ("yaml-lib", "5.3", ["5.4"])
    packages = {p["name"]: p for p in data["environments"][0]["packages"]}
    assert packages["yaml-lib"]["vulnerabilities"] == ["PYSEC-2021-1"]
    assert packages["safe"]["vulnerabilities"] == []


def test_offline_database_zip(locked: Path, tmp_path: Path):
    db = write_osv_zip(tmp_path / "all.zip", RECORDS)
    r = envlock(locked, "audit", "--vulnerability-db", str(db))
    assert r.code == 0, r.stderr  # found, but not asked to fail
    assert "PYSEC-2021-1" in r.stdout and "CVE-2021-1" in r.stdout and "5.4" in r.stdout
    r = envlock(locked, "audit", "--format", "json", "--vulnerability-db", str(db))
    _check_report(json.loads(r.stdout))
    r = envlock(locked, "audit", "--vulnerability-db", str(db), "--fail-on-vulnerability")
    assert r.code == 1
    assert "1 known vulnerability" in r.stderr


def test_osv_api_server_and_its_cache(locked: Path):
    with OsvServer(RECORDS) as osv:
        env = {"ENVLOCK_OSV_URL": osv.url}
        r = envlock(locked, "audit", "--vulnerabilities", "--format", "json", env=env)
        assert r.code == 0, r.stderr
        _check_report(json.loads(r.stdout))
        asked = osv.count()
        assert osv.count("/v1/querybatch") == 1
        again = envlock(locked, "audit", "--vulnerabilities", "--format", "json", env=env)
        assert again.stdout == r.stdout
        assert osv.count() == asked  # answered from the cache
        r = envlock(locked, "audit", "--fail-on-vulnerability", env=env)
        assert r.code == 1


def test_no_vulnerabilities_says_so(index, project: Path, tmp_path: Path):
    server = index([Dist("safe", "2.0")])
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["safe"]\n'
    )
    assert envlock(project, "lock").code == 0
    db = write_osv_zip(tmp_path / "all.zip", RECORDS)
    r = envlock(project, "audit", "--vulnerability-db", str(db), "--fail-on-vulnerability")
    assert r.code == 0, r.stderr
    assert "no known vulnerabilities" in r.stderr


def test_unreachable_api_and_bad_database_are_one_line_errors(locked: Path, tmp_path: Path):
    with OsvServer(RECORDS) as osv:
        url = osv.url
    r = envlock(locked, "audit", "--vulnerabilities", env={"ENVLOCK_OSV_URL": url})
    assert r.code == 3 and "Traceback" not in r.stderr
    bad = tmp_path / "all.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    r = envlock(locked, "audit", "--vulnerability-db", str(bad))
    assert r.code == 2 and str(bad) in r.stderr and "Traceback" not in r.stderr
    r = envlock(locked, "audit", "--vulnerability-db", str(tmp_path / "missing.zip"))
    assert r.code == 2


def test_a_server_listing_60000_ids_for_one_package_is_refused_in_one_line(locked: Path):
    # Each listed id would cost one GET /v1/vulns/ID: a hostile server must not get 60,000.
    with OsvServer(RECORDS, page_size=500) as osv:
        for n in range(60_000):
            osv.list("yaml-lib", "5.3", f"PYSEC-2099-{n}")
        r = envlock(locked, "audit", "--vulnerabilities", env={"ENVLOCK_OSV_URL": osv.url})
        assert r.code == 3, r.stderr
        assert osv.count("/v1/vulns/") == 0
        assert osv.count() <= 10  # paging stopped once past the cap, too
        assert f"OSV API at {osv.url} lists more than" in r.stderr
    assert "vulnerabilities for yaml-lib 5.3" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2


def test_a_server_listing_too_many_ids_in_total_is_refused_before_fetching_any(
    index, project: Path
):
    server = index([Dist("one", "1.0"), Dist("two", "1.0"), Dist("three", "1.0")])
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["one", "two", "three"]\n',
    )
    assert envlock(project, "lock").code == 0
    with OsvServer() as osv:
        for name in ("one", "two", "three"):  # under the cap per package, over it per run
            for n in range(1_900):
                osv.list(name, "1.0", f"GHSA-{name}-{n:04d}-aaaa")
        r = envlock(project, "audit", "--vulnerabilities", env={"ENVLOCK_OSV_URL": osv.url})
        assert r.code == 3, r.stderr
        assert osv.count("/v1/vulns/") == 0
        assert osv.count() == 1
        assert f"OSV API at {osv.url} would take more than 5000 requests" in r.stderr
    assert "Traceback" not in r.stderr
