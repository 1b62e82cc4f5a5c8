"""Hard resolutions, envlock against uv in one run: conflicts and long backtracking.

    python benchmarks/bench_conflicts.py [--runs N] [--cases a,b] [--json OUT]

Every case locks for linux-64 / CPython 3.11 with the same ``exclude-newer`` for both tools, from
a cold cache and then a warm one; a case that is unsatisfiable counts as done when the tool exits
with its error. ratio = uv / envlock (below 1: uv is faster). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_lock import _BIN, _EXE, PEERS_VENV, ensure_peers, envlock_command, tool_env

EXCLUDE_NEWER = "2025-06-01T00:00:00Z"


@dataclass(frozen=True)
class Case:
    name: str
    requirements: tuple[str, ...]
    solvable: bool
    note: str


CASES = {
    c.name: c
    for c in (
        Case(
            "h11-clash",
            ("httpx>=0.27", "h11<0.10"),
            False,
            "every httpx>=0.27 needs httpcore 1.x, which needs h11>=0.13",
        ),
        Case(
            "boto",
            ("boto3", "aiobotocore"),
            True,
            "aiobotocore pins botocore narrowly; boto3 releases daily",
        ),
        Case(
            "boto-old",
            ("boto3", "aiobotocore==2.5.0"),
            True,
            "an old aiobotocore: boto3 has to go back about 600 releases",
        ),
        Case(
            "tf-numpy",
            ("tensorflow<2.16", "numpy>=2"),
            True,
            "an old tensorflow with a new numpy: only 2.14.0 leaves numpy unbounded",
        ),
        Case(
            "ml",
            (
                "torch",
                "torchvision",
                "tensorflow",
                "catboost",
                "xgboost",
                "lightgbm",
                "jax",
                "pandas",
                "scikit-learn",
                "jupyterlab",
            ),
            True,
            "the ML stack of the network suite",
        ),
    )
}


def _spec(case: Case, work: Path) -> None:
    deps = ", ".join(json.dumps(r) for r in case.requirements)
    (work / "envlock.toml").write_text(
        f'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = [{deps}]\n'
        f'exclude-newer = "{EXCLUDE_NEWER}"\n'
    )
    (work / "requirements.in").write_text("".join(f"{r}\n" for r in case.requirements))


def _time(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    return time.perf_counter() - started, proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    cases = [CASES[c] for c in args.cases.split(",")]
    root = Path(tempfile.mkdtemp(prefix="envlock-bench-conflicts-"))
    env = tool_env(root, PEERS_VENV / _BIN / f"python{_EXE}")
    peers = ensure_peers(env)
    uv = str(peers.exes["uv"])
    envlock = envlock_command()
    results = []
    for case in cases:
        times: dict[tuple[str, str], list[float]] = {}
        for run in range(args.runs):
            for tool in ("envlock", "uv"):
                work = root / f"{case.name}-{tool}-{run}"
                work.mkdir()
                _spec(case, work)
                cache = work / "cache"
                if tool == "envlock":
                    cmd = [*envlock, "lock", "--upgrade", "-q", "--cache-dir", str(cache)]
                    extra = {}
                else:
                    cmd = [
                        uv,
                        "pip",
                        "compile",
                        "requirements.in",
                        "--python-version",
                        "3.11",
                        "--python-platform",
                        "x86_64-manylinux_2_28",
                        "--exclude-newer",
                        EXCLUDE_NEWER,
                        "-q",
                        "-o",
                        "out.txt",
                    ]
                    extra = {"UV_CACHE_DIR": str(cache)}
                for scenario in ("cold", "warm"):
                    seconds, code = _time(cmd, work, {**env, **extra})
                    if (code == 0) != case.solvable:
                        print(f"{case.name}: {tool} {scenario} exited {code}", file=sys.stderr)
                    times.setdefault((tool, scenario), []).append(seconds)
        for scenario in ("cold", "warm"):
            ours = statistics.median(times[("envlock", scenario)])
            theirs = statistics.median(times[("uv", scenario)])
            results.append(
                {
                    "case": case.name,
                    "scenario": scenario,
                    "envlock": ours,
                    "uv": theirs,
                    "ratio": theirs / ours,
                    "note": case.note,
                }
            )
    print("| case | scenario | envlock s | uv s | uv / envlock |")
    print("|---|---|--:|--:|--:|")
    for r in results:
        print(
            f"| {r['case']} | {r['scenario']} | {r['envlock']:.2f} | {r['uv']:.2f} | "
            f"{r['ratio']:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"runs": args.runs, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
