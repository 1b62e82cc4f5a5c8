"""Credentials out of URLs and out of any text holding one (every error and warning)."""

from __future__ import annotations

import pytest

from envlock._urls import host_of, redact, redact_text
from envlock.errors import EnvlockError, SpecError


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://user:pw@host/simple/", "https://host/simple/"),
        ("https://user:p/ss#w?rd@host/", "https://host/"),
        ("https://user:p@ss@host:8443/x", "https://host:8443/x"),
        ("https://token@host/x", "https://host/x"),
        ("https://tok/en@host/x", "https://host/x"),
        ("ftp://user:tok3n@mirror.example/python", "ftp://mirror.example/python"),
        ("s3://key:secret@bucket/prefix", "s3://bucket/prefix"),
        # No credentials: unchanged, an "@" in a path included.
        ("https://host/simple/", "https://host/simple/"),
        ("git+https://github.com/org/repo@v1.0", "git+https://github.com/org/repo@v1.0"),
        ("https://pkgs.example:8080/path@rev", "https://pkgs.example:8080/path@rev"),
        ("not a url", "not a url"),
    ],
)
def test_redact_takes_out_user_and_password(url: str, clean: str) -> None:
    assert redact(url) == clean


def test_host_of_never_mistakes_a_password_for_the_host() -> None:
    assert host_of("https://user:p/ss#w?rd@files.example:8443/x") == "files.example:8443"


def test_redact_text_cleans_every_url_in_a_message() -> None:
    text = (
        "not a snapshot URL: 'ftp://user:p/ss#w?rd@host/x' (tried https://a:b@c.example/d, "
        'and "s3://k:s3kr1t@bucket/p")'
    )
    out = redact_text(text)
    assert out == (
        "not a snapshot URL: 'ftp://host/x' (tried https://c.example/d, and \"s3://bucket/p\")"
    )


def test_every_error_message_and_hint_is_redacted_when_made() -> None:
    err = SpecError("bad mirror 'ftp://user:tok3n@m/x'", hint="or https://u:tok3n@h/")
    assert "tok3n" not in str(err) and "tok3n" not in (err.hint or "")
    assert str(err) == "bad mirror 'ftp://m/x'" and err.hint == "or https://h/"
    assert EnvlockError("plain text").message == "plain text"
