"""CPython archives in python-build-standalone's ``install_only`` layout, made at test time.

:func:`make_interpreter_archive` packs the machine's Debian ``/usr/bin/python3.11`` (it links
libpython statically, so it runs from a copied tree) and its standard library as ``python/...``;
:func:`fake_interpreter_archive` makes tiny look-alikes for foreign platforms (never run);
:func:`evil_interpreter_archive` makes hostile ones for the unpacker's safety tests;
:func:`minimal_root` builds a chroot holding an environment and only the libraries it needs,
and :func:`run_in_root` runs a command there with the network off.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "DEBIAN_PYTHON",
    "DEBIAN_STDLIB",
    "EVIL_ABSOLUTE",
    "EVIL_ESCAPE",
    "EVIL_KINDS",
    "EVIL_MARKER",
    "BuiltInterpreter",
    "bundled_python",
    "evil_interpreter_archive",
    "fake_interpreter_archive",
    "interpreter_sources_toml",
    "make_interpreter_archive",
    "minimal_root",
    "pbs_filename",
    "run_in_root",
    "sha256_file",
]

DEBIAN_PYTHON = Path("/usr/bin/python3.11")
DEBIAN_STDLIB = Path("/usr/lib/python3.11")
PY = "python3.11"
BUILD = "20250101"  # the pbs-style release id our fakes pretend to come from
MTIME = 315532800  # 1980-01-01, as envlock's own archives
FAKE_PIP_VERSION = "24.0"

TRIPLES = {
    "linux-64": "x86_64-unknown-linux-gnu",
    "linux-aarch64": "aarch64-unknown-linux-gnu",
    "osx-64": "x86_64-apple-darwin",
    "osx-arm64": "aarch64-apple-darwin",
    "win-64": "x86_64-pc-windows-msvc",
}

# Left out of the copied standard library: Debian's own packages, byte code, the test suites
# (size), the static libpython/Makefile (25 MB, only for building extensions), and Debian's
# sitecustomize.py (a link to /etc) and EXTERNALLY-MANAGED marker (pbs ships neither).
_SKIP_DIRS = {"dist-packages", "site-packages", "__pycache__", "test", "tests", "idle_test"}
_SKIP_FILES = {"sitecustomize.py", "EXTERNALLY-MANAGED"}
_CONFIG_DIR = re.compile(r"^config-3\.11")

# Hostile archives: where their escaping members would land, and a marker written (as an
# ordinary member) BEFORE the evil one, so a partial unpack leaves a findable trace.
EVIL_KINDS = (
    "traversal",
    "absolute",
    "absolute-in-top",
    "symlink-out",
    "hardlink-out",
    "device",
    "no-top",
)
EVIL_ESCAPE = "envlock-evil-escape"
EVIL_ABSOLUTE = "/tmp/envlock-evil-absolute"
EVIL_MARKER = "envlock-evil-marker.txt"


@dataclass(frozen=True)
class BuiltInterpreter:
    """An interpreter archive on disk and what a spec's ``[interpreter-sources]`` needs."""

    path: Path
    version: str  # exact CPython version inside, e.g. "3.11.2"
    sha256: str
    filename: str
    platform: str = "linux-64"

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pbs_filename(platform: str, version: str) -> str:
    """python-build-standalone's name for an ``install_only_stripped`` build."""
    return f"cpython-{version}+{BUILD}-{TRIPLES[platform]}-install_only_stripped.tar.gz"


def interpreter_sources_toml(platform: str, url: str, sha256: str, version: str | None) -> str:
    """The ``[interpreter-sources.PLATFORM]`` table of a spec (``version`` None: left out)."""
    lines = [f"[interpreter-sources.{platform}]", f'url = "{url}"', f'sha256 = "{sha256}"']
    if version is not None:
        lines.append(f'version = "{version}"')
    return "\n".join(lines) + "\n"


# -- writing tar archives -------------------------------------------------------------------


class _Tar:
    """A deterministic tar.gz writer: fixed times and owners; callers add members in order."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self._raw = dest.open("wb")
        self._gz = gzip.GzipFile(
            filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=6
        )
        # closed, with the files under it, by close()
        self._tar = tarfile.open(fileobj=self._gz, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115

    def _info(self, name: str, type_: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = type_
        info.mode = mode
        info.mtime = MTIME
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    def dir(self, name: str) -> None:
        self._tar.addfile(self._info(name, tarfile.DIRTYPE, 0o755))

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        info = self._info(name, tarfile.REGTYPE, mode)
        info.size = len(data)
        self._tar.addfile(info, io.BytesIO(data))

    def symlink(self, name: str, target: str) -> None:
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self._tar.addfile(info)

    def hardlink(self, name: str, target: str) -> None:
        info = self._info(name, tarfile.LNKTYPE, 0o644)
        info.linkname = target
        self._tar.addfile(info)

    def chardev(self, name: str, major: int, minor: int) -> None:
        info = self._info(name, tarfile.CHRTYPE, 0o666)
        info.devmajor, info.devminor = major, minor
        self._tar.addfile(info)

    def close(self) -> None:
        self._tar.close()
        self._gz.close()
        self._raw.close()


def _dirs_of(paths: Iterable[str]) -> list[str]:
    """Every parent directory of ``paths`` (so archives list their directories explicitly)."""
    out = set()
    for p in paths:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            out.add("/".join(parts[:i]))
    return sorted(out)


def _write_tree(
    dest: Path,
    files: dict[str, tuple[bytes, int]],
    symlinks: dict[str, str],
    empty_dirs: Iterable[str] = (),
) -> None:
    """Archive a tree given as ``{path: (bytes, mode)}`` + ``{path: link target}``, sorted."""
    tar = _Tar(dest)
    try:
        dirs = set(_dirs_of([*files, *symlinks])) | set(empty_dirs) | set(_dirs_of(empty_dirs))
        members: list[tuple[str, str]] = [(d, "d") for d in dirs]
        members += [(f, "f") for f in files] + [(s, "l") for s in symlinks]
        for name, kind in sorted(members):
            if kind == "d":
                tar.dir(name)
            elif kind == "f":
                tar.file(name, *files[name])
            else:
                tar.symlink(name, symlinks[name])
    finally:
        tar.close()


# -- pbs look-alike pieces ------------------------------------------------------------------


def _fake_pip(site: str, scripts: str, launcher: bytes) -> dict[str, tuple[bytes, int]]:
    """A pip in site-packages and its launchers, as pbs ships it (envlock must drop both)."""
    dist_info = f"{site}/pip-{FAKE_PIP_VERSION}.dist-info"
    init = b"raise SystemExit('the pbs archive\\'s pip must not be in an envlock environment')\n"
    meta = f"Metadata-Version: 2.1\nName: pip\nVersion: {FAKE_PIP_VERSION}\n".encode()
    files = {
        f"{site}/pip/__init__.py": (init, 0o644),
        f"{site}/pip/__main__.py": (b"import pip\n", 0o644),
        f"{dist_info}/METADATA": (meta, 0o644),
        f"{dist_info}/INSTALLER": (b"pip\n", 0o644),
        f"{dist_info}/entry_points.txt": (b"[console_scripts]\npip3 = pip:main\n", 0o644),
        f"{dist_info}/RECORD": (b"pip/__init__.py,,\n", 0o644),
    }
    for name in ("pip", "pip3", "pip3.11"):
        files[f"{scripts}/{name}"] = (launcher, 0o755)
    return files


# pbs's own POSIX pip launchers: a relocatable sh/python polyglot.
_PBS_POSIX_LAUNCHER = (
    b'#!/bin/sh\n"exec" "$(dirname $0)/python3.11" "$0" "$@"\n'
    b"import sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n"
)
_SITE_README = b"This directory exists so that 3rd party packages can be installed here.\n"


_UPSTREAM_GETSITEPACKAGES = '''def getsitepackages(prefixes=None):
    """Returns a list containing all global site-packages directories (upstream CPython)."""
    sitepackages = []
    seen = set()

    if prefixes is None:
        prefixes = PREFIXES

    for prefix in prefixes:
        if not prefix or prefix in seen:
            continue
        seen.add(prefix)

        libdirs = [sys.platlibdir]
        if sys.platlibdir != "lib":
            libdirs.append("lib")

        if os.sep == '/':
            for libdir in libdirs:
                path = os.path.join(prefix, libdir,
                                    "python%d.%d" % sys.version_info[:2],
                                    "site-packages")
                sitepackages.append(path)
        else:
            sitepackages.append(prefix)

            for libdir in libdirs:
                path = os.path.join(prefix, libdir, "site-packages")
                sitepackages.append(path)
    return sitepackages
'''

# Debian's ``site`` is FROZEN into its python3.11 (3.11 freezes site, os, ...): the site.py on
# disk is ignored at start-up, so its dist-packages scheme stays. This sitecustomize.py (which
# the frozen site imports from the standard library) switches to upstream's getsitepackages and
# adds ``<prefix>/lib/python3.11/site-packages`` (with its .pth files) as upstream CPython does.
_SITECUSTOMIZE = (
    '"""Make Debian\'s frozen site module act as upstream CPython\'s (an envlock fixture)."""\n'
    "import os\nimport site\nimport sys\n\nPREFIXES = site.PREFIXES\n\n\n"
    + _UPSTREAM_GETSITEPACKAGES
    + "\n\nsite.getsitepackages = getsitepackages\n"
    "for _dir in getsitepackages():\n"
    "    if os.path.isdir(_dir) and _dir not in sys.path:\n"
    "        site.addsitedir(_dir)\n"
)


def _patched_site(text: str) -> str:
    """Debian's site.py with upstream CPython's ``getsitepackages`` (``lib/python3.X/
    site-packages`` under each prefix, instead of Debian's dist-packages and /usr/local).
    Only read with ``-X frozen_modules=off``; the sitecustomize.py does the work otherwise."""
    upstream = _UPSTREAM_GETSITEPACKAGES + "\n"
    start = text.find("def getsitepackages(")
    end = text.find("\ndef ", start + 1)
    if start < 0 or end < 0:
        pytest.fail(f"cannot patch {DEBIAN_STDLIB}/site.py: no getsitepackages()", pytrace=False)
    return text[:start] + upstream + text[end + 1 :]


def _patched_sysconfig(text: str) -> str:
    """Debian's sysconfig.py choosing upstream's ``posix_prefix`` scheme (Debian picks its
    ``posix_local`` one, ``<prefix>/local/lib/python3.11/dist-packages``, outside a venv)."""
    old = "'prefix': prefix_scheme,"
    if old not in text:
        return text  # not Debian's patched module: already upstream
    return text.replace(old, "'prefix': 'posix_prefix',", 1)


def _require_debian_python() -> None:
    missing = [
        str(p)
        for p in (DEBIAN_PYTHON, DEBIAN_STDLIB / "json" / "__init__.py", DEBIAN_STDLIB / "os.py")
        if not p.exists()
    ]
    if missing:
        pytest.fail(
            f"the bundled-interpreter fixture needs Debian's CPython 3.11 ({', '.join(missing)} "
            "missing): install it with `apt-get install python3.11` (.ci/run does this)",
            pytrace=False,
        )


def _stdlib_members() -> Iterator[tuple[str, Path]]:
    """``(path below lib/python3.11, source)`` of the standard library files we copy."""
    for dirpath, dirnames, filenames in os.walk(DEBIAN_STDLIB):
        base = Path(dirpath)
        if base == DEBIAN_STDLIB:
            dirnames[:] = [d for d in dirnames if not _CONFIG_DIR.match(d)]
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if name in _SKIP_FILES:
                continue
            src = base / name
            yield src.relative_to(DEBIAN_STDLIB).as_posix(), src


def _python_version(python: Path) -> str:
    out = subprocess.run(
        [str(python), "-I", "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def make_interpreter_archive(dest: Path) -> BuiltInterpreter:
    """A runnable linux-64 CPython 3.11 in pbs ``install_only`` layout, in directory ``dest``."""
    _require_debian_python()
    version = _python_version(DEBIAN_PYTHON)
    lib = f"python/lib/{PY}"
    files: dict[str, tuple[bytes, int]] = {
        f"python/bin/{PY}": (DEBIAN_PYTHON.read_bytes(), 0o755),
        f"{lib}/site-packages/README.txt": (_SITE_README, 0o644),
        f"{lib}/sitecustomize.py": (_SITECUSTOMIZE.encode("utf-8"), 0o644),
    }
    symlinks = {"python/bin/python3": PY}
    for rel, src in _stdlib_members():
        name = f"{lib}/{rel}"
        if src.is_symlink():
            target = os.readlink(src)
            inside = (src.parent / target).resolve().is_relative_to(DEBIAN_STDLIB)
            if not os.path.isabs(target) and inside:
                symlinks[name] = target
                continue
            if not src.exists():
                continue
        data = src.read_bytes()
        if rel == "site.py":
            data = _patched_site(data.decode("utf-8")).encode("utf-8")
        elif rel == "sysconfig.py":
            data = _patched_sysconfig(data.decode("utf-8")).encode("utf-8")
        files[name] = (data, 0o755 if os.access(src, os.X_OK) else 0o644)
    files.update(_fake_pip(f"{lib}/site-packages", "python/bin", _PBS_POSIX_LAUNCHER))
    dest.mkdir(parents=True, exist_ok=True)
    filename = f"cpython-{version}-linux-64-debian.tar.gz"  # not pbs-style: no version in it
    path = dest / filename
    _write_tree(path, files, symlinks)
    return BuiltInterpreter(path, version, sha256_file(path), filename, "linux-64")


# -- foreign look-alikes --------------------------------------------------------------------

# Enough of each executable format's header that `file` would name it; never run.
_MACHO = {
    "osx-arm64": bytes.fromhex("cffaedfe0c000001"),
    "osx-64": bytes.fromhex("cffaedfe07000001"),
}
_ELF_AARCH64 = b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x02\x00\xb7\x00"
_PE = b"MZ\x90\x00" + bytes(56) + b"\x80\x00\x00\x00"
_OS_PY = b"# a stand-in for the standard library's os.py\nsep = '/'\n"


def fake_interpreter_archive(
    dest: Path, platform: str, version: str = "3.11.9"
) -> BuiltInterpreter:
    """A tiny pbs-layout archive for a foreign ``platform`` (osx-*, win-64, linux-aarch64)."""
    if platform not in TRIPLES:
        raise ValueError(f"no pbs triple for platform {platform!r}")
    short = ".".join(version.split(".")[:2])
    nodot = short.replace(".", "")
    files: dict[str, tuple[bytes, int]]
    symlinks: dict[str, str] = {}
    empty: list[str] = []
    if platform == "win-64":
        files = {
            "python/python.exe": (_PE + b"python.exe", 0o755),
            "python/pythonw.exe": (_PE + b"pythonw.exe", 0o755),
            f"python/python{nodot}.dll": (_PE + b"dll", 0o755),
            "python/python3.dll": (_PE + b"python3.dll", 0o755),
            "python/Lib/os.py": (_OS_PY.replace(b"'/'", b"'\\\\'"), 0o644),
            "python/Lib/site-packages/README.txt": (_SITE_README, 0o644),
            "python/DLLs/_ssl.pyd": (_PE + b"_ssl.pyd", 0o755),
        }
        files.update(_fake_pip("python/Lib/site-packages", "python/Scripts", _PE + b"pip launcher"))
        # pip's Windows launchers are .exe files
        files = {
            (f"{k}.exe" if k.startswith("python/Scripts/") else k): v for k, v in files.items()
        }
    else:
        exe = _MACHO.get(platform, _ELF_AARCH64) + f" python{short} {platform}".encode()
        lib = f"python/lib/python{short}"
        dynload = (
            f"_ssl.cpython-{nodot}-darwin.so"
            if platform.startswith("osx")
            else f"_ssl.cpython-{nodot}-aarch64-linux-gnu.so"
        )
        files = {
            f"python/bin/python{short}": (exe, 0o755),
            f"{lib}/os.py": (_OS_PY, 0o644),
            f"{lib}/lib-dynload/{dynload}": (exe[:8], 0o755),
            f"{lib}/site-packages/README.txt": (_SITE_README, 0o644),
        }
        if platform.startswith("osx"):
            files[f"python/lib/libpython{short}.dylib"] = (exe[:8] + b"dylib", 0o755)
        else:
            files[f"python/lib/libpython{short}.so.1.0"] = (exe[:20], 0o755)
        symlinks["python/bin/python3"] = f"python{short}"
        files.update(_fake_pip(f"{lib}/site-packages", "python/bin", _PBS_POSIX_LAUNCHER))
        empty.append("python/include")
    dest.mkdir(parents=True, exist_ok=True)
    filename = pbs_filename(platform, version)
    path = dest / filename
    _write_tree(path, files, symlinks, empty)
    return BuiltInterpreter(path, version, sha256_file(path), filename, platform)


# -- hostile archives -----------------------------------------------------------------------


def evil_interpreter_archive(dest: Path, kind: str) -> Path:
    """A linux-64 pbs-looking archive with one hostile member (see :data:`EVIL_KINDS`)."""
    if kind not in EVIL_KINDS:
        raise ValueError(f"unknown evil archive kind {kind!r}; one of {EVIL_KINDS}")
    top = "" if kind == "no-top" else "python/"
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"evil-{kind}-cpython-3.11.9-linux-64.tar.gz"
    tar = _Tar(path)
    try:
        if top:
            tar.dir("python")
        for d in ("bin", "lib", f"lib/{PY}"):
            tar.dir(f"{top}{d}")
        tar.file(f"{top}bin/{PY}", b"\x7fELF not really\n", 0o755)
        tar.file(f"{top}lib/{PY}/os.py", _OS_PY)
        tar.file(f"{top}lib/{PY}/{EVIL_MARKER}", b"a partial unpack left this behind\n")
        if kind == "traversal":
            tar.file(f"python/../../{EVIL_ESCAPE}", b"escaped\n")
        elif kind == "absolute":
            tar.file(EVIL_ABSOLUTE, b"escaped\n")
        elif kind == "absolute-in-top":  # "/python/...": under the top only once "/" is gone
            tar.file(f"/python/{EVIL_ESCAPE}", b"escaped\n")
        elif kind == "symlink-out":
            tar.symlink("python/bin/evil", "../../../etc/passwd")
        elif kind == "hardlink-out":
            tar.hardlink("python/bin/evil", "../../etc/passwd")
        elif kind == "device":
            tar.chardev("python/bin/evil", 1, 3)
    finally:
        tar.close()
    return path


# -- a minimal root file system -------------------------------------------------------------

_LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


def _shared_libraries(binaries: Iterable[Path]) -> set[Path]:
    """Every shared library (as ldd names it) the ELF files in ``binaries`` load."""
    libs: set[Path] = set()
    for binary in binaries:
        out = subprocess.run(
            ["ldd", str(binary)], capture_output=True, text=True, timeout=60, check=False
        )
        if "not a dynamic executable" in out.stdout + out.stderr:
            continue
        if out.returncode != 0 or "not found" in out.stdout:
            pytest.fail(f"ldd {binary}: {out.stdout}{out.stderr}", pytrace=False)
        libs.update(Path(m.group(1)) for m in _LDD_LINE.finditer(out.stdout))
    return libs


def _copy_in(root: Path, path: Path, as_name: Path | None = None) -> None:
    """Copy ``path``'s content (links followed) to the same absolute path inside ``root``."""
    target = root / (as_name or path).relative_to("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copy2(path.resolve(), target)


def minimal_root(root: Path, env_dir: Path) -> list[Path]:
    """Make ``root`` a file system with the environment tree ``env_dir`` (already inside it),
    ``/bin/sh`` (dash), ``dirname``, ``realpath``, ``/dev/null``, ``/tmp`` and exactly the
    shared libraries that these, the environment's ELF interpreter and its lib-dynload modules
    load. Returns the libraries."""
    tools = {
        Path("/bin/sh"): Path(shutil.which("dash") or "/bin/dash"),
        Path("/bin/dirname"): Path(shutil.which("dirname") or "/usr/bin/dirname"),
        Path("/bin/realpath"): Path(shutil.which("realpath") or "/usr/bin/realpath"),
    }
    elves = [p for p in env_dir.rglob("*") if p.is_file() and not p.is_symlink() and _is_elf(p)]
    libs = _shared_libraries([*tools.values(), *elves])
    for name, src in tools.items():
        _copy_in(root, src, name)
    for lib in sorted(libs):
        _copy_in(root, lib)
    (root / "tmp").mkdir(exist_ok=True)
    _dev_null(root / "dev" / "null")
    return sorted(libs)


def _dev_null(path: Path) -> None:
    """``/dev/null``, which every system has and shell code redirects to: the real device
    where we may make one and it opens, else an empty file (enough for ``2>/dev/null``)."""
    path.parent.mkdir(exist_ok=True)
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        path.chmod(0o666)
        with path.open("wb") as f:  # a nodev mount refuses to open it
            f.write(b"")
    except OSError:
        path.unlink(missing_ok=True)
        path.write_bytes(b"")
        path.chmod(0o666)


def run_in_root(
    root: Path, *argv: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` chrooted into ``root`` with the network off (a new, empty network
    namespace; as an unprivileged user mapped to root when the kernel allows it)."""
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    environ = env if env is not None else {"PATH": "/bin", "HOME": "/tmp", "LC_ALL": "C"}
    tool = shutil.which("unshare") or "/usr/bin/unshare"
    last = None
    for unshare in ([tool, "-rn"], [tool, "-n"]):
        probe = subprocess.run(
            [*unshare, chroot, str(root), "/bin/sh", "-c", "exit 0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if probe.returncode == 0:
            return subprocess.run(
                [*unshare, chroot, str(root), *argv],
                capture_output=True,
                text=True,
                env=environ,
                timeout=timeout,
            )
        last = probe
    assert last is not None
    pytest.fail(f"cannot unshare + chroot here: {last.stderr.strip()}", pytrace=False)


def _is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bundled_python(tmp_path_factory: pytest.TempPathFactory) -> BuiltInterpreter:
    """The runnable linux-64 interpreter archive, built once per session."""
    return make_interpreter_archive(tmp_path_factory.mktemp("bundled-python"))
