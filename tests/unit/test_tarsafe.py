"""The one tar unpacker (``envlock.cache.tarsafe``): envlock's own rules on every Python, never
tarfile's filter alone. Archives are built here; hostile ones must be refused with one
IntegrityError naming the archive, with nothing written outside the destination."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import unicodedata
from pathlib import Path

import pytest

from envlock.cache.tarsafe import TarRules, unpack_tar
from envlock.errors import IntegrityError
from support.tars import cve_2025_4517

ENV = TarRules("environment archive", 1000, 1 << 30, absolute_links=True)
STRICT = TarRules("interpreter archive", 1000, 1 << 30, top="python", digests=True)
MTIME = 1_600_000_000


def tar_of(*members: tuple[str, bytes, str | bytes]) -> bytes:
    """(name, type, link target or file data) -> gzipped tar bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, extra in members:
            info = tarfile.TarInfo(name)
            info.type, info.mtime = kind, MTIME
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            data = None
            if kind == tarfile.REGTYPE:
                assert isinstance(extra, bytes)
                info.size, data = len(extra), io.BytesIO(extra)
            else:
                assert isinstance(extra, str)
                info.linkname = extra
            tar.addfile(info, data)
    return buf.getvalue()


def F(name: str, data: bytes = b"x") -> tuple[str, bytes, bytes]:
    return (name, tarfile.REGTYPE, data)


def D(name: str) -> tuple[str, bytes, str]:
    return (name, tarfile.DIRTYPE, "")


def L(name: str, target: str) -> tuple[str, bytes, str]:
    return (name, tarfile.SYMTYPE, target)


def H(name: str, target: str) -> tuple[str, bytes, str]:
    return (name, tarfile.LNKTYPE, target)


@pytest.fixture
def place(tmp_path: Path) -> Path:
    """A directory holding an empty ``dest`` and a ``victim`` file beside it."""
    where = tmp_path / "place"
    (where / "dest").mkdir(parents=True)
    (where / "victim").write_text("precious")
    return where


def unpack(place: Path, data: bytes, rules: TarRules = ENV):  # type: ignore[no-untyped-def]
    archive = place.parent / "archive.tar.gz"
    archive.write_bytes(data)
    return unpack_tar(archive, place / "dest", "archive.tar.gz", rules)


def assert_nothing_outside(place: Path) -> None:
    assert sorted(p.name for p in place.iterdir()) == ["dest", "victim"]
    assert (place / "victim").read_text() == "precious"


@pytest.mark.parametrize("with_filter", [True, False], ids=["with-filter", "without-filter"])
def test_cve_2025_4517_layout_is_refused_on_this_python(place, monkeypatch, with_filter):
    if not with_filter:  # Pythons before 3.10.12 / 3.11.4 have no filter: same rules apply
        monkeypatch.delattr(tarfile, "data_filter")
    data = cve_2025_4517("victim", "planted", b"owned")
    with pytest.raises(IntegrityError) as err:
        unpack(place, data)
    assert str(err.value).startswith("archive.tar.gz: ") and "\n" not in str(err.value)
    assert_nothing_outside(place)


def test_cve_layout_with_short_names_is_refused_as_a_member_under_a_link(place):
    # The same nesting without PATH_MAX: the first member under a link member is refused.
    data = tar_of(D("d"), L("a", "d"), D("d/d"), L("d/b", "d"), L("a/b/l", "../.."))
    with pytest.raises(IntegrityError, match="is under a, not a directory"):
        unpack(place, data)
    assert_nothing_outside(place)


HOSTILE = {
    "absolute-name": ([F("/abs")], "absolute path"),
    "dotdot": ([F("../victim", b"owned")], "'..' path component"),
    "dotdot-inside": ([D("a"), F("a/../../victim", b"owned")], "'..' path component"),
    "backslash": ([F("a\\..\\victim")], "backslash"),
    "under-absolute-link": ([L("escape", "/tmp"), F("escape/owned")], "not a directory"),
    "under-relative-link": ([L("escape", ".."), F("escape/victim", b"owned")], "not a directory"),
    "hardlink-through-link": ([D("s"), F("s/f"), L("l", "s"), H("h", "l/f")], "earlier file"),
    "hardlink-out": ([H("h", "../victim")], "points outside"),
    "hardlink-absolute": ([H("h", "/etc/passwd")], "points outside"),
    "hardlink-to-later": ([H("h", "f"), F("f")], "earlier file"),
    "hardlink-to-dir": ([D("d"), H("h", "d")], "earlier file"),
    "link-out": ([L("l", "../victim")], "points outside"),
    "link-chain-out": ([L("a", "."), L("b", "a/..")], "points outside"),
    "link-loop": ([L("a", "b"), L("b", "a")], "points outside"),
    "duplicate": ([F("f"), F("f", b"second")], "twice"),
    "nfc-duplicate": (
        [F(unicodedata.normalize("NFC", "é")), F(unicodedata.normalize("NFD", "é"))],
        "twice",
    ),
    "file-then-dir": ([F("f"), F("f/x")], "not a directory"),
    "dir-then-file": ([F("d/x"), F("d")], "both"),
    "char-device": ([("dev", tarfile.CHRTYPE, "")], "device"),
    "block-device": ([("dev", tarfile.BLKTYPE, "")], "device"),
    "fifo": ([("fifo", tarfile.FIFOTYPE, "")], "fifo"),
    "control-char": ([F("a\nb")], "control character"),
    "long-name": ([F("a" * 300)], "implausibly long name"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("with_filter", [True, False], ids=["with-filter", "without-filter"])
def test_hostile_member_is_refused(kind, with_filter, place, monkeypatch):
    if not with_filter:
        monkeypatch.delattr(tarfile, "data_filter")
    members, reason = HOSTILE[kind]
    with pytest.raises(IntegrityError) as err:
        unpack(place, tar_of(*members))
    message = str(err.value)
    assert message.startswith("archive.tar.gz: ") and reason in message, message
    assert "\n" not in message.replace("a\nb", "")
    assert_nothing_outside(place)
    assert not os.path.lexists("/tmp/owned")


def test_absolute_links_only_where_the_rules_allow_them(place):
    for members in (
        [D("python"), L("python/python3", "/usr/bin/python3")],
        [D("python"), L("python/x", "/etc"), L("python/y", "x/passwd")],
    ):
        with pytest.raises(IntegrityError, match="points outside the tree"):
            unpack(place, tar_of(*members), STRICT)
    # A system-interpreter environment: bin/python names its base interpreter (kept as a link;
    # a relative link to it is no different), and nothing is written through it.
    unpack(place, tar_of(D("bin"), L("bin/python", "/usr/bin/python3"), L("bin/py", "python")))
    assert os.readlink(place / "dest" / "bin" / "python") == "/usr/bin/python3"
    assert os.readlink(place / "dest" / "bin" / "py") == "python"


def test_member_count_and_total_size_are_capped(place):
    few = TarRules("environment archive", 3, 1 << 20)
    with pytest.raises(IntegrityError, match="more than 3 members"):
        unpack(place, tar_of(*(F(f"f{i}") for i in range(4))), few)
    with pytest.raises(IntegrityError, match="unpacks to more than"):
        unpack(place, tar_of(F("big", bytes((1 << 20) + 1))), few)  # a bomb: compresses to KBs
    assert os.listdir(place / "dest") == []


def test_a_good_archive_unpacks_with_links_times_and_modes(place):
    data = tar_of(
        D("./"),
        D("bin"),
        F("bin/tool", b"#!/bin/sh\n"),
        L("bin/python", "/usr/bin/python3"),
        L("bin/py", "python"),
        D("lib"),
        F("lib/os.py", b"# os\n"),
        H("lib/same.py", "lib/os.py"),
        L("lib/up", "../bin/tool"),
    )
    entries = {e.path: e for e in unpack(place, data)}
    dest = place / "dest"
    assert (dest / "lib" / "os.py").read_bytes() == b"# os\n"
    assert (dest / "lib" / "os.py").stat().st_mtime == MTIME
    assert (dest / "lib" / "same.py").stat().st_ino == (dest / "lib" / "os.py").stat().st_ino
    assert os.readlink(dest / "bin" / "py") == "python"
    assert os.readlink(dest / "lib" / "up") == "../bin/tool"
    assert entries["lib/same.py"].kind == "hardlink" and entries["bin/python"].kind == "link"
    assert_nothing_outside(place)


def test_executable_bit_and_digests(place):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, mode in (("python/run", 0o6775), ("python/data", 0o666)):
            info = tarfile.TarInfo(name)
            info.mode, info.size = mode, 3
            tar.addfile(info, io.BytesIO(b"abc"))
    entries = {e.path: e for e in unpack(place, buf.getvalue(), STRICT)}
    run, data = place / "dest" / "run", place / "dest" / "data"
    assert entries["run"].executable and not entries["data"].executable
    assert os.access(run, os.X_OK) and not os.access(data, os.X_OK)
    assert not run.stat().st_mode & 0o7000  # no setuid, setgid or sticky bit
    assert entries["run"].sha256 == hashlib.sha256(b"abc").digest()


def test_a_broken_archive_is_an_integrity_error(place):
    good = tar_of(F("f", os.urandom(100_000)))
    for bad in (b"not a tar" * 10, good[: len(good) // 2]):
        with pytest.raises(IntegrityError, match="not a valid environment archive"):
            unpack(place, bad)


def test_an_sdist_goes_through_the_same_unpacker(tmp_path: Path) -> None:
    """A locked sdist is unpacked to be built (metadata or wheel): the CVE-2025-4517 layout
    must not plant or overwrite anything beside the build directory."""
    from envlock.index.sdist import unpack_sdist

    root = tmp_path / "work"
    dest = root / "src"
    dest.mkdir(parents=True)
    victim = root / "victim.txt"
    victim.write_text("precious")
    forged = cve_2025_4517("victim.txt", "planted.txt", b"owned", prefix="evil-1.0/")
    with pytest.raises(IntegrityError) as info:
        unpack_sdist(forged, "evil-1.0.tar.gz", dest)
    assert str(info.value).startswith("evil-1.0.tar.gz: ")
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in root.iterdir()) == ["src", "victim.txt"]
