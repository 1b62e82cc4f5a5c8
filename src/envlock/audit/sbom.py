"""A lock as a CycloneDX 1.6 JSON SBOM, built with cyclonedx-python-lib: a component per package
version (purl, license, sha256 of every file), the bundled interpreter, the dependency graph, and
the build packages of locked sdists (scope "excluded": they run at build time only, never ship).

Deterministic: the serial number derives from the lock's sha256 and the platforms included, and
there is no wall-clock timestamp unless one is passed, so the same lock gives the same bytes.
cyclonedx-python-lib is slow to import: only this module imports it, and commands import this
module lazily.
"""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime
from urllib.parse import urlsplit

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.contrib.this.builders import this_component
from cyclonedx.model import (
    ExternalReference,
    ExternalReferenceType,
    HashAlgorithm,
    HashType,
    Property,
    XsUri,
)
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentScope, ComponentType
from cyclonedx.model.license import LicenseAcknowledgement
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

import envlock
from envlock._urls import redact
from envlock.audit.inventory import BuildRow, InterpreterRow, PackageRow, interpreter_rows
from envlock.lock.lockfile import LockFile

# Namespace of envlock's serial numbers (uuid5 of the lock's hash and the platforms included).
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://envlock.invalid/cyclonedx-serial")
_PYPI_HOSTS = ("pypi.org", "pypi.python.org")
_ROOT_REF = "envlock-environment"


def cyclonedx(
    lock: LockFile,
    rows: Sequence[PackageRow],
    *,
    platforms: Sequence[str] = (),
    timestamp: datetime | None = None,
    builds: Sequence[BuildRow] = (),
) -> str:
    """The CycloneDX 1.6 JSON SBOM of ``rows`` (from :func:`inventory.rows`) and the bundled
    interpreters of ``platforms`` (default: every locked one; pass the rows' own selection)."""
    interpreters = interpreter_rows(lock, platforms)  # checks ``platforms``
    included = sorted(set(platforms) if platforms else set(lock.targets))
    bom = Bom(serial_number=uuid.uuid5(_NAMESPACE, f"{lock.sha256}:{','.join(included)}"))
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="envlock", version=envlock.__version__)
    )
    bom.metadata.tools.components.add(this_component())
    root = Component(
        type=ComponentType.APPLICATION,
        name=f"envlock-{lock.environment}",
        bom_ref=_ROOT_REF,
        properties=[Property(name="envlock:platform", value=p) for p in included],
    )
    bom.metadata.component = root
    if timestamp is not None:
        bom.metadata.timestamp = timestamp

    components: dict[tuple[str, str], Component] = {
        (row.name, row.version): _package(row) for row in rows
    }
    pythons = [_interpreter(r) for r in interpreters]
    for component in [*components.values(), *pythons]:
        bom.components.add(component)
    edges = _edges(rows, components)
    for row in rows:
        bom.register_dependency(components[(row.name, row.version)], edges[_ref(row)])
    for component in pythons:
        bom.register_dependency(component)
    for build in builds:
        # Not in the environment's graph: nothing imports a build package at run time.
        component = _build_package(build)
        bom.components.add(component)
        bom.register_dependency(component)
    direct = _roots(components, edges) + pythons
    bom.register_dependency(root, sorted(direct, key=lambda c: str(c.bom_ref)))

    with warnings.catch_warnings():
        # The library warns about an empty graph (a lock with no packages): still a valid SBOM.
        warnings.simplefilter("ignore", UserWarning)
        text = JsonV1Dot6(bom).output_as_string()
    document = json.loads(text)
    if timestamp is None:
        # The library always stamps the current time; the SBOM of a lock must not change with it.
        document["metadata"].pop("timestamp", None)
    # The library appends these three; readers (and people) expect them first.
    head = {key: document.pop(key) for key in ("$schema", "bomFormat", "specVersion")}
    return json.dumps({**head, **document}, indent=2, ensure_ascii=False)


def _edges(
    rows: Sequence[PackageRow], components: Mapping[tuple[str, str], Component]
) -> dict[str, list[Component]]:
    """bom-ref -> the components it depends on: on each platform, the version of each
    dependency that platform installs (a package may be pinned differently per platform)."""
    installed = {
        (row.name, p): components[(row.name, row.version)] for row in rows for p in row.platforms
    }
    out: dict[str, list[Component]] = {}
    for row in rows:
        deps = {
            str(installed[(name, platform)].bom_ref): installed[(name, platform)]
            for platform, names in row.requires_on
            for name in names
            if (name, platform) in installed
        }
        out[_ref(row)] = [deps[ref] for ref in sorted(deps)]
    return out


def _ref(row: PackageRow) -> str:
    return f"pkg:pypi/{row.name}@{row.version}"


def _distributions(row: PackageRow | BuildRow) -> list[ExternalReference]:
    """Every file of a row as a distribution reference, with its sha256 (as cyclonedx-py)."""
    return [
        ExternalReference(
            type=ExternalReferenceType.DISTRIBUTION,
            url=XsUri(redact(art.url)),
            comment=art.filename,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=art.sha256)],
        )
        for art in row.files
    ]


def _package(row: PackageRow) -> Component:
    qualifiers = {}
    if row.index is not None and not _is_pypi(row.index):
        qualifiers["repository_url"] = redact(row.index)
    references = _distributions(row)
    licenses = []
    if row.license:
        license_ = LicenseFactory().make_from_string(
            row.license, license_acknowledgement=LicenseAcknowledgement.DECLARED
        )
        licenses.append(license_)
    return Component(
        type=ComponentType.LIBRARY,
        name=row.name,
        version=row.version,
        bom_ref=_ref(row),
        purl=PackageURL(type="pypi", name=row.name, version=row.version, qualifiers=qualifiers),
        # One file: its hash is the component's. Several (a wheel per platform): each hash goes
        # with its file's distribution reference, as cyclonedx-py does for poetry and uv locks.
        hashes=(
            [HashType(alg=HashAlgorithm.SHA_256, content=row.files[0].sha256)]
            if len(row.files) == 1
            else []
        ),
        licenses=licenses,
        external_references=references,
        properties=[Property(name="envlock:platform", value=p) for p in row.platforms],
    )


def _build_package(row: BuildRow) -> Component:
    """A package installed only while locked sdists were built into wheels."""
    qualifiers = {}
    if row.index is not None and not _is_pypi(row.index):
        qualifiers["repository_url"] = redact(row.index)
    return Component(
        type=ComponentType.LIBRARY,
        name=row.name,
        version=row.version,
        bom_ref=f"build/pkg:pypi/{row.name}@{row.version}",
        scope=ComponentScope.EXCLUDED,
        purl=PackageURL(type="pypi", name=row.name, version=row.version, qualifiers=qualifiers),
        hashes=(
            [HashType(alg=HashAlgorithm.SHA_256, content=row.files[0].sha256)]
            if len(row.files) == 1
            else []
        ),
        external_references=_distributions(row),
        properties=[
            Property(name="envlock:build-dependency-of", value=who) for who in row.needed_by
        ]
        + [Property(name="envlock:platform", value=p) for p in row.platforms],
    )


def _interpreter(row: InterpreterRow) -> Component:
    """A bundled CPython build: the platform the packages run on (no purl names such builds)."""
    interpreter = row.interpreter
    return Component(
        type=ComponentType.PLATFORM,
        name="cpython",
        version=interpreter.version,
        bom_ref=f"cpython@{interpreter.version}/{interpreter.name}",
        description=interpreter.label,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=interpreter.sha256)],
        external_references=[
            ExternalReference(
                type=ExternalReferenceType.DISTRIBUTION,
                url=XsUri(redact(interpreter.url)),
                comment=interpreter.name,
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=interpreter.sha256)],
            )
        ],
        properties=[Property(name="envlock:platform", value=p) for p in row.platforms],
    )


def _roots(
    components: Mapping[tuple[str, str], Component], edges: dict[str, list[Component]]
) -> list[Component]:
    """What the environment depends on directly: packages nothing else requires, plus one of
    each dependency cycle no such package reaches (the lock does not record the spec's
    requirements, so this is every component reachable from the root, with no shortcut)."""
    by_ref = {str(c.bom_ref): c for c in components.values()}
    required = {str(dep.bom_ref) for deps in edges.values() for dep in deps}
    roots = [ref for ref in sorted(by_ref) if ref not in required]
    seen: set[str] = set()

    def visit(start: str) -> None:
        stack = [start]
        while stack:
            ref = stack.pop()
            if ref not in seen:
                seen.add(ref)
                stack.extend(str(d.bom_ref) for d in edges.get(ref, ()))

    for ref in roots:
        visit(ref)
    for ref in sorted(by_ref):
        if ref not in seen:
            roots.append(ref)
            visit(ref)
    return [by_ref[ref] for ref in roots]


def _is_pypi(url: str) -> bool:
    return (urlsplit(url).hostname or "") in _PYPI_HOSTS
