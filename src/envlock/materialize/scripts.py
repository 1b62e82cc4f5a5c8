"""Console/GUI entry-point launchers that keep working when the environment moves.

POSIX: a ``/bin/sh`` prologue finds ``python`` beside the script (through symlinks), so no path
of the build machine is written. Windows: ``NAME.cmd`` runs ``NAME-script.py`` with the
environment's ``python.exe`` (see README: "Windows environments").
"""

from __future__ import annotations

import configparser
import re

POSIX_PROLOGUE = (
    "#!/bin/sh\n"
    '\'\'\'exec\' "$(dirname -- "$(realpath -- "$0" 2>/dev/null || echo "$0")")/python" '
    '"$0" "$@"\n'
    "' '''\n"
)

_SCRIPT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_ENTRY = re.compile(r"^(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+))?\s*(\[.*\])?\s*$")


def entry_points(text: str) -> list[tuple[str, str, str | None]]:
    """``(script name, module, attribute)`` of console_scripts and gui_scripts, sorted."""
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise ValueError(f"malformed entry_points.txt: {str(exc).splitlines()[0]}") from None
    out = []
    for section in ("console_scripts", "gui_scripts"):
        if not parser.has_section(section):
            continue
        for name, value in parser.items(section):
            if not _SCRIPT_NAME.match(name):
                # A script name is a file name in bin/: nothing that could leave that directory.
                raise ValueError(f"invalid entry point name {name!r}")
            match = _ENTRY.match(value)
            if match is None:
                continue
            out.append((name, match.group("module"), match.group("attr")))
    return sorted(out)


def script_body(module: str, attr: str | None) -> str:
    """The Python part of a launcher, as pip and uv write it."""
    if attr is None:
        return f"import runpy\nrunpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
    head = attr.split(".")[0]
    return (
        "# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
        f"from {module} import {head}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe|\\.cmd)?$', '', sys.argv[0])\n"
        f"    sys.exit({attr}())\n"
    )


def posix_launcher(module: str, attr: str | None) -> bytes:
    return (POSIX_PROLOGUE + script_body(module, attr)).encode()


def windows_launchers(
    name: str, module: str, attr: str | None, python: str = "python.exe"
) -> dict[str, bytes]:
    """``NAME-script.py`` and ``NAME.cmd`` (no .exe: those can only be made on Windows).

    ``python`` is the interpreter relative to the scripts directory: ``python.exe`` beside the
    scripts in a virtual environment, ``..\\python.exe`` at the root of a bundled one."""
    cmd = f'@echo off\r\n"%~dp0{python}" "%~dp0{name}-script.py" %*\r\n'
    return {f"{name}-script.py": script_body(module, attr).encode(), f"{name}.cmd": cmd.encode()}


def rewrite_shebang(data: bytes, windows: bool) -> bytes | None:
    """A ``#!python`` script from ``.data/scripts`` with a relocatable launcher; None if not."""
    if not data.startswith(b"#!python"):
        return None
    body = data.split(b"\n", 1)[1] if b"\n" in data else b""
    if windows:
        return body
    return POSIX_PROLOGUE.encode() + body
