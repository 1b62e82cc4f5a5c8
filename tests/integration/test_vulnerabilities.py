"""`scan()` of envlock.audit.vulnerabilities against a loopback OSV API and against OSV databases
(all.zip, a directory) written by the test, hostile ones included; and the API answer cache."""

from __future__ import annotations

import json
import os
import socket
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from envlock.audit import osv_api, vulndb
from envlock.audit.vulnerabilities import ScanResult, Vulnerability, scan
from envlock.errors import NetworkError, UsageError
from support.osv import OsvServer, write_osv_dir, write_osv_zip


def rng(*events: tuple[str, str]) -> dict[str, Any]:
    return {"type": "ECOSYSTEM", "events": [{kind: value} for kind, value in events]}


def record(rid: str, name: str, *, versions: list[str], ranges: list[Any], **extra: Any) -> Any:
    affected = {"package": {"ecosystem": "PyPI", "name": name}, "ranges": ranges}
    return {
        "schema_version": "1.6.0",
        "id": rid,
        "modified": "2024-05-01T00:00:00Z",
        "affected": [{**affected, "versions": versions}],
        **extra,
    }


PYSEC = record(
    "PYSEC-2021-142",
    "PyYAML",
    versions=["5.1", "5.3", "5.3.1"],
    ranges=[rng(("introduced", "0"), ("fixed", "5.4"))],
    aliases=["CVE-2020-14343"],
    summary="Arbitrary code execution in full_load",
    references=[{"type": "ADVISORY", "url": "https://example.org/PYSEC-2021-142"}],
)
GHSA = record(
    "GHSA-8q59-q68h-6hv4",
    "pyyaml",
    versions=["5.3", "5.3.1"],
    ranges=[rng(("introduced", "5.1"), ("fixed", "5.4"))],
    aliases=["CVE-2020-14343", "PYSEC-2021-142"],
    summary="Improper input validation in PyYAML",
)
FOO = record(
    "GHSA-aaaa-bbbb-cccc",
    "Foo_Bar",
    versions=["1.0", "1.1", "1.2"],
    ranges=[rng(("introduced", "1.0"), ("last_affected", "1.2"))],
)
WITHDRAWN = record(
    "PYSEC-2020-1",
    "pyyaml",
    versions=["5.3"],
    ranges=[rng(("introduced", "0"))],
    withdrawn="2021-01-01T00:00:00Z",
)
NPM = {
    "id": "GHSA-nnnn-pppp-mmmm",
    "affected": [{"package": {"ecosystem": "npm", "name": "pyyaml"}, "versions": ["5.3"]}],
}
RECORDS = [PYSEC, GHSA, FOO, WITHDRAWN, NPM]
PACKAGES = [("PyYAML", "5.3"), ("foo.bar", "1.1"), ("foo-bar", "1.3"), ("clean", "1.0")]
EXPECTED = (
    Vulnerability("GHSA-aaaa-bbbb-cccc", (), "foo-bar", "1.1", (), "", None),
    Vulnerability(
        "PYSEC-2021-142",
        ("CVE-2020-14343", "GHSA-8q59-q68h-6hv4"),
        "pyyaml",
        "5.3",
        ("5.4",),
        "Arbitrary code execution in full_load",
        "https://example.org/PYSEC-2021-142",
    ),
)


@pytest.fixture(autouse=True)
def _no_osv_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVLOCK_OSV_URL", raising=False)


@pytest.fixture
def server() -> Iterator[OsvServer]:
    with OsvServer(RECORDS) as srv:
        yield srv


def api_scan(srv: OsvServer, cache: Path, packages: Any = PACKAGES) -> ScanResult:
    return scan(packages, db=None, cache_dir=cache, api_url=srv.url)


# -- the API ---------------------------------------------------------------------------------


def test_api_scan_matches_dedupes_and_sorts(server: OsvServer, cache: Path) -> None:
    result = api_scan(server, cache)
    assert result == ScanResult(EXPECTED, (), server.url)
    (batch,) = [r for r in server.requests if r.path == "/v1/querybatch"]
    assert {"package": {"name": "pyyaml", "ecosystem": "PyPI"}, "version": "5.3"} in batch.body[
        "queries"
    ]
    assert len(batch.body["queries"]) == 4  # foo.bar and foo-bar are one name
    fetched = sorted(r.path for r in server.requests if r.method == "GET")
    assert fetched == [
        "/v1/vulns/GHSA-8q59-q68h-6hv4",
        "/v1/vulns/GHSA-aaaa-bbbb-cccc",
        "/v1/vulns/PYSEC-2020-1",
        "/v1/vulns/PYSEC-2021-142",
    ]


def test_api_url_comes_from_the_environment(
    server: OsvServer, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVLOCK_OSV_URL", server.url + "/")
    result = scan(PACKAGES, db=None, cache_dir=cache)
    assert result.source == server.url and result.vulnerabilities == EXPECTED


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://osv.example.com", "plain http"),
        ("ftp://127.0.0.1/", "not an http"),
        ("https://user:s3cret@osv.example.com", "credentials"),
        ("https://osv.example.com/?key=abc", "query"),
        ("https://host:99999999/", "not an http"),
        ("127.0.0.1:8080", "not an http"),
    ],
)
def test_bad_api_urls_are_usage_errors(
    url: str, reason: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UsageError, match=reason) as info:
        scan(PACKAGES, db=None, cache_dir=cache, api_url=url)
    assert "s3cret" not in str(info.value)
    monkeypatch.setenv("ENVLOCK_OSV_URL", url)
    with pytest.raises(UsageError, match="ENVLOCK_OSV_URL"):
        scan(PACKAGES, db=None, cache_dir=cache)


def test_api_url_precedence_and_loopback_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    assert osv_api.base_url() == "https://api.osv.dev"
    monkeypatch.setenv("ENVLOCK_OSV_URL", "https://osv.example.com/mirror/")
    assert osv_api.base_url() == "https://osv.example.com/mirror"
    assert osv_api.base_url("http://[::1]:8080/") == "http://[::1]:8080"
    assert osv_api.base_url("http://localhost:1") == "http://localhost:1"


def test_a_second_scan_within_the_hour_asks_nothing(server: OsvServer, cache: Path) -> None:
    first = api_scan(server, cache)
    asked = len(server.requests)
    assert api_scan(server, cache) == first
    assert len(server.requests) == asked
    # Another set of packages is a new query, but the records it lists are cached.
    api_scan(server, cache, [("pyyaml", "5.3"), ("foo-bar", "1.1")])
    assert server.count("/v1/querybatch") == 2 and server.count("/v1/vulns/") == 4


def test_expired_records_are_reused_while_modified_is_unchanged(
    server: OsvServer, cache: Path
) -> None:
    pairs = [("pyyaml", "5.3")]
    first = osv_api.query(pairs, base=server.url, cache_dir=cache, ttl=0)
    assert server.count("/v1/vulns/") == 3
    again = osv_api.query(pairs, base=server.url, cache_dir=cache, ttl=0)
    assert again == first
    assert server.count("/v1/querybatch") == 2 and server.count("/v1/vulns/") == 3
    server.add({**GHSA, "modified": "2025-01-01T00:00:00Z", "summary": "updated"})
    third = osv_api.query(pairs, base=server.url, cache_dir=cache, ttl=0)
    assert server.count("/v1/vulns/") == 4
    assert {r["summary"] for r in third.records[pairs[0]] if "summary" in r} >= {"updated"}


def test_a_corrupt_cache_is_ignored_and_rewritten(server: OsvServer, cache: Path) -> None:
    api_scan(server, cache)
    files = sorted((cache / "osv").rglob("*.json"))
    assert len(files) == 5  # one querybatch answer, four records
    for i, path in enumerate(files):
        path.write_bytes([b"", b"{not json", b"[]", b'{"fetched": "x"}', b"\xff\xfe"][i])
    asked = len(server.requests)
    assert api_scan(server, cache).vulnerabilities == EXPECTED
    assert len(server.requests) == asked + 5
    for path in files:
        json.loads(path.read_bytes())
    assert not [p for p in (cache / "osv").rglob("*") if p.name.endswith(".tmp")]


def test_cache_entries_are_per_server(server: OsvServer, cache: Path) -> None:
    api_scan(server, cache)
    with OsvServer([]) as empty:
        assert api_scan(empty, cache).vulnerabilities == ()
        assert empty.count("/v1/querybatch") == 1


def test_results_are_paged(cache: Path) -> None:
    extra = [record(f"PYSEC-2099-{i}", "demo", versions=["1.0"], ranges=[]) for i in range(1, 6)]
    with OsvServer(extra, page_size=2) as srv:
        result = api_scan(srv, cache, [("demo", "1.0"), ("other", "2")])
        assert [v.id for v in result.vulnerabilities] == [r["id"] for r in extra]
        assert srv.count("/v1/querybatch") == 3
        last = [r for r in srv.requests if r.path == "/v1/querybatch"][-1]
        assert last.body["queries"] == [
            {"package": {"name": "demo", "ecosystem": "PyPI"}, "version": "1.0", "page_token": "4"}
        ]


def test_more_than_a_thousand_packages_are_asked_in_chunks(server: OsvServer, cache: Path) -> None:
    packages = [(f"pkg{i}", "1.0") for i in range(1500)] + [("pyyaml", "5.3")]
    result = api_scan(server, cache, packages)
    assert [v.id for v in result.vulnerabilities] == ["PYSEC-2021-142"]
    sizes = [len(r.body["queries"]) for r in server.requests if r.path == "/v1/querybatch"]
    assert sizes == [1000, 501]


def test_server_errors_are_retried(server: OsvServer, cache: Path) -> None:
    server.inject("/v1/querybatch", 503)
    server.inject("/v1/vulns/PYSEC-2021-142", 500, times=2)
    assert api_scan(server, cache).vulnerabilities == EXPECTED
    assert server.count("/v1/querybatch") == 2
    assert server.count("/v1/vulns/PYSEC-2021-142") == 3


@pytest.mark.parametrize(
    ("path", "status", "body", "message"),
    [
        ("/v1/querybatch", 500, b"", "HTTP 500"),
        ("/v1/querybatch", 403, b"", "HTTP 403"),
        ("/v1/querybatch", 200, b"<html>", "not JSON"),
        ("/v1/querybatch", 200, b'{"results": []}', "not one result per query"),
        ("/v1/querybatch", 200, b'{"results": [1, 2, 3, 4]}', "without a vulns list"),
        (
            "/v1/querybatch",
            200,
            b'{"results": [{"vulns": [{"id": "../../x"}]}, {}, {}, {}]}',
            "invalid vulnerability id",
        ),
        ("/v1/vulns/GHSA-aaaa", 200, b"[" * 100_000, "not JSON"),
        ("/v1/vulns/GHSA-aaaa", 200, b'{"id": "PYSEC-1"}', "not the record of"),
    ],
)
def test_broken_answers_are_one_line_network_errors(
    server: OsvServer, cache: Path, path: str, status: int, body: bytes, message: str
) -> None:
    server.inject(path, status, body, times=10)
    with pytest.raises(NetworkError, match=message) as info:
        api_scan(server, cache)
    assert "\n" not in str(info.value)
    assert server.url in str(info.value)


def test_endless_paging_is_refused(
    server: OsvServer, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(osv_api, "MAX_PAGES", 5)
    body = json.dumps({"results": [{"next_page_token": "again"}] * 4}).encode()
    server.inject("/v1/querybatch", 200, body, times=1000)
    with pytest.raises(NetworkError, match="still paging after 5 pages"):
        api_scan(server, cache)
    assert server.count("/v1/querybatch") == 5


def test_an_unreachable_api_is_a_network_error(cache: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NetworkError, match="cannot reach the OSV API"):
        scan(PACKAGES, db=None, cache_dir=cache, api_url=f"http://127.0.0.1:{port}")


def test_listed_ids_without_a_record_or_a_match_are_warnings(
    server: OsvServer, cache: Path
) -> None:
    server.list("pyyaml", "5.3", "PYSEC-2099-404")
    server.list("foo-bar", "1.3", "GHSA-aaaa-bbbb-cccc")  # its record stops at 1.2
    result = api_scan(server, cache)
    assert result.vulnerabilities == EXPECTED
    assert len(result.warnings) == 2
    assert "PYSEC-2099-404" in result.warnings[0] and "404" in result.warnings[0]
    assert "GHSA-aaaa-bbbb-cccc for foo-bar==1.3" in result.warnings[1]


def test_no_packages_asks_nothing(server: OsvServer, cache: Path) -> None:
    assert api_scan(server, cache, []) == ScanResult((), (), server.url)
    assert server.requests == []


# -- offline databases -----------------------------------------------------------------------


def test_zip_database_matches_like_the_api(tmp_path: Path, cache: Path) -> None:
    db = write_osv_zip(tmp_path / "all.zip", RECORDS)
    result = scan(PACKAGES, db=db, cache_dir=cache)
    assert result == ScanResult(EXPECTED, (), str(db))
    assert not (cache / "osv").exists()


def test_directory_database(tmp_path: Path, cache: Path) -> None:
    db = write_osv_dir(tmp_path / "osv", RECORDS)
    (db / "README.md").write_text("not a record")
    assert scan(PACKAGES, db=db, cache_dir=cache) == ScanResult(EXPECTED, (), str(db))


def test_names_are_found_however_records_spell_them(tmp_path: Path, cache: Path) -> None:
    escaped = b'{"id":"PYSEC-2099-9","affected":[{"package":{"ecosystem":"PyPI",'
    escaped += b'"name":"\\u0050y\\u0059AML"},"versions":["5.3"]}]}'
    spaced = b'{ "id" : "PYSEC-2099-8", "affected" : [ { "package" : { "name"\n:\t"pyYAML",'
    spaced += b' "ecosystem" : "PyPI" } , "versions" : [ "5.3" ] } ] }'
    kelvin = json.dumps(record("PYSEC-2099-7", "\u212aeras", versions=["2.0"], ranges=[]))
    db = write_osv_zip(
        tmp_path / "all.zip",
        [],
        {"a.json": escaped, "b.json": spaced, "c.json": kelvin.encode(), "d.json": kelvin},
    )
    result = scan([("pyyaml", "5.3"), ("keras", "2.0")], db=db, cache_dir=cache)
    assert [v.id for v in result.vulnerabilities] == [
        "PYSEC-2099-7",
        "PYSEC-2099-8",
        "PYSEC-2099-9",
    ]


def test_bad_records_are_skipped_and_counted(tmp_path: Path, cache: Path) -> None:
    bomb = b'{"id": "PYSEC-2099-1", "x": "pyyaml' + b" " * (11 * 2**20) + b'"}'
    db = write_osv_zip(
        tmp_path / "all.zip",
        RECORDS,
        {
            "broken.json": b'{"id": "PYSEC-2099-2", "affected": [{"package": {"name": "pyyaml"',
            "noid.json": b'{"affected": [{"package": {"name": "PyYAML"}}]}',
            "latin1.json": '{"name": "pyyaml", "x": "\xe9"}'.encode("latin-1"),
            "bomb.json": bomb,
            "../../../escape.json": json.dumps(FOO | {"id": "GHSA-eeee-ffff-gggg"}).encode(),
            "unrelated.json": b"garbage that names nothing",
            "README": b"not json",
        },
    )
    result = scan(PACKAGES, db=db, cache_dir=cache)
    assert [v.id for v in result.vulnerabilities] == [
        "GHSA-aaaa-bbbb-cccc",
        "GHSA-eeee-ffff-gggg",
        "PYSEC-2021-142",
    ]
    (warning,) = result.warnings
    assert warning.startswith(f"{db}: skipped 4 unreadable OSV record(s) (first: 'broken.json'")
    assert not (tmp_path.parent / "escape.json").exists()


def test_directory_skips_what_is_not_a_regular_file(tmp_path: Path, cache: Path) -> None:
    db = write_osv_dir(tmp_path / "osv", RECORDS)
    os.mkfifo(db / "fifo.json")
    (db / "loop").symlink_to(db)  # not followed
    result = scan(PACKAGES, db=db, cache_dir=cache)
    assert result.vulnerabilities == EXPECTED
    assert result.warnings == (
        f"{db}: skipped 1 unreadable OSV record(s) (first: 'fifo.json': not a regular file)",
    )


def corrupt_member(path: Path) -> Path:
    payload = json.dumps(PYSEC).encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("PYSEC-2021-142.json", payload)
    data = bytearray(path.read_bytes())
    at = data.index(b"full_load")
    data[at] ^= 0x20
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.zip", "does not exist"),
        (lambda p: (p / "db.zip").write_text("hello") and p / "db.zip", "not a valid zip"),
        (
            lambda p: (
                (p / "t.zip").write_bytes(write_osv_zip(p / "full.zip", RECORDS).read_bytes()[:-30])
                and p / "t.zip"
            ),
            "not a valid zip",
        ),
        (lambda p: corrupt_member(p / "c.zip"), "is corrupt: member"),
        (lambda p: write_osv_zip(p / "e.zip", [], {"README": b"x"}), "holds no OSV records"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "holds no OSV records"),
        (lambda p: Path("/dev/null"), "neither a directory nor a zip"),
    ],
)
def test_unusable_databases_are_usage_errors(
    tmp_path: Path, cache: Path, make: Any, message: str
) -> None:
    db = make(tmp_path)
    with pytest.raises(UsageError, match=message) as info:
        scan(PACKAGES, db=db, cache_dir=cache)
    assert str(db) in str(info.value) and "\n" not in str(info.value)


def test_total_size_is_capped(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = write_osv_zip(tmp_path / "all.zip", RECORDS)
    monkeypatch.setattr(vulndb, "MAX_TOTAL_BYTES", 1000)
    with pytest.raises(UsageError, match="zip bomb"):
        scan(PACKAGES, db=db, cache_dir=cache)


def test_a_large_database_is_read_quickly(tmp_path: Path, cache: Path) -> None:
    filler = [
        record(
            f"PYSEC-2000-{i}",
            f"package-{i}",
            versions=[f"1.{j}" for j in range(20)],
            ranges=[rng(("introduced", "0"), ("fixed", "2.0"))],
            details="A long description of the problem. " * 40,
        )
        for i in range(25_000)
    ]
    db = write_osv_zip(tmp_path / "all.zip", [*filler, *RECORDS])
    start = time.monotonic()
    result = scan([*PACKAGES, ("package-77", "1.3")], db=db, cache_dir=cache)
    elapsed = time.monotonic() - start
    assert [v.id for v in result.vulnerabilities] == [
        "GHSA-aaaa-bbbb-cccc",
        "PYSEC-2000-77",
        "PYSEC-2021-142",
    ]
    assert elapsed < 10, f"reading 25k records took {elapsed:.1f} s"
