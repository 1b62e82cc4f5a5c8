"""What envlock writes around the packages besides their files: a system-interpreter
environment's ``pyvenv.cfg`` and ``python`` links, and the relocatable ``activate`` script."""

from __future__ import annotations

import os
from pathlib import Path

from envlock import __version__
from envlock.materialize.install import write_new
from envlock.materialize.layout import Layout
from envlock.materialize.python import BasePython


def write_interpreter(root: Path, layout: Layout, base: BasePython) -> None:
    """pyvenv.cfg and the ``python`` links: the only place the base interpreter is named."""
    cfg = (
        f"home = {base.home}\n"
        "include-system-site-packages = false\n"
        f"version = {base.version}\n"
        f"executable = {base.executable}\n"
        f"envlock = {__version__}\n"
    )
    write_new(str(root / "pyvenv.cfg"), cfg.encode(), executable=False)
    scripts = root / layout.scripts
    scripts.mkdir(parents=True, exist_ok=True)
    (root / layout.site_packages).mkdir(parents=True, exist_ok=True)
    if layout.windows:
        return  # python.exe is made on Windows itself: see README "Windows environments"
    for name in ("python", "python3", f"python{layout.python_version}"):
        link = scripts / name
        if link.exists() or link.is_symlink():
            link.unlink()
        os.symlink(base.executable, link)
    write_activate(root, layout)


def write_activate(root: Path, layout: Layout) -> None:
    """``bin/activate`` (POSIX only: Windows environments have none)."""
    if not layout.windows:
        write_new(str(root / layout.scripts / "activate"), ACTIVATE.encode(), executable=False)


# A relocatable activate script for bash and zsh: it finds the environment from its own path.
ACTIVATE = """\
# Source this file (bash or zsh): . bin/activate   — leave with: deactivate
if [ -n "${BASH_SOURCE-}" ]; then _envlock_self="${BASH_SOURCE[0]}"; \
elif [ -n "${ZSH_VERSION-}" ]; then _envlock_self="${(%):-%x}"; else _envlock_self="$0"; fi
VIRTUAL_ENV="$(cd "$(dirname "$_envlock_self")/.." && pwd)"
export VIRTUAL_ENV
_ENVLOCK_OLD_PATH="$PATH"
PATH="$VIRTUAL_ENV/bin:$PATH"
export PATH
unset _envlock_self
deactivate () {
    PATH="$_ENVLOCK_OLD_PATH"; export PATH
    unset VIRTUAL_ENV _ENVLOCK_OLD_PATH
    unset -f deactivate
    hash -r 2>/dev/null
}
hash -r 2>/dev/null
"""
