"""A fleet starting from one snapshot: N machines ``envlock pull`` (or ``build --from-snapshot``)
at once from a real S3 server (SeaweedFS on 127.0.0.1, as in the tests).

    python benchmarks/bench_fleet.py [--workload web|data|synthetic] [-n 50] [--mode pull|build]
                                     [--interpreter bundled|system] [--json OUT]

Set-up (not measured): lock the workload for linux-64, then ``envlock push --archives`` to a
fresh bucket. Measured: N ``envlock pull --platform linux-64 --output DIR`` processes started
together, each a "machine" with its own empty cache and output directory (``--mode build``:
``envlock build --from-snapshot`` instead, which downloads every artifact and installs them).
Reported: wall time of the whole fleet (and divided by N: what one more machine costs this
host), per-machine time (median, p95, max: all N share the host's CPUs) and the bytes read
from storage (pull: archive + manifest per machine; build: every artifact per machine). All
machines must end with byte-identical environments (one tree hash). ``synthetic`` needs no
network (a loopback index: 20 packages of 1 MB random data); ``web``/``data`` lock against
PyPI. The bundled interpreter (the default) is the tests' one: this host's Debian python3.11
repacked in python-build-standalone's layout, served from 127.0.0.1, so that machines run
without any Python of their own; ``--interpreter system`` makes venvs on the host's python.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from workloads import WORKLOADS, run, write_spec  # noqa: E402

from support.index import IndexServer  # noqa: E402
from support.interpreter import interpreter_sources_toml, make_interpreter_archive  # noqa: E402
from support.s3 import Bucket, S3Server  # noqa: E402
from support.wheels import Dist  # noqa: E402


def envlock_cmd() -> list[str]:
    found = shutil.which("envlock", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "envlock"]


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        h.update(f"{rel}\0{st.st_mode:o}\0".encode())
        if path.is_symlink():
            h.update(os.readlink(path).encode())
        elif path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def synthetic_spec(work: Path, interpreter: str) -> IndexServer:
    """20 packages of ~1 MB incompressible data on a loopback index (no network)."""
    rand = __import__("random").Random(0)
    dists = [
        Dist(f"pkg{i}", "1.0", files={f"pkg{i}/data.bin": rand.randbytes(1_000_000)})
        for i in range(20)
    ]
    server = IndexServer(dists, workdir=work / "index").start()
    deps = ", ".join(f'"pkg{i}"' for i in range(20))
    work.mkdir(parents=True, exist_ok=True)
    (work / "envlock.toml").write_text(
        f'python = "3.11"\ninterpreter = "{interpreter}"\nplatforms = ["linux-64"]\n'
        f'dependencies = [{deps}]\n\n[[index]]\nname = "local"\nurl = "{server.url}"\n'
    )
    return server


def bundle_interpreter(spec: Path, root: Path, index: IndexServer) -> None:
    """Point the spec at a local CPython in python-build-standalone's layout (the tests' one:
    Debian's python3.11), served by the loopback index: no download from GitHub."""
    interp = make_interpreter_archive(root / "interpreter")
    url = index.publish_file(interp.filename, interp.data)
    lines = [
        f'python = "{interp.version}"' if line.startswith("python =") else line
        for line in spec.read_text().splitlines()
        if not line.startswith("interpreter =")
    ]
    spec.write_text(
        'interpreter = "bundled"\n'
        + "\n".join(lines)
        + "\n\n"
        + interpreter_sources_toml("linux-64", url, interp.sha256, interp.version)
    )


def bench(args: argparse.Namespace, root: Path) -> dict[str, object]:
    work = root / "project"
    if args.workload == "synthetic":
        index = synthetic_spec(work, "system")
    else:
        index = IndexServer(workdir=root / "index").start()  # only serves the interpreter
        spec = write_spec(args.workload, work, ["linux-64"])
        spec.write_text('interpreter = "system"\n' + spec.read_text())
    if args.interpreter == "bundled":
        bundle_interpreter(work / "envlock.toml", root, index)
    s3 = S3Server(root / "seaweedfs").start()
    try:
        bucket: Bucket = s3.bucket()
        env = {
            **os.environ,
            **bucket.env,
            "ENVLOCK_SNAPSHOT_URL": bucket.url,
            "ENVLOCK_CACHE_DIR": str(root / "ci-cache"),
        }
        envlock = envlock_cmd()
        run([*envlock, "lock", "-q"], work, env)
        push_s = run([*envlock, "push", "--archives", "-q"], work, env)
        objects = bucket.objects()
        archive = next(k for k in objects if k.endswith("/linux-64.tar.gz"))
        manifest = next(k for k in objects if k.endswith("/linux-64.json"))
        archive_bytes = int(objects[archive]["size"])
        manifest_bytes = int(objects[manifest]["size"])
        artifact_bytes = sum(
            int(m["size"]) for k, m in objects.items() if k.startswith("artifacts/")
        )
        index.reset_counts()  # from here on the index must see nothing

        def machine(i: int) -> tuple[float, str]:
            home = root / "fleet" / f"m{i}"
            home.mkdir(parents=True)
            menv = {**env, "ENVLOCK_CACHE_DIR": str(home / "cache")}
            out = home / "env"
            if args.mode == "pull":
                argv = [*envlock, "pull", "-q", "--platform", "linux-64", "--output", str(out)]
            else:
                argv = [*envlock, "build", "-q", "--from-snapshot", "--platform", "linux-64",
                        "--output", str(out)]  # fmt: skip
            return run(argv, work, menv), ""

        start = time.perf_counter()
        with ThreadPoolExecutor(args.n) as pool:
            times = [t for t, _ in pool.map(machine, range(args.n))]
        wall = time.perf_counter() - start
        trees = {tree_hash(root / "fleet" / f"m{i}" / "env") for i in range(args.n)}
        if len(trees) != 1:
            raise SystemExit(f"machines ended with {len(trees)} different environments")
        per_machine = archive_bytes + manifest_bytes if args.mode == "pull" else artifact_bytes
        times.sort()
        return {
            "workload": args.workload,
            "mode": args.mode,
            "interpreter": args.interpreter,
            "machines": args.n,
            "push_s": round(push_s, 2),
            "archive_mb": round(archive_bytes / 1e6, 2),
            "artifacts_mb": round(artifact_bytes / 1e6, 2),
            "fleet_wall_s": round(wall, 2),
            "wall_per_machine_s": round(wall / args.n, 3),  # throughput of this host
            "machine_median_s": round(statistics.median(times), 2),
            "machine_p95_s": round(times[max(0, int(len(times) * 0.95) - 1)], 2),
            "machine_max_s": round(times[-1], 2),
            "storage_read_mb": round(per_machine * args.n / 1e6, 1),
            "index_requests": index.count(),
            "cpus": os.cpu_count(),
        }
    finally:
        s3.stop()
        index.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="synthetic", choices=[*WORKLOADS, "synthetic"])
    parser.add_argument("-n", type=int, default=50, help="machines (concurrent processes)")
    parser.add_argument("--mode", default="pull", choices=["pull", "build"])
    parser.add_argument("--interpreter", default="bundled", choices=["bundled", "system"])
    parser.add_argument("--workdir", type=Path, help="keep everything here")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = bench(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="envlock-bench-fleet-") as tmp:
            result = bench(args, Path(tmp))
    for key, value in result.items():
        print(f"{key:<20}{value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
