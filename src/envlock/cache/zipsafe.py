"""A strict structural check of wheel ZIPs, so that every ZIP reader sees the same members.

ZIP readers disagree on malformed archives (uv's CVE-2025-54368: a streaming reader follows the
local headers, a seeking one the central directory), so an ambiguous wheel could be verified as
one content and installed as another. :func:`check_zip` reads only the structure — the end
records, the central directory, every local header and data descriptor, never member data — and
raises :class:`~envlock.errors.IntegrityError` for the first ambiguity it finds.

Decisions: a name without flag bit 11 must be ASCII (cp437 and UTF-8 readers would decode it
differently); names equal after Unicode NFC normalisation are duplicates (macOS file systems
merge them), names differing only in case are not (they are distinct on Linux and occur in real
wheels); an archive comment is refused outright (it can hold a second archive).
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

from envlock.cache.zipnames import (
    DEFLATED,
    FLAG_UTF8,
    STORED,
    check_file_dir_clash,
    check_member,
    check_unicode_path,
    decode_name,
)
from envlock.cache.zipnames import Reject as _Reject
from envlock.errors import IntegrityError

__all__ = ["ZipMember", "check_zip"]

# APPNOTE.TXT 4.3.x record layouts (little-endian), signature first.
# End of central directory: sig, disk, cd disk, entries here, entries, cd size, cd offset, comment.
_EOCD = struct.Struct("<IHHHHIIH")
# Zip64 locator: sig, disk of the zip64 end record, its offset, total disks.
_ZIP64_LOCATOR = struct.Struct("<IIQI")
# Zip64 end record: sig, size - 12, made by, needed, disk, cd disk, entries here, entries, cd
# size, cd offset.
_ZIP64_EOCD = struct.Struct("<IQHHIIQQQQ")
# Central entry: see the unpacking in _parse_central.
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
# Local header: sig, needed, flags, method, time, date, crc, csize, usize, name len, extra len.
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_DESCRIPTOR32 = struct.Struct("<III")  # crc, compressed size, uncompressed size
_DESCRIPTOR64 = struct.Struct("<IQQ")
_EXTRA_HEADER = struct.Struct("<HH")  # tag, length

_EOCD_SIG = b"PK\x05\x06"
_ZIP64_LOCATOR_SIG = b"PK\x06\x07"
_ZIP64_EOCD_SIG = 0x06064B50
_CENTRAL_SIG = 0x02014B50
_LOCAL_SIG = b"PK\x03\x04"
_LOCAL_GUESS = _LOCAL.size + 64  # header plus a typical extra field, besides the name
_DESCRIPTOR_SIG = b"PK\x07\x08"

_ZIP64_TAG = 0x0001
_MAX_COMMENT = 0xFFFF
_U16 = 0xFFFF
_U32 = 0xFFFFFFFF

_FLAG_ENCRYPTED = 1 << 0
_FLAG_DESCRIPTOR = 1 << 3
_FLAG_STRONG_ENCRYPTION = 1 << 6
_FLAG_MASKED_HEADERS = 1 << 13  # central directory encryption: local values are masked
_ENCRYPTION_FLAGS = _FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION | _FLAG_MASKED_HEADERS
# Flags that change how a member is read; the other bits (deflate level hints) may differ.
_SIGNIFICANT_FLAGS = _ENCRYPTION_FLAGS | _FLAG_DESCRIPTOR | FLAG_UTF8


@dataclass(frozen=True)
class ZipMember:
    """One member of a checked ZIP, with its sizes and offsets resolved (ZIP64 applied)."""

    name: str  # decoded member name: UTF-8 with flag bit 11, else ASCII
    compressed_size: int
    file_size: int  # declared uncompressed size
    crc32: int
    method: int  # 0 stored or 8 deflated
    header_offset: int
    data_offset: int  # where the compressed bytes begin
    mode: int  # unix mode from external_attr >> 16 (0 if none)
    is_dir: bool


@dataclass(frozen=True)
class _End:
    cd_offset: int
    cd_size: int
    entries: int
    cd_end: int  # where the central directory must end: the zip64 or the classic end record


class _Central(NamedTuple):
    """A central directory entry's checked values (ZIP64 applied); a tuple, as there are many."""

    name: str
    raw_name: bytes
    flags: int
    method: int
    crc32: int
    compressed_size: int
    file_size: int
    header_offset: int
    mode: int
    is_dir: bool


def check_zip(path: Path, label: str) -> tuple[ZipMember, ...]:
    """Every member of a wheel ZIP, or IntegrityError(f"{label}: {reason}") at the first doubt."""
    try:
        with open(path, "rb", buffering=0) as f:
            size = f.seek(0, 2)
            end = _find_end(f, size)
            if end.cd_offset + end.cd_size != end.cd_end:
                # Readers that trust the offset and readers that trust the position disagree.
                raise _Reject(
                    f"central directory at offset {end.cd_offset} ({end.cd_size} bytes) does not "
                    f"end where the end record begins ({end.cd_end}): data prepended or missing"
                )
            central = _parse_central(
                _read(f, end.cd_offset, end.cd_size, end.cd_end, "central directory"), end
            )
            located = [_check_local(f, c, end.cd_offset) for c in central]
        _check_layout(located, end.cd_offset)
    except _Reject as exc:
        raise IntegrityError(f"{label}: {exc}") from None
    except OSError as exc:
        raise IntegrityError(f"{label}: cannot read the archive ({exc.strerror or exc})") from None
    return tuple(m for m, _ in located)


def _read(f: BinaryIO, pos: int, n: int, limit: int, what: str) -> bytes:
    """``n`` bytes at ``pos``, which must all lie before ``limit``."""
    if pos < 0 or n < 0 or pos + n > limit:
        raise _Reject(f"truncated or misplaced {what} (bytes {pos}..{pos + n} past {limit})")
    f.seek(pos)
    data = f.read(n)
    if len(data) != n:
        raise _Reject(f"truncated {what}")
    return data


def _find_end(f: BinaryIO, size: int) -> _End:
    """Locate the end records: exactly at the end of the file, alone, single-disk."""
    if size < _EOCD.size:
        raise _Reject(f"not a ZIP archive (only {size} bytes)")
    # Scan backward like readers that tolerate comments do: any other record whose comment
    # reaches the end of the file is one some reader would pick instead of ours.
    start = max(0, size - _EOCD.size - _MAX_COMMENT)
    window = _read(f, start, size - start, size, "end of the archive")
    candidates: list[int] = []
    last_seen = -1
    pos = window.rfind(_EOCD_SIG)
    while pos != -1:
        last_seen = max(last_seen, pos)
        if pos + _EOCD.size <= len(window):
            comment_len = _EOCD.unpack_from(window, pos)[7]
            if pos + _EOCD.size + comment_len == len(window):
                candidates.append(start + pos)
        pos = window.rfind(_EOCD_SIG, 0, pos)
    if not candidates:
        if last_seen == -1:
            raise _Reject("not a ZIP archive or truncated (no end-of-central-directory record)")
        extra = len(window) - last_seen - _EOCD.size
        if extra < 0:
            raise _Reject("truncated end-of-central-directory record")
        comment_len = _EOCD.unpack_from(window, last_seen)[7]
        if comment_len > extra:
            raise _Reject("truncated: the archive comment runs past the end of the file")
        raise _Reject(f"{extra - comment_len} bytes after the end-of-central-directory record")
    if len(candidates) > 1:
        where = ", ".join(str(c) for c in sorted(candidates))
        raise _Reject(f"more than one end-of-central-directory record (at offsets {where})")
    eocd = candidates[0]
    if eocd != size - _EOCD.size:
        raise _Reject(
            f"archive comment of {size - _EOCD.size - eocd} bytes "
            "(a comment can hide a second archive)"
        )
    _, disk, cd_disk, here, total, cd_size, cd_offset, _ = _EOCD.unpack_from(window, eocd - start)
    if disk != 0 or cd_disk != 0:
        raise _Reject(f"multi-disk archive (disk {disk}, central directory on disk {cd_disk})")
    if here != total:
        raise _Reject(f"end record counts {here} entries on this disk but {total} in total")
    locator = eocd - _ZIP64_LOCATOR.size
    if locator >= 0 and _read(f, locator, 4, eocd, "zip64 locator") == _ZIP64_LOCATOR_SIG:
        return _zip64_end(f, locator, total, cd_size, cd_offset)
    if total == _U16 or _U32 in (cd_size, cd_offset):
        raise _Reject("end record defers to ZIP64 (0xFFFF…) but there is no zip64 locator")
    return _End(cd_offset, cd_size, total, eocd)


def _zip64_end(f: BinaryIO, locator: int, total: int, cd_size: int, cd_offset: int) -> _End:
    """The zip64 end record, which must sit right before its locator and agree with the EOCD."""
    raw = _read(f, locator, _ZIP64_LOCATOR.size, locator + _ZIP64_LOCATOR.size, "zip64 locator")
    _, record_disk, record_offset, disks = _ZIP64_LOCATOR.unpack(raw)
    if record_disk != 0 or disks > 1:
        raise _Reject(f"multi-disk archive (zip64 locator names {disks} disks)")
    record = locator - _ZIP64_EOCD.size
    if record_offset != record:
        raise _Reject(
            f"zip64 locator points to offset {record_offset}, "
            f"the zip64 end record must be at {record}"
        )
    raw = _read(f, record, _ZIP64_EOCD.size, locator, "zip64 end-of-central-directory record")
    sig, rest, _, _, disk, cd_disk, here64, total64, size64, offset64 = _ZIP64_EOCD.unpack(raw)
    if sig != _ZIP64_EOCD_SIG:
        raise _Reject("bad zip64 end-of-central-directory signature")
    if rest != _ZIP64_EOCD.size - 12:
        # Extensible data would put the record elsewhere than readers look for it.
        raise _Reject(f"zip64 end record declares {rest + 12} bytes, expected {_ZIP64_EOCD.size}")
    if disk != 0 or cd_disk != 0:
        raise _Reject(f"multi-disk archive (zip64 disk {disk}, central directory on {cd_disk})")
    if here64 != total64:
        raise _Reject(
            f"zip64 end record counts {here64} entries on this disk but {total64} in total"
        )
    # The classic fields are either the 0xFFFF… placeholder or the same value.
    for name, classic, wide, placeholder in (
        ("entry count", total, total64, _U16),
        ("central directory size", cd_size, size64, _U32),
        ("central directory offset", cd_offset, offset64, _U32),
    ):
        if classic not in (placeholder, wide):
            raise _Reject(f"inconsistent zip64 {name}: end record {classic}, zip64 record {wide}")
    return _End(offset64, size64, total64, record)


def _extra_fields(extra: bytes, where: str) -> dict[int, bytes]:
    """The extra field as {tag: data}; a malformed or repeated field is ambiguous."""
    fields: dict[int, bytes] = {}
    pos = 0
    while pos < len(extra):
        if pos + _EXTRA_HEADER.size > len(extra):
            raise _Reject(f"malformed extra field in {where}")
        tag, length = _EXTRA_HEADER.unpack_from(extra, pos)
        pos += _EXTRA_HEADER.size
        if pos + length > len(extra):
            raise _Reject(f"malformed extra field in {where}")
        if tag in fields:
            raise _Reject(f"extra field 0x{tag:04x} appears twice in {where}")
        fields[tag] = extra[pos : pos + length]
        pos += length
    return fields


def _zip64_values(fields: dict[int, bytes], values: list[int], where: str) -> list[int]:
    """``values`` with each 0xFFFFFFFF replaced, in order, by the next 8 bytes of the zip64 field.

    The field must hold exactly those values: readers that read it positionally and readers
    that follow APPNOTE 4.5.3 would otherwise take different numbers from it."""
    data = fields.get(_ZIP64_TAG)
    if data is None and _U32 not in values:
        return values
    if data is None:
        raise _Reject(f"0xFFFFFFFF size or offset without a zip64 extra field in {where}")
    wide = [i for i, v in enumerate(values) if v == _U32]
    if len(data) != 8 * len(wide):
        raise _Reject(
            f"zip64 extra field in {where} holds {len(data)} bytes, "
            f"its 0xFFFFFFFF fields need {8 * len(wide)}"
        )
    out = list(values)
    for k, i in enumerate(wide):
        out[i] = struct.unpack_from("<Q", data, 8 * k)[0]
    return out


def _local_zip64_sizes(
    fields: dict[int, bytes], usize: int, csize: int, where: str
) -> tuple[int, int]:
    """A local header's sizes: in a zip64 field it holds both (APPNOTE 4.5.3), and some writers
    (Bazel) add one to every header; a 32-bit value that is not 0xFFFFFFFF must then agree."""
    data = fields.get(_ZIP64_TAG)
    if data is None:
        usize, csize = _zip64_values(fields, [usize, csize], where)
        return usize, csize
    if len(data) != 16:
        raise _Reject(f"zip64 extra field in {where} holds {len(data)} bytes, expected 16")
    wide_usize, wide_csize = struct.unpack("<QQ", data)
    if usize not in (_U32, wide_usize) or csize not in (_U32, wide_csize):
        raise _Reject(
            f"inconsistent zip64 sizes in {where}: {csize}/{usize} vs {wide_csize}/{wide_usize}"
        )
    return wide_usize, wide_csize


def _parse_central(data: bytes, end: _End) -> list[_Central]:
    """Every central directory entry, checked on its own and against the others' names."""
    entries: list[_Central] = []
    seen: dict[str, str] = {}  # NFC name -> name as stored
    pos = 0
    while pos < len(data):
        if pos + _CENTRAL.size > len(data):
            raise _Reject(f"truncated central directory entry at offset {end.cd_offset + pos}")
        (
            sig, _made_by, _needed, flags, method, _time, _date, crc, csize, usize,
            name_len, extra_len, comment_len, disk, _internal, external, offset,
        ) = _CENTRAL.unpack_from(data, pos)  # fmt: skip
        if sig != _CENTRAL_SIG:
            raise _Reject(f"bad central directory signature at offset {end.cd_offset + pos}")
        name_start = pos + _CENTRAL.size
        pos = name_start + name_len + extra_len + comment_len
        if pos > len(data):
            raise _Reject(f"central directory entry at {end.cd_offset + name_start} runs past it")
        raw_name = data[name_start : name_start + name_len]
        name = decode_name(raw_name, flags)
        where = f"the central directory entry of {name!r}"
        extra = _extra_fields(
            data[name_start + name_len : name_start + name_len + extra_len], where
        )
        if flags & _ENCRYPTION_FLAGS:
            raise _Reject(f"{name!r} is encrypted")
        if method not in (STORED, DEFLATED):
            raise _Reject(f"{name!r} uses compression method {method} (only stored or deflated)")
        if disk != 0:
            raise _Reject(f"multi-disk archive ({name!r} starts on disk {disk})")
        usize, csize, offset = _zip64_values(extra, [usize, csize, offset], where)
        check_unicode_path(extra, name)
        mode, is_dir = check_member(name, method, csize, usize, external)
        key = unicodedata.normalize("NFC", name)
        if key in seen:
            other = seen[key]
            raise _Reject(
                f"duplicate member name {name!r}"
                if other == name
                else f"member names {other!r} and {name!r} are equal after Unicode normalisation"
            )
        seen[key] = name
        entries.append(
            _Central(name, raw_name, flags, method, crc, csize, usize, offset, mode, is_dir)
        )
    if len(entries) != end.entries:
        raise _Reject(
            f"end record counts {end.entries} entries, the central directory holds {len(entries)}"
        )
    check_file_dir_clash(seen.keys())
    return entries


def _check_local(f: BinaryIO, c: _Central, limit: int) -> tuple[ZipMember, int]:
    """Check one member's local header (and data descriptor) against its central entry.

    Returns the member, with its data offset, and where its local entry ends."""
    what = f"local header of {c.name!r}"
    start = c.header_offset
    if start + _LOCAL.size > limit:
        raise _Reject(f"{what} would lie at offset {start}, in or past the central directory")
    # One read usually covers header, name and extra field (the name should be the same).
    head = _read(f, start, min(_LOCAL_GUESS + len(c.raw_name), limit - start), limit, what)
    if head[:4] != _LOCAL_SIG:
        raise _Reject(f"no local header for {c.name!r} at offset {start}")
    (
        _, _needed, flags, method, _time, _date, crc, csize, usize, name_len, extra_len
    ) = _LOCAL.unpack_from(head)  # fmt: skip
    data_offset = start + _LOCAL.size + name_len + extra_len
    if data_offset > start + len(head):
        head += _read(f, start + len(head), data_offset - start - len(head), limit, what)
    raw_name = head[_LOCAL.size : _LOCAL.size + name_len]
    if raw_name != c.raw_name:
        try:
            shown = repr(raw_name.decode("utf-8"))
        except UnicodeDecodeError:
            shown = repr(raw_name)
        raise _Reject(f"local header names {shown}, the central directory {c.name!r}")
    if (flags ^ c.flags) & _SIGNIFICANT_FLAGS:
        raise _Reject(f"flags of {c.name!r} differ: local 0x{flags:04x}, central 0x{c.flags:04x}")
    if method != c.method:
        raise _Reject(
            f"compression method of {c.name!r} differs: local {method}, central {c.method}"
        )
    fields = _extra_fields(head[_LOCAL.size + name_len : _LOCAL.size + name_len + extra_len], what)
    usize, csize = _local_zip64_sizes(fields, usize, csize, what)
    check_unicode_path(fields, c.name)
    for field, local, central in (
        ("CRC-32", crc, c.crc32),
        ("compressed size", csize, c.compressed_size),
        ("size", usize, c.file_size),
    ):
        # With a data descriptor the local values may be zero; the descriptor then holds them.
        if local != central and not (flags & _FLAG_DESCRIPTOR and local == 0):
            raise _Reject(f"{field} of {c.name!r} differs: local {local}, central {central}")
    member = ZipMember(
        c.name, c.compressed_size, c.file_size, c.crc32, c.method, start, data_offset, c.mode,
        c.is_dir,
    )  # fmt: skip
    end = data_offset + c.compressed_size
    if flags & _FLAG_DESCRIPTOR:
        # APPNOTE 4.3.9.2: 8-byte sizes when the local header has a zip64 field (or must).
        wide = _ZIP64_TAG in fields or max(c.compressed_size, c.file_size) >= _U32
        end = _check_descriptor(f, member, end, wide, limit)
    return member, end


def _check_descriptor(f: BinaryIO, m: ZipMember, pos: int, wide: bool, limit: int) -> int:
    """Check the data descriptor after a member's data; where it ends."""
    what = f"data descriptor of {m.name!r}"
    body = _DESCRIPTOR64 if wide else _DESCRIPTOR32
    # The signature is optional (APPNOTE 4.3.9.3); either way the layout check then demands
    # that the next local header (or the central directory) starts right after the descriptor.
    head = _read(f, pos, 4, limit, what)
    if head == _DESCRIPTOR_SIG:
        pos += 4
    crc, csize, usize = body.unpack(_read(f, pos, body.size, limit, what))
    if (crc, csize, usize) != (m.crc32, m.compressed_size, m.file_size):
        raise _Reject(
            f"{what} (crc 0x{crc:08x}, sizes {csize}/{usize}) differs from the central directory "
            f"(crc 0x{m.crc32:08x}, sizes {m.compressed_size}/{m.file_size})"
        )
    return pos + body.size


def _check_layout(located: list[tuple[ZipMember, int]], cd_offset: int) -> None:
    """Local entries tile the file from 0 to the central directory: no prefix, gap or overlap.

    Bytes no central entry accounts for could hold local headers that only a streaming
    reader sees; overlapping entries are the "overlapping files" kind of ZIP bomb."""
    expected, previous = 0, None
    for m, end in sorted(located, key=lambda pair: pair[0].header_offset):
        if m.header_offset < expected:
            raise _Reject(f"local entries of {previous!r} and {m.name!r} overlap")
        if m.header_offset > expected:
            gap = m.header_offset - expected
            if previous is None:
                raise _Reject(f"{gap} bytes before the first local header (prepended data)")
            raise _Reject(f"{gap} unaccounted bytes between {previous!r} and {m.name!r}")
        expected, previous = end, m.name
    if expected != cd_offset:
        raise _Reject(
            f"{cd_offset - expected} unaccounted bytes before the central directory"
            if previous is None or expected < cd_offset
            else f"local entry of {previous!r} runs into the central directory"
        )
