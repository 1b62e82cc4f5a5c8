"""How long the everyday ``envlock lock --check`` takes on a 100-package, 3-platform lock.

    python benchmarks/bench_check.py [--runs N] [--envlock PATH]... [--json OUT]

Locks a ~100-package spec once (linux-64, osx-arm64, win-64, fixed ``exclude-newer``), then
times ``envlock lock --check`` ``--runs`` times per envlock executable given (default: the one
beside this interpreter; pass an older build's too for before/after), and uv's offline check
(``uv lock --check --offline``) of the same requirements as the peer. Medians are reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_lock import _BIN, _EXE, PEERS_VENV, ensure_peers, envlock_command, tool_env

EXCLUDE_NEWER = "2025-06-01T00:00:00Z"
# About 100 distinct projects over the three platforms.
REQUIREMENTS = ("jupyterlab", "pandas", "scikit-learn", "matplotlib", "requests", "rich")


def _median(argv: list[str], cwd: Path, env: dict[str, str], runs: int) -> float:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        seconds.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr}")
    return statistics.median(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--envlock", action="append", type=Path, default=[])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="envlock-bench-check-"))
    env = tool_env(work, PEERS_VENV / _BIN / f"python{_EXE}")
    deps = ", ".join(json.dumps(r) for r in REQUIREMENTS)
    (work / "envlock.toml").write_text(
        f'python = "3.11"\nplatforms = ["linux-64", "osx-arm64", "win-64"]\n'
        f'dependencies = [{deps}]\nexclude-newer = "{EXCLUDE_NEWER}"\n'
        # Explicit floors, so envlock builds from before 0.2 (other defaults) lock the same.
        '[platform-tags]\nmacos-arm64 = "13.0"\nmanylinux-legacy-aliases = true\n'
    )
    envlocks = [[str(p)] for p in args.envlock] or [envlock_command()]
    rows = []
    for envlock in envlocks:
        subprocess.run([*envlock, "lock", "-q", "--upgrade"], cwd=work, env=env, check=True)
        with (work / "pylock.toml").open("rb") as f:
            packages = f.read().count(b"\n[[packages]]\n")
        rows.append(
            (
                " ".join(envlock),
                packages,
                _median([*envlock, "lock", "--check", "-q"], work, env, args.runs),
            )
        )
    peers = ensure_peers(env)
    uv_dir = work / "uv"
    uv_dir.mkdir()
    (uv_dir / "pyproject.toml").write_text(
        f'[project]\nname = "bench"\nversion = "0"\nrequires-python = "==3.11.*"\n'
        f"dependencies = [{deps}]\n\n[tool.uv]\npackage = false\n"
        f'exclude-newer = "{EXCLUDE_NEWER}"\n'
    )
    uv = str(peers.exes["uv"])
    subprocess.run([uv, "lock", "-q"], cwd=uv_dir, env=env, check=True)
    uv_time = _median([uv, "lock", "--check", "--offline", "-q"], uv_dir, env, args.runs)
    print("| tool | packages in lock | median s | ratio to uv |")
    print("|---|--:|--:|--:|")
    for name, packages, seconds in rows:
        print(f"| {name} lock --check | {packages} | {seconds:.3f} | {seconds / uv_time:.1f} |")
    print(f"| uv lock --check --offline | | {uv_time:.3f} | 1.0 |")
    if args.json:
        args.json.write_text(json.dumps({"envlock": rows, "uv": uv_time}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
