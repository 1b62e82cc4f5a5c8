"""A bundled interpreter in an environment: the environment *is* the interpreter's tree.

Its files are hard-linked from the archive's unpacked copy in the cache (links recreated), minus
what the lock does not pin: everything the build ships in its ``site-packages`` (pip, setuptools)
and the ``pip`` scripts. No ``pyvenv.cfg``: the interpreter finds its prefix from where it runs,
so the directory can move. ``envlock-interpreter.RECORD`` lists every file and link placed, so
``envlock verify`` checks the interpreter as it checks packages.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from envlock.cache.interpreter import TreeEntry, UnpackedInterpreter, unpacked_interpreter
from envlock.cache.records import file_record_hash, record_hash
from envlock.cache.store import ArtifactStore
from envlock.cache.unpack import TamperedTree, discard
from envlock.errors import IntegrityError, MissingArtifactsError
from envlock.lock.model import LockedInterpreter
from envlock.materialize.install import Linker, write_new
from envlock.materialize.layout import Layout
from envlock.materialize.meta import ENV_META, INTERPRETER_RECORD
from envlock.materialize.venv import ACTIVATE

# pip's scripts (pip, pip3, pip3.11, pip.exe): pip itself is left out with site-packages.
_PIP = re.compile(r"^pip[0-9.]*(\.exe)?$", re.IGNORECASE)
LINK = "symlink="  # the hash column of a link's row in envlock-interpreter.RECORD


@dataclass(frozen=True)
class InterpreterPlan:
    """What of an unpacked interpreter goes into the environment, and the links envlock adds."""

    tree: UnpackedInterpreter
    label: str  # the archive's file name, for messages
    entries: tuple[TreeEntry, ...]  # in tree order: a directory before what it holds
    links: tuple[tuple[str, str], ...]  # (path, target): ``bin/python`` if the build lacks it

    @property
    def occupied(self) -> dict[str, str]:
        """Every path placed and its kind ("file", "link", "dir"): no wheel may write there."""
        out: dict[str, str] = {e.path: e.kind for e in self.entries}
        out.update((path, "link") for path, _ in self.links)
        return out

    @property
    def mtimes(self) -> dict[str, int]:
        """The archive's modification times of the files (the stdlib's .pyc files rely on
        them), for a reproducible archive of the environment to keep."""
        return {
            e.path: int(e.stamp.rpartition(":")[2]) // 1_000_000_000
            for e in self.entries
            if e.kind == "file"
        }


def archive_of(store: ArtifactStore, li: LockedInterpreter) -> Path | None:
    """The interpreter's archive in the cache if it is there and intact."""
    return store.intact(li.sha256, li.name, li.size)


def prepare(
    store: ArtifactStore,
    li: LockedInterpreter,
    layout: Layout,
    *,
    scratch: Path,
    fetch_hint: str,
) -> InterpreterPlan:
    """Unpack the interpreter archive (once, in the cache) and plan what the environment gets."""
    archive = archive_of(store, li)
    if archive is None:
        raise MissingArtifactsError(
            f"the interpreter archive {li.name} is not in the cache",
            hint=f"run `{fetch_hint}` (materialize never uses the network)",
        )
    tree = unpacked_interpreter(store, archive, li.sha256, scratch=scratch)
    return plan_interpreter(tree, layout, li.name)


def plan_interpreter(tree: UnpackedInterpreter, layout: Layout, label: str) -> InterpreterPlan:
    """The entries of ``tree`` an environment of ``layout`` gets; checks that it is a CPython
    of the layout's version in python-build-standalone's layout."""
    fold: Callable[[str], str] = str.lower if layout.windows else str
    site = fold(layout.site_packages) + "/"
    scripts = fold(layout.scripts)

    def left_out(path: str) -> bool:
        head, _, name = fold(path).rpartition("/")
        return fold(path).startswith(site) or (head == scripts and bool(_PIP.match(name)))

    entries = []
    for e in tree.entries:
        if left_out(e.path):
            continue
        if e.kind == "link" and left_out(os.path.normpath(f"{os.path.dirname(e.path)}/{e.target}")):
            continue  # e.g. bin/pip3 -> pip3.11: nothing left to point at
        entries.append(e)
    reserved = {fold(p) for p in ("pyvenv.cfg", ENV_META, INTERPRETER_RECORD)}
    if not layout.windows:
        reserved.add(f"{scripts}/activate")
    for e in entries:
        if fold(e.path) in reserved:
            raise IntegrityError(f"{label}: ships {e.path}, which envlock writes itself")
    paths = {fold(e.path): e for e in entries}
    minor = layout.python_version
    executable = "python.exe" if layout.windows else f"bin/python{minor}"
    found = paths.get(executable)
    if found is None or found.kind == "dir":
        raise IntegrityError(
            f"{label}: has no python/{executable}: not a CPython {minor} build in "
            "python-build-standalone's install_only layout"
        )
    links: list[tuple[str, str]] = []
    if not layout.windows:
        # The launchers and `bin/activate` users run "python"; a build may only have python3.X.
        links = [
            (f"bin/{n}", f"python{minor}") for n in ("python", "python3") if f"bin/{n}" not in paths
        ]
    return InterpreterPlan(tree, label, tuple(entries), tuple(links))


def install_interpreter(
    store: ArtifactStore,
    li: LockedInterpreter,
    iplan: InterpreterPlan,
    root: Path,
    layout: Layout,
    linker: Linker,
    *,
    scratch: Path,
    fetch_hint: str,
    verify_files: bool = False,
    advance: Callable[[int], None] = lambda n: None,
) -> InterpreterPlan:
    """Place the interpreter into the empty staging tree ``root``; the plan that was placed.

    A cached file edited through a link from some environment is noticed (its stamp changed):
    the tree is unpacked again from the verified archive and placed from scratch."""
    try:
        _place(iplan, str(root), layout, linker, verify_files=verify_files, advance=advance)
        return iplan
    except TamperedTree:
        discard(store, li.sha256)
        for child in root.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        fresh = prepare(store, li, layout, scratch=scratch, fetch_hint=fetch_hint)
        _place(fresh, str(root), layout, linker, verify_files=True)
        return fresh


def _place(
    iplan: InterpreterPlan,
    root: str,
    layout: Layout,
    linker: Linker,
    *,
    verify_files: bool,
    advance: Callable[[int], None] = lambda n: None,
) -> None:
    source_root = str(iplan.tree.root)
    made: set[str] = set()

    def ensure_parent(rel: str) -> None:
        parent = rel.rpartition("/")[0]
        if parent and parent not in made:
            os.makedirs(f"{root}/{parent}", exist_ok=True)
            made.add(parent)

    for i, e in enumerate(iplan.entries, 1):
        dest = f"{root}/{e.path}"
        if e.kind == "dir":
            os.makedirs(dest, exist_ok=True)
            made.add(e.path)
        elif e.kind == "link":
            ensure_parent(e.path)
            os.symlink(e.target, dest)
        else:
            ensure_parent(e.path)
            source = f"{source_root}/{e.path}"
            iplan.tree.check_stamp(e)
            if verify_files and file_record_hash(source) != e.hash:
                raise IntegrityError(
                    f"{iplan.label}: the cached copy of {e.path} no longer matches its hash",
                    hint="run `envlock cache verify` to find and drop damaged cache entries",
                )
            linker.place(source, dest)
            if linker.mode == "copy":  # a copy keeps the time the stdlib's .pyc files expect
                st = os.stat(source)
                os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
        if i % 256 == 0:
            advance(256)
    advance(len(iplan.entries) % 256)
    for path, target in iplan.links:
        ensure_parent(path)
        os.symlink(target, f"{root}/{path}")
    os.makedirs(f"{root}/{layout.site_packages}", exist_ok=True)
    os.makedirs(f"{root}/{layout.scripts}", exist_ok=True)


def finish(root: Path, layout: Layout, iplan: InterpreterPlan) -> None:
    """``bin/activate`` and ``envlock-interpreter.RECORD`` (every interpreter file and link)."""
    rows: list[tuple[str, str, str]] = []
    for e in iplan.entries:
        if e.kind == "file" and not _is_pyc(e.path):
            rows.append((e.path, e.hash, str(e.size)))
        elif e.kind == "link":
            rows.append((e.path, LINK + e.target, ""))
    rows.extend((path, LINK + target, "") for path, target in iplan.links)
    if not layout.windows:
        activate = ACTIVATE.encode()
        write_new(str(root / layout.scripts / "activate"), activate, executable=False)
        rows.append((f"{layout.scripts}/activate", record_hash(activate), str(len(activate))))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(sorted(rows))
    write_new(str(root / INTERPRETER_RECORD), out.getvalue().encode(), executable=False)


def _is_pyc(path: str) -> bool:
    # Byte code is not checked (as in site-packages): Python rewrites a .pyc whose source time
    # changed (an environment copied without keeping times), which is not drift.
    return path.endswith(".pyc")


def read_record(env: Path) -> list[tuple[str, str, str]] | None:
    """The rows of an environment's ``envlock-interpreter.RECORD``; None if it has none."""
    try:
        text = (env / INTERPRETER_RECORD).read_text("utf-8")
    except FileNotFoundError:
        return None
    rows = []
    for row in csv.reader(text.splitlines()):
        if len(row) != 3:
            raise ValueError(f"a row has {len(row)} fields, not 3")
        rows.append((row[0], row[1], row[2]))
    return rows


def check_row(env: Path, path: str, hash_: str, size: str) -> str | None:
    """What is wrong with one placed interpreter file or link, None if nothing."""
    full = env / path
    if hash_.startswith(LINK):
        try:
            return None if os.readlink(full) == hash_[len(LINK) :] else "modified link"
        except FileNotFoundError:
            return "missing link"
        except OSError:
            return "modified link"  # there, but not a link any more
    try:
        if full.is_symlink() or file_record_hash(full) != hash_ or str(full.stat().st_size) != size:
            return "modified file"
    except FileNotFoundError:
        return "missing file"
    except OSError:
        return "modified file"
    return None


def interpreter_meta(li: LockedInterpreter) -> Mapping[str, str]:
    """What envlock.json records of a bundled interpreter."""
    return {"version": li.version, "build": li.build, "name": li.name, "sha256": li.sha256}
