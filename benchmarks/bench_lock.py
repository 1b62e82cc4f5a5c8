"""Wall time of locking the benchmark workloads with envlock and its peers (uv, pip-compile, pdm).

    python benchmarks/bench_lock.py [--workload web|data|all] [--runs N] [--json OUT]

For each workload and each tool: ``cold`` (a fresh, empty cache) then ``warm`` (the same cache,
output deleted so the tool must resolve again), ``--runs`` times; the median is reported with
ratio = tool time / envlock time (> 1: envlock is faster). Peer tools live in their own venv,
``benchmarks/.venv-peers``, created on first use. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from workloads import PYTHON, WORKLOADS, write_pyproject, write_requirements_in, write_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # envlock's own dependencies include tomli on 3.10
    import tomli as tomllib  # type: ignore[import-not-found, no-redef, unused-ignore]

HERE = Path(__file__).resolve().parent
PEERS_VENV = HERE / ".venv-peers"
# hishel 2.0 dropped SyncSqliteStorage, which pdm 2.29 still imports (its pin is only >=1.4).
PEER_PACKAGES = ("uv", "pip-tools", "pdm", "hishel[httpx2]>=1.4,<2")
LINUX = ("linux-64",)
MULTI = ("linux-64", "osx-arm64", "win-64")
TIMEOUT = 1800.0  # seconds; a run that takes longer is reported as failed
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==", re.MULTILINE)
_BIN = "Scripts" if os.name == "nt" else "bin"
_EXE = ".exe" if os.name == "nt" else ""


# -- tools -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tool:
    """How to lock one workload with one tool, given a work dir and a cache dir."""

    name: str
    output: str  # the file the tool writes, relative to the work dir; deleted before every run
    setup: Callable[[str, Path], object]  # (workload, work dir) -> write the tool's input files
    argv: Callable[[Path], list[str]]  # cache dir -> command
    env: Callable[[Path], dict[str, str]]  # cache dir -> extra environment
    count: Callable[[Path], int | None]  # output file -> number of distinct projects locked


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def count_pins(path: Path) -> int | None:
    """Distinct ``name==version`` pins of a requirements file (uv, pip-compile)."""
    if not path.is_file():
        return None
    return len({_norm(m.group(1)) for m in _PIN.finditer(path.read_text(encoding="utf-8"))})


def _count_toml(path: Path, key: str) -> int | None:
    if not path.is_file():
        return None
    with path.open("rb") as f:
        entries = tomllib.load(f).get(key, [])
    return len({_norm(str(e["name"])) for e in entries})


def count_pylock(path: Path) -> int | None:
    """Distinct projects among the ``[[packages]]`` of a pylock.toml."""
    return _count_toml(path, "packages")


def count_pdm_lock(path: Path) -> int | None:
    """Distinct projects among the ``[[package]]`` of a pdm.lock (extras have their own entry)."""
    return _count_toml(path, "package")


def _no_env(_cache: Path) -> dict[str, str]:
    return {}


def envlock_tool(envlock: Sequence[str], platforms: Sequence[str]) -> Tool:
    def setup(workload: str, work: Path) -> Path:
        return write_spec(workload, work, platforms)

    def argv(cache: Path) -> list[str]:
        flags = [arg for p in platforms for arg in ("--platform", p)]
        # --upgrade: with pylock.toml deleted nothing is preferred anyway; this makes sure.
        return [
            *envlock,
            "lock",
            "--spec",
            "envlock.toml",
            "--cache-dir",
            str(cache),
            *flags,
            "--upgrade",
            "--quiet",
        ]

    return Tool("envlock", "pylock.toml", setup, argv, _no_env, count_pylock)


def uv_tool(uv: Path, universal: bool) -> Tool:
    target = ["--universal"] if universal else ["--python-platform", "x86_64-manylinux_2_28"]

    def argv(_cache: Path) -> list[str]:
        return [
            str(uv),
            "pip",
            "compile",
            "requirements.in",
            "--python-version",
            PYTHON,
            *target,
            "--generate-hashes",
            "-o",
            "out.txt",
            "--quiet",
        ]

    def env(cache: Path) -> dict[str, str]:
        return {"UV_CACHE_DIR": str(cache)}

    name = "uv --universal" if universal else "uv"
    return Tool(name, "out.txt", write_requirements_in, argv, env, count_pins)


def pip_compile_tool(pip_compile: Path) -> Tool:
    def argv(cache: Path) -> list[str]:
        # pip-tools hands --cache-dir to pip as well, so pip's HTTP cache lands there too.
        return [
            str(pip_compile),
            "requirements.in",
            "--generate-hashes",
            "--cache-dir",
            str(cache),
            "--strip-extras",
            "-o",
            "out.txt",
            "--quiet",
        ]

    def env(cache: Path) -> dict[str, str]:
        return {"PIP_CACHE_DIR": str(cache / "pip")}

    return Tool("pip-compile", "out.txt", write_requirements_in, argv, env, count_pins)


def pdm_tool(pdm: Path) -> Tool:
    def argv(_cache: Path) -> list[str]:
        # A lock target (pdm >= 2.17): CPython 3.11 on manylinux_2_28 x86_64, like the others.
        return [
            str(pdm),
            "lock",
            "--python",
            f"=={PYTHON}.*",
            "--platform",
            "manylinux_2_28_x86_64",
            "--quiet",
        ]

    def env(cache: Path) -> dict[str, str]:
        return {"PDM_CACHE_DIR": str(cache)}

    return Tool("pdm", "pdm.lock", write_pyproject, argv, env, count_pdm_lock)


# -- peer venv -------------------------------------------------------------------------------
@dataclass
class Peers:
    """Executables of the peer tools that work; why the others are skipped."""

    python: Path
    exes: dict[str, Path] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _run_quiet(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[bool, str]:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def ensure_peers(env: dict[str, str]) -> Peers:
    """Create benchmarks/.venv-peers on first use (pip install uv pip-tools pdm), then reuse it."""
    python = PEERS_VENV / _BIN / f"python{_EXE}"
    marker = PEERS_VENV / ".installed"
    wanted = "\n".join(PEER_PACKAGES)
    scripts = [PEERS_VENV / _BIN / f"{exe}{_EXE}" for exe in ("python", "uv", "pip-compile")]
    if not (all(p.exists() for p in scripts) and marker.exists() and marker.read_text() == wanted):
        print(f"creating {PEERS_VENV} (uv, pip-tools, pdm) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEERS_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--upgrade"]
        subprocess.run([*pip, "pip"], check=True)
        subprocess.run([*pip, "uv", "pip-tools"], check=True)
        ok, out = _run_quiet([*pip, *PEER_PACKAGES[2:]])
        if not ok:
            print(f"warning: installing pdm failed:\n{out[-2000:]}", file=sys.stderr)
        marker.write_text(wanted)
    peers = Peers(python)
    for name, exe in (("uv", "uv"), ("pip-compile", "pip-compile"), ("pdm", "pdm")):
        path = PEERS_VENV / _BIN / f"{exe}{_EXE}"
        if not path.exists():
            peers.skipped[name] = f"{exe} is not installed in {PEERS_VENV}"
            continue
        ok, out = _run_quiet([str(path), "--version"], env)
        if ok:
            peers.exes[name] = path
            peers.versions[name] = out.splitlines()[-1] if out else "?"
        else:
            last = out.splitlines()[-1] if out else "no output"
            peers.skipped[name] = f"`{exe} --version` fails: {last}"
    return peers


def tool_env(work_root: Path, peers_python: Path) -> dict[str, str]:
    """The environment every tool runs in: no user or machine config that changes resolution.

    pip reads pip.conf (extra indexes, find-links, constraints) and PIP_* variables; uv reads
    uv.toml and UV_*; pdm its global config. All of that is dropped so every tool asks PyPI
    for the same thing. Certificate settings (SSL_CERT_FILE, PIP_CERT) are kept.
    """
    drop = ("PIP_", "UV_", "PDM_", "ENVLOCK_", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) or k == "PIP_CERT"}
    env.update(
        {
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "UV_NO_CONFIG": "1",
            "UV_PYTHON_DOWNLOADS": "never",
            "PDM_CONFIG_FILE": str(work_root / "pdm-config.toml"),
            "PDM_CHECK_UPDATE": "false",
            "PDM_PYTHON": str(peers_python),  # else pdm creates a .venv in the project first
            "NO_COLOR": "1",
        }
    )
    return env


# -- measuring -------------------------------------------------------------------------------
@dataclass
class Row:
    """One (workload, target, scenario, tool) cell: every run's seconds, packages locked."""

    workload: str
    target: str
    scenario: str
    tool: str
    seconds: list[float] = field(default_factory=list)
    packages: int | None = None
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None


@dataclass(frozen=True)
class Case:
    workload: str
    target: str  # "linux-64" or "3 platforms"
    tool: Tool
    work: Path


def _run_once(case: Case, cache: Path, env: dict[str, str], log: Path) -> tuple[float, str | None]:
    out = case.work / case.tool.output
    out.unlink(missing_ok=True)
    full_env = {**env, **case.tool.env(cache)}
    with log.open("ab") as sink:
        sink.write(f"\n$ {' '.join(case.tool.argv(cache))}\n".encode())
        sink.flush()
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                case.tool.argv(cache),
                cwd=case.work,
                env=full_env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return time.perf_counter() - start, f"timed out after {TIMEOUT:.0f}s"
        except OSError as exc:  # e.g. the peer venv was removed under us
            return time.perf_counter() - start, f"cannot run {case.tool.name}: {exc}"
        elapsed = time.perf_counter() - start
    if proc.returncode != 0 or not out.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        return elapsed, f"exit {proc.returncode}: " + " | ".join(tail)
    return elapsed, None


def measure(cases: Sequence[Case], runs: int, env: dict[str, str], caches: Path) -> list[Row]:
    """Run every case ``runs`` times: cold on a fresh cache, then warm on the same cache."""
    # Insertion order is the table's: per workload and target, cold then warm, tools in order.
    rows = {
        (c.workload, c.target, s, c.tool.name): Row(c.workload, c.target, s, c.tool.name)
        for w, t in dict.fromkeys((c.workload, c.target) for c in cases)
        for s in ("cold", "warm")
        for c in cases
        if (c.workload, c.target) == (w, t)
    }
    for run in range(1, runs + 1):
        for case in cases:
            cold = rows[(case.workload, case.target, "cold", case.tool.name)]
            warm = rows[(case.workload, case.target, "warm", case.tool.name)]
            if cold.error or warm.error:
                continue  # a tool that failed once is not retried
            cache = caches / f"{case.workload}-{case.target}-{case.tool.name}".replace(" ", "_")
            shutil.rmtree(cache, ignore_errors=True)
            cache.mkdir(parents=True)
            log = case.work / "bench.log"
            for row in (cold, warm):
                seconds, error = _run_once(case, cache, env, log)
                label = f"[{run}/{runs}] {case.workload:<4} {case.target:<11} {row.scenario} "
                if error:
                    row.error = error
                    print(f"{label}{case.tool.name}: FAILED ({error[:300]})", flush=True)
                    break
                row.seconds.append(seconds)
                row.packages = case.tool.count(case.work / case.tool.output)
                print(
                    f"{label}{case.tool.name}: {seconds:.2f}s, {row.packages} packages", flush=True
                )
            shutil.rmtree(cache, ignore_errors=True)
    return list(rows.values())


def ratios(rows: Sequence[Row]) -> dict[int, float | None]:
    """id(row) -> its median / envlock's median for the same workload, target and scenario."""
    base = {(r.workload, r.target, r.scenario): r.median for r in rows if r.tool == "envlock"}
    out: dict[int, float | None] = {}
    for r in rows:
        ref = base.get((r.workload, r.target, r.scenario))
        out[id(r)] = r.median / ref if r.median is not None and ref else None
    return out


# -- output ----------------------------------------------------------------------------------
COLUMNS = ("workload", "target", "scenario", "tool", "seconds", "runs", "ratio", "packages")


def table_rows(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    ratio = ratios(rows)
    out: list[tuple[str, ...]] = []
    for r in rows:
        median = f"{r.median:.2f}" if r.median is not None else "failed"
        each = " ".join(f"{s:.1f}" for s in r.seconds)
        rel = ratio[id(r)]
        out.append(
            (
                r.workload,
                r.target,
                r.scenario,
                r.tool,
                median,
                each,
                f"{rel:.2f}" if rel is not None else "-",
                str(r.packages) if r.packages is not None else "-",
            )
        )
    return out


def print_table(rows: Sequence[Row]) -> None:
    body = table_rows(rows)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(COLUMNS)]
        for line in (COLUMNS, *body):
            print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
        return
    table = Table(title="lock wall time (median seconds; ratio = tool / envlock)")
    for col in COLUMNS:
        table.add_column(
            col,
            no_wrap=True,
            justify="right" if col in ("seconds", "ratio", "packages") else "left",
        )
    for i, line in enumerate(body):
        table.add_row(*line, end_section=i + 1 < len(body) and body[i + 1][:3] != line[:3])
    console = Console()
    console.width = max(console.width, 120)  # not a terminal: rich assumes 80 and would wrap
    console.print(table)


def host_info() -> dict[str, str]:
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        # Other work on the machine skews wall times; recorded so a reader can tell.
        "loadavg_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg())
        if hasattr(os, "getloadavg")
        else "?",
    }


# -- main ------------------------------------------------------------------------------------
def envlock_command() -> list[str]:
    """``envlock`` next to this interpreter, else on PATH, else ``python -m envlock``."""
    beside = Path(sys.executable).with_name(f"envlock{_EXE}")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("envlock")
    return [found] if found else [sys.executable, "-m", "envlock"]


def build_cases(workloads: Sequence[str], peers: Peers, work_root: Path) -> list[Case]:
    envlock = envlock_command()
    per_target: list[tuple[str, list[Tool]]] = []
    linux = [envlock_tool(envlock, LINUX)]
    if "uv" in peers.exes:
        linux.append(uv_tool(peers.exes["uv"], universal=False))
    if "pip-compile" in peers.exes:
        linux.append(pip_compile_tool(peers.exes["pip-compile"]))
    if "pdm" in peers.exes:
        linux.append(pdm_tool(peers.exes["pdm"]))
    per_target.append(("linux-64", linux))
    multi = [envlock_tool(envlock, MULTI)]
    if "uv" in peers.exes:
        multi.append(uv_tool(peers.exes["uv"], universal=True))
    per_target.append(("3 platforms", multi))
    cases = []
    for workload in workloads:
        for target, tools in per_target:
            for tool in tools:
                work = work_root / workload / target.replace(" ", "_") / tool.name.replace(" ", "_")
                tool.setup(workload, work)
                cases.append(Case(workload, target, tool, work))
    return cases


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=[*WORKLOADS, "all"], default="all")
    parser.add_argument("--runs", type=int, default=3, help="runs per cell; the median is shown")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write results as JSON")
    parser.add_argument(
        "--tools",
        default="envlock,uv,pip-compile,pdm",
        help="comma-separated subset of envlock,uv,pip-compile,pdm",
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep inputs, outputs and logs here (default: a temporary dir)"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    workloads = list(WORKLOADS) if args.workload == "all" else [args.workload]
    selected = {t.strip() for t in args.tools.split(",") if t.strip()}
    unknown = selected - {"envlock", "uv", "pip-compile", "pdm"}
    if unknown:
        parser.error(f"unknown tool(s) in --tools: {', '.join(sorted(unknown))}")

    work_root = (args.workdir or Path(tempfile.mkdtemp(prefix="envlock-bench-"))).resolve()
    work_root.mkdir(parents=True, exist_ok=True)
    env = tool_env(work_root, PEERS_VENV / _BIN / f"python{_EXE}")
    peers = ensure_peers(env)
    for name in list(peers.exes):
        if name not in selected:
            del peers.exes[name]
    if sys.version_info[:2] != tuple(int(p) for p in PYTHON.split(".")):
        print(
            f"note: pip-compile locks for the interpreter running it "
            f"(Python {platform.python_version()}), not {PYTHON}",
            file=sys.stderr,
        )

    ok, envlock_version = _run_quiet([*envlock_command(), "--version"], env)
    versions = {"envlock": envlock_version if ok else "?", **peers.versions}
    info = host_info()
    print(
        f"{info['date']}  {info['platform']}  {info['cpus']} CPUs  Python {info['python']}"
        f"  load {info['loadavg_at_start']}"
    )
    print(
        "tools: "
        + "; ".join(f"{k} = {v}" for k, v in versions.items() if k in selected or k == "envlock")
    )
    for name, reason in peers.skipped.items():
        if name in selected:
            print(f"skipping {name}: {reason}")
    print(f"work dir: {work_root}", flush=True)

    try:
        cases = build_cases(workloads, peers, work_root)
        rows = measure(cases, args.runs, env, work_root / "caches")
    finally:
        if args.workdir is None:
            shutil.rmtree(work_root, ignore_errors=True)
    print()
    print_table(rows)
    for r in rows:
        if r.error:
            print(f"{r.workload} {r.target} {r.scenario} {r.tool} failed: {r.error}")
    if args.json:
        ratio = ratios(rows)
        doc = {
            "host": info,
            "versions": versions,
            "runs": args.runs,
            "skipped": {k: v for k, v in peers.skipped.items() if k in selected},
            "results": [{**asdict(r), "median": r.median, "ratio": ratio[id(r)]} for r in rows],
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 1 if any(r.error for r in rows if r.tool == "envlock") else 0


if __name__ == "__main__":
    sys.exit(main())
