"""Known vulnerabilities of pinned PyPI versions: from an offline OSV database when one is given,
else from the OSV API. Both paths match versions with :func:`envlock.audit.osv.affects`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from envlock.audit import osv_api, vulndb
from envlock.audit.osv import InvalidRecord, Vulnerability, affects, dedupe

__all__ = ["ScanResult", "Vulnerability", "scan"]


@dataclass(frozen=True)
class ScanResult:
    """What a scan found, what it had to skip, and where the data came from."""

    vulnerabilities: tuple[Vulnerability, ...]  # sorted by package, version, id; deduplicated
    warnings: tuple[str, ...]
    source: str  # the API's base URL or the database path


def scan(
    packages: Sequence[tuple[str, str]],
    *,
    db: Path | None,
    cache_dir: Path,
    api_url: str | None = None,
) -> ScanResult:
    """Vulnerabilities of every ``(name, version)``: offline from ``db`` (a directory or zip of
    OSV records) if given, else from the API at ``api_url`` (default ``ENVLOCK_OSV_URL``, else
    https://api.osv.dev), whose answers are cached under ``cache_dir / "osv"`` for an hour.

    Raises :class:`~envlock.errors.UsageError` for an unreadable database or a bad URL, and
    :class:`~envlock.errors.NetworkError` when the API cannot be used."""
    pairs: list[tuple[str, str]] = sorted({(canonicalize_name(n), v) for n, v in packages})
    if db is not None:
        loaded = vulndb.load(db, {name for name, _ in pairs})
        candidates = {(n, v): loaded.by_name.get(n, ()) for n, v in pairs}
        found, skipped = _match(candidates)
        return ScanResult(dedupe(found), loaded.warnings + skipped, str(db))
    base = osv_api.base_url(api_url)
    answer = osv_api.query(pairs, base=base, cache_dir=cache_dir)
    found, skipped = _match(answer.records, listed=True)
    return ScanResult(dedupe(found), answer.warnings + skipped, base)


def _match(
    candidates: Mapping[tuple[str, str], tuple[dict[str, Any], ...]], *, listed: bool = False
) -> tuple[list[Vulnerability], tuple[str, ...]]:
    found: list[Vulnerability] = []
    warnings: list[str] = []
    for (name, version), records in sorted(candidates.items()):
        for record in records:
            try:
                vuln = affects(record, name, version)
            except InvalidRecord as exc:
                warnings.append(f"skipped OSV record {record.get('id')!r:.60} ({exc})")
                continue
            if vuln is not None:
                found.append(vuln)
            elif listed and not record.get("withdrawn"):
                # The service and the record disagree; the record's ranges are what we can check.
                warnings.append(
                    f"the OSV API lists {record.get('id')} for {name}=={version} but its record "
                    "does not cover that version; not reported"
                )
    return found, tuple(warnings)
