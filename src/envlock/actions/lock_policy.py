"""``[policy]`` in ``envlock lock``: the resolver's filters (deny, min-age), the check of what was
resolved before anything is written (allowed-indexes, deny, licenses), and what the cooldown held
back, for the summary."""

from __future__ import annotations

from collections.abc import Sequence, Set
from datetime import datetime, timezone

from packaging.utils import canonicalize_name
from packaging.version import Version

from envlock.audit.policy import Finding, check
from envlock.errors import PolicyError
from envlock.index.repository import Repository
from envlock.lock.lockfile import LockFile
from envlock.resolve import Policy, Resolution
from envlock.resolve.candidates import Evaluator, Rejection
from envlock.spec import EnvironmentSpec


def resolver_policy(env: EnvironmentSpec, now: datetime) -> Policy:
    """The resolver's knobs for ``env``, its ``[policy]`` included (min-age counted from
    ``now``)."""
    rules = env.policy
    return Policy(
        env.prerelease,
        env.exclude_newer,
        env.sdist_allowed,
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
    """Check the lock about to be written against the policy: a violation raises PolicyError
    (nothing is written); what cannot be checked (an unknown license) is returned."""
    if env.policy.empty:
        return []
    findings = check(lock, env.policy, pins=spec_pins(env), now=now)
    violations = [f for f in findings if f.severity == "violation"]
    if violations:
        listed = "; ".join(f.describe() for f in violations)
        raise PolicyError(
            f"{env.label}: the lock would break the [policy] ({len(violations)} "
            f"violation{'s' if len(violations) > 1 else ''}): {listed}",
            hint="change the requirements or the [policy] in the spec; nothing was written",
        )
    return [f for f in findings if f.severity != "violation"]


def held_back(
    resolutions: Sequence[Resolution], repo: Repository, policy: Policy
) -> tuple[str, ...]:
    """``name: newer (uploaded …) held back, locked old`` for each package of which min-age
    kept a newer release out of the lock."""
    if policy.cooldown is None:
        return ()
    found: dict[str, str] = {}
    for res in resolutions:
        evaluator = Evaluator(res.target, policy)
        for name, pkg in res.packages.items():
            page = repo.project(name)
            if page is None or name in found:
                continue
            for version in page.versions:  # newest first
                if version <= pkg.version:
                    break
                if version.is_prerelease and policy.prerelease != "allow":
                    continue
                result = evaluator.evaluate(name, version, page.files_of(version), False)
                if isinstance(result, Rejection) and result.kind == "cooldown":
                    found[name] = f"{name} {version} ({result.detail}); locked {pkg.version}"
                    break
    return tuple(found[n] for n in sorted(found))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
