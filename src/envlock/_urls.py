"""URL helpers with no dependencies: the one place credentials are taken out of a URL."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit


def redact(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def host_of(url: str) -> str:
    """``host`` or ``host:port`` of a URL, lower-cased, without credentials."""
    parts = urlsplit(url)
    return (parts.hostname or "").lower() + (f":{parts.port}" if parts.port else "")


# A real host as the authority of a URL whose path holds an '@' (Azure Artifacts' `feed@view`):
# a dotted name, localhost, or an IP literal, without a port.
_PLAIN_HOST = re.compile(r"(localhost|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\.?|\[[0-9A-Fa-f:.]+\])")


def strip_userinfo(url: str) -> tuple[str, bool]:
    """``url`` without its ``user:password@`` part, and whether it had one.

    Lenient as a URL typed by a human must be read: a password may hold unencoded ``/``, ``?``,
    ``#`` or ``@``, which a strict split would leave in the path, query or fragment (and so in
    whatever the URL is written to). When the authority a strict split finds holds no ``@`` but
    the rest does, the URL is taken as ``host/path@...`` only if that authority is a plain host;
    otherwise everything up to the last ``@`` goes: a wrong host is visible, a leak is not.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url, False
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        return f"{scheme}://{rest[authority.rindex('@') + 1 :]}", True
    if not authority or _PLAIN_HOST.fullmatch(authority):  # file:///path@x has no userinfo
        return url, False
    return f"{scheme}://{rest[rest.rindex('@') + 1 :]}", True
