"""The binary search over releases whose requirement on another project moves with them."""

from __future__ import annotations

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envlock.resolve.candidates import Candidate
from envlock.resolve.jump import classify, newest_fitting

CORE = [Version(f"1.{i}") for i in range(20)]


def _client(i: int) -> Candidate:
    return Candidate("client", Version(f"2.{i}"))


def test_classify_by_where_the_requirement_points() -> None:
    allowed = [Version("1.5")]
    assert classify(None, allowed, CORE) == "fits"
    assert classify(SpecifierSet(">=1.4,<1.6"), allowed, CORE) == "fits"
    assert classify(SpecifierSet(">=1.9"), allowed, CORE) == "too-new"
    assert classify(SpecifierSet("<1.3"), allowed, CORE) == "too-old"
    assert classify(SpecifierSet("==9.9"), allowed, CORE) == "unknown"  # no such core at all
    assert classify(False, allowed, CORE) == "unknown"
    assert classify(SpecifierSet("!=1.5"), allowed, CORE) == "unknown"  # around, not above/below


def test_newest_fitting_release_found_in_few_probes() -> None:
    # client 2.i needs core 1.i exactly; newest first.
    clients = [_client(i) for i in range(19, -1, -1)]
    probes: list[Candidate] = []

    def requirement_on(c: Candidate) -> SpecifierSet:
        probes.append(c)
        return SpecifierSet(f"=={str(c.version).replace('2.', '1.', 1)}")

    found = newest_fitting(clients, requirement_on, [Version("1.7")], CORE)
    assert found is not None and clients[found].version == Version("2.7")
    assert len(probes) <= 6


def test_newest_fitting_gives_up_on_unreadable_or_empty_input() -> None:
    clients = [_client(i) for i in range(9, -1, -1)]
    assert newest_fitting(clients, lambda c: False, [Version("1.3")], CORE) is None
    assert newest_fitting(clients, lambda c: None, [], CORE) is None
    assert newest_fitting([], lambda c: None, [Version("1.3")], CORE) is None
    # Everything needs a newer core than allowed: nothing fits.
    assert newest_fitting(clients, lambda c: SpecifierSet(">=1.9"), [Version("1.3")], CORE) is None
