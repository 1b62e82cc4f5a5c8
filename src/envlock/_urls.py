"""URL helpers with no dependencies: the one place credentials are taken out of a URL, or out of
any text that may hold one (every error message and warning goes through :func:`redact_text`)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# A URL inside free text: a scheme, "://", then everything up to white space or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")

# A real host as the authority of a URL whose path holds an '@' (Azure Artifacts' `feed@view`,
# git+https://host/repo@v1.0): a dotted name, localhost, or an IP literal, with an optional port.
_PLAIN_HOST = re.compile(
    r"(localhost|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\.?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?"
)


def _userinfo_end(url: str, start: int) -> int:
    """Index of the ``@`` that ends the ``user:password`` part of ``url`` (whose authority starts
    at ``start``), or -1.

    Lenient as a URL typed by a human must be read: a password may hold unencoded ``/``, ``?``,
    ``#`` or ``@``, which a strict split would leave in the path, query or fragment (and so in
    whatever the URL is written to). When the authority a strict split finds holds no ``@`` but
    the rest does, the URL is taken as ``host/path@...`` only if that authority is a plain host;
    otherwise everything up to the last ``@`` goes: a wrong host is visible, a leak is not.
    """
    match = re.compile(r"[/?#]").search(url, start)
    authority_end = match.start() if match else len(url)
    at = url.rfind("@", start, authority_end)
    if at != -1:
        return at  # the ordinary case: user[:password]@host
    at = url.rfind("@", authority_end)
    if at == -1:
        return -1
    authority = url[start:authority_end]
    if not authority or _PLAIN_HOST.fullmatch(authority):  # file:///path@x has no userinfo
        return -1
    return at


def strip_userinfo(url: str) -> tuple[str, bool]:
    """``url`` without its ``user:password@`` part, and whether it had one."""
    scheme_end = url.find("://")
    if scheme_end == -1:
        return url, False
    start = scheme_end + 3
    at = _userinfo_end(url, start)
    return (url, False) if at == -1 else (url[:start] + url[at + 1 :], True)


def redact(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    return strip_userinfo(url)[0]


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it taken out."""
    if "@" not in text or "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)


def host_of(url: str) -> str:
    """``host`` or ``host:port`` of a URL, lower-cased, without credentials."""
    parts = urlsplit(redact(url))
    return (parts.hostname or "").lower() + (f":{parts.port}" if parts.port else "")
