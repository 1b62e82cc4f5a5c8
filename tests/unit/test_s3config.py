"""The AWS_* environment checked before obstore reads it (``envlock.snapshot.s3config``)."""

from __future__ import annotations

import pytest

from envlock.errors import UsageError
from envlock.snapshot.s3config import check_s3_environment

URL = "s3://bucket/team"


def test_plain_http_endpoint_needs_allow_http(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    with pytest.raises(UsageError) as err:
        check_s3_environment(URL)
    assert str(err.value) == (
        f"snapshot {URL}: the endpoint http://127.0.0.1:9000 is plain http; set "
        "AWS_ALLOW_HTTP=true to allow it"
    )
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    assert check_s3_environment(URL) is None


@pytest.mark.parametrize("value", ["", "maybe"])
def test_a_boolean_that_is_not_one_is_named(monkeypatch, value):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_ALLOW_HTTP", value)
    with pytest.raises(
        UsageError, match=f"^AWS_ALLOW_HTTP must be true or false \\(it is '{value}'\\)$"
    ):
        check_s3_environment(URL)


def test_without_credentials_it_warns_of_the_metadata_service_or_refuses(monkeypatch):
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    note = check_s3_environment(URL)
    assert note is not None and "169.254.169.254" in note and "AWS_EC2_METADATA_DISABLED" in note
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(UsageError, match="no AWS credentials are set"):
        check_s3_environment(URL)
    for var, value in (("AWS_SKIP_SIGNATURE", "true"), ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")):
        monkeypatch.setenv(var, value)
        assert check_s3_environment(URL) is None
        monkeypatch.delenv(var)
