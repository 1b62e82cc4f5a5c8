"""The one door to object storage: obstore (S3, GCS, Azure Blob, local paths through one API).

obstore is the optional extra ``pyenvlock[s3]``: without it a snapshot URL is a one-line error
naming the extra. Credentials come only from where the store's own client reads them
(``AWS_*``/``GOOGLE_*``/``AZURE_*`` variables, config files, instance roles) and never appear in
a message: every error is cut to its first line with known secrets masked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envlock.errors import EnvlockError, IntegrityError, NetworkError, UsageError
from envlock.snapshot.s3config import check_s3_environment, credentials_hint

SNAPSHOT_ENV = "ENVLOCK_SNAPSHOT_URL"
EXTRA_HINT = "pip install 'pyenvlock[s3]'"
_SCHEMES = ("s3://", "s3a://", "gs://", "az://", "abfs://", "abfss://", "azure://", "file://")
_SECRET_VARS = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
)
_CHUNK = 1 << 20


def snapshot_url(option: str | None, spec_value: str | None) -> str | None:
    """``--snapshot`` > ``ENVLOCK_SNAPSHOT_URL`` > the spec's ``snapshot``."""
    return option or os.environ.get(SNAPSHOT_ENV) or spec_value


def check_url(url: str, where: str) -> str:
    """A snapshot URL of a store envlock speaks to, without credentials in it."""
    if not url.startswith(_SCHEMES):
        raise UsageError(
            f"{where}: not a snapshot URL: {url!r}",
            hint="use s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or "
            "file:///path",
        )
    if "@" in url.split("/")[2]:
        raise UsageError(
            f"{where}: credentials do not belong in the snapshot URL",
            hint="set them the store's usual way (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "a profile or an instance role; GOOGLE_APPLICATION_CREDENTIALS; AZURE_*)",
        )
    return url


def _masked(text: str) -> str:
    """One line of an error, with every credential the environment holds masked."""
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    for var in _SECRET_VARS:
        value = os.environ.get(var)
        if value and len(value) >= 4:
            line = line.replace(value, "***")
    line = re.sub(r"(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s]+", r"\1***", line)
    return line[:400]


@dataclass(frozen=True)
class Head:
    """What a HEAD request tells of an object."""

    size: int
    etag: str  # as the store says it ("" if none): an MD5 for S3 single-part uploads


class RemoteStore:
    """A snapshot: keys relative to the URL's prefix (see :mod:`envlock.snapshot.layout`)."""

    def __init__(self, url: str) -> None:
        try:
            import obstore
            from obstore.store import from_url
        except ImportError:
            raise UsageError(
                f"snapshot {url} needs the object-storage client, which is not installed",
                hint=EXTRA_HINT,
            ) from None
        self.url = url
        self._obs = obstore
        # Shown by the CLI: e.g. that the instance metadata service will be asked.
        self.notice: str | None = None
        if url.startswith(("s3://", "s3a://")):
            self.notice = check_s3_environment(url)
        try:
            if url.startswith("file://"):
                self.store: Any = from_url(url, mkdir=True)
            else:
                self.store = from_url(url)
        except Exception as exc:  # obstore raises its own classes for a bad URL or config
            raise UsageError(f"snapshot {url}: {_masked(str(exc))}") from None

    def _error(self, key: str, exc: BaseException) -> EnvlockError:
        """obstore's error in envlock's words: the mistakes users make get a message of their
        own; anything else is its first line, secrets masked."""
        name = type(exc).__name__
        text = str(exc)
        if name == "PermissionDeniedError" or " 403 Forbidden" in text:
            return NetworkError(
                f"snapshot {self.url}: access denied (403): {credentials_hint(self.url)}"
            )
        if name == "UnauthenticatedError" or " 401 Unauthorized" in text:
            return NetworkError(
                f"snapshot {self.url}: not authenticated (401): {credentials_hint(self.url)}"
            )
        if "builder error" in text and "http://" in text:
            # reqwest refuses plain http unless allowed (an endpoint from a config file)
            return UsageError(
                f"snapshot {self.url}: the endpoint is plain http; set AWS_ALLOW_HTTP=true to "
                "allow it"
            )
        return NetworkError(
            f"snapshot {self.url}: {key}: {_masked(text)}",
            hint="check the snapshot URL and the store's credentials (AWS_*, GOOGLE_*, AZURE_* "
            "variables, profile or instance role)",
        )

    def size(self, key: str) -> int | None:
        """The size of the object at ``key``; None when there is none."""
        head = self.head(key)
        return None if head is None else head.size

    def head(self, key: str) -> Head | None:
        """The size and ETag of the object at ``key``; None when there is none."""
        try:
            meta = self._obs.head(self.store, key)
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._error(key, exc) from None
        return Head(int(meta["size"]), str(meta.get("e_tag") or ""))

    def put_file(self, key: str, path: Path) -> None:
        """Upload a file. The object appears under ``key`` only once complete (a single PUT, or
        a multipart upload that is completed last; a local store writes and renames)."""
        try:
            self._obs.put(self.store, key, path)
        except Exception as exc:
            raise self._error(key, exc) from None

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self._obs.put(self.store, key, data)
        except Exception as exc:
            raise self._error(key, exc) from None

    def read(self, key: str, limit: int) -> Iterator[bytes] | None:
        """The object's bytes as a stream; None when there is no such object. An object larger
        than ``limit`` is an IntegrityError: refused from its size before a byte of it is read
        (the GET's headers), and cut off while streaming should the server send more."""
        try:
            result = self._obs.get(self.store, key)
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._error(key, exc) from None
        size = int(result.meta["size"])
        if size > limit:
            raise self._too_large(key, size, limit)
        return self._chunks(key, result, limit)

    def _too_large(self, key: str, size: int, limit: int) -> IntegrityError:
        return IntegrityError(
            f"snapshot {self.url}: {key} is {size} bytes, more than the {limit} it may be",
            hint="the object was replaced or corrupted: run `envlock push` again",
        )

    def _chunks(self, key: str, result: Any, limit: int) -> Iterator[bytes]:
        got = 0
        try:
            for chunk in result.stream(min_chunk_size=_CHUNK):
                got += len(chunk)
                if got > limit:
                    raise self._too_large(key, got, limit)
                yield bytes(chunk)
        except IntegrityError:
            raise
        except Exception as exc:
            raise self._error(key, exc) from None

    def read_bytes(self, key: str, limit: int) -> bytes | None:
        """A small object (a manifest), whole; at most ``limit`` bytes."""
        chunks = self.read(key, limit)
        return None if chunks is None else b"".join(chunks)

    def list(self, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of the objects under ``prefix``."""
        try:
            return [
                (str(m["path"]), int(m["size"]))
                for batch in self._obs.list(self.store, prefix.rstrip("/"))
                for m in batch
            ]
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise self._error(prefix, exc) from None

    def sign(self, key: str, seconds: int) -> str:
        """A pre-signed GET URL of ``key`` (S3, GCS, Azure)."""
        from datetime import timedelta

        if self.url.startswith("file://"):
            raise UsageError(
                f"snapshot {self.url}: a file:// snapshot has no pre-signed URLs",
                hint=f"machines that mount it read {self.url.rstrip('/')}/{key} directly",
            )
        try:
            return str(self._obs.sign(self.store, "GET", key, timedelta(seconds=seconds)))
        except Exception as exc:
            raise UsageError(
                f"snapshot {self.url}: cannot pre-sign a URL: {_masked(str(exc))}",
                hint="pre-signed URLs need s3://, gs:// or az:// with credentials",
            ) from None


def open_snapshot(
    option: str | None,
    spec_value: str | None,
    warn: Callable[[str], None] = lambda message: None,
) -> RemoteStore:
    """The snapshot a command uses: ``--snapshot``, ``ENVLOCK_SNAPSHOT_URL`` or the spec's."""
    url = snapshot_url(option, spec_value)
    if not url:
        raise UsageError(
            "no snapshot to use",
            hint=f"pass --snapshot URL, set {SNAPSHOT_ENV}, or add snapshot = "
            '"s3://bucket/prefix" to envlock.toml',
        )
    where = "--snapshot" if option else (SNAPSHOT_ENV if os.environ.get(SNAPSHOT_ENV) else "spec")
    remote = RemoteStore(check_url(url, where))
    if remote.notice:
        warn(remote.notice)
    return remote
