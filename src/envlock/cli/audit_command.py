"""``envlock audit``: the supply chain of each lock as a table, JSON or a CycloneDX SBOM, checked
against the spec's ``[policy]`` and, with ``--vulnerabilities``, against OSV."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from envlock.cli.options import (
    CacheOpt,
    LockOpt,
    PythonOpt,
    QuietOpt,
    SpecOpt,
    VerboseOpt,
    set_verbosity,
)
from envlock.cli.output import cache_dir, info, real_console, stderr, stdout, warn
from envlock.spec_file import locate_spec

if TYPE_CHECKING:
    from rich.table import Table

    from envlock.actions.audit import AuditReport, EnvironmentAudit


class Format(str, Enum):
    table = "table"
    json = "json"
    cyclonedx = "cyclonedx"


def audit(
    spec: SpecOpt = None,
    env: Annotated[
        list[str],
        typer.Option("--env", "-e", help="Only this environment ('default' = top level)."),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    platform: Annotated[
        list[str],
        typer.Option("--platform", "-p", help="Only what this platform installs (repeatable)."),
    ] = [],  # noqa: B006
    output_format: Annotated[
        Format, typer.Option("--format", "-f", help="table, json, or a CycloneDX 1.6 SBOM.")
    ] = Format.table,
    vulnerabilities: Annotated[
        bool,
        typer.Option(
            "--vulnerabilities",
            help="Look every pinned version up in OSV (the API, or --vulnerability-db).",
        ),
    ] = False,
    vulnerability_db: Annotated[
        Optional[Path],
        typer.Option(
            "--vulnerability-db",
            help="Offline OSV data: a directory or zip of OSV JSON (e.g. PyPI's all.zip).",
        ),
    ] = None,
    fail_on_vulnerability: Annotated[
        bool,
        typer.Option("--fail-on-vulnerability", help="Exit 1 when a vulnerability is found."),
    ] = False,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Write the report to this file.")
    ] = None,
    timestamp: Annotated[
        bool,
        typer.Option("--timestamp", help="cyclonedx: record the current time (not reproducible)."),
    ] = False,
    lock: LockOpt = None,
    python: PythonOpt = None,
    cache: CacheOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """List what each lock installs and check it against the spec's [policy] (exit 1 on a
    violation) and, with --vulnerabilities, known vulnerabilities."""
    from envlock.actions import given_lock
    from envlock.actions.audit import audit as run_audit
    from envlock.actions.check import select_environments
    from envlock.errors import PolicyError, UsageError

    set_verbosity(quiet, verbose)
    given_lock.check_lock_options(lock, python, spec=spec, envs=env)
    if vulnerability_db is not None or fail_on_vulnerability:
        vulnerabilities = True
    if output is not None and output_format is Format.table:
        raise UsageError("--output writes --format json or cyclonedx; the table goes to stdout")
    given = given_lock.load_given(lock, platform, python) if lock is not None else None
    if given is not None:
        envs = [given_lock.environment_of(given)]
    else:
        envs = select_environments(locate_spec(spec), env, [], None)
    if output_format is Format.cyclonedx and len(envs) != 1:
        names = ", ".join(e.label for e in envs)
        raise UsageError(f"an SBOM describes one lock: pass --env NAME (one of {names})")
    report = run_audit(
        envs,
        platform,
        vulnerabilities=vulnerabilities,
        db=vulnerability_db,
        cache_dir=cache_dir(cache),
        given=given,
    )
    for warning in report.warnings:
        warn(warning)
    if output_format is Format.table:
        for e in report.environments:
            _table(report, e)
        if report.vulnerabilities is not None:
            _vulnerability_table(report)
    else:
        _emit(output, _document(report, output_format, timestamp))
    violations = report.violations
    for environment, finding in violations:
        stderr.print(f"policy: {environment}: {finding.describe()}", markup=False)
    found = len(report.vulnerabilities or ())
    if violations:
        raise PolicyError(
            f"{len(violations)} policy violation{'s' if len(violations) > 1 else ''} "
            "(listed above)",
            hint="change the requirements or the [policy] in the spec, then `envlock lock`",
        )
    if found and fail_on_vulnerability:
        raise PolicyError(
            f"{found} known vulnerabilit{'ies' if found > 1 else 'y'} in the locked versions",
            hint="upgrade to a fixed version (envlock lock --upgrade-package NAME)",
        )


def _document(report: AuditReport, fmt: Format, timestamp: bool) -> str:
    if fmt is Format.json:
        from envlock.actions.audit import as_json

        return json.dumps(as_json(report), indent=2, sort_keys=True) + "\n"
    from datetime import datetime, timezone

    from envlock.audit.sbom import cyclonedx

    e = report.environments[0]
    when = datetime.now(timezone.utc).replace(microsecond=0) if timestamp else None
    return cyclonedx(e.lock, e.rows, platforms=e.platforms, timestamp=when, builds=e.builds) + "\n"


def _emit(output: Path | None, text: str | None) -> None:
    """Write ``text`` to ``output`` atomically (or stdout); None: nothing to write yet."""
    if text is None:
        return
    if output is None:
        stdout.out(text, end="", highlight=False)
        return
    from envlock._fs import atomic_write_bytes

    atomic_write_bytes(output, text.encode())
    info(f"wrote {output}")


def _table(report: AuditReport, e: EnvironmentAudit) -> None:
    from rich.table import Table

    from envlock.actions.audit import status

    every = set(e.lock.targets)
    table = Table(
        title=f"{e.env.label} ({e.lock.path.name}, {len(e.rows)} packages)", title_justify="left"
    )
    for column in ("package", "version", "platforms", "index", "kind", "license", "uploaded"):
        table.add_column(column, overflow="fold")  # a narrow log folds values, never cuts them
    table.add_column("status", overflow="fold")
    for row in e.rows:
        findings = e.findings_of(row)
        state = status(findings)
        vulns = report.vulnerabilities_of(row.name, row.version)
        text = {"ok": "[green]ok[/green]", "unknown": "[yellow]unknown[/yellow]"}.get(
            state, "[bold red]violation[/bold red]"
        )
        if findings:
            text += " (" + ", ".join(sorted({f.rule for f in findings})) + ")"
        if vulns:
            text += f" [bold red]{len(vulns)} vuln[/bold red]"
        table.add_row(
            row.name,
            row.version,
            "all" if set(row.platforms) == every else ", ".join(row.platforms),
            e.index_label(row.index),
            "+".join(row.kinds),
            row.license or "[dim]unknown[/dim]",
            row.upload_time.strftime("%Y-%m-%d") if row.upload_time else "-",
            text,
        )
    from urllib.parse import urlsplit

    from envlock.audit.inventory import interpreter_rows

    # The bundled CPython archives are part of the supply chain too.
    for irow in sorted(interpreter_rows(e.lock, e.platforms), key=lambda r: r.platforms):
        i = irow.interpreter
        table.add_row(
            "cpython",
            i.version,
            "all" if set(irow.platforms) == every else ", ".join(irow.platforms),
            urlsplit(i.url).hostname or "-",
            "interpreter",
            "-",
            # a python-build-standalone release is named after its date
            f"{i.build[:4]}-{i.build[4:6]}-{i.build[6:]}" if len(i.build) == 8 else "-",
            "[green]ok[/green]",
        )
    # Build packages ran only while locked sdists were built: part of the supply chain too.
    for brow in e.builds:
        vulns = report.vulnerabilities_of(brow.name, brow.version)
        table.add_row(
            brow.name,
            brow.version,
            "all" if set(brow.platforms) == every else ", ".join(brow.platforms),
            e.index_label(brow.index),
            "build (" + ", ".join(brow.needed_by) + ")",
            "-",
            "-",
            "[green]ok[/green]" + (f" [bold red]{len(vulns)} vuln[/bold red]" if vulns else ""),
        )
    _print(table)


def _vulnerability_table(report: AuditReport) -> None:
    from rich.table import Table

    vulns = report.vulnerabilities or ()
    if not vulns:
        info(f"no known vulnerabilities ({report.vulnerability_source})")
        return
    table = Table(
        title=f"known vulnerabilities ({report.vulnerability_source})", title_justify="left"
    )
    for column in ("id", "aliases", "package", "version", "fixed in", "summary"):
        table.add_column(column, overflow="fold")
    for v in vulns:
        table.add_row(
            v.id,
            ", ".join(v.aliases),
            v.package,
            v.version,
            ", ".join(v.fixed_in) or "-",
            v.summary,
        )
    _print(table)


def _print(table: Table) -> None:
    # A log or a pipe is not an 80-column terminal: give the table room rather than fold it.
    console = real_console(stdout)
    if not console.is_terminal:
        console.width = max(console.width, 160)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(audit)
