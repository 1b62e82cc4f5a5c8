"""The spec's ``constraints`` in the resolver: they limit versions, never add a package."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement

from envlock.errors import ResolutionError
from envlock.platforms import Target
from envlock.resolve import Policy, Resolution, resolve
from support.memory import MemoryRepository
from support.wheels import Dist

LINUX = Target("linux-64", "3.11")
WINDOWS = Target("win-64", "3.11")

DISTS = [
    Dist("app", "1.0", requires=["lib>=1"]),
    Dist("lib", "1.0"),
    Dist("lib", "1.5"),
    Dist("lib", "2.0"),
    Dist("other", "1.0"),
    Dist("other", "2.0"),
]


def _resolve(reqs: list[str], constraints: list[str], target: Target = LINUX) -> Resolution:
    return resolve(
        [Requirement(r) for r in reqs],
        target,
        MemoryRepository(DISTS),
        Policy(),
        spec_constraints=[Requirement(c) for c in constraints],
    )


def _pins(res: Resolution) -> dict[str, str]:
    return {str(n): str(p.version) for n, p in res.packages.items()}


def test_a_constraint_holds_a_transitive_dependency_below_its_newest_version() -> None:
    assert _pins(_resolve(["app"], [])) == {"app": "1.0", "lib": "2.0"}
    assert _pins(_resolve(["app"], ["lib<2"])) == {"app": "1.0", "lib": "1.5"}
    assert _pins(_resolve(["app"], ["lib==1.0"])) == {"app": "1.0", "lib": "1.0"}


def test_a_constraint_on_a_package_nobody_requires_adds_nothing() -> None:
    assert _pins(_resolve(["app"], ["other==1.0", "absent-everywhere<3"])) == {
        "app": "1.0",
        "lib": "2.0",
    }


def test_a_constraint_holds_only_where_its_marker_is_true() -> None:
    constraints = ["lib<2; sys_platform == 'win32'"]
    assert _pins(_resolve(["app"], constraints, LINUX))["lib"] == "2.0"
    assert _pins(_resolve(["app"], constraints, WINDOWS))["lib"] == "1.5"


def test_several_constraints_on_one_package_all_hold() -> None:
    assert _pins(_resolve(["app"], ["lib<2", "lib!=1.5"]))["lib"] == "1.0"


def test_a_constraint_against_a_requirement_is_one_line_naming_both() -> None:
    with pytest.raises(ResolutionError) as info:
        _resolve(["lib>=2"], ["lib<2"])
    message = info.value.message
    assert "\n" not in message
    assert "lib>=2" in message and "'lib<2'" in message and "constraint" in message
    assert info.value.hint == "change the constraint 'lib<2' in the spec's constraints"


def test_a_constraint_that_empties_a_dependency_names_the_constraint() -> None:
    with pytest.raises(ResolutionError) as info:
        _resolve(["app"], ["lib<1"])
    assert "excluded by the constraint 'lib<1'" in info.value.message
