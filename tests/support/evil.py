"""Hand-made wheels for safety tests: raw ZIP bytes published in place of a built wheel."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

import support.index
from support.wheels import Dist, record_hash

METADATA = "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
WHEEL = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def zip_bytes(members: dict[str, bytes], symlinks: frozenset[str] = frozenset()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            mode = (stat.S_IFLNK | 0o777) if name in symlinks else (stat.S_IFREG | 0o644)
            info.external_attr = mode << 16
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def with_record(dist_info: str, members: dict[str, bytes]) -> dict[str, bytes]:
    lines = [f"{p},{record_hash(d)},{len(d)}" for p, d in members.items()]
    lines.append(f"{dist_info}/RECORD,,")
    return {**members, f"{dist_info}/RECORD": ("\n".join(lines) + "\n").encode()}


def wheel_members(name: str, version: str, files: dict[str, bytes]) -> dict[str, bytes]:
    """A complete, valid wheel's members (RECORD not included)."""
    dist_info = f"{name}-{version}.dist-info"
    return {
        f"{dist_info}/METADATA": METADATA.format(name=name, version=version).encode(),
        f"{dist_info}/WHEEL": WHEEL,
        **files,
    }


def publish_raw(server, dist: Dist, data: bytes) -> None:
    """Publish ``data`` as the wheel of ``dist`` (the index still serves dist's metadata)."""

    def fake_build(d: Dist, dest: Path) -> Path:
        path = dest / d.filename
        path.write_bytes(data)
        return path

    mp = pytest.MonkeyPatch()
    with mp.context() as m:
        m.setattr(support.index, "build", fake_build)
        server.add(dist)
