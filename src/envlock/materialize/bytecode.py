"""``--compile``: byte-compiling an environment's site-packages, reproducibly."""

from __future__ import annotations

import subprocess
from pathlib import Path

from envlock.materialize.layout import Layout
from envlock.materialize.python import find_host_python
from envlock.platforms import Target, host_platform


def compiler(target: Target, is_bundled: bool) -> list[str] | None:
    """The command that byte-compiles: the bundled interpreter (relative to the environment)
    when it runs on this host, else a host interpreter of the target's Python version (bytecode
    does not depend on the platform); None if there is none."""
    if is_bundled and target.platform == host_platform():
        # -B: its own imports write no .pyc into the stdlib, whose files are links to the cache.
        python = "python.exe" if target.platform_info.windows else "bin/python3"
        return [python, "-B", "-I"]
    found = find_host_python(target.python_version)
    return None if found is None else [found.executable, "-I"]


def compile_site(root: Path, layout: Layout, command: list[str] | None) -> bool:
    """Byte-compile site-packages (only: the stdlib ships its own) with ``command``."""
    if command is None:
        return False
    python, *flags = command
    if layout.bundled:
        python = str(root / python)
    site = root / layout.site_packages
    # checked-hash pycs and a fixed path prefix keep the output independent of when and where
    # it was built (reproducible archives) and valid after the tree moves.
    subprocess.run(
        [
            python,
            *flags,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "checked-hash",
            "-s",
            str(root),
            "-p",
            "/",
            str(site),
        ],
        check=False,
        capture_output=True,
    )
    return True
