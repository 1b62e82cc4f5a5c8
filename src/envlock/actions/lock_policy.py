"""``[policy]`` in ``envlock lock``: the resolver's filters (deny, min-age, no-build) and the check
of what was resolved before anything is written (allowed-indexes, deny, licenses, no-build)."""

from __future__ import annotations

from collections.abc import Sequence, Set
from datetime import datetime, timezone

from packaging.utils import canonicalize_name
from packaging.version import Version

from envlock.audit.policy import Finding, check
from envlock.errors import PolicyError
from envlock.lock.lockfile import LockFile
from envlock.resolve import Policy
from envlock.spec import EnvironmentSpec


def resolver_policy(env: EnvironmentSpec, now: datetime) -> Policy:
    """The resolver's knobs for ``env``, its ``[policy]`` included (min-age counted from
    ``now``)."""
    rules = env.policy
    return Policy(
        env.prerelease,
        env.exclude_newer,
        env.sdist_refused_by,
        deny=rules.deny_rules,
        cooldown=now - rules.min_age if rules.min_age is not None else None,
        cooldown_exempt=frozenset((n, v) for n, vs in spec_pins(env).items() for v in vs),
        min_age=rules.min_age_text,
    )


def spec_pins(env: EnvironmentSpec) -> dict[str, Set[Version]]:
    """name -> the versions the spec pins exactly (``==``): exempt from min-age."""
    out: dict[str, set[Version]] = {}
    for req in env.requirements:
        for s in req.specifier:
            if s.operator in ("==", "===") and "*" not in s.version:
                try:
                    out.setdefault(canonicalize_name(req.name), set()).add(Version(s.version))
                except ValueError:
                    continue
    return dict(out)


def enforce(env: EnvironmentSpec, lock: LockFile, now: datetime) -> list[Finding]:
    """Every finding of the lock about to be written against the policy: violations (which
    :func:`raise_violations` turns into the error) and what cannot be checked (an unknown
    license)."""
    if env.policy.empty:
        return []
    return check(lock, env.policy, pins=spec_pins(env), now=now)


def raise_violations(found: Sequence[tuple[EnvironmentSpec, Sequence[Finding]]]) -> None:
    """One PolicyError listing every violation of every environment, one per line (nothing is
    written): fixing them one run at a time would take as many runs as there are."""
    lines = [
        f"{env.label}: {f.describe()}"
        for env, findings in found
        for f in findings
        if f.severity == "violation"
    ]
    if not lines:
        return
    n = len(lines)
    raise PolicyError(
        f"the lock would break the [policy] ({n} violation{'s' if n > 1 else ''}):\n  "
        + "\n  ".join(lines),
        hint="change the requirements or the [policy] in the spec; nothing was written",
    )


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
