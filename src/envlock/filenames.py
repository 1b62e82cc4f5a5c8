"""Name and version of an sdist file name, read as pip and uv read it: the project's own name
is the prefix. ``cffi-1.0.2-2.tar.gz`` is cffi 1.0.2-2 (1.0.2.post2), not a project
``cffi-1.0.2`` at version 2 (packaging's ``parse_sdist_filename`` splits at the last hyphen)."""

from __future__ import annotations

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

SDIST_SUFFIXES = (".tar.gz", ".zip")


def sdist_version(filename: str, project: NormalizedName) -> Version | None:
    """The version of ``project`` that sdist ``filename`` holds; None when it is not an sdist
    of ``project`` or the version is not PEP 440."""
    stem = next((filename[: -len(s)] for s in SDIST_SUFFIXES if filename.endswith(s)), None)
    if stem is None:
        return None
    start = 0
    while (sep := stem.find("-", start)) != -1:
        if canonicalize_name(stem[:sep]) == project:
            try:
                return Version(stem[sep + 1 :])
            except InvalidVersion:
                return None
        start = sep + 1
    return None
