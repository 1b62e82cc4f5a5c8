"""``envlock.lock.diff`` on hand-written locks: every kind of change, grouping across platforms,
the red flag of a file whose bytes changed under the same name, and deterministic output."""

from __future__ import annotations

import json
from typing import Any

from envlock.lock.diff import compare, diff_locks, render
from support.locks import LINUX, MIRROR, PYPI, WIN, P, bundled_python, make_lock, sha

BASE = [P("numpy", "1.26.4", (LINUX, WIN)), P("six", "1.16.0"), P("attrs", "23.1.0")]


def test_identical_locks_have_no_changes(tmp_path):
    diff = diff_locks(make_lock(tmp_path, BASE), make_lock(tmp_path, BASE, name="b.toml"))
    assert diff.empty
    assert render(diff) == []
    assert diff.red_flags == ()


def test_no_previous_lock_lists_nothing(tmp_path):
    diff = diff_locks(None, make_lock(tmp_path, BASE))
    assert diff.empty
    assert render(diff) == []


def test_added_removed_upgraded_downgraded_on_every_platform_appear_once(tmp_path):
    old = make_lock(tmp_path, BASE)
    new = make_lock(
        tmp_path,
        [P("numpy", "2.0.0", (LINUX, WIN)), P("attrs", "22.2.0"), P("click", "8.1.7")],
        name="new.toml",
    )
    diff = diff_locks(old, new)
    assert render(diff) == [
        "~ attrs 23.1.0 -> 22.2.0 (downgraded)",
        "+ click 8.1.7",
        "~ numpy 1.26.4 -> 2.0.0 (upgraded)",
        "- six 1.16.0",
    ]
    assert not diff.empty


def test_version_order_is_pep440_not_text(tmp_path):
    old = make_lock(tmp_path, [P("lib", "1.9")])
    new = make_lock(tmp_path, [P("lib", "1.10")], name="new.toml")
    assert render(diff_locks(old, new)) == ["~ lib 1.9 -> 1.10 (upgraded)"]
    assert render(diff_locks(new, old)) == ["~ lib 1.10 -> 1.9 (downgraded)"]


def test_change_on_some_platforms_names_them(tmp_path):
    win_only = "sys_platform == 'win32'"
    old = make_lock(tmp_path, [P("lib", "1.0", (LINUX, WIN))])
    new = make_lock(
        tmp_path,
        [
            P("lib", "2.0", (LINUX,), marker="sys_platform == 'linux'"),
            P("lib", "1.0", (WIN,), marker=win_only),
            P("colorama", "0.4.6", marker=win_only),
        ],
        name="new.toml",
    )
    assert render(diff_locks(old, new)) == [
        "+ colorama 0.4.6 (win-64)",
        "~ lib 1.0 -> 2.0 (upgraded) (linux-64)",
    ]


def test_index_move_is_shown_with_or_without_a_new_version(tmp_path):
    old = make_lock(tmp_path, [P("a", "1.0"), P("b", "1.0")])
    new = make_lock(tmp_path, [P("a", "1.0", index=MIRROR), P("b", "2.0", index=MIRROR)], name="n")
    assert render(diff_locks(old, new)) == [
        f"~ a 1.0 (index {PYPI} -> {MIRROR})",
        f"~ b 1.0 -> 2.0 (upgraded; index {PYPI} -> {MIRROR})",
    ]


def test_same_file_name_with_other_bytes_is_a_red_flag(tmp_path):
    old = make_lock(tmp_path, BASE)
    new = make_lock(
        tmp_path,
        [P("numpy", "1.26.4", (LINUX, WIN)), P("six", "1.16.0", salt="evil"), P("attrs", "23.1.0")],
        name="new.toml",
    )
    diff = diff_locks(old, new)
    old_sha = sha("six-1.16.0-py3-none-any.whl")[:12]
    new_sha = sha("six-1.16.0-py3-none-any.whl" + "evil")[:12]
    line = (
        "! six 1.16.0: same version, different files: "
        f"six-1.16.0-py3-none-any.whl sha256 {old_sha}… -> {new_sha}…"
    )
    assert render(diff) == [line]
    assert [e.line() for e in diff.red_flags] == [line]
    assert diff.red_flags[0].platforms == ("linux-64", "win-64")


def test_red_flag_on_one_platform_comes_first_and_names_it(tmp_path):
    old = make_lock(tmp_path, [P("numpy", "1.26.4", (LINUX, WIN)), P("zlib", "1.0")])
    tampered = [P("numpy", "1.26.4", (LINUX,)), P("numpy", "1.26.4", (WIN,), salt="x")]
    # one package entry per file set: PEP 751 allows the same version twice only with markers
    tampered[0].marker, tampered[1].marker = "sys_platform == 'linux'", "sys_platform == 'win32'"
    new = make_lock(tmp_path, [*tampered, P("zlib", "2.0")], name="new.toml")
    lines = render(diff_locks(old, new))
    assert lines[0].startswith("! numpy 1.26.4: same version, different files: ")
    assert lines[0].endswith("(win-64)")
    assert lines[1:] == ["~ zlib 1.0 -> 2.0 (upgraded)"]


def test_another_file_for_the_same_version_is_an_ordinary_change(tmp_path):
    old = make_lock(tmp_path, [P("lib", "1.0", sdist=True)])
    new = make_lock(tmp_path, [P("lib", "1.0")], name="new.toml")
    diff = diff_locks(old, new)
    assert render(diff) == ["~ lib 1.0 (file lib-1.0.tar.gz -> lib-1.0-py3-none-any.whl)"]
    assert diff.red_flags == ()


def test_platforms_added_and_removed(tmp_path):
    old = make_lock(tmp_path, [P("lib", "1.0")], platforms=("linux-64", "osx-arm64"))
    new = make_lock(
        tmp_path,
        [P("lib", "1.0"), P("colorama", "0.4.6", marker="sys_platform == 'win32'")],
        platforms=("linux-64", "win-64"),
        name="new.toml",
    )
    diff = diff_locks(old, new)
    assert diff.platforms_added == ("win-64",)
    assert diff.platforms_removed == ("osx-arm64",)
    assert render(diff) == [
        "+ platform win-64",
        "- platform osx-arm64",
        "+ colorama 0.4.6 (win-64)",
        "+ lib 1.0 (win-64)",
        "- lib 1.0 (osx-arm64)",
    ]


def test_missing_lock_compares_as_empty(tmp_path):
    new = make_lock(tmp_path, [P("lib", "1.0"), P("a", "2.0")])
    assert render(compare(None, new)) == [
        "+ platform linux-64",
        "+ platform win-64",
        "+ a 2.0",
        "+ lib 1.0",
    ]
    assert render(compare(new, None)) == [
        "- platform linux-64",
        "- platform win-64",
        "- a 2.0",
        "- lib 1.0",
    ]
    assert compare(None, None).empty


def test_bundled_interpreter_upgrade_build_change_and_mode_change(tmp_path):
    system = make_lock(tmp_path, [P("lib", "1.0")], platforms=("linux-64",))
    old = make_lock(
        tmp_path,
        [P("lib", "1.0")],
        platforms=("linux-64",),
        interpreter=bundled_python("3.11.9", "20250101"),
        name="old.toml",
    )
    newer = make_lock(
        tmp_path,
        [P("lib", "1.0")],
        platforms=("linux-64",),
        interpreter=bundled_python("3.11.10", "20250401"),
        name="newer.toml",
    )
    rebuilt = make_lock(
        tmp_path,
        [P("lib", "1.0")],
        platforms=("linux-64",),
        interpreter=bundled_python("3.11.9", "20250401"),
        name="rebuilt.toml",
    )
    assert render(diff_locks(old, newer)) == [
        "~ python CPython 3.11.9 (20250101) -> CPython 3.11.10 (20250401) (upgraded)"
    ]
    assert render(diff_locks(old, rebuilt)) == [
        "~ python CPython 3.11.9 (20250101) -> CPython 3.11.9 (20250401)"
    ]
    assert render(diff_locks(system, old)) == [
        "~ python 3.11 (system interpreter) -> CPython 3.11.9 (20250101)"
    ]
    assert render(diff_locks(old, system)) == [
        "~ python CPython 3.11.9 (20250101) -> 3.11 (system interpreter)"
    ]


def test_interpreter_archive_with_other_bytes_is_a_red_flag(tmp_path):
    kw: dict[str, Any] = {"platforms": ("linux-64",)}
    old = make_lock(tmp_path, [P("lib", "1.0")], interpreter=bundled_python("3.11.9", "1"), **kw)
    new = make_lock(
        tmp_path,
        [P("lib", "1.0")],
        interpreter=bundled_python("3.11.9", "1", salt="x"),
        name="new.toml",
        **kw,
    )
    diff = diff_locks(old, new)
    assert len(diff.red_flags) == 1
    (line,) = render(diff)
    assert line.startswith("! python CPython 3.11.9 (1): same version, different files: cpython-")


def test_json_is_deterministic_and_complete(tmp_path):
    old = make_lock(tmp_path, BASE)
    new = make_lock(
        tmp_path,
        [P("numpy", "2.0.0", (LINUX, WIN)), P("six", "1.16.0", salt="x")],
        platforms=("linux-64",),
        name="new.toml",
    )
    data = diff_locks(old, new).to_dict()
    again = diff_locks(old, new).to_dict()
    assert json.dumps(data, sort_keys=True) == json.dumps(again, sort_keys=True)
    assert data["platforms_removed"] == ["win-64"]
    assert data["red_flags"] == 1
    kinds = [(c["name"], c["kind"], c["platforms"]) for c in data["changes"]]
    assert kinds == [
        ("six", "tampered", ["linux-64"]),
        ("attrs", "removed", ["linux-64", "win-64"]),
        ("numpy", "removed", ["win-64"]),
        ("numpy", "upgraded", ["linux-64"]),
        ("six", "removed", ["win-64"]),
    ]
    upgraded = data["changes"][3]
    assert upgraded["old"] == "1.26.4" and upgraded["new"] == "2.0.0"
    assert upgraded["old_index"] == upgraded["new_index"] == PYPI
    assert upgraded["red_flag"] is False
