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

from envlock.cache.unpack import UnpackedWheel, check_stamp, record_hash
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

    def place(self, source: str, dest: str) -> None:
        if self.mode == "hardlink":
            try:
                os.link(source, dest)
                return
            except FileExistsError:
                os.unlink(dest)
                os.link(source, dest)
                return
            except OSError:
                self.mode = "copy"  # other filesystem, or links not supported
        shutil.copyfile(source, dest)
        shutil.copymode(source, dest)


def install_wheel(
    wheel: UnpackedWheel, env_root: Path, layout: Layout, linker: Linker, project: str
) -> list[str]:
    """Place a wheel's files under ``env_root``; returns the env-relative paths it wrote."""
    # Hot path (thousands of files per environment): plain strings and os calls, no pathlib.
    site = layout.site_packages
    root = str(env_root)
    src_root = str(wheel.root)
    data_prefix = wheel.data_dir + "/"
    written: list[tuple[str, str, str]] = []  # (env-relative path, hash, size)
    made_dirs: set[str] = set()

    def ensure_parent(rel: str) -> None:
        parent = rel.rpartition("/")[0]
        if parent not in made_dirs:
            os.makedirs(f"{root}/{parent}", exist_ok=True)
            made_dirs.add(parent)

    for row in wheel.records:
        if row.path.startswith(data_prefix):
            key, _, rest = row.path[len(data_prefix) :].partition("/")
            base = layout.scheme(key, project)
            if base is None or not rest:
                raise IntegrityError(f"{wheel.dist_info}: unknown .data directory {key!r}")
            rel = f"{base}/{rest}" if base else rest
            if key == "scripts":
                # Scripts are written, not linked: they get a relocatable launcher (``#!python``)
                # and the executable bit whatever the wheel said.
                with open(f"{src_root}/{row.path}", "rb") as f:
                    original = f.read()
                data = rewrite_shebang(original, layout.windows) or original
                ensure_parent(rel)
                _write(f"{root}/{rel}", data, executable=True)
                written.append((rel, record_hash(data), str(len(data))))
                continue
        else:
            rel = f"{site}/{row.path}"
        ensure_parent(rel)
        source = f"{src_root}/{row.path}"
        check_stamp(source, row)
        linker.place(source, f"{root}/{rel}")
        written.append((rel, row.hash, row.size))

    ep_file = wheel.root / wheel.dist_info / "entry_points.txt"
    if ep_file.is_file():
        try:
            eps = entry_points(ep_file.read_text("utf-8"))
        except ValueError as exc:
            raise IntegrityError(f"{wheel.dist_info}: {exc}") from None
        for name, module, attr in eps:
            scripts = (
                windows_launchers(name, module, attr)
                if layout.windows
                else {name: posix_launcher(module, attr)}
            )
            for filename, data in scripts.items():
                rel = f"{layout.scripts}/{filename}"
                ensure_parent(rel)
                _write(f"{root}/{rel}", data, executable=True)
                written.append((rel, record_hash(data), str(len(data))))

    dist_info_rel = f"{site}/{wheel.dist_info}"
    installer_rel = f"{dist_info_rel}/INSTALLER"
    ensure_parent(installer_rel)
    _write(f"{root}/{installer_rel}", INSTALLER, executable=False)
    written.append((installer_rel, record_hash(INSTALLER), str(len(INSTALLER))))
    record_rel = f"{dist_info_rel}/RECORD"
    up = "../" * (site.count("/") + 1)
    rows = [(_relative_to_site(rel, site, up), h, size) for rel, h, size in written]
    rows.append((_relative_to_site(record_rel, site, up), "", ""))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(sorted(rows))
    _write(f"{root}/{record_rel}", out.getvalue().encode(), executable=False)
    return [rel for rel, _, _ in written] + [record_rel]


def _relative_to_site(rel: str, site: str, up: str) -> str:
    """RECORD paths are relative to site-packages: ``../../../bin/x`` for scripts."""
    if rel.startswith(site + "/"):
        return rel[len(site) + 1 :]
    return up + rel


def _write(path: str, data: bytes, *, executable: bool) -> None:
    if os.path.lexists(path):
        os.unlink(path)  # never write through a hard link into the cache
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o755 if executable else 0o644)
