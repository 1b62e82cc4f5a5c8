"""check_zip: every ZIP ambiguity is refused with its own reason; real and unusual ZIPs pass.

The archives are made by zipfile at test time and then byte-patched, one defect each, with the
small struct helpers below (offsets per APPNOTE.TXT 4.3.7, 4.3.12 and 4.3.16).
"""

from __future__ import annotations

import ensurepip
import io
import os
import stat
import struct
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest

from envlock.cache.zipsafe import ZipMember, check_zip
from envlock.errors import IntegrityError

LABEL = "demo-1.0-py3-none-any.whl"

# field -> (offset in the record, struct format)
LOCAL = {
    "sig": (0, "<I"), "flags": (6, "<H"), "method": (8, "<H"), "crc": (14, "<I"),
    "csize": (18, "<I"), "usize": (22, "<I"), "name_len": (26, "<H"), "extra_len": (28, "<H"),
}  # fmt: skip
CENTRAL = {
    "flags": (8, "<H"), "method": (10, "<H"), "crc": (16, "<I"), "csize": (20, "<I"),
    "usize": (24, "<I"), "disk": (34, "<H"), "external": (38, "<I"), "offset": (42, "<I"),
}  # fmt: skip
EOCD = {
    "disk": (4, "<H"), "cd_disk": (6, "<H"), "here": (8, "<H"), "total": (10, "<H"),
    "cd_size": (12, "<I"), "cd_offset": (16, "<I"), "comment_len": (20, "<H"),
}  # fmt: skip
CENTRAL_SIZE, LOCAL_SIZE = 46, 30


# --- building and patching archives -------------------------------------------------------


def build(*entries: tuple[str | zipfile.ZipInfo, bytes], comment: bytes = b"") -> bytes:
    """A ZIP of ``entries`` (deflated unless a ZipInfo says otherwise)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
        zf.comment = comment
    return buf.getvalue()


def info(name: str, *, mode: int = 0, stored: bool = False, extra: bytes = b"") -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    zi.external_attr = mode << 16
    zi.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    zi.extra = extra
    return zi


def directory(name: str) -> zipfile.ZipInfo:
    zi = info(name, mode=stat.S_IFDIR | 0o755, stored=True)
    zi.external_attr |= 0x10  # MS-DOS directory bit, as zipfile.mkdir writes it
    return zi


def sample() -> bytes:
    """A small, valid wheel-like archive: directory entries, deflated and stored members."""
    return build(
        (directory("demo/"), b""),
        ("demo/__init__.py", b"VALUE = 1\n" * 40),
        (info("demo/data.bin", mode=stat.S_IFREG | 0o755, stored=True), bytes(range(256))),
        ("demo-1.0.dist-info/RECORD", b"demo/__init__.py,,\n"),
    )


def eocd_at(data: bytes) -> int:
    return data.rindex(b"PK\x05\x06")


def entries(data: bytes) -> list[tuple[str, int, int]]:
    """(name, central entry offset, local header offset) of every central directory entry."""
    eocd = eocd_at(data)
    (total,) = struct.unpack_from("<H", data, eocd + 10)
    (pos,) = struct.unpack_from("<I", data, eocd + 16)
    out = []
    for _ in range(total):
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        (offset,) = struct.unpack_from("<I", data, pos + 42)
        name = data[pos + CENTRAL_SIZE : pos + CENTRAL_SIZE + name_len].decode("utf-8", "replace")
        out.append((name, pos, offset))
        pos += CENTRAL_SIZE + name_len + extra_len + comment_len
    return out


def where(data: bytes, name: str) -> tuple[int, int]:
    return next((c, loc) for n, c, loc in entries(data) if n == name)


def patch(data: bytes, pos: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, pos, value)
    return bytes(out)


def set_local(data: bytes, name: str, field: str, value: int) -> bytes:
    offset, fmt = LOCAL[field]
    return patch(data, where(data, name)[1] + offset, fmt, value)


def set_central(data: bytes, name: str, field: str, value: int) -> bytes:
    offset, fmt = CENTRAL[field]
    return patch(data, where(data, name)[0] + offset, fmt, value)


def set_both(data: bytes, name: str, field: str, value: int) -> bytes:
    return set_local(set_central(data, name, field, value), name, field, value)


def get_local(data: bytes, name: str, field: str) -> int:
    offset, fmt = LOCAL[field]
    return int(struct.unpack_from(fmt, data, where(data, name)[1] + offset)[0])


def zip64_local_sizes(data: bytes, *names: str) -> bytes:
    """Local headers whose 32-bit sizes defer to their zip64 field, as Python >= 3.11's zipfile
    writes them with ``force_zip64`` (3.10 fills in the real sizes as well)."""
    for name in names:
        data = set_local(set_local(data, name, "csize", 0xFFFFFFFF), name, "usize", 0xFFFFFFFF)
    return data


def set_eocd(data: bytes, field: str, value: int) -> bytes:
    offset, fmt = EOCD[field]
    return patch(data, eocd_at(data) + offset, fmt, value)


def rename_bytes(data: bytes, old: bytes, new: bytes) -> bytes:
    """Replace a placeholder name everywhere (local and central) by bytes zipfile won't write."""
    assert len(old) == len(new) and data.count(old) == 2
    return data.replace(old, new)


def with_zip64_end(
    data: bytes, *, count_delta: int = 0, locator_delta: int = 0, classic_count: int = 0xFFFF
) -> bytes:
    """``data`` with a zip64 end record and locator inserted, as zip64 writers lay them out."""
    eocd = eocd_at(data)
    _, _, _, _, total, cd_size, cd_offset, _ = struct.unpack_from("<IHHHHIIH", data, eocd)
    record = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, total + count_delta,
                         total + count_delta, cd_size, cd_offset)  # fmt: skip
    locator = struct.pack("<IIQI", 0x07064B50, 0, eocd + locator_delta, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, classic_count, classic_count,
                      0xFFFFFFFF, 0xFFFFFFFF, 0)  # fmt: skip
    return data[:eocd] + record + locator + end


class NonSeekable(io.RawIOBase):
    """A write-only stream: zipfile then sets flag bit 3 and writes data descriptors."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


def streamed(force_zip64: bool = False) -> bytes:
    stream = NonSeekable()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("demo/__init__.py", "w", force_zip64=force_zip64) as f:
            f.write(b"VALUE = 1\n" * 40)
        with zf.open(info("demo/raw.bin", stored=True), "w", force_zip64=force_zip64) as f:
            f.write(b"raw bytes")
    return bytes(stream.data)


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / LABEL
    path.write_bytes(data)
    return path


def rejects(tmp_path: Path, data: bytes, reason: str) -> str:
    with pytest.raises(IntegrityError) as caught:
        check_zip(write(tmp_path, data), LABEL)
    message = str(caught.value)
    assert message.startswith(f"{LABEL}: "), message
    assert reason in message, message
    assert "\n" not in message
    assert caught.value.exit_code == 4
    return message


def assert_matches_zipfile(path: Path, members: tuple[ZipMember, ...]) -> None:
    """The members agree with what zipfile reads, and data_offset points at each member's data."""
    with zipfile.ZipFile(path) as zf, path.open("rb") as raw:
        infos = zf.infolist()
        assert [m.name for m in members] == [i.filename for i in infos]
        for m, i in zip(members, infos, strict=True):
            assert (m.crc32, m.compressed_size, m.file_size, m.method, m.header_offset) == (
                i.CRC, i.compress_size, i.file_size, i.compress_type, i.header_offset
            )  # fmt: skip
            assert m.is_dir == i.is_dir()
            assert m.mode == i.external_attr >> 16
            raw.seek(m.data_offset)
            compressed = raw.read(m.compressed_size)
            content = zlib.decompress(compressed, -15) if m.method == 8 else compressed
            assert content == zf.read(i)


# --- archives that pass -------------------------------------------------------------------


def test_a_normal_wheel_with_directories_stored_and_deflated_members_passes(tmp_path: Path) -> None:
    path = write(tmp_path, sample())
    members = check_zip(path, LABEL)
    assert_matches_zipfile(path, members)
    by_name = {m.name: m for m in members}
    assert by_name["demo/"].is_dir and by_name["demo/"].mode == stat.S_IFDIR | 0o755
    assert by_name["demo/data.bin"].method == 0 and by_name["demo/data.bin"].mode & 0o111
    assert by_name["demo/__init__.py"].method == 8


def test_entries_with_forced_zip64_extra_fields_pass(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for name in ("demo/a.py", "demo/b.py"):
            with zf.open(name, "w", force_zip64=True) as f:
                f.write(b"x = 1\n" * 100)
    data = zip64_local_sizes(buf.getvalue(), "demo/a.py", "demo/b.py")
    assert get_local(data, "demo/a.py", "csize") == 0xFFFFFFFF  # sizes live in the zip64 field
    path = write(tmp_path, data)
    assert_matches_zipfile(path, check_zip(path, LABEL))


def test_a_zip64_end_record_passes(tmp_path: Path) -> None:
    path = write(tmp_path, with_zip64_end(sample()))
    assert_matches_zipfile(path, check_zip(path, LABEL))


def test_more_than_65535_entries_use_zip64_end_records_and_pass(tmp_path: Path) -> None:
    count = 0x10000 + 5
    path = tmp_path / LABEL
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(count):
            zf.writestr(f"demo/m{i}.py", b"")
    data = path.read_bytes()
    assert data[eocd_at(data) - 20 : eocd_at(data) - 16] == b"PK\x06\x07"  # zip64 locator
    start = time.perf_counter()
    members = check_zip(path, LABEL)
    elapsed = time.perf_counter() - start
    assert len(members) == count
    assert members[-1].name == f"demo/m{count - 1}.py"
    assert elapsed < 10, f"{elapsed:.1f}s for {count} members"  # ~1s here; catches quadratic work


@pytest.mark.parametrize("force_zip64", [False, True], ids=["descriptor32", "descriptor64"])
def test_data_descriptors_pass_when_they_match(tmp_path: Path, force_zip64: bool) -> None:
    data = streamed(force_zip64)
    assert get_local(data, "demo/__init__.py", "flags") & 0x08
    path = write(tmp_path, data)
    assert_matches_zipfile(path, check_zip(path, LABEL))


def test_an_empty_archive_has_no_members(tmp_path: Path) -> None:
    assert check_zip(write(tmp_path, build()), LABEL) == ()


def test_utf8_names_and_case_only_differences_pass(tmp_path: Path) -> None:
    path = write(tmp_path, build(("demo/café.py", b""), ("demo/README", b""), ("demo/readme", b"")))
    assert [m.name for m in check_zip(path, LABEL)] == [
        "demo/café.py",
        "demo/README",
        "demo/readme",
    ]


def _real_wheels() -> list[Path]:
    cache = Path.home() / ".cache"
    roots = [Path(ensurepip.__file__).parent / "_bundled", cache / "envlock", cache / "pip"]
    found: list[Path] = []
    for root in roots:
        if root.is_dir():
            found += sorted(root.rglob("*.whl"))[:5]
    return found


def test_real_wheels_from_pypi_pass() -> None:
    wheels = _real_wheels()
    if not wheels:
        pytest.skip("no real wheel on this machine (ensurepip bundle, ~/.cache/envlock, pip cache)")
    for wheel in wheels:
        assert_matches_zipfile(wheel, check_zip(wheel, wheel.name))


# --- not a ZIP, truncated, trailing data, comments, multi-disk -----------------------------


def test_not_a_zip_is_refused(tmp_path: Path) -> None:
    rejects(tmp_path, b"", "not a ZIP archive")
    rejects(tmp_path, b"#!/bin/sh\necho this is not a wheel at all\n", "not a ZIP archive")


def test_a_truncated_archive_is_refused(tmp_path: Path) -> None:
    data = sample()
    rejects(tmp_path, data[: len(data) // 2], "no end-of-central-directory record")
    rejects(tmp_path, data[:-10], "truncated end-of-central-directory record")


def test_trailing_bytes_after_the_end_record_are_refused(tmp_path: Path) -> None:
    rejects(tmp_path, sample() + b"appended", "8 bytes after the end-of-central-directory record")


def test_an_archive_comment_is_refused(tmp_path: Path) -> None:
    rejects(tmp_path, build(("a.py", b""), comment=b"hello"), "archive comment of 5 bytes")


def test_a_comment_that_runs_past_the_end_is_refused(tmp_path: Path) -> None:
    rejects(tmp_path, set_eocd(sample(), "comment_len", 3), "comment runs past the end")


def test_a_second_archive_hidden_in_the_comment_is_refused(tmp_path: Path) -> None:
    hidden = build(("demo/__init__.py", b"import os; os.system('evil')\n"))
    data = build(("demo/__init__.py", b"VALUE = 1\n"), comment=hidden)
    # zipfile tries the last 22 bytes first, so it reads the hidden archive; readers that honour
    # the comment read the outer one: two contents under one hash.
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("demo/__init__.py") == b"import os; os.system('evil')\n"
    rejects(tmp_path, data, "more than one end-of-central-directory record")


def test_a_multi_disk_archive_is_refused(tmp_path: Path) -> None:
    rejects(tmp_path, set_eocd(sample(), "disk", 1), "multi-disk archive")
    rejects(tmp_path, set_eocd(sample(), "cd_disk", 1), "multi-disk archive")
    rejects(tmp_path, set_central(sample(), "demo/__init__.py", "disk", 1), "multi-disk archive")


# --- end record counts, central directory position, layout ---------------------------------


def test_entry_counts_that_disagree_are_refused(tmp_path: Path) -> None:
    data = sample()
    rejects(tmp_path, set_eocd(data, "here", 3), "counts 3 entries on this disk but 4 in total")
    both = set_eocd(set_eocd(data, "here", 3), "total", 3)
    rejects(tmp_path, both, "end record counts 3 entries, the central directory holds 4")


def test_a_central_directory_size_or_offset_that_misses_is_refused(tmp_path: Path) -> None:
    data = sample()
    (cd_size,) = struct.unpack_from("<I", data, eocd_at(data) + 12)
    rejects(tmp_path, set_eocd(data, "cd_size", cd_size - 1), "does not end where the end record")
    rejects(tmp_path, set_eocd(data, "cd_offset", 5), "does not end where the end record")


def test_prepended_data_is_refused(tmp_path: Path) -> None:
    stub = b"MZ self-extractor stub " * 4
    data = sample()
    rejects(tmp_path, stub + data, "does not end where the end record begins")
    # Shifting every offset (as `zip -A` does) makes it consistent but still prepended.
    (cd_offset,) = struct.unpack_from("<I", data, eocd_at(data) + 16)
    shifted = set_eocd(stub + data, "cd_offset", cd_offset + len(stub))
    for name, _, local in entries(data):
        shifted = set_central(shifted, name, "offset", local + len(stub))
    rejects(tmp_path, shifted, f"{len(stub)} bytes before the first local header")


def test_a_local_entry_missing_from_the_central_directory_is_refused(tmp_path: Path) -> None:
    """A streaming reader would install the hidden member; a seeking one would not see it."""
    data = build(("demo/a.py", b"a"), ("demo/hidden.py", b"evil"), ("demo/z.py", b"z"))
    listed = entries(data)
    start, end = listed[1][1], listed[2][1]  # the central entry of demo/hidden.py
    data = data[:start] + data[end:]
    eocd = eocd_at(data)
    data = set_eocd(set_eocd(data, "here", 2), "total", 2)
    (cd_size,) = struct.unpack_from("<I", data, eocd + 12)
    data = set_eocd(data, "cd_size", cd_size - (end - start))
    rejects(tmp_path, data, "unaccounted bytes between 'demo/a.py' and 'demo/z.py'")


def test_overlapping_entries_are_refused(tmp_path: Path) -> None:
    data = build(("demo/a.py", b"a" * 100), ("demo/b.py", b"b" * 100))
    size = get_local(data, "demo/a.py", "csize")
    rejects(tmp_path, set_both(data, "demo/a.py", "csize", size + 1), "overlap")
    # Two central entries for one local header: the "overlapping files" zip bomb.
    _, b_local = where(data, "demo/b.py")
    pointed = set_central(data, "demo/a.py", "offset", b_local)
    rejects(tmp_path, pointed, "local header names 'demo/b.py', the central directory 'demo/a.py'")


def test_a_gap_after_the_last_entry_is_refused(tmp_path: Path) -> None:
    data = build(("demo/a.py", b"a" * 100))
    size = get_local(data, "demo/a.py", "csize")
    rejects(tmp_path, set_both(data, "demo/a.py", "csize", size - 1), "unaccounted bytes before")


def test_a_local_header_offset_past_the_entries_is_refused(tmp_path: Path) -> None:
    data = sample()
    (cd_offset,) = struct.unpack_from("<I", data, eocd_at(data) + 16)
    rejects(tmp_path, set_central(data, "demo/__init__.py", "offset", cd_offset), "in or past")


# --- local header against central directory --------------------------------------------------


def test_a_bad_local_signature_is_refused(tmp_path: Path) -> None:
    data = set_local(sample(), "demo/__init__.py", "sig", 0x12345678)
    rejects(tmp_path, data, "no local header for 'demo/__init__.py'")


def test_a_local_name_that_differs_is_refused(tmp_path: Path) -> None:
    data = sample()
    _, local = where(data, "demo/__init__.py")
    name_at = local + LOCAL_SIZE
    data = data[:name_at] + b"evil" + data[name_at + 4 :]
    rejects(tmp_path, data, "local header names 'evil/__init__.py'")


def test_local_flags_that_differ_are_refused(tmp_path: Path) -> None:
    data = set_local(sample(), "demo/__init__.py", "flags", 0x0800)
    rejects(tmp_path, data, "flags of 'demo/__init__.py' differ")


def test_a_local_compression_method_that_differs_is_refused(tmp_path: Path) -> None:
    data = set_local(sample(), "demo/data.bin", "method", 8)
    rejects(tmp_path, data, "compression method of 'demo/data.bin' differs: local 8, central 0")


def test_a_local_crc_that_differs_is_refused(tmp_path: Path) -> None:
    data = set_local(sample(), "demo/__init__.py", "crc", 1234)
    rejects(tmp_path, data, "CRC-32 of 'demo/__init__.py' differs: local 1234")


def test_local_sizes_that_differ_are_refused(tmp_path: Path) -> None:
    data = sample()
    rejects(tmp_path, set_local(data, "demo/__init__.py", "usize", 7), "size of 'demo/__init__.py'")
    rejects(tmp_path, set_local(data, "demo/__init__.py", "csize", 7), "compressed size of")


def test_a_data_descriptor_that_differs_is_refused(tmp_path: Path) -> None:
    data = streamed()
    _, local = where(data, "demo/__init__.py")
    name_len, extra_len = struct.unpack_from("<HH", data, local + 26)
    (csize,) = struct.unpack_from("<I", data, where(data, "demo/__init__.py")[0] + 20)
    descriptor = local + LOCAL_SIZE + name_len + extra_len + csize
    assert data[descriptor : descriptor + 4] == b"PK\x07\x08"
    data = patch(data, descriptor + 4, "<I", 0xDEADBEEF)
    rejects(tmp_path, data, "data descriptor of 'demo/__init__.py' (crc 0xdeadbeef")


def test_local_values_with_a_descriptor_must_be_zero_or_agree(tmp_path: Path) -> None:
    data = set_local(streamed(), "demo/__init__.py", "crc", 99)
    rejects(tmp_path, data, "CRC-32 of 'demo/__init__.py' differs: local 99")


# --- ZIP64 consistency ---------------------------------------------------------------------


def test_inconsistent_zip64_end_records_are_refused(tmp_path: Path) -> None:
    data = sample()
    rejects(tmp_path, with_zip64_end(data, count_delta=1), "holds 4")
    rejects(tmp_path, with_zip64_end(data, locator_delta=-8), "zip64 locator points to offset")
    rejects(tmp_path, with_zip64_end(data, classic_count=3), "inconsistent zip64 entry count")
    rejects(tmp_path, set_eocd(data, "cd_offset", 0xFFFFFFFF), "there is no zip64 locator")


def test_inconsistent_zip64_extra_fields_are_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("demo/a.py", "w", force_zip64=True) as f,
    ):
        f.write(b"x = 1\n" * 100)
    data = zip64_local_sizes(buf.getvalue(), "demo/a.py")
    rejects(
        tmp_path,
        set_central(data, "demo/a.py", "csize", 0xFFFFFFFF),
        "0xFFFFFFFF size or offset without a zip64 extra field",
    )
    # The local zip64 field holds (size, compressed size) right after the name.
    _, local = where(data, "demo/a.py")
    value_at = local + LOCAL_SIZE + len("demo/a.py") + 4
    rejects(tmp_path, patch(data, value_at, "<Q", 5), "size of 'demo/a.py' differs: local 5")
    real_csize = struct.unpack_from("<Q", data, value_at + 8)[0]
    rejects(
        tmp_path,
        set_local(patch(data, value_at + 8, "<Q", real_csize + 1), "demo/a.py", "csize", 1),
        "inconsistent zip64 sizes",
    )


def test_malformed_or_repeated_extra_fields_are_refused(tmp_path: Path) -> None:
    twice = struct.pack("<HH2s", 0xCAFE, 2, b"ab") * 2
    rejects(tmp_path, build((info("a.py", extra=twice), b"")), "extra field 0xcafe appears twice")
    data = build((info("a.py", extra=struct.pack("<HH4s", 0xCAFE, 4, b"abcd")), b""))
    cut = patch(data, where(data, "a.py")[0] + 46 + 4 + 2, "<H", 9)  # length past the field
    rejects(tmp_path, cut, "malformed extra field")


def test_a_unicode_path_field_naming_another_file_is_refused(tmp_path: Path) -> None:
    other = b"demo/evil.py"
    field = struct.pack("<HHB", 0x7075, 5 + len(other), 1) + struct.pack("<I", 0) + other
    rejects(tmp_path, build((info("demo/a.py", extra=field), b"")), "Unicode Path extra field")
    same = b"demo/a.py"
    field = struct.pack("<HHB", 0x7075, 5 + len(same), 1) + struct.pack("<I", 0) + same
    assert check_zip(write(tmp_path, build((info("demo/a.py", extra=field), b""))), LABEL)


# --- member names -----------------------------------------------------------------------------


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns "Duplicate name" and writes it anyway
        data = build(("demo/a.py", b"good"), ("demo/a.py", b"evil"))
    rejects(tmp_path, data, "duplicate member name 'demo/a.py'")


def test_names_equal_after_unicode_normalisation_are_refused(tmp_path: Path) -> None:
    data = build(("demo/caf\u00e9.py", b""), ("demo/cafe\u0301.py", b""))
    rejects(tmp_path, data, "equal after Unicode normalisation")


def test_a_path_that_is_both_file_and_directory_is_refused(tmp_path: Path) -> None:
    rejects(tmp_path, build(("demo/a", b""), ("demo/a/b.py", b"")), "'demo/a' is both")
    rejects(tmp_path, build(("demo/a", b""), (directory("demo/a/"), b"")), "'demo/a' is both")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("/etc/passwd", "absolute member name"),
        ("demo\\evil.py", "backslash in member name"),
        ("C:evil.py", "drive letter in member name"),
        ("c:/evil.py", "drive letter in member name"),
        ("../evil.py", "not a normalised path"),
        ("demo/../../evil.py", "not a normalised path"),
        ("demo//evil.py", "not a normalised path"),
        ("demo/./evil.py", "not a normalised path"),
        ("./evil.py", "not a normalised path"),
        ("demo/..", "not a normalised path"),
        ("demo\tevil.py", "control character in member name"),
        ("demo/evil\x7f.py", "control character in member name"),
    ],
)
def test_unsafe_member_names_are_refused(tmp_path: Path, name: str, reason: str) -> None:
    rejects(tmp_path, build((name, b"x")), reason)


def test_an_empty_or_nul_name_is_refused(tmp_path: Path) -> None:
    # zipfile cuts names at NUL and cannot write an empty one: patch placeholders instead.
    data = build(("demo/aXb.py", b""))
    rejects(tmp_path, rename_bytes(data, b"aXb", b"a\x00b"), "control character in member name")
    data = build(("X", b""))
    ((_, central, local),) = entries(data)
    data = data[: central + CENTRAL_SIZE] + data[central + CENTRAL_SIZE + 1 :]  # cut the "X"s
    data = data[: local + LOCAL_SIZE] + data[local + LOCAL_SIZE + 1 :]
    data = patch(patch(data, local + 26, "<H", 0), central - 1 + 28, "<H", 0)  # name lengths
    data = set_eocd(set_eocd(data, "cd_size", CENTRAL_SIZE), "cd_offset", central - 1)
    rejects(tmp_path, data, "empty member name")


def test_a_non_ascii_name_without_the_utf8_flag_is_refused(tmp_path: Path) -> None:
    data = build(("demo/café.py", b""))
    data = set_both(data, "demo/café.py", "flags", 0)
    rejects(tmp_path, data, "non-ASCII name b'demo/caf\\xc3\\xa9.py' without the UTF-8 flag")


def test_an_invalid_utf8_name_is_refused(tmp_path: Path) -> None:
    data = build(("demo/é.py", b""))
    data = rename_bytes(data, "é".encode(), b"\xff\xfe")
    rejects(tmp_path, data, "is not valid UTF-8")


def test_a_trailing_slash_on_a_file_is_refused(tmp_path: Path) -> None:
    rejects(tmp_path, build((info("demo/", stored=True), b"data")), "directory entry 'demo/'")
    regular = info("demo/", mode=stat.S_IFREG | 0o644, stored=True)
    rejects(tmp_path, build((regular, b"")), "ends with '/' but has a regular file's mode")


def test_a_directory_mode_without_a_trailing_slash_is_refused(tmp_path: Path) -> None:
    rejects(tmp_path, build((info("demo", mode=stat.S_IFDIR | 0o755), b"")), "lacks a trailing")


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        (stat.S_IFLNK | 0o777, "is a symbolic link"),
        (stat.S_IFIFO | 0o644, "is not a regular file or directory"),
        (stat.S_IFCHR | 0o644, "is not a regular file or directory"),
        (stat.S_IFBLK | 0o644, "is not a regular file or directory"),
        (stat.S_IFSOCK | 0o644, "is not a regular file or directory"),
    ],
    ids=["symlink", "fifo", "char-device", "block-device", "socket"],
)
def test_links_and_special_files_are_refused(tmp_path: Path, mode: int, reason: str) -> None:
    rejects(tmp_path, build((info("demo/x", mode=mode), b"/etc/passwd")), f"'demo/x' {reason}")


# --- encryption, methods, stored sizes ----------------------------------------------------------


@pytest.mark.parametrize("bit", [0x0001, 0x0040, 0x2000], ids=["encrypted", "strong", "masked"])
def test_encrypted_members_are_refused(tmp_path: Path, bit: int) -> None:
    data = set_both(sample(), "demo/__init__.py", "flags", bit)
    rejects(tmp_path, data, "'demo/__init__.py' is encrypted")


def test_compression_methods_other_than_stored_and_deflated_are_refused(tmp_path: Path) -> None:
    zi = info("demo/a.py")
    zi.compress_type = zipfile.ZIP_BZIP2
    rejects(tmp_path, build((zi, b"x" * 100)), "uses compression method 12")


def test_a_stored_member_whose_sizes_differ_is_refused(tmp_path: Path) -> None:
    data = set_both(sample(), "demo/data.bin", "csize", 255)
    rejects(tmp_path, data, "stored member 'demo/data.bin' has compressed size 255 != size 256")


def test_an_unreadable_file_is_an_integrity_error(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match=f"{LABEL}: cannot read the archive"):
        check_zip(tmp_path / LABEL, LABEL)
    assert not os.path.exists(tmp_path / LABEL)
