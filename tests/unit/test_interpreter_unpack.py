"""Unpacking interpreter archives into the cache (``envlock.cache.interpreter``), and planning
what of an unpacked interpreter an environment gets (``envlock.materialize.bundled``).

Archives are built here with tarfile; hostile ones must be refused with one IntegrityError that
names the archive, leaving nothing in the cache (no tree, no scratch directory).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from envlock.cache import interpreter as unpacker
from envlock.cache.interpreter import (
    cached_interpreters,
    unpacked_interpreter,
    verify_interpreter,
)
from envlock.cache.maintenance import verify as cache_verify
from envlock.cache.records import record_hash
from envlock.cache.store import ArtifactStore
from envlock.errors import EnvlockError, IntegrityError
from envlock.materialize.bundled import plan_interpreter
from envlock.materialize.install import plan
from envlock.materialize.layout import Layout
from support.tars import cve_2025_4517

MTIME = 1_600_000_000
OS_PY = b"# os\nsep = '/'\n"
PYTHON = b"\x7fELF pretend interpreter\n"

Member = Callable[[tarfile.TarFile], None]


def _info(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = MTIME
    return info


def file(name: str, data: bytes, mode: int = 0o644) -> Member:
    def add(tar: tarfile.TarFile) -> None:
        info = _info(name, mode=mode)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    return add


def directory(name: str) -> Member:
    return lambda tar: tar.addfile(_info(name, tarfile.DIRTYPE, 0o755))


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Member:
    def add(tar: tarfile.TarFile) -> None:
        info = _info(name, kind, 0o777)
        info.linkname = target
        tar.addfile(info)

    return add


def special(name: str, kind: bytes) -> Member:
    return lambda tar: tar.addfile(_info(name, kind, 0o666))


def good_members() -> list[Member]:
    """A small python-build-standalone ``install_only`` tree."""
    return [
        directory("python"),
        directory("python/bin"),
        file("python/bin/python3.11", PYTHON, 0o755),
        link("python/bin/python3", "python3.11"),
        file("python/bin/pip3.11", b"#!/bin/sh\n", 0o755),
        link("python/bin/pip3", "pip3.11"),
        directory("python/lib"),
        directory("python/lib/python3.11"),
        file("python/lib/python3.11/os.py", OS_PY),
        link("python/lib/python3.11/os2.py", "os.py"),
        link("python/lib/python3.11/same.py", "python/lib/python3.11/os.py", tarfile.LNKTYPE),
        file("python/lib/python3.11/site-packages/pip/__init__.py", b"# pip\n"),
        file("python/lib/python3.11/site-packages/README.txt", b"readme\n"),
        directory("python/include"),
    ]


def make_archive(tmp_path: Path, members: list[Member], name: str = "cpython.tar.gz") -> Path:
    path = tmp_path / "archives" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for add in members:
            add(tar)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "cache")


def unpack(store: ArtifactStore, archive: Path):  # type: ignore[no-untyped-def]
    return unpacked_interpreter(store, archive, sha256(archive))


def assert_nothing_kept(store: ArtifactStore) -> None:
    trees = list(store.unpacked.glob("*/*")) if store.unpacked.is_dir() else []
    scratch = os.listdir(store.root / "tmp") if (store.root / "tmp").is_dir() else []
    assert (trees, scratch) == ([], [])


# -- a good archive -----------------------------------------------------------------------------


def test_unpacks_once_without_the_top_directory_and_indexes_every_member(store, tmp_path):
    archive = make_archive(tmp_path, good_members())
    tree = unpack(store, archive)
    assert tree.root == store.unpacked_path(sha256(archive))
    assert (tree.root / "bin" / "python3.11").read_bytes() == PYTHON
    assert not (tree.root / "python").exists()
    kinds = {e.path: e.kind for e in tree.entries}
    assert kinds["bin/python3"] == "link" and kinds["include"] == "dir"
    assert os.readlink(tree.root / "bin" / "python3") == "python3.11"
    by_path = {e.path: e for e in tree.entries}
    assert by_path["lib/python3.11/os.py"].hash == record_hash(OS_PY)
    assert by_path["lib/python3.11/os.py"].size == len(OS_PY)
    # a hard link is a file with the same content; the archive's times are kept (.pyc files)
    assert by_path["lib/python3.11/same.py"].hash == record_hash(OS_PY)
    assert (tree.root / "lib/python3.11/os.py").stat().st_mtime == MTIME
    assert by_path["bin/python3.11"].executable
    assert os.access(tree.root / "bin" / "python3.11", os.X_OK)
    assert not os.access(tree.root / "lib/python3.11/os.py", os.X_OK)
    assert verify_interpreter(tree) == []

    # Again: read from the index, not unpacked a second time.
    before = (tree.root / "bin" / "python3.11").stat().st_ino
    again = unpack(store, archive)
    assert again.entries == tree.entries
    assert (again.root / "bin" / "python3.11").stat().st_ino == before
    assert os.listdir(store.root / "tmp") == []


def test_modes_are_normalised_whatever_the_archive_says(store, tmp_path):
    archive = make_archive(
        tmp_path,
        [directory("python"), file("python/bin/python3.11", PYTHON, 0o6777)],
    )
    tree = unpack(store, archive)
    mode = (tree.root / "bin" / "python3.11").stat().st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID)
    assert not mode & 0o022  # no group/other write, whatever the archive says


def test_read_only_cache_unpacks_into_the_callers_scratch(tmp_path):
    archive = make_archive(tmp_path, good_members())
    root = tmp_path / "ro-cache"
    root.mkdir()
    store = ArtifactStore(root)
    store.__dict__["writable"] = False  # as a read-only mount reports it
    with pytest.raises(EnvlockError, match="read-only"):
        unpack(store, archive)
    scratch = tmp_path / "scratch"
    tree = unpacked_interpreter(store, archive, sha256(archive), scratch=scratch)
    assert tree.root == scratch / sha256(archive)
    assert os.listdir(root) == []


def test_cache_verify_drops_a_tree_whose_file_changed(store, tmp_path):
    archive = make_archive(tmp_path, good_members())
    tree = unpack(store, archive)
    assert [t.root for t in cached_interpreters(store)] == [tree.root]
    (tree.root / "lib/python3.11/os.py").write_bytes(b"evil = True\n")
    os.unlink(tree.root / "bin" / "python3")
    os.symlink("/usr/bin/python3", tree.root / "bin" / "python3")
    assert verify_interpreter(tree) == [
        "bin/python3",
        "lib/python3.11/os.py",
        "lib/python3.11/same.py",
    ]
    bad, checked = cache_verify(store)
    assert checked == 1
    assert tree.root / "lib/python3.11/os.py" in bad
    assert not tree.root.exists()
    assert unpack(store, archive).root == tree.root  # unpacked again when next needed
    assert (tree.root / "lib/python3.11/os.py").read_bytes() == OS_PY


# -- hostile archives ---------------------------------------------------------------------------

BASE = [directory("python"), file("python/bin/python3.11", PYTHON, 0o755)]

HOSTILE: dict[str, tuple[list[Member], str]] = {
    "traversal": ([*BASE, file("python/../../escaped", b"x")], "'..' path component"),
    "absolute": ([*BASE, file("/tmp/envlock-unit-escaped", b"x")], "not under python/"),
    "dotdot-inside": ([*BASE, file("python/bin/../bin/x", b"x")], "'..' path component"),
    "not-under-python": ([*BASE, file("other/x", b"x")], "not under python/"),
    "no-top": ([file("bin/python3.11", PYTHON)], "not under python/"),
    "symlink-out": ([*BASE, link("python/bin/evil", "../../../etc/passwd")], "outside"),
    "symlink-absolute": ([*BASE, link("python/bin/evil", "/etc/passwd")], "outside"),
    # each link alone stays inside; together b leads out (a is the tree root, b = a/..)
    "symlink-chain": ([*BASE, link("python/a", "."), link("python/b", "a/..")], "outside"),
    "hardlink-out": (
        [*BASE, link("python/bin/evil", "../../etc/passwd", tarfile.LNKTYPE)],
        "points outside python/",
    ),
    "long-name": ([*BASE, file("python/" + "a" * 300, b"x")], "implausibly long name"),
    "hardlink-unknown": (
        [*BASE, link("python/bin/evil", "python/bin/nothing", tarfile.LNKTYPE)],
        "earlier file",
    ),
    "hardlink-to-link": (
        [
            *BASE,
            link("python/bin/python3", "python3.11"),
            link("python/bin/evil", "python/bin/python3", tarfile.LNKTYPE),
        ],
        "earlier file",
    ),
    "char-device": ([*BASE, special("python/bin/evil", tarfile.CHRTYPE)], "device"),
    "block-device": ([*BASE, special("python/bin/evil", tarfile.BLKTYPE)], "device"),
    "fifo": ([*BASE, special("python/bin/evil", tarfile.FIFOTYPE)], "fifo"),
    "duplicate": ([*BASE, file("python/bin/python3.11", b"second\n")], "twice"),
    "through-a-link": (
        [*BASE, link("python/lib", "bin"), file("python/lib/python3.11", b"x")],
        "not a directory",
    ),
    "file-then-dir": ([*BASE, file("python/bin/python3.11/x", b"x")], "not a directory"),
    "dir-then-file": ([*BASE, file("python/lib/x/y", b"y"), file("python/lib/x", b"x")], "both"),
    "hidden-index": ([*BASE, file("python/.interpreter-v1", b"file,x\n")], "hidden"),
    "control-char": ([*BASE, file("python/bin/a\nb", b"x")], "control character"),
    "under-a-link": ([*BASE, link("python/lib", ".."), file("python/lib/x", b"x")], "under lib"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_archive_is_refused_and_nothing_is_kept(kind, store, tmp_path):
    members, reason = HOSTILE[kind]
    archive = make_archive(tmp_path, members, f"evil-{kind}.tar.gz")
    with pytest.raises(IntegrityError) as err:
        unpack(store, archive)
    message = str(err.value)
    assert "\n" not in message.replace("a\nb", "")
    assert message.startswith(archive.name + ":"), message
    assert reason in message, message
    assert_nothing_kept(store)
    assert not os.path.lexists("/tmp/envlock-unit-escaped")
    assert not (tmp_path / "escaped").exists() and not (store.root / "escaped").exists()


def test_member_count_and_total_size_are_capped(store, tmp_path, monkeypatch):
    monkeypatch.setattr(unpacker, "MAX_MEMBERS", 3)
    many = make_archive(tmp_path, [*BASE, *(file(f"python/f{i}", b"x") for i in range(3))])
    with pytest.raises(IntegrityError, match="more than 3 members"):
        unpack(store, many)
    assert_nothing_kept(store)

    monkeypatch.setattr(unpacker, "MAX_MEMBERS", 100)
    monkeypatch.setattr(unpacker, "MAX_TOTAL", 1 << 20)
    big = make_archive(
        tmp_path, [*BASE, file("python/big", bytes(1 << 20))], "big.tar.gz"
    )  # compresses to almost nothing: a bomb
    with pytest.raises(IntegrityError, match="unpacks to more than"):
        unpack(store, big)
    assert_nothing_kept(store)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_broken_archive_is_an_integrity_error(damage, store, tmp_path):
    archive = make_archive(tmp_path, [*BASE, file("python/lib/big", os.urandom(200_000))])
    data = archive.read_bytes()
    archive.write_bytes(b"not a tar at all" * 10 if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(IntegrityError, match="not a valid interpreter archive"):
        unpack(store, archive)
    assert_nothing_kept(store)


def test_without_tarfiles_data_filter_the_same_rules_apply(store, tmp_path, monkeypatch):
    # Pythons before 3.10.12 / 3.11.4 have no filter: envlock's own checks are the safety.
    monkeypatch.delattr(tarfile, "data_filter")
    evil = make_archive(tmp_path, HOSTILE["symlink-chain"][0], "evil.tar.gz")
    with pytest.raises(IntegrityError, match="outside"):
        unpack(store, evil)
    assert_nothing_kept(store)
    tree = unpack(store, make_archive(tmp_path, good_members()))
    assert verify_interpreter(tree) == []


def test_cve_2025_4517_layout_is_refused_and_nothing_is_written_beside(store, tmp_path):
    """Nested links past PATH_MAX fool tarfile's data filter on Pythons without the 2025 fixes;
    envlock's rules refuse the archive before anything is written."""
    victim = store.root / "tmp" / "victim"
    victim.parent.mkdir(parents=True)
    victim.write_text("precious")
    path = tmp_path / "archives" / "cve.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cve_2025_4517("victim", "planted", b"owned", prefix="python/"))
    with pytest.raises(IntegrityError) as err:
        unpack(store, path)
    assert str(err.value).startswith("cve.tar.gz: ")
    assert victim.read_text() == "precious"
    assert sorted(os.listdir(store.root / "tmp")) == ["victim"]
    assert not list(store.root.rglob("planted"))


# -- what an environment gets -------------------------------------------------------------------

POSIX = Layout(windows=False, python_version="3.11", bundled=True)


def test_plan_leaves_out_site_packages_and_pip_and_adds_the_python_links(store, tmp_path):
    tree = unpack(store, make_archive(tmp_path, good_members()))
    iplan = plan_interpreter(tree, POSIX, "cpython.tar.gz")
    paths = {e.path for e in iplan.entries}
    assert not [p for p in paths if p.startswith("lib/python3.11/site-packages/")]
    assert not [p for p in paths if p.startswith("bin/pip")]
    assert {"bin/python3.11", "bin/python3", "lib/python3.11/os.py"} <= paths
    assert iplan.links == (("bin/python", "python3.11"),)  # python3 came with the archive
    assert iplan.occupied["bin/python"] == "link"
    assert iplan.mtimes["lib/python3.11/os.py"] == MTIME


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        (
            [directory("python"), file("python/lib/python3.11/os.py", OS_PY)],
            "no python/bin/python3.11",
        ),
        ([*BASE, file("python/pyvenv.cfg", b"home = /usr\n")], "pyvenv.cfg, which envlock writes"),
        ([*BASE, file("python/envlock.json", b"{}")], "envlock.json, which envlock writes"),
    ],
)
def test_plan_refuses_what_is_not_an_install_only_tree(store, tmp_path, members, reason):
    tree = unpack(store, make_archive(tmp_path, members))
    with pytest.raises(IntegrityError, match=reason):
        plan_interpreter(tree, POSIX, "x.tar.gz")


def test_plan_of_a_windows_tree_needs_python_exe(store, tmp_path):
    members = [
        directory("python"),
        file("python/python.exe", b"MZ"),
        file("python/Lib/os.py", OS_PY),
        file("python/Lib/site-packages/pip/__init__.py", b""),
        file("python/Scripts/pip.exe", b"MZ"),
    ]
    tree = unpack(store, make_archive(tmp_path, members))
    windows = Layout(windows=True, python_version="3.11", bundled=True)
    iplan = plan_interpreter(tree, windows, "win.tar.gz")
    assert {e.path for e in iplan.entries if e.kind == "file"} == {"python.exe", "Lib/os.py"}
    assert iplan.links == ()
    with pytest.raises(IntegrityError, match=r"no python/bin/python3\.11"):
        plan_interpreter(tree, POSIX, "win.tar.gz")


def test_a_wheel_may_not_replace_or_write_under_an_interpreter_path(store, tmp_path):
    from envlock.cache.unpack import RecordRow, UnpackedWheel

    tree = unpack(store, make_archive(tmp_path, good_members()))
    occupied = plan_interpreter(tree, POSIX, "cpython.tar.gz").occupied

    def wheel(path: str) -> UnpackedWheel:
        root = tmp_path / "wheels" / hashlib.sha256(path.encode()).hexdigest()
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"x")
        return UnpackedWheel(
            root, "bad-1.0.dist-info", True, (RecordRow(path, record_hash(b"x"), "1"),)
        )

    assert plan([(wheel("bad/__init__.py"), "bad")], POSIX, occupied)  # site-packages: fine
    for path, reason in [
        ("bad-1.0.data/data/lib/python3.11/os.py", "part of the bundled interpreter"),
        ("bad-1.0.data/data/include", "part of the bundled interpreter"),
        ("bad-1.0.data/data/lib/python3.11/os.py/x", "a file of the bundled interpreter"),
        ("bad-1.0.data/data/bin/python3/x", "a file of the bundled interpreter"),
    ]:
        with pytest.raises(IntegrityError, match=reason):
            plan([(wheel(path), "bad")], POSIX, occupied)
