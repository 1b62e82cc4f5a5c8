"""A speculative crawl ahead of the resolver: page -> newest usable file -> its metadata -> the
pages of its dependencies, in the background, so the resolver rarely waits on the network.

A guess (the newest version usually wins); a wrong one only costs a request. It never fails a
run nor prints: the resolver asks again for real and gets the real error.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from functools import partial

from packaging.utils import canonicalize_name
from packaging.version import Version

from envlock.core_metadata import CoreMetadata
from envlock.index.repository import Repository
from envlock.index.simple import ProjectPage
from envlock.platforms import Target
from envlock.resolve.candidates import Candidate, Evaluator
from envlock.resolve.constraints import Constraint, excluded_by


class Crawler:
    """Fetches what the resolver will probably ask for next."""

    def __init__(
        self,
        repo: Repository,
        target: Target,
        evaluator: Evaluator,
        preferences: Mapping[str, Version],
        constraints: Mapping[str, Sequence[Constraint]] | None = None,
    ) -> None:
        self.repo = repo
        self.target = target
        self.evaluator = evaluator
        self.preferences = preferences
        self.constraints = constraints or {}
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def speculate(self, names: Iterable[str], extras: frozenset[str] = frozenset()) -> None:
        for name in names:
            key = canonicalize_name(name)
            with self._lock:
                if key in self._seen:
                    continue
                self._seen.add(key)
            self.repo.project_future(key).add_done_callback(partial(self._on_page, extras))

    def _on_page(self, extras: frozenset[str], fut: Future[ProjectPage | None]) -> None:
        with contextlib.suppress(Exception):
            self._from_page(extras, fut)

    def _from_page(self, extras: frozenset[str], fut: Future[ProjectPage | None]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        page = fut.result()
        if page is None:
            return
        preferred = self.preferences.get(page.name)
        # A constraint (a pin, often) rules versions out before any guess is made.
        limits = self.constraints.get(page.name, ())
        versions = [
            v
            for v in page.versions
            if not v.is_prerelease and (not limits or excluded_by(limits, v) is None)
        ][:20]
        if preferred is not None and preferred in page.versions:
            versions.insert(0, preferred)
        for version in versions:
            result = self.evaluator.evaluate(page.name, version, page.files_of(version), False)
            if isinstance(result, Candidate) and result.file is not None:
                self.repo.prefetch_metadata(result.file).add_done_callback(
                    partial(self._on_metadata, extras)
                )
                return

    def _on_metadata(self, extras: frozenset[str], fut: Future[CoreMetadata]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        meta = fut.result()
        with contextlib.suppress(Exception):
            self.speculate(
                r.name for r in meta.requires_dist if self.target.marker_matches(r.marker, extras)
            )
