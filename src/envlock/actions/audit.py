"""``envlock audit``: what each lock installs, checked against the spec's ``[policy]`` and, when
asked, against known vulnerabilities (OSV). The result is data; the CLI renders it as a table,
JSON or a CycloneDX SBOM."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envlock import __version__
from envlock.actions.lock_policy import spec_pins
from envlock.audit.inventory import BuildRow, PackageRow, build_rows, interpreter_rows, rows
from envlock.audit.policy import Finding, check
from envlock.index.auth import redact
from envlock.lock import lockfile
from envlock.lock.lockfile import LockFile
from envlock.lock.staleness import staleness
from envlock.spec import EnvironmentSpec

if TYPE_CHECKING:
    from envlock.audit.osv import Vulnerability


@dataclass(frozen=True)
class EnvironmentAudit:
    """One environment's lock, its packages (for the platforms asked) and policy findings."""

    env: EnvironmentSpec
    lock: LockFile
    platforms: tuple[str, ...]
    rows: tuple[PackageRow, ...]
    findings: tuple[Finding, ...]
    builds: tuple[BuildRow, ...] = ()  # what building its locked sdists installs

    def index_label(self, url: str | None) -> str:
        """An index URL as the spec names it (``pypi``), else the URL itself."""
        if url is None:
            return "-"
        for index in self.env.indexes:
            if redact(index.url) == url:
                return index.name
        return url

    def findings_of(self, row: PackageRow) -> list[Finding]:
        return [f for f in self.findings if (f.name, f.version) == (row.name, row.version)]


@dataclass(frozen=True)
class AuditReport:
    environments: tuple[EnvironmentAudit, ...]
    vulnerabilities: tuple[Vulnerability, ...] | None = None  # None: not asked for
    vulnerability_source: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def violations(self) -> list[tuple[str, Finding]]:
        return [
            (e.env.label, f)
            for e in self.environments
            for f in e.findings
            if f.severity == "violation"
        ]

    def vulnerabilities_of(self, name: str, version: str) -> list[Vulnerability]:
        return [v for v in self.vulnerabilities or () if (v.package, v.version) == (name, version)]


def audit(
    envs: Sequence[EnvironmentSpec],
    platforms: Sequence[str] = (),
    *,
    vulnerabilities: bool = False,
    db: Path | None = None,
    cache_dir: Path | None = None,
    now: datetime | None = None,
    given: LockFile | None = None,
) -> AuditReport:
    """Audit each environment's lock (``given``: the lock of the one environment, named with
    --lock, audited as it is); with ``vulnerabilities`` also look every pinned version up in
    OSV (``db``: an offline OSV database, else the OSV API)."""
    audits = []
    notes: list[str] = []
    for env in envs:
        if given is not None:
            lock = given
        else:
            lock = lockfile.load(env.lock_path)
            stale = staleness(env, env.targets)
            if stale is not None:  # the audit is of what is locked, which the spec no longer says
                notes.append(f"{stale}; auditing the lock as it is")
        chosen = _platforms(lock, platforms)
        found = check(lock, env.policy, platforms=set(chosen), pins=spec_pins(env), now=now)
        audits.append(
            EnvironmentAudit(
                env,
                lock,
                chosen,
                tuple(rows(lock, chosen)),
                tuple(found),
                tuple(build_rows(lock, chosen)),
            )
        )
    if not vulnerabilities:
        return AuditReport(tuple(audits), warnings=tuple(notes))
    from envlock.audit.vulnerabilities import scan

    # Build packages ran on the build machines: their vulnerabilities are the lock's too.
    pinned = sorted(
        {(r.name, r.version) for a in audits for r in a.rows}
        | {(b.name, b.version) for a in audits for b in a.builds}
    )
    if cache_dir is None:
        raise ValueError("cache_dir is needed to look vulnerabilities up")
    result = scan(pinned, db=db, cache_dir=cache_dir)
    return AuditReport(
        tuple(audits), result.vulnerabilities, result.source, (*notes, *result.warnings)
    )


def _platforms(lock: LockFile, asked: Sequence[str]) -> tuple[str, ...]:
    """The platforms asked for that this lock has (all of them when none was asked); a lock
    with none of them is the lock's usual error for the first."""
    if not asked:
        return tuple(sorted(lock.targets))
    have = tuple(p for p in sorted(set(asked)) if p in lock.targets)
    if not have:
        lock.target(asked[0])  # raises: names what the lock has
    return have


def as_json(report: AuditReport) -> dict[str, Any]:
    """The report for machines: the table's data, sorted, with no wall-clock value."""
    out: dict[str, Any] = {"envlock": __version__, "environments": []}
    for e in report.environments:
        packages = []
        for row in e.rows:
            findings = e.findings_of(row)
            packages.append(
                {
                    "name": row.name,
                    "version": row.version,
                    "platforms": list(row.platforms),
                    "index": row.index,
                    "kinds": list(row.kinds),
                    "license": row.license,
                    "upload-time": _time(row.upload_time),
                    "files": [
                        {"name": f.filename, "url": f.url, "sha256": f.sha256, "size": f.size}
                        for f in row.files
                    ],
                    "status": status(findings),
                    "findings": [_finding(f) for f in findings],
                    "vulnerabilities": [
                        v.id for v in report.vulnerabilities_of(row.name, row.version)
                    ],
                }
            )
        out["environments"].append(
            {
                "name": e.env.label,
                "lock": str(e.lock.path),
                "lock-sha256": e.lock.sha256,
                "platforms": list(e.platforms),
                "interpreters": [
                    {
                        "version": i.interpreter.version,
                        "name": i.interpreter.name,
                        "url": i.interpreter.url,
                        "sha256": i.interpreter.sha256,
                        "platforms": list(i.platforms),
                    }
                    for i in interpreter_rows(e.lock, e.platforms)
                ],
                "packages": packages,
                "build-packages": [
                    {
                        "name": b.name,
                        "version": b.version,
                        "platforms": list(b.platforms),
                        "index": b.index,
                        "needed-by": list(b.needed_by),
                        "files": [
                            {"name": f.filename, "url": f.url, "sha256": f.sha256, "size": f.size}
                            for f in b.files
                        ],
                        "vulnerabilities": [
                            v.id for v in report.vulnerabilities_of(b.name, b.version)
                        ],
                    }
                    for b in e.builds
                ],
            }
        )
    out["violations"] = [{"environment": env, **_finding(f)} for env, f in report.violations]
    if report.vulnerabilities is not None:
        out["vulnerability-source"] = report.vulnerability_source
        out["vulnerabilities"] = [_vulnerability(v) for v in report.vulnerabilities]
    return out


def status(findings: Sequence[Finding]) -> str:
    if any(f.severity == "violation" for f in findings):
        return "violation"
    return "unknown" if findings else "ok"


def _finding(f: Finding) -> Mapping[str, str]:
    return {
        "name": f.name,
        "version": f.version,
        "rule": f.rule,
        "severity": f.severity,
        "message": f.message,
    }


def _vulnerability(v: Vulnerability) -> Mapping[str, Any]:
    return {
        "id": v.id,
        "aliases": list(v.aliases),
        "package": v.package,
        "version": v.version,
        "fixed-in": list(v.fixed_in),
        "summary": v.summary,
        "url": v.url,
    }


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
