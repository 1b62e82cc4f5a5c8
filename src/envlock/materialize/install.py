"""Install verified, unpacked wheels into an environment tree (the wheel spec, PEP 427/491).

Installing is planned first, for all wheels together (:func:`plan`): every file's destination,
so that two packages writing different bytes to one path, a wheel shipping a file envlock writes
itself (``pyvenv.cfg``, ``envlock.json``, the interpreter links, activation scripts) or a path of
a bundled interpreter's tree, and entry points named like the interpreter are errors before
anything is written. The plan then places files (:func:`install`): hard-linked from the cache
when possible, copied otherwise; generated files (launchers, rewritten scripts, ``INSTALLER``,
``RECORD``) are always new files written beside their destination and renamed into place, never
written through an existing link.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from envlock._fs import UMASK
from envlock.cache.records import file_record_hash, record_hash
from envlock.cache.unpack import RecordRow, UnpackedWheel, check_stamp
from envlock.errors import IntegrityError
from envlock.materialize.layout import Layout
from envlock.materialize.meta import ENV_META, INTERPRETER_RECORD
from envlock.materialize.scripts import (
    entry_points,
    posix_launcher,
    rewrite_shebang,
    windows_launchers,
)

INSTALLER = b"envlock\n"
LinkMode = Literal["hardlink", "copy"]
# Entry points that would shadow the interpreter or the activation scripts.
_RESERVED_SCRIPT = re.compile(r"^(python(\d+(\.\d+)?)?w?|activate.*)(\.exe)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Placement:
    """One file of the environment: linked from the cache (``row``) or written (``data``)."""

    dest: str  # env-relative, "/"-separated
    hash: str  # RECORD form
    size: str
    project: str
    source: str | None = None  # absolute path of the cached copy
    row: RecordRow | None = None
    data: bytes | None = None
    executable: bool = False


@dataclass(frozen=True)
class WheelPlan:
    tree: UnpackedWheel
    project: str
    placements: tuple[Placement, ...]  # RECORD and INSTALLER excluded


def reserved_paths(layout: Layout) -> frozenset[str]:
    """Env-relative paths that envlock itself writes: no wheel may ship them."""
    scripts = layout.scripts
    names = ["python", "python3", f"python{layout.python_version}", "activate"]
    if layout.windows:
        names = [*(f"{n}.exe" for n in names[:3]), "pythonw.exe", "activate.bat", "Activate.ps1"]
    return frozenset(
        ["pyvenv.cfg", ENV_META, INTERPRETER_RECORD, *(f"{scripts}/{n}" for n in names)]
    )


def plan_wheel(tree: UnpackedWheel, layout: Layout, project: str) -> WheelPlan:
    """Where every file of one wheel goes (launchers and rewritten scripts included)."""
    site = layout.site_packages
    src_root = str(tree.root)
    data_prefix = tree.data_dir + "/"
    out: list[Placement] = []
    for row in tree.records:
        if row.path.startswith(data_prefix):
            key, _, rest = row.path[len(data_prefix) :].partition("/")
            base = layout.scheme(key, project)
            if base is None or not rest:
                raise IntegrityError(f"{tree.dist_info}: unknown .data directory {key!r}")
            dest = f"{base}/{rest}" if base else rest
            if key == "scripts":
                # Scripts are written, not linked: they get a relocatable launcher (``#!python``)
                # and the executable bit whatever the wheel said.
                _check_script_name(rest, tree)
                with open(f"{src_root}/{row.path}", "rb") as f:
                    original = f.read()
                data = rewrite_shebang(original, layout.windows) or original
                out.append(_generated(dest, data, project))
                continue
        else:
            dest = f"{site}/{row.path}"
        out.append(
            Placement(dest, row.hash, row.size, project, source=f"{src_root}/{row.path}", row=row)
        )
    ep_file = tree.root / tree.dist_info / "entry_points.txt"
    if ep_file.is_file():
        try:
            eps = entry_points(ep_file.read_text("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"{tree.dist_info}: {exc}") from None
        for name, module, attr in eps:
            _check_script_name(name, tree)
            scripts = (
                windows_launchers(name, module, attr, layout.windows_python)
                if layout.windows
                else {name: posix_launcher(module, attr)}
            )
            for filename, data in scripts.items():
                out.append(_generated(f"{layout.scripts}/{filename}", data, project))
    return WheelPlan(tree, project, tuple(out))


def _check_script_name(name: str, tree: UnpackedWheel) -> None:
    if _RESERVED_SCRIPT.match(name):
        raise IntegrityError(
            f"{tree.dist_info}: script {name!r} would replace the environment's interpreter or "
            "activation script"
        )


def _generated(dest: str, data: bytes, project: str) -> Placement:
    return Placement(dest, record_hash(data), str(len(data)), project, data=data, executable=True)


def plan(
    trees: Sequence[tuple[UnpackedWheel, str]],
    layout: Layout,
    occupied: Mapping[str, str] | None = None,
) -> list[tuple[WheelPlan, list[Placement]]]:
    """Plans for every wheel, checked together; for each, the placements it installs.

    Identical bytes at one path (a shared namespace ``__init__.py``) are installed once, by the
    first package in lock order; different bytes are an error naming both packages.
    ``occupied`` maps the paths a bundled interpreter places to their kind ("file", "link",
    "dir"): no wheel may write one of them, or below a file or link of them."""
    reserved = reserved_paths(layout)
    fold = str.lower if layout.windows else str  # one file on a case-insensitive file system
    taken = {fold(k): v for k, v in (occupied or {}).items()}
    owners: dict[str, Placement] = {}
    out = []
    for tree, project in trees:
        wheel_plan = plan_wheel(tree, layout, project)
        mine = []
        for p in wheel_plan.placements:
            if fold(p.dest) in reserved or p.dest in reserved:
                raise IntegrityError(
                    f"{project} ({tree.dist_info}) ships {p.dest}, which envlock writes itself"
                )
            if taken:
                _check_interpreter_clash(p.dest, taken, fold, project, tree)
            other = owners.get(fold(p.dest))
            if other is None:
                owners[fold(p.dest)] = p
                mine.append(p)
            elif other.hash != p.hash:
                raise IntegrityError(
                    f"{other.project} and {project} both install {p.dest}, with different contents"
                )
        out.append((wheel_plan, mine))
    return out


def _check_interpreter_clash(
    dest: str,
    taken: Mapping[str, str],
    fold: Callable[[str], str],
    project: str,
    tree: UnpackedWheel,
) -> None:
    """A wheel must not replace, nor write through, a file of the bundled interpreter."""
    key = fold(dest)
    if key in taken:
        raise IntegrityError(
            f"{project} ({tree.dist_info}) ships {dest}, which is part of the bundled interpreter"
        )
    parts = key.split("/")
    for i in range(1, len(parts)):
        if taken.get("/".join(parts[:i]), "dir") != "dir":
            raise IntegrityError(
                f"{project} ({tree.dist_info}) ships {dest}, inside "
                f"{'/'.join(dest.split('/')[:i])}, a file of the bundled interpreter"
            )


@dataclass
class Linker:
    """Hard links while they work, copies after the first cross-device failure."""

    mode: LinkMode = "hardlink"

    def place(self, source: str, dest: str) -> None:
        if self.mode == "hardlink":
            try:
                os.link(source, dest)
                return
            except FileExistsError:
                raise  # a planning bug, not a reason to switch to copies
            except OSError:
                self.mode = "copy"  # other filesystem, or links not supported
        shutil.copyfile(source, dest)
        shutil.copymode(source, dest)


def install(
    wheel_plan: WheelPlan,
    placements: Sequence[Placement],
    env_root: str,
    layout: Layout,
    linker: Linker,
    *,
    verify_files: bool = False,
    advance: Callable[[int], None] = lambda n: None,
) -> None:
    """Place one wheel's files under ``env_root`` (a fresh staging tree) and write its
    ``INSTALLER`` and ``RECORD``."""
    # Hot path (thousands of files per environment): plain strings and os calls, no pathlib.
    made_dirs: set[str] = set()

    def ensure_parent(rel: str) -> None:
        parent = rel.rpartition("/")[0]
        if parent and parent not in made_dirs:
            os.makedirs(f"{env_root}/{parent}", exist_ok=True)
            made_dirs.add(parent)

    for i, p in enumerate(placements, 1):
        ensure_parent(p.dest)
        if p.data is not None:
            write_new(f"{env_root}/{p.dest}", p.data, executable=p.executable)
        else:
            assert p.source is not None and p.row is not None
            check_stamp(p.source, p.row)
            if verify_files:
                _verify_source(p, wheel_plan.tree)
            linker.place(p.source, f"{env_root}/{p.dest}")
        if i % 256 == 0:
            advance(256)
    advance(len(placements) % 256)

    site = layout.site_packages
    dist_info_rel = f"{site}/{wheel_plan.tree.dist_info}"
    installer_rel = f"{dist_info_rel}/INSTALLER"
    ensure_parent(installer_rel)
    write_new(f"{env_root}/{installer_rel}", INSTALLER, executable=False)
    # RECORD lists every file the wheel owns, shared identical ones included (pip does too).
    owned = [(p.dest, p.hash, p.size) for p in wheel_plan.placements]
    owned.append((installer_rel, record_hash(INSTALLER), str(len(INSTALLER))))
    record_rel = f"{dist_info_rel}/RECORD"
    up = "../" * (site.count("/") + 1)
    rows = [(_relative_to_site(rel, site, up), h, size) for rel, h, size in owned]
    rows.append((_relative_to_site(record_rel, site, up), "", ""))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(sorted(rows))
    write_new(f"{env_root}/{record_rel}", out.getvalue().encode(), executable=False)


def _verify_source(p: Placement, tree: UnpackedWheel) -> None:
    assert p.source is not None
    if file_record_hash(p.source) != p.hash:
        raise IntegrityError(
            f"{tree.dist_info}: the cached copy of {p.dest.rpartition('/')[2]} no longer matches "
            "its RECORD hash",
            hint="run `envlock cache verify` to find and drop damaged cache entries",
        )


def _relative_to_site(rel: str, site: str, up: str) -> str:
    """RECORD paths are relative to site-packages: ``../../../bin/x`` for scripts."""
    if rel.startswith(site + "/"):
        return rel[len(site) + 1 :]
    return up + rel


def write_new(path: str, data: bytes, *, executable: bool) -> None:
    """Write ``data`` as a new file at ``path`` (temporary beside it, then rename): whatever was
    at ``path`` — possibly a hard link into the cache — is replaced, never written through."""
    tmp = f"{path}.envlock-tmp"
    mode = (0o777 if executable else 0o666) & ~UMASK
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)  # O_CREAT's mode does not apply to a pre-existing leftover
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
