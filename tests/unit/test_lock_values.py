"""Every value read from a lock is checked before use: hostile or hand-edited locks are one-line
usage errors naming the key, never tracebacks, never paths or URLs envlock acts on."""

from __future__ import annotations

import copy
import hashlib
import random
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from packaging.utils import parse_sdist_filename, parse_wheel_filename

from envlock._toml import tomllib
from envlock.errors import UsageError
from envlock.index.simple import DistFile
from envlock.lock import lockfile
from envlock.lock.artifacts import MAX_SIZE
from envlock.lock.document import build_lock
from envlock.lock.lockfile import LockFile, marker_matches, render
from envlock.lock.model import LOCK_HINT, LockedInterpreter
from envlock.platforms import Target
from envlock.resolve import Resolution, ResolvedPackage
from envlock.spec import EnvironmentSpec
from envlock.spec_indexes import Index

INDEX = "https://pkgs.example.com/simple/"
FILES = "https://files.example.com/x/"
NUMPY_WIN = "numpy-1.26.4-cp311-cp311-win_amd64.whl"
NUMPY_LINUX = "numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl"
PURE = "pure-1.0-py3-none-any.whl"
PURE_SDIST = "pure-1.0.tar.gz"

# Where things are in the writer's lock (packages sorted by name, then version).
W0 = ("packages", 0, "wheels", 0)  # numpy 1.26.4, win-64
W1 = ("packages", 1, "wheels", 0)  # numpy 2.0.0, linux-64
SD = ("packages", 2, "sdist")  # pure 1.0
I0 = ("tool", "envlock", "targets", 0, "interpreter")  # linux-64's bundled CPython
TOOL = ("tool", "envlock")
DELETE = object()


def _file(filename: str) -> DistFile:
    if filename.endswith(".whl"):
        name, version, _, tags = parse_wheel_filename(filename)
    else:
        (name, version), tags = parse_sdist_filename(filename), frozenset()
    return DistFile(
        filename=filename,
        url=FILES + filename,
        name=name,
        version=version,
        is_wheel=filename.endswith(".whl"),
        tags=frozenset(tags),
        sha256=hashlib.sha256(filename.encode()).hexdigest(),
        size=1000,
        upload_time=datetime(2024, 1, 1, tzinfo=timezone.utc),
        index=INDEX,
    )


def _pkg(filename: str, *requires: str) -> ResolvedPackage:
    f = _file(filename)
    return ResolvedPackage(f.name, f.version, f, None, requires)


def _document() -> dict[str, Any]:
    """A lock as ``envlock lock`` writes it: two targets, platform wheels, a wheel and an sdist."""
    env = EnvironmentSpec(
        name=None,
        python="3.11",
        platforms=("linux-64", "win-64"),
        dependencies=("numpy", "pure"),
        indexes=(Index("pypi", INDEX),),
        spec_dir=Path("/nonexistent"),
    )
    # A bundled lock, so that the interpreter entries are attacked too.
    linux, win = Target("linux-64", "3.11.9"), Target("win-64", "3.11.9")
    resolutions = [
        Resolution(linux, {"numpy": _pkg(NUMPY_LINUX), "pure": _pkg(PURE, "numpy>=1")}),
        Resolution(win, {"numpy": _pkg(NUMPY_WIN), "pure": _pkg(PURE_SDIST, "numpy>=1")}),
    ]
    interpreters = {
        p: LockedInterpreter(
            "3.11.9",
            "20240814",
            f"cpython-3.11.9+20240814-{p}-install_only_stripped.tar.gz",
            f"https://pbs.example/20240814/cpython-3.11.9%2B20240814-{p}-install_only_stripped.tar.gz",
            f"{i + 1}" * 64,
            40_000_000,
        )
        for i, p in enumerate(("linux-64", "win-64"))
    }
    # Through the writer's own bytes, so the base is exactly what envlock puts on disk.
    document = build_lock(env, resolutions, {}, interpreters)
    data: dict[str, Any] = tomllib.loads(render(document).decode())
    return data


BASE = _document()


def _mutated(*changes: tuple[tuple[Any, ...], Any]) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    for path, value in changes:
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        if value is DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return doc


def _parse(tmp_path: Path, doc: dict[str, Any]) -> LockFile:
    path = tmp_path / "pylock.toml"
    raw = tomli_w.dumps(doc).encode()
    path.write_bytes(raw)
    return lockfile.load(path)


def _use(lock: LockFile) -> None:
    """Everything a command reads from a lock."""
    for platform, target in lock.targets.items():
        assert lock.target(platform) is target
        for art in lock.artifacts(target):
            lock.requires_dist(art.name, art.version, art.filename)
        lock.locked_for(target)
        lock.locked_versions(target)
        for pkg in lock.pylock.packages:
            marker_matches(pkg.marker, target)
    lock.all_artifacts()
    lock.indexes()
    for platform in lock.targets:
        interpreter = lock.interpreter(platform)
        if interpreter is not None:
            interpreter.artifact  # noqa: B018
    lock.interpreters()


# --- the writer's lock, and legitimate variations of it, load ----------------------------------


def test_the_writers_lock_loads_and_every_artifact_is_usable(tmp_path: Path) -> None:
    lock = _parse(tmp_path, BASE)
    _use(lock)
    names = sorted(a.filename for a in lock.all_artifacts())
    assert names == sorted([NUMPY_WIN, NUMPY_LINUX, PURE])  # the sdist: a fallback
    assert lock.requires_dist("pure", "1.0", PURE) == ("numpy>=1",)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param([((*W0, "size"), DELETE)], id="size absent (PEP 751: optional)"),
        pytest.param([((*W0, "size"), 0)], id="size 0"),
        pytest.param([((*W0, "size"), MAX_SIZE)], id="size exactly 1 TiB"),
        pytest.param([((*W0, "name"), DELETE)], id="name from the url"),
        pytest.param(
            [((*W0, "url"), FILES + NUMPY_WIN.replace("_amd64", "%5Famd64"))],
            id="percent-encoded url naming the same file",
        ),
        pytest.param(
            [((*W0, "hashes", "md5"), "d41d8cd98f00b204e9800998ecf8427e")],
            id="another hash beside sha256",
        ),
        pytest.param(
            [
                (("packages", 0, "index"), "file:///srv/simple/"),
                ((*W0, "url"), "file:///srv/files/" + NUMPY_WIN),
            ],
            id="file url from a file index",
        ),
        pytest.param(
            [
                (("packages", 0, "index"), "file:///srv/simple/"),
                ((*W0, "url"), "file://localhost/srv/files/" + NUMPY_WIN),
            ],
            id="file://localhost url from a file index",
        ),
        pytest.param(
            [
                (("packages", 0, "index"), "http://127.0.0.1:8080/simple/"),
                ((*W0, "url"), "http://127.0.0.1:8080/files/" + NUMPY_WIN),
            ],
            id="plain http loopback (the transport decides trust)",
        ),
        pytest.param([(("packages", 0, "tool"), DELETE)], id="no dependency record (older lock)"),
        pytest.param([((*I0, "size"), DELETE)], id="interpreter size unknown"),
        pytest.param([((*I0, "build"), "")], id="a team's own interpreter build"),
        pytest.param([((*I0, "url"), "file:///srv/python/x.tar.gz")], id="interpreter on a share"),
    ],
)
def test_legitimate_locks_load(tmp_path: Path, changes: list[tuple[tuple[Any, ...], Any]]) -> None:
    _use(_parse(tmp_path, _mutated(*changes)))


# --- hostile or corrupted values: one line, exit 2, the key named -----------------------------


def _loc(path: tuple[Any, ...]) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


def _case(case_id: str, changes: list[tuple[tuple[Any, ...], Any]], location: str) -> Any:
    return pytest.param(changes, location, id=case_id)


SHA = "0" * 64
WIN_URL = FILES + NUMPY_WIN
CASES = [
    # the bundled interpreter: its sha256 and name become cache paths, its url a download
    _case("interpreter sha256 ../", [((*I0, "sha256"), "../../etc")], "I0.sha256"),
    _case("interpreter name a path", [((*I0, "name"), "../python.tar.gz")], "I0.name"),
    _case("interpreter name not an archive", [((*I0, "name"), "python.exe")], "I0.name"),
    _case("interpreter url ftp", [((*I0, "url"), "ftp://h/x.tar.gz")], "I0.url"),
    _case("interpreter url password", [((*I0, "url"), "https://u:p@h/x.tar.gz")], "I0.url"),
    _case("interpreter size negative", [((*I0, "size"), -1)], "I0.size"),
    _case("interpreter size a string", [((*I0, "size"), "12")], "I0.size"),
    _case("interpreter version 3.11", [((*I0, "version"), "3.11")], "I0.version"),
    _case("interpreter build not digits", [((*I0, "build"), "x/y")], "I0.build"),
    _case("interpreter unknown key", [((*I0, "path"), "/usr/bin/python3")], "I0.path"),
    _case("interpreter a string", [(I0, "python3")], "I0"),
    _case("interpreter of another version", [((*I0, "version"), "3.11.8")], "I0.version"),
    _case("interpreter missing in a bundled lock", [(I0, DELETE)], "I0"),
    _case(
        "interpreter mode unknown",
        [(("tool", "envlock", "interpreter"), "docker")],
        "tool.envlock.interpreter",
    ),
    # sha256: it becomes artifacts/sha256/<sha[:2]>/<sha[2:]>/ in the cache
    _case("sha256 ../../etc", [((*W0, "hashes", "sha256"), "../../etc")], "W0.hashes.sha256"),
    _case("sha256 63 chars", [((*W0, "hashes", "sha256"), "0" * 63)], "W0.hashes.sha256"),
    _case("sha256 65 chars", [((*W0, "hashes", "sha256"), "0" * 65)], "W0.hashes.sha256"),
    _case("sha256 uppercase", [((*W0, "hashes", "sha256"), "AB" * 32)], "W0.hashes.sha256"),
    _case("sha256 with /", [((*W0, "hashes", "sha256"), "ab/" + "0" * 61)], "W0.hashes.sha256"),
    _case("sha256 not hex", [((*W0, "hashes", "sha256"), "g" * 64)], "W0.hashes.sha256"),
    _case("sha256 newline", [((*W0, "hashes", "sha256"), SHA + "\n")], "W0.hashes.sha256"),
    _case("sdist sha256 ..", [((*SD, "hashes", "sha256"), "..")], "SD.hashes.sha256"),
    _case("sha256 an integer", [((*W0, "hashes", "sha256"), 12)], "W0.hashes"),
    _case("hashes missing", [((*W0, "hashes"), DELETE)], "W0.hashes"),
    _case("hashes empty", [((*W0, "hashes"), {})], "W0.hashes"),
    _case("hashes only md5", [((*W0, "hashes"), {"md5": "0" * 32})], "W0.hashes.sha256"),
    _case("hashes an array", [((*W0, "hashes"), [SHA])], "W0.hashes"),
    # size
    _case("size -1", [((*W0, "size"), -1)], "W0.size"),
    _case("size '12'", [((*W0, "size"), "12")], "W0.size"),
    _case("size true", [((*W0, "size"), True)], "W0.size"),
    _case("size 1.5", [((*W0, "size"), 1.5)], "W0.size"),
    _case("size above 1 TiB", [((*W0, "size"), MAX_SIZE + 1)], "W0.size"),
    _case("size 2**63-1", [((*W0, "size"), 2**63 - 1)], "W0.size"),
    # filenames: joined to cache and build directories
    _case("name ../x.whl", [((*W0, "name"), "../x.whl")], "W0"),
    _case("name a/b.whl", [((*W0, "name"), "a/b.whl")], "W0"),
    _case("name x\\n.whl", [((*W0, "name"), "x\n.whl")], "W0"),
    _case("name empty", [((*W0, "name"), "")], "W0.name"),
    _case("name .", [((*W0, "name"), ".")], "W0"),
    _case("name ..", [((*W0, "name"), "..")], "W0"),
    _case(
        "traversal in a build tag packaging accepts",
        [((*W0, "name"), "numpy-1.26.4-1/../../../x-cp311-cp311-win_amd64.whl")],
        "W0.name",
    ),
    _case(
        "backslash in a build tag",
        [((*W0, "name"), "numpy-1.26.4-1\\x-cp311-cp311-win_amd64.whl")],
        "W0.name",
    ),
    _case("NUL in sdist name", [((*SD, "name"), "pure-1.0\x00.tar.gz")], "SD"),
    _case("wheel of another package", [((*W0, "name"), PURE), ((*W0, "url"), FILES + PURE)], "W0"),
    _case(
        "wheel of another version",
        [((*W0, "name"), NUMPY_WIN.replace("1.26.4", "1.26.5"))],
        "W0",
    ),
    _case("sdist not an sdist name", [((*SD, "name"), "pure.exe")], "SD"),
    # URLs
    _case("url ftp", [((*W0, "url"), "ftp://files.example.com/x/" + NUMPY_WIN)], "W0.url"),
    _case("url file with https index", [((*W0, "url"), "file:///etc/passwd")], "W0.url"),
    _case(
        "url file without an index",
        [(("packages", 0, "index"), DELETE), ((*W0, "url"), "file:///srv/" + NUMPY_WIN)],
        "W0.url",
    ),
    _case(
        "url file with a host, file index",
        [
            (("packages", 0, "index"), "file:///srv/simple/"),
            ((*W0, "url"), "file://evil.example.com/srv/" + NUMPY_WIN),
        ],
        "W0.url",
    ),
    _case("url javascript", [((*W0, "url"), "javascript:alert(1)//" + NUMPY_WIN)], "W0.url"),
    _case("url data", [((*W0, "url"), "data:text/plain," + NUMPY_WIN)], "W0.url"),
    _case("url relative", [((*W0, "url"), "x/" + NUMPY_WIN)], "W0.url"),
    _case("url no scheme", [((*W0, "url"), "//files.example.com/" + NUMPY_WIN)], "W0.url"),
    _case("url no host", [((*W0, "url"), "https:///" + NUMPY_WIN)], "W0.url"),
    _case(
        "url credentials",
        [((*W0, "url"), "https://user:hunter2@files.example.com/x/" + NUMPY_WIN)],
        "W0.url",
    ),
    _case(
        "url bad port", [((*W0, "url"), "https://files.example.com:99999/" + NUMPY_WIN)], "W0.url"
    ),
    _case("url with a space", [((*W0, "url"), WIN_URL.replace("/x/", "/x y/"))], "W0.url"),
    _case(
        "url names another file than name",
        [((*W0, "url"), FILES + NUMPY_WIN.replace("win_amd64", "win32"))],
        "W0.url",
    ),
    _case(
        "url encodes a traversal, no name",
        [((*W0, "name"), DELETE), ((*W0, "url"), FILES + "..%2F..%2F" + NUMPY_WIN)],
        "W0",
    ),
    _case("url missing, path given", [((*W0, "url"), DELETE), ((*W0, "path"), NUMPY_WIN)], "W0"),
    _case("url an integer", [((*W0, "url"), 3)], "W0.url"),
    _case(
        "index ftp", [(("packages", 0, "index"), "ftp://pkgs.example.com/")], "packages[0].index"
    ),
    _case(
        "index credentials",
        [(("packages", 0, "index"), "https://u:p@pkgs.example.com/simple/")],
        "packages[0].index",
    ),
    # the shape of the document
    _case("packages a table", [(("packages",), {"a": 1})], "packages"),
    _case("packages missing", [(("packages",), DELETE)], "packages"),
    _case("package a string", [(("packages", 0), "numpy")], "packages[0]"),
    _case(
        "wheels a table", [(("packages", 0, "wheels"), {"name": NUMPY_WIN})], "packages[0].wheels"
    ),
    _case("wheel a string", [(("packages", 0, "wheels", 0), NUMPY_WIN)], "packages[0].wheels[0]"),
    _case("name not normalized", [(("packages", 0, "name"), "NumPy")], "packages[0].name"),
    _case("version missing", [(("packages", 0, "version"), DELETE)], "packages[0].version"),
    _case("version invalid", [(("packages", 0, "version"), "one")], "packages[0].version"),
    _case("marker invalid", [(("packages", 0, "marker"), "sys_platform ==")], "packages[0].marker"),
    _case("upload-time a string", [((*W0, "upload-time"), "yesterday")], "W0.upload-time"),
    _case(
        "a directory package",
        [(("packages", 0, "wheels"), DELETE), (("packages", 0, "directory"), {"path": "/"})],
        "packages[0].directory",
    ),
    _case("lock-version 2.0", [(("lock-version",), "2.0")], "lock-version"),
    _case("lock-version an integer", [(("lock-version",), 1)], "lock-version"),
    _case("created-by missing", [(("created-by",), DELETE)], "created-by"),
    _case("environments a string", [(("environments",), "linux")], "environments"),
    _case("environment marker: extra", [(("environments", 0), "extra == 'x'")], "environments[0]"),
    _case(
        "package marker: set-valued ==",
        [(("packages", 0, "marker"), "dependency_groups == 'x'")],
        "packages[0].marker",
    ),
    _case("requires-python ==3.*", [(("requires-python",), "==3.*")], "requires-python"),
    # [tool.envlock] and [packages.tool.envlock]
    _case("tool.envlock missing", [(TOOL, DELETE)], "tool.envlock"),
    _case("tool.envlock a string", [(TOOL, "x")], "tool.envlock"),
    _case("targets a table", [((*TOOL, "targets"), {})], "tool.envlock.targets"),
    _case("target a string", [((*TOOL, "targets", 0), "linux-64")], "tool.envlock.targets[0]"),
    _case(
        "target platform an integer",
        [((*TOOL, "targets", 0, "platform"), 5)],
        "tool.envlock.targets[0].platform",
    ),
    _case(
        "target platform unknown",
        [((*TOOL, "targets", 0, "platform"), "amiga")],
        "tool.envlock.targets[0].platform",
    ),
    _case(
        "target python not a version",
        [((*TOOL, "targets", 0, "python"), "banana")],
        "tool.envlock.targets[0].python",
    ),
    _case("platform-tags an array", [((*TOOL, "platform-tags"), [])], "tool.envlock.platform-tags"),
    _case(
        "platform-tags glibc a bool",
        [((*TOOL, "platform-tags", "glibc"), True)],
        "tool.envlock.platform-tags.glibc",
    ),
    _case(
        "platform-tags unknown key",
        [((*TOOL, "platform-tags", "rm -rf"), "1")],
        "tool.envlock.platform-tags.rm -rf",
    ),
    _case("tool.envlock version a table", [((*TOOL, "version"), {})], "tool.envlock.version"),
    _case(
        "environment a path",
        [((*TOOL, "environment"), "../../etc")],
        "tool.envlock.environment",
    ),
    _case("spec-hash an integer", [((*TOOL, "spec-hash"), 1)], "tool.envlock.spec-hash"),
    _case(
        "metadata a string",
        [(("packages", 0, "tool", "envlock", "metadata"), "x")],
        "packages[0].tool.envlock.metadata",
    ),
    _case(
        "metadata files not strings",
        [(("packages", 0, "tool", "envlock", "metadata", 0, "files"), [1])],
        "packages[0].tool.envlock.metadata[0].files[0]",
    ),
]


def _expand(location: str) -> str:
    return location.replace("W0", _loc(W0)).replace("SD", _loc(SD)).replace("I0", _loc(I0))


@pytest.mark.parametrize(("changes", "location"), CASES)
def test_hostile_lock_is_a_one_line_usage_error_naming_the_key(
    tmp_path: Path, changes: list[tuple[tuple[Any, ...], Any]], location: str
) -> None:
    with pytest.raises(UsageError) as info:
        _parse(tmp_path, _mutated(*changes))
    err = info.value
    path = tmp_path / "pylock.toml"
    assert err.exit_code == 2
    assert str(err).startswith(f"{path}: {_expand(location)}"), str(err)
    assert "\n" not in str(err)
    assert err.hint == LOCK_HINT


def test_the_corpus_is_large() -> None:
    assert len(CASES) >= 25


def test_a_password_in_a_url_is_not_echoed(tmp_path: Path) -> None:
    doc = _mutated(((*W0, "url"), "https://user:hunter2@files.example.com/x/" + NUMPY_WIN))
    with pytest.raises(UsageError, match="credentials") as info:
        _parse(tmp_path, doc)
    assert "hunter2" not in str(info.value)


def test_sha256_error_shows_the_value(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        _parse(tmp_path, _mutated(((*W1, "hashes", "sha256"), "ABC")))
    assert str(info.value) == (
        f"{tmp_path / 'pylock.toml'}: packages[1].wheels[0].hashes.sha256: "
        "not a sha256 (64 lowercase hex characters): 'ABC'"
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"lock-version = [\n",
        b"\xff\xfe not utf-8",
        b"",
        b"packages = 1\n",
        b'lock-version = "1.0"\ncreated-by = "x"\npackages = []\n',
    ],
    ids=["not toml", "not utf-8", "empty", "packages an integer", "no tool.envlock"],
)
def test_documents_that_are_no_lock_are_one_line_usage_errors(tmp_path: Path, raw: bytes) -> None:
    with pytest.raises(UsageError) as info:
        lockfile.parse(tmp_path / "pylock.toml", raw)
    assert str(info.value).startswith(f"{tmp_path / 'pylock.toml'}: ")
    assert "\n" not in str(info.value)


# --- fuzz: random mutations of the writer's lock raise UsageError or load usably ---------------

_VALUES: list[Any] = [
    -1,
    0,
    1,
    2**63 - 1,
    True,
    False,
    1.5,
    float("nan"),
    "",
    ".",
    "..",
    "../x",
    "a/b",
    "ABC",
    "0" * 64,
    "file:///etc/passwd",
    "ftp://x/y",
    "https://user:pw@h/x",
    "linux-64",
    "3.11",
    "==3.11.*",
    "sys_platform == 'linux'",
    NUMPY_WIN,
    "extra == 'x'",
    "dependency_groups == 'x'",
    "'a' in extras",
    "python_full_version >= 'abc'",
    ">=4",
    "3.11.7",
    "osx-arm64",
    "2.5",
    {"glibc": "2.5"},
    {"musllinux": "x"},
    [],
    [1],
    ["x"],
    [{}],
    {},
    {"a": 1},
    {"sha256": "x"},
    datetime(2024, 1, 1, tzinfo=timezone.utc),
]


# Small edits of a string that keep it almost right: the kind a hand edit or an attack makes.
_TWIDDLES: list[Callable[[str], str]] = [
    str.upper,
    lambda v: v[:-1],
    lambda v: v + "/..",
    lambda v: "../" + v,
    lambda v: v + "\n",
    lambda v: v.replace("https://", "file:///"),
    lambda v: v.replace("https://", "https://u:p@"),
    lambda v: v.replace("-", "/", 1),
    lambda v: v.replace(".whl", ".tar.gz"),
]


def _nodes(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _nodes(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _nodes(value, (*path, i))
    return out


def _fuzz(rng: random.Random) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    for _ in range(rng.randint(1, 3)):
        nodes = _nodes(doc)
        if not nodes:
            break
        path = rng.choice(nodes)
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        action = rng.random()
        value = parent[path[-1]]
        if action < 0.2 and isinstance(parent, dict):
            del parent[path[-1]]
        elif action < 0.4 and isinstance(value, str):
            parent[path[-1]] = rng.choice(_TWIDDLES)(value)
        elif action < 0.55:
            # another node's value, so shapes meet places they were never meant for
            other: Any = doc
            for key in rng.choice(nodes):
                other = other[key]
            parent[path[-1]] = copy.deepcopy(other)
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(_VALUES))
    return doc


def test_fuzzed_locks_raise_only_usage_errors(tmp_path: Path) -> None:
    rng = random.Random(751)
    path = tmp_path / "pylock.toml"
    loaded = refused = 0
    for i in range(1500):
        doc = _fuzz(rng)
        try:
            raw = tomli_w.dumps(doc).encode()
        except (TypeError, ValueError):
            continue  # not expressible in TOML
        try:
            lock = lockfile.parse(path, raw)
            _use(lock)
        except UsageError as exc:
            assert "\n" not in str(exc), (i, raw.decode())
            refused += 1
        except Exception as exc:
            pytest.fail(f"mutation {i}: {type(exc).__name__}: {exc}\n{raw.decode()}")
        else:
            loaded += 1
    assert refused > 100 and loaded > 10  # the fuzz reached both outcomes
