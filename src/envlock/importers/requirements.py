"""pip requirement files (``requirements.txt``/``.in``, ``-r``/``-c`` includes) -> Imported.

Only what a lock can honour is taken: requirements, constraints (``-c`` files, as the spec's
``constraints``), index URLs, ``--pre``. Lines envlock cannot lock (editables, paths, URLs, VCS,
find-links) fail naming ``file:line``; ``--hash`` is ignored with a warning (envlock records its
own hashes). Which lines are constraints follows pip: every line of a file included with ``-c``,
and a ``-r`` inside such a file includes requirements again.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from envlock._urls import strip_userinfo
from envlock.errors import UsageError
from envlock.importers.model import (
    PYPI_URL,
    Imported,
    name_indexes,
    read_text,
    unique,
    without_userinfo,
)

MAX_FILES = 256  # includes, counted with repeats: a guard against include bombs
_COMMENT = re.compile(r"(^|\s+)#.*$")  # pip's: a '#' at the start or after whitespace
_ENV_VAR = re.compile(r"\$\{[A-Za-z0-9_]+\}")
_VCS = re.compile(r"^(git|hg|svn|bzr)\+", re.IGNORECASE)
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_ARCHIVE = re.compile(r"\.(whl|zip|tar\.gz|tgz|tar\.bz2|tar\.xz|tar)$", re.IGNORECASE)
_PYPI = {"https://pypi.org/simple/", "https://pypi.python.org/simple/"}
# option -> takes a value; short options are aliases of the long ones.
_OPTIONS = {
    "--requirement": True,
    "--constraint": True,
    "--index-url": True,
    "--extra-index-url": True,
    "--trusted-host": True,
    "--hash": True,
    "--no-binary": True,
    "--only-binary": True,
    "--use-feature": True,
    "--config-settings": True,
    "--global-option": True,
    "--install-option": True,
    "--editable": True,
    "--find-links": True,
    "--pre": False,
    "--prefer-binary": False,
    "--require-hashes": False,
    "--no-index": False,
}
_SHORT = {"-r": "--requirement", "-c": "--constraint", "-i": "--index-url"}
_SHORT |= {"-e": "--editable", "-f": "--find-links"}
_UNSUPPORTED = {
    "--editable": "editable installs (-e) are not supported: envlock locks packages from an index",
    "--find-links": "--find-links is not supported: serve the files from an [[index]] instead",
    "--no-index": "--no-index is not supported: envlock resolves from an index",
}
_IGNORED = {
    "--no-binary": "--no-binary ignored: envlock locks wheels unless `allow-sdist` names a package",
    "--use-feature": "--use-feature ignored (a pip option)",
    "--config-settings": "--config-settings ignored (per-requirement build options)",
    "--global-option": "--global-option ignored (per-requirement build options)",
    "--install-option": "--install-option ignored (per-requirement build options)",
}


@dataclass
class _State:
    dependencies: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    index_url: str | None = None
    extra_urls: list[str] = field(default_factory=list)
    secret_urls: set[str] = field(default_factory=set)
    insecure: list[str] = field(default_factory=list)
    prerelease: bool = False
    warnings: list[str] = field(default_factory=list)
    files: int = 0


def parse_requirements(path: Path) -> Imported:
    """Import a pip requirements file and everything it includes with ``-r``."""
    state = _State()
    _parse_file(path, [], state, constraint=False)
    primary = state.index_url or PYPI_URL
    # uv's order (and the safe one): extra indexes before the main one, each package from the
    # first index that has it; pip instead merges versions from all of them.
    urls = unique([*state.extra_urls, primary])
    indexes = () if urls == (PYPI_URL,) else name_indexes(urls)
    if len(indexes) > 1:
        order = ", ".join(i.url for i in indexes)
        state.warnings.append(
            f"{path}: indexes are tried in this order, each package taken from the first that "
            f"has it (pip merges them): {order}"
        )
    for index in indexes or name_indexes([PYPI_URL]):
        if index.url in state.secret_urls:
            env = re.sub(r"[^A-Za-z0-9]", "_", index.name).upper()
            state.warnings.append(
                f"credentials removed from index {index.url}: set them in ~/.netrc or "
                f"ENVLOCK_INDEX_{env}_USERNAME / ENVLOCK_INDEX_{env}_PASSWORD"
            )
    return Imported(
        source=path,
        dependencies=unique(state.dependencies),
        constraints=unique(state.constraints),
        indexes=indexes,
        insecure_hosts=unique(state.insecure),
        prerelease=state.prerelease,
        warnings=unique(state.warnings),
    )


def _parse_file(path: Path, stack: list[Path], state: _State, *, constraint: bool) -> None:
    real = path.resolve()
    if real in stack:
        chain = " -> ".join(str(p) for p in [*stack[stack.index(real) :], real])
        raise UsageError(f"{path}: requirement files include each other: {chain}")
    state.files += 1
    if state.files > MAX_FILES:
        raise UsageError(f"{path}: more than {MAX_FILES} requirement files included; refusing")
    text = read_text(path, "constraints file" if constraint else "requirements file")
    hashes = 0
    extras: list[str] = []
    for lineno, line in _logical_lines(text):
        where = f"{path}:{lineno}"
        variable = _ENV_VAR.search(line)
        if variable:
            raise UsageError(
                f"{where}: environment variables ({variable.group()}) are not expanded; "
                "write the value itself",
                hint="index credentials go in ~/.netrc or ENVLOCK_INDEX_<NAME>_USERNAME/_PASSWORD",
            )
        if line.startswith("-"):
            options, requirement = _tokens(line, where), ""
        else:
            words = line.split(" ")  # pip splits the requirement off at its first option
            cut = next((i for i, w in enumerate(words) if w.startswith("-")), len(words))
            requirement = " ".join(words[:cut]).strip()
            options = _tokens(" ".join(words[cut:]), where)
        for name, value in _options(options, where):
            hashes += name == "--hash"
            _option(name, value, path, where, [*stack, real], state)
        if not requirement:
            continue
        checked = _requirement(requirement, where)
        if not constraint:
            state.dependencies.append(checked)
            continue
        req = Requirement(checked)
        if req.extras:
            # pip refuses extras in a constraint; what it can only mean is the versions of the
            # package itself (pip-tools' --strip-extras writes exactly that).
            extras.append(checked)
            req.extras = set()
        state.constraints.append(str(req))
    if extras:
        shown = ", ".join(extras[:3]) + (f" and {len(extras) - 3} more" if len(extras) > 3 else "")
        state.warnings.append(
            f"{path}: extras removed from {len(extras)} constraint(s), which limit versions "
            f"only: {shown}"
        )
    if hashes:
        state.warnings.append(
            f"{path}: {hashes} --hash option(s) ignored: envlock locks and checks the sha256 of "
            "every file itself"
        )


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) per line after joining ``\\`` continuations and removing
    comments, as pip does: a comment line ends a continuation."""
    start = 0
    parts: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not parts:
            start = n
        if line.endswith("\\") and not _COMMENT.match(line):
            parts.append(line[:-1])
            continue
        parts.append(" " + line if _COMMENT.match(line) else line)
        joined, parts = "".join(parts), []
        yield from _clean(start, joined)
    if parts:
        yield from _clean(start, "".join(parts))


def _clean(lineno: int, line: str) -> Iterator[tuple[int, str]]:
    line = _COMMENT.sub("", line).strip()
    if line:
        yield lineno, line


def _tokens(text: str, where: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"{where}: cannot parse options: {exc}") from None


def _options(tokens: list[str], where: str) -> Iterator[tuple[str, str | None]]:
    """(long option name, value) for each option in ``tokens``."""
    it = iter(tokens)
    for token in it:
        name, value = token, None
        if token.startswith("--") and "=" in token:
            name, value = token.split("=", 1)
        elif token[:2] in _SHORT and len(token) > 2:
            name, value = token[:2], token[2:].removeprefix("=")
        name = _SHORT.get(name, name)
        if name not in _OPTIONS:
            shown = without_userinfo(token)
            raise UsageError(f"{where}: unsupported option {shown!r} in a requirements file")
        if _OPTIONS[name] and value is None:
            value = next(it, None)
            if value is None:
                raise UsageError(f"{where}: {name} needs a value")
        yield name, value


def _option(
    name: str, value: str | None, path: Path, where: str, stack: list[Path], state: _State
) -> None:
    if name in _UNSUPPORTED:
        raise UsageError(f"{where}: {_UNSUPPORTED[name]}")
    if name in _IGNORED:
        state.warnings.append(f"{where}: {_IGNORED[name]}")
    elif name in ("--requirement", "--constraint") and value is not None:
        what = "requirement" if name == "--requirement" else "constraints"
        if _URL.match(value):
            shown = without_userinfo(value)
            raise UsageError(f"{where}: {what} files from URLs are not supported: {shown}")
        included = path.parent / value
        if not included.is_file():
            raise UsageError(f"{where}: included file {value} not found ({included})")
        # pip's rule: the option that includes a file decides what its lines are.
        _parse_file(included, stack, state, constraint=name == "--constraint")
    elif name == "--index-url" and value is not None:
        state.index_url = _index_url(value, where, state)
    elif name == "--extra-index-url" and value is not None:
        state.extra_urls.append(_index_url(value, where, state))
    elif name == "--trusted-host" and value is not None:
        if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", value):
            raise UsageError(f"{where}: --trusted-host: not a host name (or host:port): {value!r}")
        state.insecure.append(value.lower())
        state.warnings.append(
            f"{where}: --trusted-host {value} became insecure-hosts (plain http allowed; "
            "envlock still checks TLS certificates)"
        )
    elif name == "--pre":
        state.prerelease = True


def _index_url(url: str, where: str, state: _State) -> str:
    # Not urlsplit: a password with an unencoded '/', '?' or '#' would stay in the path.
    clean, secret = strip_userinfo(url)
    if not re.match(r"^(https?|file)://[^\s]+$", url):
        raise UsageError(f"{where}: index URL must be http(s):// or file://, got {clean!r}")
    clean = clean if clean.endswith("/") else clean + "/"
    if clean in _PYPI:
        clean = PYPI_URL
    if secret:
        state.secret_urls.add(clean)
    return clean


def _requirement(text: str, where: str) -> str:
    head = text.split(";", 1)[0].strip()
    if _VCS.match(head):
        raise UsageError(f"{where}: VCS requirements are not supported: {text}")
    if _URL.match(head):
        shown = without_userinfo(text)
        raise UsageError(f"{where}: direct URL requirements are not supported: {shown}")
    if "@" in head:
        raise UsageError(
            f"{where}: direct URL requirements (name @ URL) are not supported: "
            f"{without_userinfo(text)}"
        )
    if head.startswith((".", "/", "~")) or "/" in head or "\\" in head or _ARCHIVE.search(head):
        raise UsageError(f"{where}: local paths and archive files are not supported: {text}")
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise UsageError(
            f"{where}: invalid requirement {text!r}: {str(exc).splitlines()[0]}"
        ) from None
    return str(req)  # no URL: a requirement with one has an '@' before any ';'
