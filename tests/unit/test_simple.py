"""Project pages: PEP 691 JSON and PEP 503 HTML -> DistFile values (pure parsing)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.version import Version

from envlock.errors import IndexPageError
from envlock.index.simple import JSON_CONTENT_TYPE, DistFile, parse_project_page

INDEX = "https://pkgs.example.com/simple/"
PAGE = "https://pkgs.example.com/simple/demo/"
SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_M = "c" * 64


def _json_page(files: list[dict[str, Any]], name: str = "demo") -> bytes:
    return json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": files}).encode()


def _parse_json(files: list[dict[str, Any]], name: str = "demo", page: str = PAGE):
    return parse_project_page(_json_page(files, name), JSON_CONTENT_TYPE, page, INDEX, name)


def _parse_html(body: str, name: str = "demo", page: str = PAGE):
    return parse_project_page(body.encode(), "text/html; charset=utf-8", page, INDEX, name)


def _by_name(files: tuple[DistFile, ...]) -> dict[str, DistFile]:
    return {f.filename: f for f in files}


# --- JSON (PEP 691) -------------------------------------------------------------------------------


def test_json_wheel_with_all_fields() -> None:
    page = _parse_json(
        [
            {
                "filename": "demo-1.2.0-cp311-cp311-manylinux_2_17_x86_64.whl",
                "url": "https://files.example.com/demo-1.2.0-cp311-cp311-manylinux_2_17_x86_64.whl",
                "hashes": {"sha256": SHA_A},
                "requires-python": ">=3.9",
                "core-metadata": {"sha256": SHA_M},
                "size": 12345,
                "upload-time": "2024-01-02T03:04:05.123456Z",
                "yanked": False,
            }
        ]
    )
    assert page.name == "demo"
    assert page.index_url == INDEX
    (f,) = page.files
    assert f.filename == "demo-1.2.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    assert f.url == "https://files.example.com/demo-1.2.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    assert f.name == "demo"
    assert f.version == Version("1.2.0")
    assert f.is_wheel
    assert f.tags == frozenset({Tag("cp311", "cp311", "manylinux_2_17_x86_64")})
    assert f.sha256 == SHA_A
    assert f.requires_python == SpecifierSet(">=3.9")
    assert f.yanked is False
    assert f.has_metadata_file is True
    assert f.metadata_sha256 == SHA_M
    assert f.size == 12345
    assert f.upload_time == datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    assert f.index == INDEX


def test_json_core_metadata_true_false_and_absent() -> None:
    page = _parse_json(
        [
            {
                "filename": "demo-1.0-py3-none-any.whl",
                "url": "a.whl",
                "hashes": {},
                "core-metadata": True,
            },
            {
                "filename": "demo-2.0-py3-none-any.whl",
                "url": "b.whl",
                "hashes": {},
                "core-metadata": False,
            },
            {"filename": "demo-3.0-py3-none-any.whl", "url": "c.whl", "hashes": {}},
        ]
    )
    files = _by_name(page.files)
    assert files["demo-1.0-py3-none-any.whl"].has_metadata_file is True
    assert files["demo-1.0-py3-none-any.whl"].metadata_sha256 is None
    assert files["demo-2.0-py3-none-any.whl"].has_metadata_file is False
    assert files["demo-3.0-py3-none-any.whl"].has_metadata_file is False
    assert files["demo-3.0-py3-none-any.whl"].metadata_sha256 is None


def test_json_legacy_dist_info_metadata_key_is_understood() -> None:
    page = _parse_json(
        [
            {
                "filename": "demo-1.0-py3-none-any.whl",
                "url": "a.whl",
                "hashes": {},
                "dist-info-metadata": {"sha256": SHA_M},
            }
        ]
    )
    (f,) = page.files
    assert f.has_metadata_file is True
    assert f.metadata_sha256 == SHA_M


def test_json_yanked_string_true_false() -> None:
    page = _parse_json(
        [
            {"filename": "demo-1.0.tar.gz", "url": "a", "hashes": {}, "yanked": "broken build"},
            {"filename": "demo-2.0.tar.gz", "url": "b", "hashes": {}, "yanked": True},
            {"filename": "demo-3.0.tar.gz", "url": "c", "hashes": {}, "yanked": False},
            {"filename": "demo-4.0.tar.gz", "url": "d", "hashes": {}},
        ]
    )
    yanked = {f.filename: f.yanked for f in page.files}
    assert yanked == {
        "demo-1.0.tar.gz": True,
        "demo-2.0.tar.gz": True,
        "demo-3.0.tar.gz": False,
        "demo-4.0.tar.gz": False,
    }


def test_json_upload_time_without_fraction() -> None:
    page = _parse_json(
        [
            {
                "filename": "demo-1.0.tar.gz",
                "url": "a",
                "hashes": {},
                "upload-time": "2023-11-30T23:59:59Z",
            }
        ]
    )
    assert page.files[0].upload_time == datetime(2023, 11, 30, 23, 59, 59, tzinfo=timezone.utc)


def test_json_missing_optional_fields_are_none() -> None:
    page = _parse_json(
        [
            {
                "filename": "demo-1.0.tar.gz",
                "url": "a",
                "hashes": {"md5": "x"},
                "requires-python": "not a specifier",  # pip ignores it too
            }
        ]
    )
    (f,) = page.files
    assert f.sha256 is None
    assert f.requires_python is None
    assert f.size is None
    assert f.upload_time is None


def test_json_relative_url_resolved_against_page() -> None:
    page = _parse_json(
        [{"filename": "demo-1.0.tar.gz", "url": "../../files/demo-1.0.tar.gz", "hashes": {}}]
    )
    assert page.files[0].url == "https://pkgs.example.com/files/demo-1.0.tar.gz"


def test_json_sdists_tar_gz_and_zip_are_recognised() -> None:
    page = _parse_json(
        [
            {"filename": "demo-1.0.tar.gz", "url": "a", "hashes": {}},
            {"filename": "demo-0.9.zip", "url": "b", "hashes": {}},
        ]
    )
    files = _by_name(page.files)
    assert set(files) == {"demo-1.0.tar.gz", "demo-0.9.zip"}
    for f in files.values():
        assert f.is_wheel is False
        assert f.tags == frozenset()
        assert f.name == "demo"
    assert files["demo-0.9.zip"].version == Version("0.9")


def test_json_ignores_other_projects_and_bad_filenames() -> None:
    page = _parse_json(
        [
            {"filename": "demo-1.0-py3-none-any.whl", "url": "ok", "hashes": {}},
            {"filename": "demo_extra-1.0-py3-none-any.whl", "url": "x1", "hashes": {}},
            {"filename": "other-1.0.tar.gz", "url": "x2", "hashes": {}},
            {"filename": "demo-1.0.exe", "url": "x3", "hashes": {}},
            {"filename": "demo-1.0.tar.bz2", "url": "x4", "hashes": {}},
            {"filename": "demo.whl", "url": "x5", "hashes": {}},
            {"filename": "demo-notaversion!!.tar.gz", "url": "x6", "hashes": {}},
        ]
    )
    assert [f.filename for f in page.files] == ["demo-1.0-py3-none-any.whl"]


def test_sdist_names_are_read_with_the_project_name_as_prefix() -> None:
    """As pip and uv: a stray ``cffi-1.0.2-2.tar.gz`` is cffi 1.0.2.post2, not cffi 2, and
    must not lend its "2" to cffi 2.0.0's files (Version("2") == Version("2.0.0"))."""
    page = _parse_json(
        [
            {"filename": "cffi-1.0.2-2.tar.gz", "url": "a", "hashes": {}},
            {"filename": "cffi-2.0.0.tar.gz", "url": "b", "hashes": {}},
            {
                "filename": "cffi-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl",
                "url": "c",
                "hashes": {},
            },
            {"filename": "python-dateutil-2.8.tar.gz", "url": "d", "hashes": {}},
        ],
        name="cffi",
    )
    assert [str(v) for v in page.versions] == ["2.0.0", "1.0.2.post2"]
    files = _by_name(page.files)
    assert files["cffi-1.0.2-2.tar.gz"].version == Version("1.0.2.post2")
    assert {f.filename for f in page.files_of(Version("2.0.0"))} == {
        "cffi-2.0.0.tar.gz",
        "cffi-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl",
    }
    hyphenated = _parse_json(
        [{"filename": "python-dateutil-2.8.2.tar.gz", "url": "a", "hashes": {}}],
        name="python-dateutil",
    )
    assert [(f.name, str(f.version)) for f in hyphenated.files] == [("python-dateutil", "2.8.2")]


def test_json_project_name_is_normalized_for_matching() -> None:
    page = _parse_json(
        [
            {"filename": "Foo.Bar-1.0.tar.gz", "url": "a", "hashes": {}},
            {"filename": "foo_bar-1.0-py3-none-any.whl", "url": "b", "hashes": {}},
        ],
        name="Foo_Bar",
    )
    assert page.name == "foo-bar"
    assert len(page.files) == 2
    assert {f.name for f in page.files} == {"foo-bar"}


def test_json_content_type_with_parameters_is_json() -> None:
    body = _json_page([{"filename": "demo-1.0.tar.gz", "url": "a", "hashes": {}}])
    page = parse_project_page(body, JSON_CONTENT_TYPE + "; charset=utf-8", PAGE, INDEX, "demo")
    assert [f.filename for f in page.files] == ["demo-1.0.tar.gz"]


# --- HTML (PEP 503) -------------------------------------------------------------------------------

HTML = f"""<!DOCTYPE html>
<html><body>
<h1>Links for demo</h1>
<a href="../../packages/demo-1.0-py3-none-any.whl#sha256={SHA_A}"
   data-requires-python="&gt;=3.8,&lt;4" data-core-metadata="sha256={SHA_M}">demo-1.0</a>
<a href="/packages/demo-1.1.tar.gz#sha256={SHA_B}" data-yanked="">demo-1.1.tar.gz</a>
<a href="https://cdn.example.org/demo-1.2.zip" data-yanked="security issue">demo-1.2.zip</a>
<a href="demo-2.0-cp311-cp311-win_amd64.whl" data-dist-info-metadata="true">x</a>
<a href="demo-2.1-cp311-cp311-win_amd64.whl" data-core-metadata="false">x</a>
<a href="other-1.0-py3-none-any.whl">other</a>
<a href="demo-readme.txt">junk</a>
<a>no href</a>
</body></html>
"""


def test_html_relative_hrefs_resolved_against_page_url() -> None:
    files = _by_name(_parse_html(HTML).files)
    assert files["demo-1.0-py3-none-any.whl"].url == (
        "https://pkgs.example.com/packages/demo-1.0-py3-none-any.whl"
    )
    assert files["demo-1.1.tar.gz"].url == "https://pkgs.example.com/packages/demo-1.1.tar.gz"
    assert files["demo-1.2.zip"].url == "https://cdn.example.org/demo-1.2.zip"
    assert files["demo-2.0-cp311-cp311-win_amd64.whl"].url == (
        "https://pkgs.example.com/simple/demo/demo-2.0-cp311-cp311-win_amd64.whl"
    )


def test_html_sha256_fragment_is_hash_and_not_part_of_url() -> None:
    files = _by_name(_parse_html(HTML).files)
    assert files["demo-1.0-py3-none-any.whl"].sha256 == SHA_A
    assert "#" not in files["demo-1.0-py3-none-any.whl"].url
    assert files["demo-1.1.tar.gz"].sha256 == SHA_B
    assert files["demo-1.2.zip"].sha256 is None


def test_html_requires_python_entities_are_unescaped() -> None:
    files = _by_name(_parse_html(HTML).files)
    assert files["demo-1.0-py3-none-any.whl"].requires_python == SpecifierSet(">=3.8,<4")
    assert files["demo-1.1.tar.gz"].requires_python is None


def test_html_data_yanked_marks_file_yanked_with_or_without_reason() -> None:
    files = _by_name(_parse_html(HTML).files)
    assert files["demo-1.1.tar.gz"].yanked is True
    assert files["demo-1.2.zip"].yanked is True
    assert files["demo-1.0-py3-none-any.whl"].yanked is False


def test_html_core_metadata_attributes() -> None:
    files = _by_name(_parse_html(HTML).files)
    with_hash = files["demo-1.0-py3-none-any.whl"]
    assert with_hash.has_metadata_file is True
    assert with_hash.metadata_sha256 == SHA_M
    legacy = files["demo-2.0-cp311-cp311-win_amd64.whl"]
    assert legacy.has_metadata_file is True
    assert legacy.metadata_sha256 is None
    disabled = files["demo-2.1-cp311-cp311-win_amd64.whl"]
    assert disabled.has_metadata_file is False
    assert files["demo-1.1.tar.gz"].has_metadata_file is False


def test_html_legacy_dist_info_metadata_with_hash() -> None:
    html = f'<a href="demo-1.0-py3-none-any.whl" data-dist-info-metadata="sha256={SHA_M}">x</a>'
    (f,) = _parse_html(html).files
    assert f.has_metadata_file is True
    assert f.metadata_sha256 == SHA_M


def test_html_ignores_other_projects_bad_filenames_and_anchors_without_href() -> None:
    page = _parse_html(HTML)
    assert sorted(f.filename for f in page.files) == [
        "demo-1.0-py3-none-any.whl",
        "demo-1.1.tar.gz",
        "demo-1.2.zip",
        "demo-2.0-cp311-cp311-win_amd64.whl",
        "demo-2.1-cp311-cp311-win_amd64.whl",
    ]


def test_html_sdist_and_wheel_kinds_and_versions() -> None:
    files = _by_name(_parse_html(HTML).files)
    assert files["demo-1.1.tar.gz"].is_wheel is False
    assert files["demo-1.2.zip"].is_wheel is False
    assert files["demo-1.2.zip"].version == Version("1.2")
    win = files["demo-2.0-cp311-cp311-win_amd64.whl"]
    assert win.is_wheel is True
    assert win.tags == frozenset({Tag("cp311", "cp311", "win_amd64")})


def test_html_index_field_is_set_and_pep700_fields_absent() -> None:
    page = _parse_html(HTML)
    assert page.index_url == INDEX
    assert {f.index for f in page.files} == {INDEX}
    assert {f.size for f in page.files} == {None}
    assert {f.upload_time for f in page.files} == {None}


def test_html_base_tag_changes_resolution_of_relative_hrefs() -> None:
    html = (
        '<html><head><base href="https://mirror.example.net/dl/"></head>'
        '<body><a href="demo-1.0.tar.gz">demo</a></body></html>'
    )
    (f,) = _parse_html(html).files
    assert f.url == "https://mirror.example.net/dl/demo-1.0.tar.gz"


def test_html_percent_encoded_filename_is_decoded() -> None:
    (f,) = _parse_html('<a href="demo-1.0%2Blocal-py3-none-any.whl">x</a>').files
    assert f.filename == "demo-1.0+local-py3-none-any.whl"
    assert f.version == Version("1.0+local")


def test_unknown_content_type_is_not_read_as_a_page() -> None:
    body = b'<a href="demo-1.0.tar.gz#sha256=' + SHA_A.encode() + b'">demo</a>'
    with pytest.raises(IndexPageError, match="not a simple-index page"):
        parse_project_page(body, "application/octet-stream", PAGE, INDEX, "demo")


def test_html_valueless_data_yanked_attribute_marks_file_yanked() -> None:
    (f,) = _parse_html('<a href="demo-1.0.tar.gz" data-yanked>demo</a>').files
    assert f.yanked is True


# --- pages that lie or are broken -----------------------------------------------------------------


def _json_raw(data: Any) -> bytes:
    return json.dumps(data).encode()


GOOD_FILE = {"filename": "demo-1.0.tar.gz", "url": "a", "hashes": {"sha256": SHA_A}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "must be an object"),
        (_json_raw({"name": "demo", "files": []}), "missing meta.api-version"),
        (_json_raw({"meta": {}, "name": "demo", "files": []}), "missing meta.api-version"),
        (_json_raw({"meta": {"api-version": 1}, "name": "demo", "files": []}), "api-version"),
        (_json_raw({"meta": {"api-version": "1.0"}, "files": []}), "'name'"),
        (_json_raw({"meta": {"api-version": "1.0"}, "name": "other", "files": []}), "not 'demo'"),
        (_json_raw({"meta": {"api-version": "1.0"}, "name": "demo"}), "'files'"),
        (_json_raw({"meta": {"api-version": "1.0"}, "name": "demo", "files": {}}), "'files'"),
        (_json_raw({"meta": {"api-version": "1.0"}, "name": "demo", "files": ["x"]}), "object"),
    ],
)
def test_malformed_json_page_is_a_one_line_error_naming_the_url(body: bytes, message: str) -> None:
    with pytest.raises(IndexPageError) as info:
        parse_project_page(body, JSON_CONTENT_TYPE, PAGE, INDEX, "demo")
    text = str(info.value)
    assert text.startswith(PAGE) and message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"filename": None}, "'filename'"),
        ({"filename": "../evil-1.0.tar.gz"}, "'filename'"),
        ({"url": 3}, "'url'"),
        ({"hashes": None}, "'hashes'"),
        ({"hashes": {"sha256": 5}}, "'hashes'"),
        ({"hashes": {"sha256": "abc"}}, "not 64 hex digits"),
        ({"hashes": {"sha256": "g" * 64}}, "not 64 hex digits"),
        ({"requires-python": [">=3"]}, "'requires-python'"),
        ({"yanked": 1}, "'yanked'"),
        ({"core-metadata": "yes"}, "'core-metadata'"),
        ({"core-metadata": {"sha256": "zz"}}, "not 64 hex digits"),
        ({"size": "12"}, "'size'"),
        ({"size": -1}, "'size'"),
        ({"size": True}, "'size'"),
        ({"upload-time": 5}, "'upload-time'"),
    ],
)
def test_malformed_file_entry_is_an_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(IndexPageError, match=message):
        _parse_json([{**GOOD_FILE, **change}])


def test_unparseable_upload_time_is_an_error_when_the_version_is_read() -> None:
    page = _parse_json([{**GOOD_FILE, "upload-time": "yesterday"}])
    with pytest.raises(IndexPageError, match="upload-time 'yesterday'"):
        page.files_of(Version("1.0"))


def test_uppercase_sha256_is_accepted_and_normalised() -> None:
    (f,) = _parse_json([{**GOOD_FILE, "hashes": {"sha256": SHA_A.upper()}}]).files
    assert f.sha256 == SHA_A


@pytest.mark.parametrize("api", ["2.0", "0.9", "3.1"])
def test_json_page_of_another_major_api_version_is_refused(api: str) -> None:
    body = _json_raw({"meta": {"api-version": api}, "name": "demo", "files": [GOOD_FILE]})
    with pytest.raises(IndexPageError, match=re.escape(f"speaks simple API {api}")):
        parse_project_page(body, JSON_CONTENT_TYPE, PAGE, INDEX, "demo")


def test_v2_content_type_is_refused() -> None:
    with pytest.raises(IndexPageError, match=r"simple API 2\.x"):
        parse_project_page(b"{}", "application/vnd.pypi.simple.v2+json", PAGE, INDEX, "demo")


def test_newer_minor_api_version_is_read_and_flagged() -> None:
    body = _json_raw({"meta": {"api-version": "1.9"}, "name": "demo", "files": [GOOD_FILE]})
    page = parse_project_page(body, JSON_CONTENT_TYPE, PAGE, INDEX, "demo")
    assert page.api_version == (1, 9) and page.newer_api
    assert [f.filename for f in page.files] == ["demo-1.0.tar.gz"]
    assert not _parse_json([GOOD_FILE]).newer_api


def test_html_repository_version_is_checked_too() -> None:
    head = '<meta name="pypi:repository-version" content="{}">'
    link = f'<a href="demo-1.0.tar.gz#sha256={SHA_A}">demo</a>'
    with pytest.raises(IndexPageError, match=r"speaks simple API 2\.0"):
        _parse_html(head.format("2.0") + link)
    assert _parse_html(head.format("1.3") + link).newer_api


def test_html_bad_hash_fragment_is_an_error() -> None:
    with pytest.raises(IndexPageError, match="not 64 hex digits"):
        _parse_html('<a href="demo-1.0.tar.gz#sha256=xyz">demo</a>')


def test_yank_reasons_are_kept() -> None:
    page = _parse_json(
        [
            {**GOOD_FILE, "yanked": "broken build"},
            {**GOOD_FILE, "filename": "demo-2.0.tar.gz", "yanked": True},
        ]
    )
    reasons = {f.filename: (f.yanked, f.yank_reason) for f in page.files}
    assert reasons == {"demo-1.0.tar.gz": (True, "broken build"), "demo-2.0.tar.gz": (True, None)}
    (f,) = _parse_html('<a href="demo-1.0.tar.gz" data-yanked="CVE-1">demo</a>').files
    assert (f.yanked, f.yank_reason) == (True, "CVE-1")
