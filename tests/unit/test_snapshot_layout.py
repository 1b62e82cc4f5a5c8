"""The snapshot's key layout and manifests (a contract), and what its errors may show."""

from __future__ import annotations

import pytest

from envlock.errors import IntegrityError, UsageError
from envlock.snapshot.layout import Manifest, archive_key, artifact_key, built_prefix, manifest_key
from envlock.snapshot.remote import _masked, check_url, snapshot_url

SHA = "ab" + "c" * 62


def test_keys_are_content_addressed_and_documented() -> None:
    assert artifact_key(SHA, "x-1.0-py3-none-any.whl") == (
        f"artifacts/sha256/ab/{SHA}/x-1.0-py3-none-any.whl"
    )
    assert built_prefix(SHA) == f"built/sha256/ab/{SHA}/"
    assert archive_key(SHA, "default", "linux-64") == f"envs/{SHA}/default/linux-64.tar.gz"
    assert manifest_key(SHA, "train", "win-64") == f"envs/{SHA}/train/win-64.json"


def test_a_manifest_round_trips_and_a_bad_one_is_an_integrity_error() -> None:
    m = Manifest(SHA, 123, "d" * 64, "default", "linux-64", "0.1.0")
    assert Manifest.from_json(m.to_json(), "here") == m
    for raw in (b"", b"[]", b"{}", b'{"sha256": "x", "size": "1"}', m.to_json()[:-5]):
        with pytest.raises(IntegrityError, match="here: not a valid environment manifest"):
            Manifest.from_json(raw, "here")


def test_snapshot_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVLOCK_SNAPSHOT_URL", raising=False)
    assert snapshot_url(None, "s3://spec/x") == "s3://spec/x"
    monkeypatch.setenv("ENVLOCK_SNAPSHOT_URL", "s3://env/x")
    assert snapshot_url(None, "s3://spec/x") == "s3://env/x"
    assert snapshot_url("file:///opt/s", "s3://spec/x") == "file:///opt/s"


@pytest.mark.parametrize(
    "url", ["https://bucket/x", "bucket/prefix", "s3://AKIA:secret@bucket/x", "ftp://h/x"]
)
def test_bad_snapshot_urls_are_usage_errors_without_secrets(url: str) -> None:
    with pytest.raises(UsageError) as info:
        check_url(url, "--snapshot")
    assert "secret" not in str(info.value)


def test_error_text_never_shows_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    text = (
        "Error for http://h/b?X-Amz-Credential=AKIAEXAMPLE%2F2026&X-Amz-Signature=abcdef "
        "using s3cr3t-value\nsecond line with more"
    )
    shown = _masked(text)
    assert "s3cr3t-value" not in shown and "AKIAEXAMPLE" not in shown and "abcdef" not in shown
    assert "\n" not in shown


def test_a_file_snapshot_says_it_has_no_presigned_urls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from envlock.snapshot.remote import RemoteStore

    remote = RemoteStore((tmp_path / "snap").as_uri())
    with pytest.raises(UsageError, match="a file:// snapshot has no pre-signed URLs") as info:
        remote.sign("envs/x/default/linux-64.tar.gz", 60)
    assert "linux-64.tar.gz" in (info.value.hint or "")
