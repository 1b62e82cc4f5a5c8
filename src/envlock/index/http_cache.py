"""On-disk cache of project pages, revalidated with ETag / Last-Modified on every run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from envlock._fs import atomic_write_bytes


@dataclass(frozen=True)
class CachedPage:
    url: str
    body: bytes
    content_type: str
    etag: str | None
    last_modified: str | None

    def validators(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


class PageCache:
    """``<cache>/simple-v1/<sha256(url)>.{json,body}``; writes are atomic."""

    def __init__(self, root: Path) -> None:
        self.root = root / "simple-v1"

    def _paths(self, key: str) -> tuple[Path, Path]:
        digest = hashlib.sha256(key.encode()).hexdigest()
        base = self.root / digest[:2] / digest
        return base.with_suffix(".json"), base.with_suffix(".body")

    def get(self, key: str) -> CachedPage | None:
        meta_path, body_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text())
            body = body_path.read_bytes()
        except (OSError, ValueError):
            return None
        if hashlib.sha256(body).hexdigest() != meta.get("sha256"):
            return None  # torn or corrupted entry: refetch
        return CachedPage(
            meta["url"], body, meta["content_type"], meta.get("etag"), meta.get("last_modified")
        )

    def put(self, key: str, page: CachedPage) -> None:
        meta_path, body_path = self._paths(key)
        atomic_write_bytes(body_path, page.body)
        meta = {
            "url": page.url,
            "content_type": page.content_type,
            "etag": page.etag,
            "last_modified": page.last_modified,
            "sha256": hashlib.sha256(page.body).hexdigest(),
        }
        atomic_write_bytes(meta_path, json.dumps(meta).encode())
