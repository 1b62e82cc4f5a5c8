"""OSV record matching (envlock.audit.osv): the schema's range evaluation in PEP 440 order,
explicit version lists, withdrawn and foreign records, hostile input, and deduplication."""

from __future__ import annotations

from typing import Any

import pytest

from envlock.audit.osv import (
    InvalidRecord,
    Vulnerability,
    affects,
    dedupe,
    package_names,
    record_id,
)


def rng(*events: tuple[str, str], type: str = "ECOSYSTEM") -> dict[str, Any]:
    return {"type": type, "events": [{kind: value} for kind, value in events]}


def rec(
    rid: str = "PYSEC-2099-1",
    name: str = "demo",
    ranges: list[dict[str, Any]] | None = None,
    versions: list[Any] | None = None,
    ecosystem: str = "PyPI",
    **extra: Any,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name}}
    if ranges is not None:
        entry["ranges"] = ranges
    if versions is not None:
        entry["versions"] = versions
    return {"id": rid, "modified": "2024-01-01T00:00:00Z", "affected": [entry], **extra}


def hit(record: Any, version: str, name: str = "demo") -> bool:
    return affects(record, name, version) is not None


# -- ranges --------------------------------------------------------------------------------------


def test_introduced_zero_affects_everything_before_the_fix() -> None:
    r = rec(ranges=[rng(("introduced", "0"), ("fixed", "2.0"))])
    assert [hit(r, v) for v in ("0.0.1", "0.dev0", "1.9.9", "2.0.dev1", "2.0", "2.0.1")] == [
        True,
        True,
        True,
        True,  # 2.0.dev1 comes before 2.0
        False,  # fixed is exclusive
        False,
    ]


def test_introduced_zero_without_fix_affects_all_versions() -> None:
    r = rec(ranges=[rng(("introduced", "0"))])
    assert hit(r, "0") and hit(r, "99.0.post3")


def test_introduced_is_inclusive_and_fixed_exclusive() -> None:
    r = rec(ranges=[rng(("introduced", "1.2"), ("fixed", "1.5"))])
    assert not hit(r, "1.1.9")
    assert not hit(r, "1.2rc1")
    assert hit(r, "1.2") and hit(r, "1.2.0") and hit(r, "1.4.99")
    assert not hit(r, "1.5") and not hit(r, "1.5.0")


def test_last_affected_is_inclusive() -> None:
    r = rec(ranges=[rng(("introduced", "1.0"), ("last_affected", "1.4"))])
    assert hit(r, "1.4") and hit(r, "1.4.0")
    assert hit(r, "1.4+local")  # a downstream build of 1.4
    assert not hit(r, "1.4.post1")
    assert not hit(r, "1.4.1")


def test_pep440_order_of_pre_post_dev_and_local_releases() -> None:
    r = rec(ranges=[rng(("introduced", "1.0rc1"), ("fixed", "1.0.post1"))])
    assert not hit(r, "1.0b2")
    assert not hit(r, "1.0rc1.dev3")
    assert hit(r, "1.0rc1") and hit(r, "1.0") and hit(r, "1.0+cpu") and hit(r, "1.0.post1.dev0")
    assert not hit(r, "1.0.post1") and not hit(r, "1.0.1")


def test_fixed_at_a_release_leaves_its_local_builds_clean() -> None:
    r = rec(ranges=[rng(("introduced", "0"), ("fixed", "2.0"))])
    assert not hit(r, "2.0+cu121")
    assert hit(r, "1.9+cu121")


def test_reintroduced_after_a_fix() -> None:
    r = rec(
        ranges=[
            rng(("introduced", "1.0"), ("fixed", "1.2"), ("introduced", "2.0"), ("fixed", "2.3"))
        ]
    )
    assert [hit(r, v) for v in ("0.9", "1.1", "1.2", "1.9", "2.0", "2.2", "2.3")] == [
        False,
        True,
        False,
        False,
        True,
        True,
        False,
    ]


def test_events_are_evaluated_in_version_order_not_listed_order() -> None:
    r = rec(
        ranges=[
            rng(("fixed", "2.3"), ("introduced", "2.0"), ("fixed", "1.2"), ("introduced", "1.0"))
        ]
    )
    assert hit(r, "1.1") and not hit(r, "1.5") and hit(r, "2.1") and not hit(r, "3")


def test_any_of_several_ranges_and_entries_counts() -> None:
    r = rec(ranges=[rng(("introduced", "1.0"), ("fixed", "1.1")), rng(("introduced", "3.0"))])
    r["affected"].append({"package": {"ecosystem": "PyPI", "name": "demo"}, "versions": ["2.5"]})
    assert hit(r, "1.0") and hit(r, "2.5") and hit(r, "3.1")
    assert not hit(r, "1.1") and not hit(r, "2.4")


def test_semver_ranges_are_compared_as_pep440() -> None:
    r = rec(ranges=[rng(("introduced", "1.0.0-rc.1"), ("fixed", "1.0.2"), type="SEMVER")])
    assert hit(r, "1.0.0rc1") and hit(r, "1.0.1") and not hit(r, "1.0.2")


def test_git_ranges_are_ignored_and_versions_used() -> None:
    r = rec(ranges=[rng(("introduced", "0"), type="GIT")], versions=["1.3"])
    assert hit(r, "1.3") and not hit(r, "1.4")


def test_limit_events_are_ignored() -> None:
    r = rec(ranges=[rng(("introduced", "1.0"), ("limit", "1.1"))])
    assert hit(r, "5.0")


def test_invalid_versions_in_events_are_skipped() -> None:
    r = rec(
        ranges=[
            {
                "type": "ECOSYSTEM",
                "events": [
                    {"introduced": "1.0"},
                    {"fixed": "not a version!"},
                    {"fixed": 2},
                    "junk",
                    {"fixed": "1.5"},
                ],
            }
        ]
    )
    assert hit(r, "1.2") and not hit(r, "1.5")
    assert affects(r, "demo", "1.2") == affects(r, "demo", "1.2")  # deterministic


# -- explicit versions ---------------------------------------------------------------------------


def test_versions_list_only() -> None:
    r = rec(versions=["1.0", "1.1.0", "2.0rc1"])
    assert hit(r, "1.0") and hit(r, "1.0.0")  # "1.0" == "1.0.0" in PEP 440
    assert hit(r, "1.1") and hit(r, "2.0rc1") and hit(r, "2.0.0rc1")
    assert not hit(r, "1.2") and not hit(r, "2.0")


def test_versions_list_falls_back_to_string_comparison() -> None:
    r = rec(versions=["2013b", "weird-1", 7, None])
    assert hit(r, "2013b") and hit(r, "weird-1")
    assert not hit(r, "weird-2")


def test_unparseable_pinned_version_only_matches_by_string() -> None:
    r = rec(ranges=[rng(("introduced", "0"))], versions=["not.pep440!"])
    assert hit(r, "not.pep440!")
    assert not hit(r, "other!")


# -- which records apply -------------------------------------------------------------------------


def test_withdrawn_records_are_skipped() -> None:
    r = rec(ranges=[rng(("introduced", "0"))], withdrawn="2024-02-01T00:00:00Z")
    assert not hit(r, "1.0")


def test_other_ecosystems_are_ignored() -> None:
    for eco in ("npm", "pypi", "PyPI:extra", ""):
        assert not hit(rec(ranges=[rng(("introduced", "0"))], ecosystem=eco), "1.0")


def test_names_are_compared_canonically() -> None:
    r = rec(name="PyYAML", versions=["5.3"])
    assert hit(r, "5.3", name="pyyaml") and hit(r, "5.3", name="PyYaml")
    r = rec(name="Foo_Bar.baz", versions=["1"])
    assert hit(r, "1", name="foo-bar-baz") and hit(r, "1", name="FOO__BAR-BAZ")
    assert not hit(r, "1", name="foo-bar")
    assert package_names(r) == {"foo-bar-baz"}
    r = rec(name="\u212aeras", versions=["1"])  # KELVIN SIGN lower-cases to "k"
    assert hit(r, "1", name="keras")


def test_vulnerability_fields() -> None:
    r = rec(
        ranges=[
            rng(("introduced", "0"), ("fixed", "1.5")),
            rng(("introduced", "2.0"), ("fixed", "2.1")),
        ],
        aliases=["CVE-2099-1", "GHSA-aaaa-bbbb-cccc", "PYSEC-2099-1", "bad id!", 5],
        summary="Remote\x1b[31m code\nexecution\u202e in demo",
        references=[
            {"type": "WEB", "url": "https://example.org/web"},
            {"type": "ADVISORY", "url": "javascript:alert(1)"},
            {"type": "ADVISORY", "url": "https://example.org/advisory"},
        ],
    )
    v = affects(r, "Demo", "1.2")
    assert v == Vulnerability(
        id="PYSEC-2099-1",
        aliases=("CVE-2099-1", "GHSA-aaaa-bbbb-cccc"),
        package="demo",
        version="1.2",
        fixed_in=("1.5", "2.1"),
        summary="Remote [31m code execution in demo",
        url="https://example.org/advisory",
    )


def test_fixed_in_leaves_out_fixes_that_are_affected_elsewhere() -> None:
    r = rec(ranges=[rng(("introduced", "0"), ("fixed", "1.5")), rng(("introduced", "1.4"))])
    v = affects(r, "demo", "1.0")
    assert v is not None and v.fixed_in == ()  # 1.5 is affected by the second range
    r = rec(
        ranges=[rng(("introduced", "0"), ("fixed", "0.9"), ("fixed", "1.5"), ("fixed", "1.5.0"))]
    )
    v = affects(r, "demo", "0.5")
    assert v is not None and v.fixed_in == ("0.9", "1.5")


def test_summary_falls_back_to_details_and_is_capped() -> None:
    v = affects(rec(versions=["1"], details="\n  First line.\nSecond."), "demo", "1")
    assert v is not None and v.summary == "First line." and v.url is None
    v = affects(rec(versions=["1"], summary="x" * 5000), "demo", "1")
    assert v is not None and len(v.summary) == 200 and v.summary.endswith("…")


# -- hostile records -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [None, [], "PYSEC-1", {}, {"id": 5}, {"id": ""}, {"id": "../../etc"}, {"id": "a b"}],
)
def test_records_without_a_valid_id_are_refused(record: Any) -> None:
    with pytest.raises(InvalidRecord):
        record_id(record)
    with pytest.raises(InvalidRecord):
        affects(record, "demo", "1.0")


@pytest.mark.parametrize(
    "affected",
    [
        None,
        "demo",
        [None, 5, "x", []],
        [{"package": None}],
        [{"package": {"ecosystem": "PyPI", "name": None}, "ranges": "0"}],
        [{"package": {"ecosystem": "PyPI", "name": "demo"}, "ranges": [None, {"type": 1}]}],
        [{"package": {"ecosystem": "PyPI", "name": "demo"}, "ranges": [{"type": "ECOSYSTEM"}]}],
        [
            {
                "package": {"ecosystem": "PyPI", "name": "demo"},
                "ranges": [{"type": "ECOSYSTEM", "events": {"a": 1}}],
            }
        ],
        [{"package": {"ecosystem": "PyPI", "name": "demo"}, "versions": {"1.0": True}}],
        [{"package": {"ecosystem": "PyPI", "name": "demo"}}],
    ],
)
def test_parts_of_the_wrong_type_are_skipped(affected: Any) -> None:
    record = {
        "id": "GHSA-xxxx-yyyy-zzzz",
        "affected": affected,
        "aliases": "CVE-1",
        "references": 3,
    }
    assert affects(record, "demo", "1.0") is None


def test_absurdly_long_lists_are_refused_not_churned_through() -> None:
    events = [{"introduced": f"{i}.0"} for i in range(20_001)]
    with pytest.raises(InvalidRecord, match="range events"):
        affects(rec(ranges=[{"type": "ECOSYSTEM", "events": events}]), "demo", "1.0")
    record = {"id": "PYSEC-1", "affected": [{}] * 1001}
    with pytest.raises(InvalidRecord, match="affected entries"):
        package_names(record)


# -- dedupe --------------------------------------------------------------------------------------


def vuln(
    vid: str, *aliases: str, version: str = "1.0", fixed: tuple[str, ...] = ()
) -> Vulnerability:
    return Vulnerability(
        vid, tuple(sorted(aliases)), "demo", version, fixed, f"summary {vid}", None
    )


def test_dedupe_merges_aliased_records_under_the_pysec_id() -> None:
    merged = dedupe(
        [
            vuln("GHSA-aaaa-bbbb-cccc", "CVE-2099-1", fixed=("1.1.0",)),
            vuln("PYSEC-2099-7", "CVE-2099-1", fixed=("1.1", "2.0")),
            vuln("OSV-2099-3", "GHSA-aaaa-bbbb-cccc"),
        ]
    )
    assert merged == (
        Vulnerability(
            "PYSEC-2099-7",
            ("CVE-2099-1", "GHSA-aaaa-bbbb-cccc", "OSV-2099-3"),
            "demo",
            "1.0",
            ("1.1", "2.0"),
            "summary PYSEC-2099-7",
            None,
        ),
    )


def test_dedupe_prefers_ghsa_without_pysec_and_keeps_unrelated_apart() -> None:
    merged = dedupe(
        [vuln("CVE-2099-2", "GHSA-zzzz-zzzz-zzzz"), vuln("GHSA-zzzz-zzzz-zzzz"), vuln("MAL-2099-1")]
    )
    assert [(v.id, v.aliases) for v in merged] == [
        ("GHSA-zzzz-zzzz-zzzz", ("CVE-2099-2",)),
        ("MAL-2099-1", ()),
    ]


def test_dedupe_keeps_versions_apart_and_sorts() -> None:
    merged = dedupe(
        [
            vuln("PYSEC-2", version="10.0"),
            vuln("PYSEC-1", version="9.0"),
            vuln("PYSEC-3", version="9.0"),
        ]
    )
    assert [(v.version, v.id) for v in merged] == [
        ("9.0", "PYSEC-1"),
        ("9.0", "PYSEC-3"),
        ("10.0", "PYSEC-2"),
    ]
