"""Core metadata (METADATA / PKG-INFO) -> :class:`CoreMetadata`: the fields a resolver needs.

Pure: the index fetches the bytes, materialize re-reads a wheel's own copy to check that it
says what the lock was resolved from (:func:`requires_key`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from envlock.errors import IntegrityError
from envlock.licenses import from_metadata


class MetadataError(Exception):
    """The file's metadata is unusable (the candidate is skipped, not the run)."""


@dataclass(frozen=True)
class CoreMetadata:
    """What the resolver needs from METADATA / PKG-INFO."""

    name: NormalizedName
    version: Version
    requires_dist: tuple[Requirement, ...]
    requires_python: SpecifierSet | None
    provides_extra: frozenset[NormalizedName]
    dynamic: frozenset[str] = frozenset()
    metadata_version: str = "1.0"
    license: str | None = None  # SPDX when the metadata names one (see envlock.licenses)


def parse_metadata(raw: bytes) -> CoreMetadata:
    """Parse METADATA text; raises :class:`MetadataError` for what we cannot use."""
    fields, _unparsed = parse_email(raw)
    name, version = fields.get("name"), fields.get("version")
    if not name or not version:
        raise MetadataError("metadata has no Name or Version")
    reqs = []
    for line in fields.get("requires_dist", []):
        try:
            reqs.append(Requirement(line))
        except InvalidRequirement as exc:
            raise MetadataError(f"invalid Requires-Dist {line!r}: {exc}") from None
    rp: SpecifierSet | None = None
    if fields.get("requires_python"):
        try:
            rp = SpecifierSet(fields["requires_python"])
        except InvalidSpecifier:
            rp = None
    try:
        parsed_version = Version(version)
    except ValueError:
        raise MetadataError(f"invalid Version {version!r}") from None
    return CoreMetadata(
        name=canonicalize_name(name),
        version=parsed_version,
        requires_dist=tuple(reqs),
        requires_python=rp,
        provides_extra=frozenset(canonicalize_name(e) for e in fields.get("provides_extra", [])),
        dynamic=frozenset(d.lower() for d in fields.get("dynamic", [])),
        metadata_version=fields.get("metadata_version", "1.0"),
        license=from_metadata(
            fields.get("license_expression"), fields.get("license"), fields.get("classifiers", [])
        ),
    )


def check_identity(meta: CoreMetadata, name: str, version: Version, filename: str) -> None:
    """Metadata must describe the file it came with: pip refuses an "inconsistent version" too.
    A PEP 658 sidecar (or a wheel) saying another Name or Version is an :class:`IntegrityError`
    naming the file, never silently resolved with."""
    if meta.name == canonicalize_name(name) and meta.version == version:
        return
    raise IntegrityError(
        f"{filename}: its metadata says {meta.name} {meta.version}, the file name "
        f"{canonicalize_name(name)} {version}",
        hint="the index serves metadata of another release; report it to the index's owner",
    )


def canonical_requirement(req: Requirement) -> str:
    """A requirement's text with its name normalised (``Foo_Bar`` and ``foo-bar`` agree)."""
    copy = Requirement(str(req))
    copy.name = canonicalize_name(copy.name)
    return str(copy)


def requires_key(requires: Iterable[Requirement]) -> tuple[str, ...]:
    """The dependency list in one canonical form: sorted, names normalised, duplicates merged."""
    return tuple(sorted({canonical_requirement(r) for r in requires}))
