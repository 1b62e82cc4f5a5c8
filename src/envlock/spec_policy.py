"""The spec's ``[policy]`` table: what a lock may contain, enforced by ``lock`` and ``audit``.

* ``allowed-indexes``: index names (an ``[[index]]`` name, or ``pypi``) or URL prefixes. A
  package must come from one of them, and its files must be where that index serves files: its
  own host, PyPI's files host for PyPI, and the ``files`` prefixes of its ``[[index]]`` table.
* ``deny``: PEP 508 requirements no lock may choose (``"pyyaml<5.4"``, ``"tensorflow"``).
* ``min-age``: a cooldown (``"7 days"``): files uploaded more recently are not chosen unless a
  requirement pins that exact version.
* ``allowed-licenses``: SPDX ids; a package whose license is outside them is a violation.
* ``license-exceptions``: more SPDX ids allowed for some packages only, by name glob
  (``{ "nvidia-*" = ["LicenseRef-NVIDIA-Proprietary"] }``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression
from packaging.markers import Environment, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from envlock._urls import strip_userinfo
from envlock.spec_indexes import DEFAULT_INDEX_URL, Index
from envlock.spec_values import Where, check_keys

_POLICY_KEYS = {"allowed-indexes", "deny", "min-age", "allowed-licenses", "license-exceptions"}
# A package-name glob: name characters plus * and ? (no [...] classes: names have no brackets).
_NAME_GLOB = re.compile(r"[A-Za-z0-9*?]([A-Za-z0-9._*?-]*[A-Za-z0-9*?])?")
_UNITS = {
    "s": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
    "w": 604800,
    "week": 604800,
}
_AGE = re.compile(r"(\d{1,6})\s*([a-z]+?)s?")
_MAX_AGE = timedelta(days=3660)


# Where an index on a known host serves its files from another host.
_KNOWN_FILE_HOSTS = {
    "pypi.org": "https://files.pythonhosted.org/",
    "test.pypi.org": "https://test-files.pythonhosted.org/",
}
# A "." or ".." path segment, plain or percent-encoded: a prefix check cannot see through it.
_DOT_SEGMENT = re.compile(r"/(\.|%2e){1,2}(/|$)", re.IGNORECASE)


@dataclass(frozen=True)
class IndexRule:
    """One ``allowed-indexes`` entry: as written, the URL prefix it stands for, and the URL
    prefixes where the indexes it admits serve their files."""

    text: str
    prefix: str
    files: tuple[str, ...] = ()

    def admits_index(self, url: str) -> bool:
        return _under(url, self.prefix)

    def admits_file(self, url: str) -> bool:
        return any(_under(url, prefix) for prefix in self.files)


def _under(url: str, prefix: str) -> bool:
    """Whether ``url`` is ``prefix`` or below it, at a path boundary: ``https://h/simple``
    admits ``https://h/simple/x/``, never ``https://h/simple-untrusted/``."""
    if _DOT_SEGMENT.search(url.split("?", 1)[0].split("#", 1)[0]):
        return False
    url, prefix = _lower_origin(url), _lower_origin(prefix)
    base = prefix if prefix.endswith("/") else prefix + "/"
    return url == base.removesuffix("/") or url.startswith(base)


def _lower_origin(url: str) -> str:
    # Scheme and host are case-insensitive; the path is not.
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    return f"{scheme.lower()}{sep}{authority.lower()}{slash}{path}"


@dataclass(frozen=True)
class SpecPolicy:
    """``[policy]``; empty (the default) allows everything."""

    allowed_indexes: tuple[IndexRule, ...] | None = None
    deny: tuple[str, ...] = ()
    min_age: timedelta | None = None
    min_age_text: str = ""
    allowed_licenses: tuple[str, ...] | None = None
    # (canonical name glob, SPDX ids it adds to allowed-licenses), in the spec's order
    license_exceptions: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def empty(self) -> bool:
        return self == SpecPolicy()

    @property
    def deny_rules(self) -> tuple[Requirement, ...]:
        return tuple(Requirement(d) for d in self.deny)

    def index_allowed(self, url: str | None) -> bool:
        """Whether a file from the index at ``url`` may be locked (None: its index is unknown,
        allowed only when there is no rule)."""
        if self.allowed_indexes is None:
            return True
        if url is None:
            return False
        return any(rule.admits_index(url) for rule in self.allowed_indexes)

    def file_allowed(self, index: str | None, url: str) -> bool:
        """Whether the file at ``url`` is where an allowed index that admits ``index`` (the
        package's recorded index) serves its files: the label alone proves nothing."""
        if self.allowed_indexes is None:
            return True
        if index is None:
            return False
        rules = [r for r in self.allowed_indexes if r.admits_index(index)]
        return any(rule.admits_file(url) for rule in rules)

    def licenses_for(self, name: str) -> tuple[str, ...] | None:
        """The SPDX ids ``name`` may be licensed under (None: any license)."""
        if self.allowed_licenses is None:
            return None
        return self.allowed_licenses + tuple(i for _, ids in self.exceptions_for(name) for i in ids)

    def exceptions_for(self, name: str) -> list[tuple[str, tuple[str, ...]]]:
        """The ``license-exceptions`` entries whose glob matches ``name``."""
        canonical = canonicalize_name(name)
        return [(g, ids) for g, ids in self.license_exceptions if fnmatch.fnmatchcase(canonical, g)]

    def as_dict(self) -> dict[str, Any]:
        """For the spec hash: a policy change makes the lock stale (it may resolve otherwise)."""
        out: dict[str, Any] = {}
        if self.allowed_indexes is not None:
            out["allowed-indexes"] = [r.prefix for r in self.allowed_indexes]
        if self.deny:
            out["deny"] = sorted(self.deny)
        if self.min_age is not None:
            out["min-age"] = int(self.min_age.total_seconds())
        if self.allowed_licenses is not None:
            out["allowed-licenses"] = sorted(self.allowed_licenses)
        if self.license_exceptions:
            out["license-exceptions"] = {g: sorted(ids) for g, ids in self.license_exceptions}
        return out


def denied_by(
    rules: Sequence[Requirement], name: str, version: Version, environment: Environment
) -> Requirement | None:
    """The first deny rule that matches ``name`` ``version`` on a target with ``environment``
    (marker variables), or None."""
    canonical = canonicalize_name(name)
    for rule in rules:
        if canonicalize_name(rule.name) != canonical:
            continue
        if not rule.specifier.contains(version, prereleases=True):
            continue
        if rule.marker is not None and not _marker_true(rule.marker, environment):
            continue
        return rule
    return None


def _marker_true(marker: Marker, environment: Environment) -> bool:
    try:
        return marker.evaluate(dict(environment))  # type: ignore[arg-type]
    except Exception:  # a marker this target cannot evaluate: the rule counts (stricter)
        return True


def parse_policy(ctx: Where, value: Any, indexes: Sequence[Index]) -> SpecPolicy:
    """``[policy]`` of a spec whose ``[[index]]`` tables are ``indexes``."""
    if value is None:
        return SpecPolicy()
    if not isinstance(value, Mapping):
        raise ctx.fail("policy", "must be a table ([policy])")
    check_keys(ctx, value, _POLICY_KEYS, "policy.")
    allowed = value.get("allowed-indexes")
    licenses = value.get("allowed-licenses")
    age, age_text = _min_age(ctx, value.get("min-age"))
    exceptions = _license_exceptions(ctx, value.get("license-exceptions"))
    if exceptions and licenses is None:
        raise ctx.fail(
            "policy.license-exceptions",
            "needs allowed-licenses (without it every license is allowed already)",
        )
    return SpecPolicy(
        allowed_indexes=None if allowed is None else _index_rules(ctx, allowed, indexes),
        deny=_deny(ctx, value.get("deny", [])),
        min_age=age,
        min_age_text=age_text,
        allowed_licenses=None if licenses is None else _licenses(ctx, licenses),
        license_exceptions=exceptions,
    )


def _strings(ctx: Where, value: Any, key: str, example: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ctx.fail(key, f"must be a list of strings, e.g. {example}")
    return list(value)


def _index_rules(ctx: Where, value: Any, indexes: Sequence[Index]) -> tuple[IndexRule, ...]:
    key = "policy.allowed-indexes"
    rules = []
    by_name = {i.name: i for i in indexes}
    for text in _strings(ctx, value, key, '["pypi", "https://pkgs.example.com/simple/"]'):
        if "://" in text:
            shown, secret = strip_userinfo(text)
            if secret:
                raise ctx.fail(key, f"credentials in {shown!r}: use netrc or env instead")
            parts = urlsplit(text)
            if parts.scheme not in ("http", "https", "file") or not (parts.netloc or parts.path):
                raise ctx.fail(key, f"not an index URL: {text!r}")
            # "https://host" must not admit "https://host.evil.com/": a bare host ends in "/".
            prefix = text if parts.path else text + "/"
            # The [[index]] tables this prefix covers lend it their file hosts.
            covered = [i for i in indexes if _under(_bare(i.url), prefix)]
        elif text in by_name:
            # The lock records an index without credentials: so must the rule.
            prefix, covered = _bare(by_name[text].url), [by_name[text]]
        elif text == "pypi":
            prefix, covered = DEFAULT_INDEX_URL, []
        else:
            known = ", ".join(sorted({*by_name, "pypi"}))
            raise ctx.fail(key, f"no index named {text!r} (known: {known}), and not a URL")
        own = [_own_files(prefix)] + [_own_files(_bare(i.url)) for i in covered]
        # A mirror (ENVLOCK_INDEX_URL) serves the index's files from its own host.
        own += [_own_files(_bare(i.mirror)) for i in covered if i.mirror]
        files = [*own, *(f for i in covered for f in i.files)]
        rules.append(IndexRule(text, prefix, tuple(dict.fromkeys(files))))
    return tuple(rules)


def _bare(url: str) -> str:
    return strip_userinfo(url)[0]


def _own_files(index_url: str) -> str:
    """Where an index serves its files without being told: its own scheme, host and port (a
    ``file://`` index: the directory that holds it); PyPI: files.pythonhosted.org."""
    parts = urlsplit(index_url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host in _KNOWN_FILE_HOSTS and parts.port is None:
        return _KNOWN_FILE_HOSTS[host]
    if parts.scheme == "file":
        return urlunsplit(parts._replace(path=parts.path.rstrip("/").rsplit("/", 1)[0] + "/"))
    return f"{parts.scheme}://{parts.netloc}/"


def _deny(ctx: Where, value: Any) -> tuple[str, ...]:
    out = []
    for i, text in enumerate(_strings(ctx, value, "policy.deny", '["pyyaml<5.4"]')):
        key = f"policy.deny[{i}]"
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            first = str(exc).splitlines()[0]
            raise ctx.fail(key, f"invalid requirement {text!r}: {first}") from None
        if req.url or req.extras:
            raise ctx.fail(key, f"a deny rule is a name and versions (and a marker): {text!r}")
        variable = _install_variable(req.marker)
        if variable is not None:
            raise ctx.fail(
                key,
                f"{variable!r} cannot be used in a deny marker (a rule holds per platform, not "
                f"per extra or group): {text!r}",
            )
        out.append(str(req))
    return tuple(out)


def _install_variable(marker: Marker | None) -> str | None:
    """The first of ``extra``/``extras``/``dependency_groups`` ``marker`` reads: a target's
    environment has no value for them (packaging evaluates ``extra`` as ""), so a rule using
    one would silently never, or always, hold."""
    if marker is None:
        return None
    unquoted = re.sub(r"'[^']*'|\"[^\"]*\"", "''", str(marker))
    found = re.search(r"\b(extra|extras|dependency_groups)\b", unquoted)
    return found.group(1) if found else None


def _min_age(ctx: Where, value: Any) -> tuple[timedelta | None, str]:
    if value is None:
        return None, ""
    example = 'a duration like "7 days", "36 hours" or "2 weeks"'
    if not isinstance(value, str):
        raise ctx.fail("policy.min-age", f"must be {example}, got {value!r}")
    m = _AGE.fullmatch(value.strip().lower())
    unit = _UNITS.get(m.group(2)) if m else None
    if m is None or unit is None:
        raise ctx.fail("policy.min-age", f"must be {example}, got {value!r}")
    age = timedelta(seconds=int(m.group(1)) * unit)
    if age > _MAX_AGE:
        raise ctx.fail("policy.min-age", f"{value!r} is more than ten years")
    return (age if age else None), value.strip()


def _licenses(ctx: Where, value: Any, key: str = "policy.allowed-licenses") -> tuple[str, ...]:
    out = []
    for text in _strings(ctx, value, key, '["MIT", "Apache-2.0"]'):
        try:
            canonical = str(canonicalize_license_expression(text))
        except InvalidLicenseExpression:
            raise ctx.fail(key, f"not an SPDX identifier: {text!r}") from None
        out.append(canonical)
    return tuple(out)


def _license_exceptions(ctx: Where, value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``{ "glob" = ["SPDX-id", ...] }``: globs over canonical names (``Foo_Bar*`` is
    ``foo-bar*``), so a spelling of the name in the spec cannot miss."""
    key = "policy.license-exceptions"
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ctx.fail(key, 'must be a table of name globs, e.g. { "nvidia-*" = ["LicenseRef-X"] }')
    out: dict[str, tuple[str, ...]] = {}
    for glob, ids in value.items():
        if not _NAME_GLOB.fullmatch(glob):
            raise ctx.fail(
                key,
                f"not a package name or glob (letters, digits, '.', '_', '-', '*', '?'): {glob!r}",
            )
        canonical = re.sub(r"[-_.]+", "-", glob).lower()
        if canonical in out:
            raise ctx.fail(key, f"{glob!r} repeats the glob {canonical!r}")
        here = f"{key}.{glob}" if re.fullmatch(r"[A-Za-z0-9_-]+", glob) else f'{key}."{glob}"'
        found = _licenses(ctx, ids, here)
        if not found:
            raise ctx.fail(here, "lists no license (remove the entry, or name the licenses)")
        out[canonical] = found
    return tuple(out.items())
