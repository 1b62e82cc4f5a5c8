"""Materialize from a warm cache vs ``uv pip install --offline`` into a fresh ``uv venv``.

    python benchmarks/bench_materialize.py [--workload web|data|all] [--runs N] [--json OUT]

Both tools install the very same artifacts: envlock locks the workload for linux-64 (the host),
then uv installs from that ``pylock.toml``. Both caches are warmed first (envlock: fetch + one
materialize, which also unpacks every wheel once; uv: one install). Each measured run builds a
brand-new environment directory: envlock ``materialize --output NEW``; uv ``uv venv NEW`` +
``uv pip install --offline``. Reported: median wall time and envlock / uv (>1: uv is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workloads import WORKLOADS, run, write_spec  # noqa: E402

PEERS = HERE / ".venv-peers"


def uv_binary() -> Path:
    """uv from benchmarks/.venv-peers (created on first use; shared with bench_lock.py)."""
    uv = PEERS / "bin" / "uv"
    if not uv.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(PEERS / "bin" / "pip"), "install", "-q", "uv"], check=True)
    return uv


def envlock_cmd() -> list[str]:
    found = shutil.which("envlock")
    return [found] if found else [sys.executable, "-m", "envlock"]


def host_python() -> str:
    """The real interpreter both tools build on (not a pyenv shim: those cost ~0.2 s a call)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def compile_envlock() -> None:
    """Byte-compile envlock like a regular install does (an editable one may lack .pyc files,
    e.g. with PYTHONDONTWRITEBYTECODE set, and would then pay for compiling on every run)."""
    import envlock

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(envlock.__file__).parent)],
        check=True,
        capture_output=True,
    )


def bench(workload: str, runs: int, root: Path) -> dict[str, object]:
    work = root / workload
    write_spec(workload, work, ["linux-64"])
    env = {
        **os.environ,
        "ENVLOCK_CACHE_DIR": str(root / "envlock-cache"),
        "UV_CACHE_DIR": str(root / "uv-cache"),
        "UV_NO_PROGRESS": "1",
    }
    envlock, uv, py = envlock_cmd(), str(uv_binary()), host_python()
    run([*envlock, "lock", "-q"], work, env)
    run([*envlock, "fetch", "-q"], work, env)
    run(
        [
            *envlock,
            "materialize",
            "-q",
            "-p",
            "linux-64",
            "-o",
            str(work / "warm-envlock"),
            "--base-python",
            py,
        ],
        work,
        env,
    )
    run([uv, "venv", "-q", "-p", py, str(work / "warm-uv")], work, env)
    run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            str(work / "warm-uv" / "bin" / "python"),
            "-r",
            "pylock.toml",
        ],
        work,
        env,
    )
    packages = len(json.loads((work / "warm-envlock" / "envlock.json").read_text())["packages"])
    files = sum(len(f) for _, _, f in os.walk(work / "warm-envlock"))
    times: dict[str, list[float]] = {"envlock": [], "uv": []}
    for i in range(runs):
        out = work / f"e{i}"
        times["envlock"].append(
            run(
                [
                    *envlock,
                    "materialize",
                    "-q",
                    "-p",
                    "linux-64",
                    "-o",
                    str(out),
                    "--base-python",
                    py,
                ],
                work,
                env,
            )
        )
        venv = work / f"u{i}"

        def uv_install(venv: Path = venv) -> float:
            return run([uv, "venv", "-q", "-p", py, str(venv)], work, env) + run(
                [
                    uv,
                    "pip",
                    "install",
                    "-q",
                    "--offline",
                    "--python",
                    str(venv / "bin" / "python"),
                    "-r",
                    "pylock.toml",
                ],
                work,
                env,
            )

        times["uv"].append(uv_install())
        shutil.rmtree(out)
        shutil.rmtree(venv)
    med = {tool: statistics.median(ts) for tool, ts in times.items()}
    return {
        "workload": workload,
        "packages": packages,
        "files": files,
        "runs": runs,
        "envlock_s": round(med["envlock"], 3),
        "uv_s": round(med["uv"], 3),
        "ratio_envlock_over_uv": round(med["envlock"] / med["uv"], 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="all", choices=[*WORKLOADS, "all"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    names = list(WORKLOADS) if args.workload == "all" else [args.workload]
    compile_envlock()
    with tempfile.TemporaryDirectory(prefix="envlock-bench-mat-") as tmp:
        results = [bench(name, args.runs, Path(tmp)) for name in names]
    print(
        f"{'workload':<10}{'packages':>9}{'files':>8}{'envlock s':>11}{'uv s':>8}{'envlock/uv':>12}"
    )
    for r in results:
        print(
            f"{r['workload']:<10}{r['packages']:>9}{r['files']:>8}{r['envlock_s']:>11}"
            f"{r['uv_s']:>8}{r['ratio_envlock_over_uv']:>12}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
