"""URL helpers with no dependencies: the one place credentials are taken out of a URL, or out of
any text that may hold one (every error message and warning goes through :func:`redact_text`)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# A URL inside free text: a scheme, "://", then everything up to white space or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")


def _userinfo_end(url: str, start: int) -> int:
    """Index of the ``@`` that ends the ``user:password`` part of ``url`` (whose authority starts
    at ``start``), or -1. A password may hold ``/``, ``?`` or ``#`` (``https://u:p/ss#w?rd@h/``):
    urlsplit would read those as the path, so the authority is found by hand, erring towards
    hiding too much rather than too little."""
    first_slash = len(url)
    for sep in "/?#":
        found = url.find(sep, start)
        if found != -1:
            first_slash = min(first_slash, found)
    at = url.rfind("@", start, first_slash)
    if at != -1:
        return at  # the ordinary case: user[:password]@host
    at = url.rfind("@", start)
    if at == -1:
        return -1
    # "@" only after a "/", "?" or "#": a path (git+https://host/repo@v1.0) unless what comes
    # first reads as "user:secret" (and not "host:port").
    colon = url.find(":", start, first_slash)
    if colon == -1 or url[colon + 1 : first_slash].isdigit():
        return -1
    return at


def redact(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    scheme_end = url.find("://")
    if scheme_end == -1:
        return url
    start = scheme_end + 3
    at = _userinfo_end(url, start)
    return url if at == -1 else url[:start] + url[at + 1 :]


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it taken out."""
    if "@" not in text or "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)


def host_of(url: str) -> str:
    """``host`` or ``host:port`` of a URL, lower-cased, without credentials."""
    parts = urlsplit(redact(url))
    return (parts.hostname or "").lower() + (f":{parts.port}" if parts.port else "")
