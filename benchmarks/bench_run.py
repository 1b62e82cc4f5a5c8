"""How much a warm ``envlock run -- python -c pass`` adds to Python's own start, against uv.

    python benchmarks/bench_run.py [--workload web|data] [--runs N] [--uv PATH] [--json OUT]

Locks the workload for the host platform (``interpreter = "system"``: the environment is a venv
on the interpreter running this script, so every row starts the very same CPython), runs
``envlock run`` once to build its environment, prepares uv's equivalents from the same lock,
then times, round-robin, ``--runs`` times each:

- ``ENV/bin/python -c pass``: the environment's interpreter called directly, the baseline
  (Python's own start, without the base interpreter's site-packages);
- ``BASE/python -c pass``: the base interpreter itself, with its own site-packages (``.pth``
  files there may import things: shown for reference only);
- ``envlock run -- python -c pass``: the warm path (no spec parsing, no lock parsing, exec);
- ``uv run --no-project --offline --python PY --with-requirements requirements.txt python -c
  pass``: uv's cached ephemeral environment of the same pins (uv 0.13 reads no ``pylock.toml``
  in ``--with-requirements``: it is checked, and that row is added when it works);
- ``uv run --no-project --offline --python VENV/bin/python python -c pass``: a ``uv venv``
  filled by ``uv pip install -r pylock.toml``.

Reported: median and minimum wall time of each, the ratio to the baseline, and envlock / each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import tomllib

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_lock import _BIN, _EXE, PEERS_VENV, envlock_command, host_info, tool_env  # noqa: E402
from bench_materialize import compile_envlock  # noqa: E402
from workloads import WORKLOADS, write_spec  # noqa: E402


def host_python() -> str:
    """The real interpreter (not a pyenv shim, which costs ~0.2 s a call)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def uv_binary(option: Path | None) -> str:
    if option is not None:
        return str(option)
    peer = PEERS_VENV / _BIN / f"uv{_EXE}"
    if peer.exists():
        return str(peer)
    beside = Path(sys.executable).with_name(f"uv{_EXE}")
    if beside.exists():
        return str(beside)
    raise SystemExit("no uv found: pass --uv PATH (or run bench_lock.py once to make the peers)")


def check(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return proc


def works(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> bool:
    return subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True).returncode == 0


def pins(lock: Path) -> list[str]:
    """``name==version`` of every package in a pylock.toml (one platform: all are selected)."""
    data = tomllib.loads(lock.read_text("utf-8"))
    return [f"{p['name']}=={p['version']}" for p in data.get("packages", [])]


def timed(commands: dict[str, list[str]], cwd: Path, env: dict[str, str], runs: int):
    """Round-robin: each run starts every command once, so load spikes hit all of them."""
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():  # warm the page cache, and check each works
        check(argv, cwd, env)
    for _ in range(runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True)
            seconds[name].append(time.perf_counter() - start)
            if proc.returncode != 0:
                raise SystemExit(f"failed: {' '.join(argv)}\n{proc.stderr[-2000:]!r}")
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="web", choices=list(WORKLOADS))
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--uv", type=Path, help="uv to compare with (default: the peers' uv)")
    parser.add_argument("--envlock", type=Path, help="envlock executable (default: beside python)")
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    compile_envlock()  # an editable install without .pyc files would compile on every run
    root = args.keep or Path(tempfile.mkdtemp(prefix="envlock-bench-run-"))
    root.mkdir(parents=True, exist_ok=True)
    env = tool_env(root, Path(sys.executable))
    env.update({"ENVLOCK_CACHE_DIR": str(root / "cache"), "UV_CACHE_DIR": str(root / "uv-cache")})
    envlock = [str(args.envlock)] if args.envlock else envlock_command()
    uv, py = uv_binary(args.uv), host_python()
    project = root / "project"
    spec = write_spec(args.workload, project)
    spec.write_text('interpreter = "system"\n' + spec.read_text())
    check([*envlock, "lock", "-q"], project, env)
    lock = project / "pylock.toml"

    # envlock: the first run builds; the second must be warm (nothing printed).
    check([*envlock, "run", "--", "python", "-c", "pass"], project, env)
    warm = check(
        [*envlock, "run", "--", "python", "-c", "import sys; print(sys.prefix)"], project, env
    )
    if warm.stderr:
        raise SystemExit(f"the second envlock run was not warm:\n{warm.stderr}")
    env_python = str(Path(warm.stdout.strip()) / _BIN / f"python{_EXE}")
    module = WORKLOADS[args.workload][0]  # fastapi, pandas: importable under that name

    # uv: the same pins as a requirements file, and a venv installed from the lock itself.
    reqs = project / "requirements.txt"
    reqs.write_text("\n".join(pins(lock)) + "\n")
    venv_python = str(root / "uv-venv" / _BIN / f"python{_EXE}")
    check([uv, "venv", "-q", "--clear", "-p", py, str(root / "uv-venv")], project, env)
    check([uv, "pip", "install", "-q", "--python", venv_python, "-r", str(lock)], project, env)

    def uv_run(python: str, *extra: str, code: str = "pass") -> list[str]:
        return [uv, "run", "--no-project", "--python", python, *extra, "python", "-c", code]

    # The first (online) call fills uv's cache and its cached ephemeral environment.
    check(uv_run(py, "--with-requirements", str(reqs), code=f"import {module}"), project, env)
    commands = {
        "ENV/bin/python -c pass": [env_python, "-c", "pass"],
        "BASE/python -c pass": [py, "-c", "pass"],
        "envlock run -- python -c pass": [*envlock, "run", "--", "python", "-c", "pass"],
        "uv run --with-requirements requirements.txt": uv_run(
            py, "--offline", "--with-requirements", str(reqs)
        ),
        "uv run --python VENV/bin/python": uv_run(venv_python, "--offline"),
    }
    with_lock = ("--offline", "--with-requirements", str(lock))
    if works(uv_run(py, *with_lock, code=f"import {module}"), project, env):
        commands["uv run --with-requirements pylock.toml"] = uv_run(py, *with_lock)
    seconds = timed(commands, project, env, args.runs)

    base = statistics.median(seconds["ENV/bin/python -c pass"])
    ours = statistics.median(seconds["envlock run -- python -c pass"])
    uv_version = check([uv, "--version"], project, env).stdout.strip()
    print(f"workload {args.workload} ({len(pins(lock))} packages), {args.runs} runs, {uv_version}")
    print("| command | median ms | min ms | × ENV/bin/python | envlock run / this |")
    print("|---|--:|--:|--:|--:|")
    rows = []
    for name, times in seconds.items():
        med = statistics.median(times)
        rows.append({"command": name, "median_s": med, "min_s": min(times), "runs": times})
        print(
            f"| `{name}` | {med * 1000:.1f} | {min(times) * 1000:.1f} | {med / base:.2f} "
            f"| {ours / med:.2f} |"
        )
    if "uv run --with-requirements pylock.toml" not in seconds:
        print(f"(`uv run --with-requirements pylock.toml` does not work with {uv_version})")
    if args.json:
        result = {"host": host_info(), "workload": args.workload, "uv": uv_version, "rows": rows}
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
