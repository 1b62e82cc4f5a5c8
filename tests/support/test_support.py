"""Self-tests for the test-support package: real wheels, real sdists, a real HTTP index."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.index import JSON_CONTENT_TYPE, IndexServer
from support.wheels import Dist, build_sdist, build_wheel, metadata_bytes

IndexFactory = Callable[..., IndexServer]
JSON = {"Accept": JSON_CONTENT_TYPE}

FOO = Dist(
    "Foo_Bar",
    "1.0",
    requires=["idna>=3", 'rich; extra == "fancy"'],
    extras=["fancy"],
    requires_python=">=3.8",
    console_scripts={"foo": "foo_bar:main"},
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))


def anchors(text: str) -> list[dict[str, str | None]]:
    parser = _Anchors()
    parser.feed(text)
    return parser.anchors


def extract(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive) as tf:
        kwargs: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tf.extractall(dest, **kwargs)
    (root,) = dest.iterdir()
    return root


# -- wheels / sdists ---------------------------------------------------------------------------


def test_wheel_is_valid_deterministic_and_record_verifies(tmp_path: Path) -> None:
    wheel = build_wheel(FOO, tmp_path / "a")
    assert wheel.name == FOO.filename == "foo_bar-1.0-py3-none-any.whl"
    assert wheel.read_bytes() == build_wheel(FOO, tmp_path / "b").read_bytes()
    with zipfile.ZipFile(wheel) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert names[-1] == "foo_bar-1.0.dist-info/RECORD"
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
        record = zf.read("foo_bar-1.0.dist-info/RECORD").decode().splitlines()
        assert set(names) == {line.split(",")[0] for line in record}
        for line in record:
            path, digest, size = line.rsplit(",", 2)
            if path.endswith("RECORD"):
                assert (digest, size) == ("", "")
                continue
            data = zf.read(path)
            algo, b64 = digest.split("=", 1)
            assert algo == "sha256" and "=" not in b64
            assert base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)) == (
                hashlib.sha256(data).digest()
            )
            assert int(size) == len(data)
        assert zf.read("foo_bar-1.0.dist-info/METADATA") == metadata_bytes(FOO)
        assert b"Root-Is-Purelib: true" in zf.read("foo_bar-1.0.dist-info/WHEEL")
        assert b"foo = foo_bar:main" in zf.read("foo_bar-1.0.dist-info/entry_points.txt")
        assert zf.read("foo_bar/__init__.py") == b"__version__ = '1.0'\n"
    meta = metadata_bytes(FOO).decode()
    assert "Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 1.0\n" in meta
    assert 'Requires-Dist: rich; extra == "fancy"' in meta and "Provides-Extra: fancy" in meta


def test_platform_wheel_tags(tmp_path: Path) -> None:
    tag = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
    dist = Dist("a.b", "2.0.0-rc1", tag=tag, files={"a_b/_ext.so": b"\0"})
    wheel = build_wheel(dist, tmp_path)
    assert wheel.name == dist.filename == f"a_b-2.0.0rc1-{tag}.whl"
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read("a_b-2.0.0rc1.dist-info/WHEEL").decode()
        assert {"a_b/__init__.py", "a_b/_ext.so"} <= set(zf.namelist())
    assert "Root-Is-Purelib: false" in text
    assert "Tag: cp311-cp311-manylinux2014_x86_64" in text
    assert "Tag: cp311-cp311-manylinux_2_17_x86_64" in text


def test_sdist_layout_and_determinism(tmp_path: Path) -> None:
    sdist = replace(FOO, kind="sdist")
    path = build_sdist(sdist, tmp_path / "a")
    assert path.name == sdist.filename == "foo_bar-1.0.tar.gz"
    assert path.read_bytes() == build_sdist(sdist, tmp_path / "b").read_bytes()
    with tarfile.open(path) as tf:
        members = tf.getmembers()
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
        assert sorted(m.name for m in members) == [
            "foo_bar-1.0/PKG-INFO",
            "foo_bar-1.0/foo_bar/__init__.py",
            "foo_bar-1.0/pyproject.toml",
            "foo_bar-1.0/tiny_backend.py",
        ]
        pkg_info = tf.extractfile("foo_bar-1.0/PKG-INFO").read()  # type: ignore[union-attr]
    assert pkg_info.startswith(b"Metadata-Version: 2.2\n")
    assert b"Requires-Dist: idna>=3\n" in pkg_info
    dynamic = build_sdist(replace(sdist, sdist_dynamic=True), tmp_path / "c")
    with tarfile.open(dynamic) as tf:
        info = tf.extractfile("foo_bar-1.0/PKG-INFO").read()  # type: ignore[union-attr]
    assert info.startswith(b"Metadata-Version: 2.1\n")


def test_sdist_builds_offline_with_build_frontend(tmp_path: Path) -> None:
    sdist = replace(FOO, kind="sdist")
    src = extract(build_sdist(sdist, tmp_path / "sdist"), tmp_path / "src")
    out = tmp_path / "out"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheel = out / "foo_bar-1.0-py3-none-any.whl"
    expected = build_wheel(replace(sdist, kind="wheel"), tmp_path / "w")
    assert wheel.read_bytes() == expected.read_bytes()
    rebuilt = out / "foo_bar-1.0.tar.gz"
    assert rebuilt.read_bytes() == (tmp_path / "sdist" / sdist.filename).read_bytes()


def test_sdist_project_wheel_metadata_isolated(tmp_path: Path) -> None:
    from build.util import project_wheel_metadata

    dist = replace(FOO, kind="sdist", sdist_dynamic=True)
    src = extract(build_sdist(dist, tmp_path / "sdist"), tmp_path / "src")
    meta = project_wheel_metadata(src, isolated=True)
    assert meta["Name"] == "Foo_Bar" and meta["Version"] == "1.0"
    assert meta.get_all("Requires-Dist") == FOO.requires
    assert meta["Requires-Python"] == ">=3.8"


# -- the index ---------------------------------------------------------------------------------


def test_json_page_hashes_and_pep658(index: IndexFactory) -> None:
    srv = index([FOO, replace(FOO, version="1.10"), replace(FOO, kind="sdist")])
    with httpx.Client() as c:
        r = c.get(srv.url + "foo-bar/", headers=JSON)
        assert r.status_code == 200
        assert r.headers["content-type"] == JSON_CONTENT_TYPE
        page = r.json()
        assert page["meta"]["api-version"] == "1.1"
        assert page["name"] == "foo-bar"
        assert page["versions"] == ["1.0", "1.10"]
        files = {f["filename"]: f for f in page["files"]}
        assert set(files) == {
            "foo_bar-1.0-py3-none-any.whl",
            "foo_bar-1.10-py3-none-any.whl",
            "foo_bar-1.0.tar.gz",
        }
        for name, f in files.items():
            assert f["url"] == f"../../files/{name}"
            body = c.get(r.url.join(f["url"])).content
            assert sha256(body) == f["hashes"]["sha256"] == sha256(srv.file_path(name).read_bytes())
            assert f["size"] == len(body)
            assert f["requires-python"] == ">=3.8"
            assert f["yanked"] is False
            assert f["upload-time"] == "2024-01-01T00:00:00Z"
            if name.endswith(".whl"):
                meta = c.get(r.url.join(f["url"] + ".metadata")).content
                assert f["core-metadata"] == f["dist-info-metadata"] == {"sha256": sha256(meta)}
                with zipfile.ZipFile(io.BytesIO(body)) as zf:
                    assert meta == zf.read(f"{name.split('-py3')[0]}.dist-info/METADATA")
            else:
                assert f["core-metadata"] is False
        root = c.get(srv.url, headers=JSON).json()
        assert root == {"meta": {"api-version": "1.1"}, "projects": [{"name": "Foo_Bar"}]}


def test_html_pages(index: IndexFactory) -> None:
    srv = index([FOO], mode="html")
    srv.yank(FOO.filename, "broken")
    with httpx.Client() as c:
        r = c.get(srv.url + "foo-bar/", headers=JSON)  # html mode ignores Accept
        assert r.headers["content-type"].startswith("text/html")
        assert 'data-requires-python="&gt;=3.8"' in r.text
        (a,) = anchors(r.text)
        href = a["href"]
        assert href is not None
        url, _, frag = href.partition("#")
        assert frag == "sha256=" + sha256(c.get(r.url.join(url)).content)
        meta_sha = sha256(c.get(r.url.join(url + ".metadata")).content)
        assert a["data-core-metadata"] == a["data-dist-info-metadata"] == f"sha256={meta_sha}"
        assert a["data-requires-python"] == ">=3.8"
        assert a["data-yanked"] == "broken"
        root = c.get(srv.url)
        assert [x["href"] for x in anchors(root.text)] == ["foo-bar/"]


def test_json_mode_negotiates_html(index: IndexFactory) -> None:
    srv = index([FOO])
    r = httpx.get(srv.url + "foo-bar/", headers={"Accept": "text/html"})
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["vary"] == "Accept"
    r = httpx.get(srv.url + "foo-bar/", headers={"Accept": f"{JSON_CONTENT_TYPE};q=0, text/html"})
    assert r.headers["content-type"].startswith("text/html")


def test_pep658_off_and_absolute_urls(index: IndexFactory) -> None:
    srv = index([FOO], pep658=False, relative_urls=False)
    f = httpx.get(srv.url + "foo-bar/", headers=JSON).json()["files"][0]
    assert f["url"] == srv.file_url(FOO.filename) == f"{srv.base_url}/files/{FOO.filename}"
    assert f["core-metadata"] is False
    assert httpx.get(f["url"] + ".metadata").status_code == 404
    assert "data-core-metadata" not in httpx.get(srv.url + "foo-bar/").text


def test_range_and_head(index: IndexFactory) -> None:
    srv = index([FOO])
    url = srv.file_url(FOO.filename)
    data = srv.file_path(FOO.filename).read_bytes()
    with httpx.Client() as c:
        head = c.head(url)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(data))
        assert head.headers["accept-ranges"] == "bytes"
        r = c.get(url, headers={"Range": "bytes=10-19"})
        assert r.status_code == 206 and r.content == data[10:20]
        assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
        r = c.get(url, headers={"Range": "bytes=-22"})
        assert r.status_code == 206 and r.content == data[-22:]
        r = c.get(url, headers={"Range": "bytes=5-"})
        assert r.status_code == 206 and r.content == data[5:]
        r = c.get(url, headers={"Range": f"bytes={len(data)}-"})
        assert r.status_code == 416
    plain = index([FOO], range_requests=False)
    r = httpx.get(plain.file_url(FOO.filename), headers={"Range": "bytes=0-9"})
    assert r.status_code == 200 and r.content == data
    assert "accept-ranges" not in r.headers


def test_etag_304(index: IndexFactory) -> None:
    srv = index([FOO])
    with httpx.Client() as c:
        r = c.get(srv.url + "foo-bar/", headers=JSON)
        etag = r.headers["etag"]
        assert r.headers["last-modified"].endswith("GMT")
        r2 = c.get(srv.url + "foo-bar/", headers={**JSON, "If-None-Match": etag})
        assert r2.status_code == 304 and r2.content == b""
        srv.add(replace(FOO, version="2.0"))  # releasing a new version changes the page
        r3 = c.get(srv.url + "foo-bar/", headers={**JSON, "If-None-Match": etag})
        assert r3.status_code == 200 and r3.json()["versions"] == ["1.0", "2.0"]


def test_redirects_and_404(index: IndexFactory) -> None:
    srv = index([FOO])
    with httpx.Client() as c:
        for path in ("Foo_Bar/", "foo.bar/", "foo-bar"):
            r = c.get(srv.url + path)
            assert r.status_code == 301, path
            assert r.headers["location"] == "/simple/foo-bar/"
        assert c.get(srv.url + "Foo_Bar", follow_redirects=True).status_code == 200
        assert c.get(srv.url + "nope/").status_code == 404
        assert c.get(srv.file_url("nope-1.0-py3-none-any.whl")).status_code == 404


def test_basic_auth(index: IndexFactory) -> None:
    srv = index([FOO], auth=("user", "s3cret"))
    assert "user" not in srv.url
    r = httpx.get(srv.url + "foo-bar/")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert httpx.get(srv.url + "foo-bar/", auth=("user", "wrong")).status_code == 401
    assert httpx.get(srv.url + "foo-bar/", auth=("user", "s3cret")).status_code == 200
    assert httpx.get(srv.file_url(FOO.filename), auth=("user", "s3cret")).status_code == 200
    assert [r.status for r in srv.requests] == [401, 401, 200, 200]


def test_fail_injection_and_counts(index: IndexFactory) -> None:
    srv = index([FOO])
    srv.fail("/simple/foo-bar/", 503, times=2, retry_after=1)
    with httpx.Client() as c:
        statuses = [c.get(srv.url + "foo-bar/") for _ in range(3)]
        assert [r.status_code for r in statuses] == [503, 503, 200]
        assert statuses[0].headers["retry-after"] == "1"
        c.get(srv.file_url(FOO.filename), headers={"X-Probe": "yes"})
    assert srv.count("/simple/") == 3 and srv.count("/files/") == 1 and srv.count() == 4
    assert srv.requests[-1].headers["x-probe"] == "yes"
    assert srv.requests[-1].method == "GET"
    srv.reset_counts()
    assert srv.count() == 0


def test_publish_and_yank_while_running(index: IndexFactory) -> None:
    srv = index()
    assert httpx.get(srv.url + "foo-bar/").status_code == 404
    srv.add(FOO)
    srv.yank(FOO.filename)
    f = httpx.get(srv.url + "foo-bar/", headers=JSON).json()["files"][0]
    assert f["yanked"] is True
    assert anchors(httpx.get(srv.url + "foo-bar/").text)[0]["data-yanked"] == ""


def test_context_manager(tmp_path: Path) -> None:
    with IndexServer([FOO], workdir=tmp_path / "idx") as srv:
        assert httpx.get(srv.url).status_code == 200
        url = srv.url
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=2)
