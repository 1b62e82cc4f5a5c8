"""Install one verified, unpacked wheel into an environment tree (the wheel spec, PEP 427/491).

Files are hard-linked from the cache when possible (same filesystem), copied otherwise.
``.data/`` subtrees go to their scheme directories, entry points become launchers, and a new
``RECORD`` (with hashes) and ``INSTALLER`` are written.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from envlock.cache.unpack import RecordRow, UnpackedWheel, check_stamp, record_hash
from envlock.errors import IntegrityError
from envlock.materialize.layout import Layout
from envlock.materialize.scripts import (
    entry_points,
    posix_launcher,
    rewrite_shebang,
    windows_launchers,
)

INSTALLER = b"envlock\n"


@dataclass
class Linker:
    """Hard links while they work, copies after the first cross-device failure."""

    mode: str = "hardlink"  # or "copy"

    def place(self, source: Path, dest: Path) -> None:
        if self.mode == "hardlink":
            try:
                os.link(source, dest)
                return
            except FileExistsError:
                dest.unlink()
                os.link(source, dest)
                return
            except OSError:
                self.mode = "copy"  # other filesystem, or links not supported
        shutil.copyfile(source, dest)
        shutil.copymode(source, dest)


def install_wheel(wheel: UnpackedWheel, env_root: Path, layout: Layout, linker: Linker,
                  project: str) -> list[str]:
    """Place a wheel's files under ``env_root``; returns the env-relative paths it wrote."""
    site = layout.site_packages
    data_prefix = wheel.data_dir + "/"
    written: list[tuple[str, str, str]] = []  # (env-relative path, hash, size)
    made_dirs: set[Path] = set()

    def ensure_parent(path: Path) -> None:
        parent = path.parent
        if parent not in made_dirs:
            parent.mkdir(parents=True, exist_ok=True)
            made_dirs.add(parent)

    for row in wheel.records:
        if row.path.startswith(data_prefix):
            key, _, rest = row.path[len(data_prefix):].partition("/")
            base = layout.scheme(key, project)
            if base is None or not rest:
                raise IntegrityError(f"{wheel.dist_info}: unknown .data directory {key!r}")
            rel = f"{base}/{rest}" if base else rest
            if key == "scripts":
                data = (wheel.root / row.path).read_bytes()
                new = rewrite_shebang(data, layout.windows)
                if new is not None:
                    _write(env_root / rel, new, executable=True, ensure=ensure_parent)
                    written.append((rel, record_hash(new), str(len(new))))
                    continue
        else:
            rel = f"{site}/{row.path}"
        dest = env_root / rel
        ensure_parent(dest)
        source = wheel.root / row.path
        check_stamp(source, row)
        linker.place(source, dest)
        written.append((rel, row.hash, row.size))

    ep_file = wheel.root / wheel.dist_info / "entry_points.txt"
    if ep_file.is_file():
        for name, module, attr in entry_points(ep_file.read_text("utf-8")):
            scripts = (windows_launchers(name, module, attr) if layout.windows
                       else {name: posix_launcher(module, attr)})
            for filename, data in scripts.items():
                rel = f"{layout.scripts}/{filename}"
                _write(env_root / rel, data, executable=True, ensure=ensure_parent)
                written.append((rel, record_hash(data), str(len(data))))

    dist_info_rel = f"{site}/{wheel.dist_info}"
    installer_rel = f"{dist_info_rel}/INSTALLER"
    _write(env_root / installer_rel, INSTALLER, executable=False, ensure=ensure_parent)
    written.append((installer_rel, record_hash(INSTALLER), str(len(INSTALLER))))
    record_rel = f"{dist_info_rel}/RECORD"
    rows = [RecordRow(_relative_to_site(rel, site), h, size) for rel, h, size in written]
    rows.append(RecordRow(_relative_to_site(record_rel, site), "", ""))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(
        (r.path, r.hash, r.size) for r in sorted(rows, key=lambda r: r.path))
    _write(env_root / record_rel, out.getvalue().encode(), executable=False, ensure=ensure_parent)
    return [rel for rel, _, _ in written] + [record_rel]


def _relative_to_site(rel: str, site: str) -> str:
    return os.path.relpath(rel, site).replace(os.sep, "/")


def _write(path: Path, data: bytes, *, executable: bool, ensure: object) -> None:
    ensure(path)  # type: ignore[operator]
    if path.exists():
        path.unlink()  # never write through a hard link into the cache
    path.write_bytes(data)
    os.chmod(path, 0o755 if executable else 0o644)


def project_name(dist_info: str) -> str:
    """``Foo_Bar-1.0.dist-info`` -> ``foo-bar``."""
    return canonicalize_name(dist_info[: -len(".dist-info")].rpartition("-")[0])
