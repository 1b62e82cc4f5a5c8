"""What an import found: requirements, environments and indexes for a starter spec."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from packaging.specifiers import SpecifierSet

from envlock._urls import strip_userinfo
from envlock.errors import UsageError

PYPI_URL = "https://pypi.org/simple/"
# Larger than any real requirements or pyproject file; a guard against /dev/zero and the like.
MAX_BYTES = 4 * 1024 * 1024
_URL_IN_TEXT = re.compile(r"[a-z][a-z0-9+.-]*://\S*", re.IGNORECASE)


@dataclass(frozen=True)
class ImportedIndex:
    """An ``[[index]]`` to write: a generated name and a URL without credentials."""

    name: str
    url: str


@dataclass(frozen=True)
class Imported:
    """Everything taken from an existing project file, ready for the spec template."""

    source: Path
    dependencies: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()  # the spec's `constraints` (pip's -c files)
    # name -> requirements the environment ADDS to the top-level ``dependencies``
    environments: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    indexes: tuple[ImportedIndex, ...] = ()  # in envlock's order: the first that has a package
    insecure_hosts: tuple[str, ...] = ()
    prerelease: bool = False
    requires_python: SpecifierSet | None = None
    warnings: tuple[str, ...] = ()


def read_text(path: Path, what: str) -> str:
    """A small UTF-8 text file's content, or a one-line UsageError naming ``path``."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a {what}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what}: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise UsageError(f"{path}: {what} is larger than {MAX_BYTES // 2**20} MiB; refusing it")
    if b"\x00" in raw:
        raise UsageError(f"{path}: binary data, not a {what}")
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: {what} is not UTF-8 text") from None


def without_userinfo(text: str) -> str:
    """``text`` (a line, a requirement) with the credentials taken out of every URL in it, for
    a message: :func:`envlock._urls.strip_userinfo` per URL."""
    return _URL_IN_TEXT.sub(lambda m: strip_userinfo(m.group())[0], text)


def unique(items: Iterable[str]) -> tuple[str, ...]:
    """``items`` without exact repeats, first occurrence kept."""
    return tuple(dict.fromkeys(items))


def name_indexes(urls: Iterable[str]) -> tuple[ImportedIndex, ...]:
    """Name each index after its host (``pypi`` for PyPI), unique, in the given order."""
    out: list[ImportedIndex] = []
    taken: set[str] = set()
    for url in unique(urls):
        host = (urlsplit(url).hostname or "index").lower()
        base = "pypi" if url == PYPI_URL else re.sub(r"[^a-z0-9]+", "-", host).strip("-")
        name, n = base or "index", 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        out.append(ImportedIndex(name, url))
    return tuple(out)
