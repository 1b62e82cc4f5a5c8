"""OSV records (schema 1.x) for PyPI: does a record affect a pinned version, and what to report.

Pure, no I/O. Records come from a database file or a server and are treated as hostile: parts
of the wrong type or with invalid versions are skipped, a record without a usable id is refused.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = [
    "InvalidRecord",
    "Vulnerability",
    "affects",
    "dedupe",
    "is_valid_id",
    "package_names",
    "record_id",
]

ECOSYSTEM = "PyPI"
SUMMARY_MAX = 200
MAX_ALIASES = 100
# Far beyond any real record; they bound the work a hostile record can cause.
MAX_AFFECTED = 1_000
MAX_EVENTS = 10_000
MAX_VERSIONS = 100_000
MAX_FIXES = 100
# PYSEC-2021-1, GHSA-xxxx-xxxx-xxxx, CVE-2021-1, MAL-2024-1, and ALSA-2022:0001 style ids.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}\Z")
_URL = re.compile(r"https?://[!-~]{1,2040}\Z")  # printable ASCII only: nothing to spoof a terminal
_RANGE_TYPES = frozenset({"ECOSYSTEM", "SEMVER"})  # GIT ranges need a repository: use `versions`
_EVENT_KINDS = ("introduced", "fixed", "last_affected")  # `limit` only bounds GIT commit walks
_ZERO = Version("0")


class InvalidRecord(ValueError):
    """A record that cannot be used at all (not a JSON object, or no valid ``id``)."""


@dataclass(frozen=True)
class Vulnerability:
    """One known vulnerability of one pinned package version."""

    id: str
    aliases: tuple[str, ...]  # other ids of the same vulnerability (CVE, GHSA, PYSEC), sorted
    package: str  # canonical name
    version: str  # the pinned version, as given
    fixed_in: tuple[str, ...]  # versions above ``version`` that fix it, PEP 440 order
    summary: str  # one line, at most 200 characters
    url: str | None  # the first ADVISORY (else WEB) reference


def is_valid_id(value: object) -> bool:
    """Whether ``value`` looks like an OSV id (safe in a URL path and a file name)."""
    return isinstance(value, str) and _ID.match(value) is not None


def record_id(record: object) -> str:
    """The record's id; :class:`InvalidRecord` if it is not an object with a valid id."""
    if not isinstance(record, dict):
        raise InvalidRecord(f"not a JSON object but {type(record).__name__}")
    rid = record.get("id")
    if not is_valid_id(rid):
        raise InvalidRecord(f"invalid id {_short(rid)}")
    assert isinstance(rid, str)
    return rid


def package_names(record: object) -> frozenset[str]:
    """Canonical names of the PyPI packages a record describes (:class:`InvalidRecord` for
    an absurd number of entries)."""
    if not isinstance(record, dict):
        return frozenset()
    affected = _list(record.get("affected"))
    _cap(len(affected), MAX_AFFECTED, "affected entries")
    names = set()
    for entry in affected:
        name = _pypi_name(entry)
        if name is not None:
            names.add(name)
    return frozenset(names)


def affects(record: Mapping[str, Any] | object, name: str, version: str) -> Vulnerability | None:
    """The vulnerability ``record`` describes for ``name==version``, or None if it does not
    affect it (another package or ecosystem, a version outside its ranges, withdrawn).
    :class:`InvalidRecord` for a record without a valid id or with absurdly long lists."""
    rid = record_id(record)
    assert isinstance(record, dict)
    if record.get("withdrawn"):
        return None
    package = canonicalize_name(name)
    entries = _entries(record, package)
    if not entries or not _affected(entries, version):
        return None
    pinned = _parse(version)
    fixes = sorted(
        {
            at
            for e in entries
            for events in e.ranges
            for kind, at in events
            if kind == "fixed" and at is not None and (pinned is None or at > pinned)
        }
    )
    # A fix for one range may fall in another (reintroduced): only report versions that are clean.
    fixed_in = tuple(str(v) for v in fixes[:MAX_FIXES] if not _affected(entries, str(v)))
    aliases = sorted({a for a in _list(record.get("aliases")) if is_valid_id(a)} - {rid})
    return Vulnerability(
        id=rid,
        aliases=tuple(aliases[:MAX_ALIASES]),
        package=package,
        version=version,
        fixed_in=fixed_in,
        summary=_summary(record),
        url=_reference(record),
    )


def dedupe(vulns: Iterable[Vulnerability]) -> tuple[Vulnerability, ...]:
    """One entry per vulnerability and package version: records whose ids or aliases overlap
    (PYSEC-x aliased to GHSA-y) are merged under the PYSEC (else GHSA, else smallest) id;
    sorted by package, version and id."""
    groups: dict[tuple[str, str], list[list[Vulnerability]]] = {}
    for vuln in vulns:
        clusters = groups.setdefault((vuln.package, vuln.version), [])
        keys = {vuln.id, *vuln.aliases}
        touching = [c for c in clusters if any(keys & {v.id, *v.aliases} for v in c)]
        merged = [vuln]
        for cluster in touching:
            clusters.remove(cluster)
            merged.extend(cluster)
        clusters.append(merged)
    out = [_merge(c) for clusters in groups.values() for c in clusters]
    return tuple(sorted(out, key=lambda v: (v.package, _version_key(v.version), v.id)))


# -- matching (the OSV schema's evaluation algorithm) --------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One ``affected`` entry of the package asked about, parsed once."""

    versions: frozenset[str]
    parsed: frozenset[Version]
    ranges: tuple[tuple[tuple[str, Version | None], ...], ...]  # sorted (kind, at) per range


def _entries(record: dict[str, Any], package: str) -> list[_Entry]:
    affected = _list(record.get("affected"))
    _cap(len(affected), MAX_AFFECTED, "affected entries")
    entries, events, versions = [], 0, 0
    for raw in affected:
        if _pypi_name(raw) != package:
            continue
        strings = frozenset(v for v in _list(raw.get("versions")) if isinstance(v, str))
        ranges = tuple(
            _sorted_events(r)
            for r in _list(raw.get("ranges"))
            if isinstance(r, dict) and r.get("type") in _RANGE_TYPES
        )
        versions += len(strings)
        events += sum(len(r) for r in ranges)
        _cap(versions, MAX_VERSIONS, "versions")
        _cap(events, MAX_EVENTS, "range events")
        parsed = frozenset(p for p in map(_parse, strings) if p is not None)
        entries.append(_Entry(strings, parsed, ranges))
    return entries


def _affected(entries: list[_Entry], version: str) -> bool:
    pinned = _parse(version)
    candidates = [] if pinned is None else [pinned]
    # A local version (2.0+cpu) is a downstream build of its public version: affected if that is.
    if pinned is not None and pinned.local is not None:
        candidates.append(Version(pinned.public))
    for entry in entries:
        if version in entry.versions or any(v in entry.parsed for v in candidates):
            return True
        if any(_in_range(v, events) for events in entry.ranges for v in candidates):
            return True
    return False


def _sorted_events(rng: dict[str, Any]) -> tuple[tuple[str, Version | None], ...]:
    """(kind, version) in version order, ``introduced: "0"`` first (None); events with an
    invalid version are dropped. The sort is stable: events at one version keep their order."""
    events: list[tuple[str, Version | None]] = []
    for event in _list(rng.get("events")):
        if not isinstance(event, dict):
            continue
        for kind in _EVENT_KINDS:
            value = event.get(kind)
            if kind == "introduced" and value == "0":
                events.append((kind, None))
            elif (parsed := _parse(value)) is not None:
                events.append((kind, parsed))
        _cap(len(events), MAX_EVENTS, "range events")
    return tuple(sorted(events, key=lambda e: (0, _ZERO) if e[1] is None else (1, e[1])))


def _in_range(version: Version, events: tuple[tuple[str, Version | None], ...]) -> bool:
    vulnerable = False
    for kind, at in events:
        if kind == "introduced":
            vulnerable = vulnerable or at is None or version >= at
        elif at is not None and (version > at if kind == "last_affected" else version >= at):
            vulnerable = False
    return vulnerable


def _cap(count: int, limit: int, what: str) -> None:
    if count > limit:
        raise InvalidRecord(f"more than {limit} {what}")


# -- fields --------------------------------------------------------------------------------------


def _pypi_name(entry: object) -> str | None:
    if not isinstance(entry, dict):
        return None
    package = entry.get("package")
    if not isinstance(package, dict) or package.get("ecosystem") != ECOSYSTEM:
        return None
    name = package.get("name")
    if not isinstance(name, str) or not name or len(name) > 200:
        return None
    return canonicalize_name(name)


def _summary(record: dict[str, Any]) -> str:
    text = record.get("summary")
    if not isinstance(text, str) or not text.strip():
        details = record.get("details")
        text = (
            details.strip().splitlines()[0] if isinstance(details, str) and details.strip() else ""
        )
    # Control and format characters (ANSI escapes, bidi overrides) must not reach a terminal.
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text[:2000])
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def _reference(record: dict[str, Any]) -> str | None:
    refs = [r for r in _list(record.get("references")) if isinstance(r, dict)]
    for wanted in ("ADVISORY", "WEB"):
        for ref in refs:
            url = ref.get("url")
            if ref.get("type") == wanted and isinstance(url, str) and _URL.match(url):
                return url
    return None


def _merge(cluster: list[Vulnerability]) -> Vulnerability:
    ordered = sorted(cluster, key=lambda v: (_id_rank(v.id), v.id))
    first = ordered[0]
    keys = {k for v in cluster for k in (v.id, *v.aliases)} - {first.id}
    fixes: dict[tuple[int, Version, str], str] = {}
    for vuln in ordered:  # "1.0" and "1.0.0" are one version: keep the preferred record's spelling
        for fix in vuln.fixed_in:
            fixes.setdefault(_version_key(fix), fix)
    return Vulnerability(
        id=first.id,
        aliases=tuple(sorted(keys)),
        package=first.package,
        version=first.version,
        fixed_in=tuple(fixes[k] for k in sorted(fixes)),
        summary=next((v.summary for v in ordered if v.summary), ""),
        url=next((v.url for v in ordered if v.url), None),
    )


def _id_rank(vid: str) -> int:
    return 0 if vid.startswith("PYSEC-") else 1 if vid.startswith("GHSA-") else 2


# -- helpers -------------------------------------------------------------------------------------


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _parse(value: object) -> Version | None:
    if not isinstance(value, str) or len(value) > 100:
        return None
    try:
        return Version(value)
    except InvalidVersion:
        return None


def _version_key(version: str) -> tuple[int, Version, str]:
    parsed = _parse(version)
    return (0, parsed, "") if parsed is not None else (1, _ZERO, version)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
