"""What may go over the wire: secure hosts, settings from the environment, Retry-After, and
what a file:// URL may be."""

from __future__ import annotations

import email.utils
import os
import time
from pathlib import Path

import httpx
import pytest

from envlock.errors import InsecureTransport, NetworkError, UsageError
from envlock.index.client import _retry_after
from envlock.index.local import file_response
from envlock.index.transport import HttpSettings, SecurityPolicy, is_loopback


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://pypi.org/simple/", True),
        ("http://127.0.0.1:8080/simple/", True),
        ("http://127.1.2.3/simple/", True),
        ("http://[::1]:8000/simple/", True),
        ("http://localhost/simple/", True),
        ("http://LOCALHOST:3141/simple/", True),
        ("file:///srv/simple/", True),
        ("file://localhost/srv/simple/", True),
        ("http://pypi.org/simple/", False),
        ("http://10.0.0.5/simple/", False),
        ("http://localhost.evil.example/simple/", False),
        ("http://127.0.0.1.nip.io/simple/", False),
        ("file://fileserver/share/simple/", False),
        ("ftp://mirror/simple/", False),
    ],
)
def test_plain_transport_is_allowed_only_to_loopback(url: str, allowed: bool) -> None:
    assert SecurityPolicy().allows(url) is allowed


def test_named_hosts_may_be_spoken_to_in_the_clear() -> None:
    policy = SecurityPolicy(["Mirror.LAN", "10.0.0.5:8080"])
    assert policy.allows("http://mirror.lan/simple/")
    assert policy.allows("http://10.0.0.5:8080/simple/")
    assert not policy.allows("http://10.0.0.5:9090/simple/")  # another port of a named host:port
    assert not policy.allows("http://other.lan/simple/")


def test_refusal_says_how_to_opt_in_and_hides_credentials() -> None:
    with pytest.raises(InsecureTransport) as info:
        SecurityPolicy().check("http://user:s3cret@mirror.lan/simple/")
    assert "s3cret" not in str(info.value)
    assert info.value.exit_code == 3
    assert info.value.hint is not None and 'insecure-hosts = ["mirror.lan"]' in info.value.hint


def test_https_to_http_redirect_is_refused() -> None:
    request = httpx.Request("GET", "https://pkgs.example.com/simple/a/")
    response = httpx.Response(
        302, headers={"Location": "http://pkgs.example.com/simple/a/"}, request=request
    )
    with pytest.raises(InsecureTransport, match="refusing a redirect from HTTPS to http"):
        SecurityPolicy(["pkgs.example.com"]).on_response(response)
    same = httpx.Response(302, headers={"Location": "/simple/b/"}, request=request)
    SecurityPolicy().on_response(same)  # staying on https is fine


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVLOCK_HTTP_DEADLINE", "12.5")
    monkeypatch.setenv("ENVLOCK_RETRY_AFTER_MAX", "0")
    monkeypatch.setenv("ENVLOCK_HTTP_RETRIES", "2")
    settings = HttpSettings.from_env()
    assert (settings.deadline, settings.retry_after_max, settings.retries) == (12.5, 0, 2)
    assert settings.deadline_for(64 * 1024 * 10) == 22.5
    assert HttpSettings().deadline_for(None) == 300


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("ENVLOCK_HTTP_DEADLINE", "0"),
        ("ENVLOCK_HTTP_DEADLINE", "nan"),
        ("ENVLOCK_HTTP_TIMEOUT", "inf"),
        ("ENVLOCK_HTTP_RETRIES", "1.5"),
        ("ENVLOCK_RETRY_AFTER_MAX", "-3"),
    ],
)
def test_bad_settings_are_usage_errors(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(UsageError, match=var):
        HttpSettings.from_env()


def test_retry_after_in_seconds_or_as_a_date() -> None:
    def response(value: str) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": value})

    assert _retry_after(response("120")) == 120
    later = email.utils.formatdate(time.time() + 90, usegmt=True)
    wait = _retry_after(response(later))
    assert wait is not None and 85 <= wait <= 91
    assert _retry_after(response("soon")) is None
    assert _retry_after(httpx.Response(503)) is None


# -- file:// URLs --------------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_file_response_refuses_what_is_not_a_regular_file_without_blocking(kind, tmp_path):
    path = tmp_path / "x.whl"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path = Path("/dev/zero")
    with pytest.raises(NetworkError, match="not a regular file"):
        file_response(path.as_uri())


def test_file_response_streams_and_stops_at_the_size_seen_at_open(tmp_path):
    path = tmp_path / "a.whl"
    path.write_bytes(b"x" * 10)
    response = file_response(path.as_uri())
    assert response.headers["content-length"] == "10"
    with path.open("ab") as f:
        f.write(b"grown")  # after the open: not served
    assert b"".join(response.iter_bytes()) == b"x" * 10
    response.close()
    assert file_response((tmp_path / "missing.whl").as_uri()).status_code == 404
    (tmp_path / "simple").mkdir()
    (tmp_path / "simple" / "index.html").write_text("<html></html>")
    page = file_response((tmp_path / "simple").as_uri() + "/")
    assert page.read() == b"<html></html>" and page.headers["content-type"] == "text/html"
