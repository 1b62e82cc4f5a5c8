"""Skip the releases that cannot fit instead of trying them one by one.

When a version of P is rejected because its requirement on D clashes with what the rest of the
resolution holds D to (``boto3`` releases daily, each pinned to one ``botocore``, while
``aiobotocore`` pins an older ``botocore``), P's next releases usually clash the same way. Their
requirements on D move with P's version, so a binary search over P's remaining releases finds the
newest one whose requirement on D fits in a handful of metadata reads. An ordering heuristic
only: the releases it jumps over are still offered afterwards, so nothing is lost if the
requirements do not move monotonically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envlock.resolve.candidates import Candidate

Fit = Literal["fits", "too-new", "too-old", "unknown"]
# A candidate's requirement on the dependency: its specifier, None when it has none (it fits
# any), or False when its metadata cannot tell.
RequirementOn = Callable[[Candidate], "SpecifierSet | Literal[False] | None"]


def classify(
    spec: SpecifierSet | Literal[False] | None,
    allowed: Sequence[Version],
    dep_versions: Sequence[Version],
) -> Fit:
    """Whether a candidate whose requirement on D is ``spec`` fits D's ``allowed`` versions, or
    needs a newer or an older D than those."""
    if spec is None:
        return "fits"
    if spec is False:
        return "unknown"
    if any(spec.contains(v, prereleases=True) for v in allowed):
        return "fits"
    admitted = [v for v in dep_versions if spec.contains(v, prereleases=True)]
    if not admitted:
        return "unknown"
    if min(admitted) > max(allowed):
        return "too-new"  # the candidate needs a newer D: look at older candidates
    if max(admitted) < min(allowed):
        return "too-old"
    return "unknown"


def newest_fitting(
    candidates: Sequence[Candidate],
    requirement_on: RequirementOn,
    allowed: Sequence[Version],
    dep_versions: Sequence[Version],
) -> int | None:
    """Index of the newest candidate (``candidates`` newest first) whose requirement fits, found
    by binary search over the boundary between "needs a newer D" and the rest; None when the
    probes do not line up (no monotone structure to rely on)."""
    if not allowed or not candidates:
        return None
    lo, hi = 0, len(candidates)
    while lo < hi:
        mid = (lo + hi) // 2
        fit = classify(requirement_on(candidates[mid]), allowed, dep_versions)
        if fit == "too-new":
            lo = mid + 1
        elif fit in ("fits", "too-old"):
            hi = mid
        else:
            return None
    if (
        lo < len(candidates)
        and classify(requirement_on(candidates[lo]), allowed, dep_versions) == "fits"
    ):
        return lo
    return None
