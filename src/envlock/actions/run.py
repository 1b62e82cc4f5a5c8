"""``envlock run``: the host platform's environment of a lock, built once into the cache
(``<cache>/envs/<lock sha256>-<platform>/``) and reused; the command is ``exec``'d inside it.

Import-light on purpose: the warm path (:mod:`envlock.cli.fast`) uses this module alone, so it
imports only ``os``, ``sys`` and a sha256 at first; building an environment is the CLI's job.
"""

from __future__ import annotations

import os
import sys

from envlock import __version__
from envlock.errors import CommandError

TYPE_CHECKING = False  # not typing's: importing typing costs the warm path ~15 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, NoReturn

ENVS_DIR = "envs"
_META = "envlock.json"  # envlock.materialize.meta.ENV_META (not imported: it pulls in pathlib)
_FRESH_SUFFIX = ".fresh"
_KEEP_STAMPS = 16  # spec variants remembered per environment (several checkouts of one lock)


def _sha256_type() -> Callable[..., Any]:
    """sha256 without hashlib where possible: hashlib loads OpenSSL, ~3 ms, a tenth of a warm
    run. CPython's own module is ``_sha2`` from 3.12, ``_sha256`` before; same digests."""
    for name in ("_sha2", "_sha256"):
        try:
            return __import__(name).sha256  # type: ignore[no-any-return]
        except (ImportError, AttributeError):
            continue
    import hashlib

    return hashlib.sha256


_sha256 = _sha256_type()


def env_dir(cache_root: str, lock_sha256: str, platform: str) -> str:
    """Where ``run`` keeps the environment of one lock's bytes for one platform."""
    return os.path.join(cache_root, ENVS_DIR, f"{lock_sha256}-{platform}")


def build_key(lock_sha256: str, platform: str) -> str:
    """The cache-lock key that serializes building that environment."""
    return f"run-{lock_sha256}-{platform}"


def path_entries(directory: str) -> list[str]:
    """What goes first on PATH: the scripts directory (and on Windows the top, where a bundled
    interpreter's python.exe lives)."""
    if os.name == "nt":
        return [os.path.join(directory, "Scripts"), directory]
    return [os.path.join(directory, "bin")]


def _interpreters(directory: str) -> tuple[str, ...]:
    # A venv (system mode) links bin/python3 to its base; a bundled tree has its own python3
    # (python.exe at the top on Windows, Scripts\\python.exe in a venv).
    if os.name == "nt":
        return (
            os.path.join(directory, "python.exe"),
            os.path.join(directory, "Scripts", "python.exe"),
        )
    return (os.path.join(directory, "bin", "python3"),)


def is_ready(directory: str, lock_sha256: str, platform: str) -> bool:
    """Whether ``directory`` is a finished environment of that lock and platform whose
    interpreter is there (a venv's base may have been removed since)."""
    try:
        with open(os.path.join(directory, _META), encoding="utf-8") as f:
            meta = f.read()
    except OSError:
        return False
    # envlock.json is written last, in a staging tree renamed into place as a whole: present
    # means complete. A plain text test keeps json (and re) out of the warm path; a record in
    # another format fails it and the full path rebuilds, never the other way round.
    return (
        f'"lock-sha256": "{lock_sha256}"' in meta
        and f'"platform": "{platform}"' in meta
        and any(os.path.exists(p) for p in _interpreters(directory))
    )


def freshness_stamp(spec_path: str, env_name: str, platform: str, lock_sha256: str) -> str:
    """What decides whether the lock is fresh for the spec, as one hash: envlock's version, the
    spec's path and bytes, the environment, the platform, the lock's sha256 and every
    ``ENVLOCK_*`` variable (any of them may change what a full run decides). Raises OSError."""
    with open(spec_path, "rb") as f:
        spec_bytes = f.read()
    h = _sha256()
    for part in (__version__, os.path.abspath(spec_path), env_name, platform, lock_sha256):
        h.update(part.encode("utf-8", "surrogateescape") + b"\0")
    h.update(_sha256(spec_bytes).digest())
    for key in sorted(k for k in os.environ if k.startswith("ENVLOCK_")):
        h.update(f"{key}={os.environ[key]}".encode("utf-8", "surrogateescape") + b"\0")
    return str(h.hexdigest())


def _stamps_file(directory: str) -> str:
    return directory.rstrip("/\\") + _FRESH_SUFFIX


def checked_fresh(directory: str, stamp: str) -> bool:
    """Whether a full ``run`` found the lock fresh for exactly these inputs before."""
    try:
        with open(_stamps_file(directory), encoding="ascii") as f:
            return stamp in f.read().split()
    except (OSError, ValueError):
        return False


def remember_fresh(directory: str, stamp: str) -> None:
    """Record that the full check passed for ``stamp`` (best effort: a read-only cache only
    means the next run checks again)."""
    path = _stamps_file(directory)
    try:
        with open(path, encoding="ascii") as f:
            stamps = f.read().split()
    except (OSError, ValueError):
        stamps = []
    if stamp in stamps:
        return
    stamps = [*stamps[-(_KEEP_STAMPS - 1) :], stamp]
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="ascii") as f:
            f.write("\n".join(stamps) + "\n")
        os.replace(tmp, path)
    except OSError:
        import contextlib

        with contextlib.suppress(OSError):
            os.unlink(tmp)


def lock_filename(env_name: str) -> str:
    """The lock file of an environment (as ``EnvironmentSpec.lock_path`` names it)."""
    return "pylock.toml" if env_name == "default" else f"pylock.{env_name}.toml"


def lock_sha256(path: str) -> str:
    """The sha256 of a lock file's bytes (raises OSError)."""
    with open(path, "rb") as f:
        return str(_sha256(f.read()).hexdigest())


def fast_host_platform() -> str | None:
    """``envlock.platforms.host_platform()`` where it is cheap to know (Linux, macOS), without
    importing ``platform`` and ``packaging``; None elsewhere."""
    if sys.platform.startswith("linux"):
        machine = os.uname().machine.lower()
        return "linux-aarch64" if machine in ("aarch64", "arm64") else "linux-64"
    if sys.platform == "darwin":
        return "osx-arm64" if os.uname().machine.lower() == "arm64" else "osx-64"
    return None


def fast_cache_dir(option: str | None) -> str | None:
    """``envlock.cli.output.cache_dir`` without importing platformdirs, where its rule is
    simple (an explicit directory, or Linux's XDG rule); None elsewhere."""
    chosen = option or os.environ.get("ENVLOCK_CACHE_DIR")
    if chosen:
        return os.path.realpath(os.path.expanduser(chosen))
    if sys.platform.startswith("linux") and "ANDROID_DATA" not in os.environ:
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.expanduser("~/.cache")
        return os.path.join(base, "envlock")
    return None


def current_stamp(spec: str, env_name: str, platform: str) -> tuple[str, str, str]:
    """(lock path, lock sha256, freshness stamp) as the files are now; raises OSError."""
    spec = os.path.abspath(spec)
    lock = os.path.join(os.path.dirname(spec), lock_filename(env_name))
    sha = lock_sha256(lock)
    return lock, sha, freshness_stamp(spec, env_name, platform, sha)


def warm_environment(
    spec: str, env_name: str, frozen: bool, cache_option: str | None
) -> str | None:
    """The environment directory if a previous ``run`` built it and (unless ``frozen``) found
    the lock fresh for exactly this spec; None whenever anything needs the full path."""
    platform = fast_host_platform()
    cache = fast_cache_dir(cache_option)
    if platform is None or cache is None:
        return None
    try:
        _, sha, stamp = current_stamp(spec, env_name, platform)
    except OSError:
        return None
    directory = env_dir(cache, sha, platform)
    if not is_ready(directory, sha, platform):
        return None
    if not frozen and not checked_fresh(directory, stamp):
        return None
    return directory


def command_environment(directory: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's) with the environment's scripts first on PATH,
    VIRTUAL_ENV set and PYTHONHOME unset, as activating it would."""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONHOME", None)
    env["VIRTUAL_ENV"] = directory
    path = env.get("PATH", os.defpath)
    env["PATH"] = os.pathsep.join([*path_entries(directory), *([path] if path else [])])
    return env


IN_USE_SUFFIX = ".in-use"


def hold(directory: str) -> bool:
    """Mark the environment in use for as long as the command (and what it starts) runs: a
    shared lock on ``DIR.in-use`` whose descriptor survives exec. ``cache prune`` removes an
    environment only while it can lock that file exclusively. False: the environment is gone
    (pruned meanwhile), build it again."""
    try:
        import fcntl
    except ImportError:  # Windows: no exec either; prune leaves environments alone there
        return os.path.isfile(os.path.join(directory, _META))
    path = directory + IN_USE_SUFFIX
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        try:
            fd = os.open(path, os.O_RDONLY)  # a read-only cache: nobody prunes it from here
        except OSError:
            return os.path.isfile(os.path.join(directory, _META))
    try:  # noqa: SIM105 -- contextlib is one more import on the warm path
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        pass  # a file system without locks: run anyway
    if not os.path.isfile(os.path.join(directory, _META)):
        os.close(fd)
        return False
    os.set_inheritable(fd, True)
    return True


def exec_command(argv: Sequence[str], env: Mapping[str, str]) -> NoReturn:
    """Replace this process with ``argv`` (searched on ``env``'s PATH): its exit code is the
    command's. On Windows, which has no exec, run it and exit with its code."""
    if not argv:
        raise CommandError("no command given", 2, hint="envlock run -- COMMAND [ARGS...]")
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    if os.name == "nt":
        _spawn(argv, env)
    _default_signals()
    try:
        os.execvpe(argv[0], list(argv), dict(env))
    except OSError as exc:
        raise _not_started(argv[0], exc, env) from None


def _default_signals() -> None:
    """CPython ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec:
    give the command the defaults a shell would (`envlock run -- yes | head` must end)."""
    # `signal` wraps the C module `_signal`, loaded at start-up, in enums: ~5 ms of a warm run.
    signals: Any = sys.modules.get("_signal")
    if signals is None:
        import signal as signals
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signals, name):
            signals.signal(getattr(signals, name), signals.SIG_DFL)


def _spawn(argv: Sequence[str], env: Mapping[str, str]) -> NoReturn:
    import shutil
    import subprocess

    exe = shutil.which(argv[0], path=env.get("PATH")) or argv[0]
    try:
        code = subprocess.call([exe, *argv[1:]], env=dict(env))
    except OSError as exc:
        raise _not_started(argv[0], exc, env) from None
    sys.exit(code)


def _not_started(command: str, exc: OSError, env: Mapping[str, str]) -> CommandError:
    if isinstance(exc, FileNotFoundError) and os.sep not in command and "/" not in command:
        return CommandError(
            f"{command}: command not found",
            127,
            hint=f"it is neither in the environment ({env.get('VIRTUAL_ENV')}) nor on PATH",
        )
    code = 127 if isinstance(exc, FileNotFoundError) else 126
    return CommandError(f"{command}: cannot run it: {exc.strerror or exc}", code)
