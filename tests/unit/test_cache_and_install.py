"""Pure-ish pieces of snapshot and materialize: store, unpack, launchers, archives, layout."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from envlock.cache.store import ArtifactStore, CorruptEntry
from envlock.cache.unpack import unpacked
from envlock.errors import IntegrityError
from envlock.materialize.archive import write_archive
from envlock.materialize.layout import Layout
from envlock.materialize.scripts import entry_points, posix_launcher, rewrite_shebang


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _rec(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    path: Path,
    files: dict[str, bytes],
    *,
    name: str = "demo",
    version: str = "1.0",
    record_override: dict[str, str] | None = None,
) -> Path:
    dist_info = f"{name}-{version}.dist-info"
    files = {
        **files,
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        ),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    rows = [f"{p},{(record_override or {}).get(p, _rec(d))},{len(d)}" for p, d in files.items()]
    rows.append(f"{dist_info}/RECORD,,")
    with zipfile.ZipFile(path, "w") as zf:
        for p, d in files.items():
            zf.writestr(p, d)
        zf.writestr(f"{dist_info}/RECORD", "\n".join(rows) + "\n")
    return path


def test_ingest_refuses_wrong_hash_and_leaves_nothing(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(IntegrityError, match="does not match"):
        store.ingest("0" * 64, "a.whl", [b"hello"])
    assert not store.path("0" * 64, "a.whl").exists()
    assert list(store.tmpdir().iterdir()) == []


def test_ingest_refuses_wrong_size(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    data = b"hello"
    with pytest.raises(IntegrityError, match="5 bytes"):
        store.ingest(_sha(data), "a.whl", [data], size=6)


def test_corrupt_entry_is_detected_at_use_and_removed(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    data = b"payload" * 100
    path = store.ingest(_sha(data), "a.whl", [data[:10], data[10:]], size=len(data))
    assert store.get(_sha(data), "a.whl", len(data)) == path
    assert store.get(_sha(data), "a.whl", len(data)) == path  # stamped: no re-hash needed
    path.write_bytes(b"payload" * 99 + b"xxxxxxx")  # same size, different bytes
    with pytest.raises(CorruptEntry):
        store.get(_sha(data), "a.whl", len(data))
    assert not path.exists()
    assert store.get(_sha(data), "a.whl") is None


@pytest.mark.parametrize(
    ("member", "needle"),
    [
        ("../evil.py", "not a normalised path"),
        ("/abs/evil.py", "absolute member name"),
        ("C:/evil.py", "drive letter"),
        ("demo/../../x.py", "not a normalised path"),
        ("demo\\x.py", "backslash"),
        ("demo/x\x1b.py", "control character"),
    ],
)
def test_unpack_refuses_paths_that_escape(tmp_path: Path, member: str, needle: str) -> None:
    store = ArtifactStore(tmp_path / "cache")
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", {member: b"x = 1\n"})
    with pytest.raises(IntegrityError, match=needle):
        unpacked(store, wheel, "a" * 64, "demo", "1.0")
    assert not store.unpacked_path("a" * 64).exists()


def test_unpack_refuses_record_mismatch_and_name_mismatch(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    bad = make_wheel(
        tmp_path / "demo-1.0-py3-none-any.whl",
        {"demo/__init__.py": b"x = 1\n"},
        record_override={"demo/__init__.py": _rec(b"other")},
    )
    with pytest.raises(IntegrityError, match="RECORD hash"):
        unpacked(store, bad, "a" * 64, "demo", "1.0")
    other = make_wheel(
        tmp_path / "other.whl", {"demo/__init__.py": b""}, name="demo", version="2.0"
    )
    with pytest.raises(IntegrityError, match=r"lock says demo 1\.0"):
        unpacked(store, other, "b" * 64, "demo", "1.0")


def test_unpacked_tree_is_made_once(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", {"demo/__init__.py": b"x = 1\n"})
    first = unpacked(store, wheel, "c" * 64, "demo", "1.0")
    wheel.unlink()  # a second call must not need the wheel again
    second = unpacked(store, wheel, "c" * 64, "demo", "1.0")
    assert first == second
    assert (second.root / "demo/__init__.py").read_bytes() == b"x = 1\n"


def test_entry_points_and_relocatable_launcher() -> None:
    eps = entry_points("[console_scripts]\nhello = demo.cli:main\n[gui_scripts]\nwin = demo:run\n")
    assert eps == [("hello", "demo.cli", "main"), ("win", "demo", "run")]
    script = posix_launcher("demo.cli", "main").decode()
    assert script.startswith("#!/bin/sh\n")
    assert "/python" in script and "/tmp" not in script and "/work" not in script
    assert "from demo.cli import main" in script


def test_shebang_python_scripts_get_the_launcher() -> None:
    out = rewrite_shebang(b"#!python\nprint('hi')\n", windows=False)
    assert out is not None and out.startswith(b"#!/bin/sh\n") and out.endswith(b"print('hi')\n")
    assert rewrite_shebang(b"#!/bin/bash\necho\n", windows=False) is None


def test_layouts_per_platform() -> None:
    posix = Layout(windows=False, python_version="3.11")
    win = Layout(windows=True, python_version="3.11")
    assert posix.site_packages == "lib/python3.11/site-packages" and posix.scripts == "bin"
    assert win.site_packages == "Lib/site-packages" and win.scripts == "Scripts"
    assert posix.scheme("headers", "demo") == "include/site/python3.11/demo"
    assert posix.scheme("data", "demo") == "" and posix.scheme("bogus", "demo") is None


def test_archive_is_byte_identical_whatever_the_mtimes(tmp_path: Path) -> None:
    def tree(root: Path, mtime: int) -> Path:
        (root / "bin").mkdir(parents=True)
        (root / "bin" / "tool").write_text("#!/bin/sh\n")
        os.chmod(root / "bin" / "tool", 0o700)
        (root / "lib").mkdir()
        (root / "lib" / "a.py").write_text("a = 1\n")
        os.symlink("/usr/bin/python3", root / "bin" / "python")
        for p in [*root.rglob("*"), root]:
            if not p.is_symlink():
                os.utime(p, (mtime, mtime))
        return root

    a = write_archive(tree(tmp_path / "one", 1_000_000), tmp_path / "a.tar.gz")
    b = write_archive(tree(tmp_path / "two", 2_000_000), tmp_path / "b.tar.gz")
    assert a == b == _sha((tmp_path / "a.tar.gz").read_bytes())
    with tarfile.open(tmp_path / "a.tar.gz") as tf:
        names = tf.getnames()
        assert names == sorted(names)
        tool = tf.getmember("bin/tool")
        assert tool.mode == 0o755 and tool.uid == 0 and tool.uname == ""
        assert tf.getmember("bin/python").issym()
        assert all(m.mtime == tf.getmember("lib").mtime for m in tf.getmembers())
    raw = gzip.decompress((tmp_path / "a.tar.gz").read_bytes())
    assert str(tmp_path).encode() not in raw  # no build path anywhere in the archive
