"""A package's license as an SPDX expression, and whether a policy's list allows it. Pure.

Metadata says it three ways: ``License-Expression`` (PEP 639, SPDX already), a free-text
``License`` field, and ``License ::`` trove classifiers. :func:`from_metadata` takes the first that
names a license unambiguously and falls back to the raw text (reported, never guessed at): a
classifier such as "BSD License" does not say which BSD, so it is not turned into one.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

# Longer free text is a license's body, not its name: kept as its first line, this long at most.
MAX_TEXT = 200

_CLASSIFIERS = {
    "MIT License": "MIT",
    "MIT No Attribution License (MIT-0)": "MIT-0",
    "Apache Software License": "Apache-2.0",
    "ISC License (ISCL)": "ISC",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "Python Software Foundation License": "PSF-2.0",
    "The Unlicense (Unlicense)": "Unlicense",
    "zlib/libpng License": "Zlib",
    "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "Universal Permissive License (UPL)": "UPL-1.0",
    "Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}

# Common spellings of the License field that are not SPDX but name exactly one license.
_ALIASES = {
    "mit license": "MIT",
    "the mit license": "MIT",
    "apache 2.0": "Apache-2.0",
    "apache 2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license 2.0": "Apache-2.0",
    "bsd 3-clause": "BSD-3-Clause",
    "3-clause bsd": "BSD-3-Clause",
    "new bsd": "BSD-3-Clause",
    "bsd 2-clause": "BSD-2-Clause",
    "2-clause bsd": "BSD-2-Clause",
    "simplified bsd": "BSD-2-Clause",
    "mpl 2.0": "MPL-2.0",
    "mpl-2.0": "MPL-2.0",
    "psf": "PSF-2.0",
    "psf license": "PSF-2.0",
    "isc license": "ISC",
    "lgplv3+": "LGPL-3.0-or-later",
    "gplv3+": "GPL-3.0-or-later",
    "gplv2+": "GPL-2.0-or-later",
}


def spdx(text: str) -> str | None:
    """``text`` as a canonical SPDX expression, or None if it is not one."""
    text = text.strip()
    if not text or "\n" in text or len(text) > MAX_TEXT:
        return None
    try:
        return str(canonicalize_license_expression(text))
    except InvalidLicenseExpression:
        alias = _ALIASES.get(text.lower().rstrip("."))
        return alias


def from_metadata(
    expression: str | None, text: str | None, classifiers: Sequence[str] = ()
) -> str | None:
    """The license a package's metadata declares: an SPDX expression when it names one
    unambiguously, else the License text's first line, else None (unknown)."""
    if expression:
        found = spdx(expression)
        if found is not None:
            return found
    if text:
        found = spdx(text)
        if found is not None:
            return found
    named = [c.split(" :: ")[-1] for c in classifiers if c.startswith("License :: ")]
    mapped = [_CLASSIFIERS.get(n) for n in named]
    if named and all(mapped):
        # Several license classifiers mean "any of these" (a dual-licensed project).
        return " OR ".join(sorted({m for m in mapped if m}))
    for raw in (expression, text):
        first = (raw or "").strip().splitlines()[0].strip() if (raw or "").strip() else ""
        if first:
            return first[:MAX_TEXT]
    if named:
        return " OR ".join(sorted(set(named)))[:MAX_TEXT]
    return None


_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def allowed(expression: str | None, permitted: Collection[str]) -> bool | None:
    """Whether an SPDX ``expression`` is allowed by a list of SPDX ids: ``A OR B`` needs one of
    them, ``A AND B`` both, ``A WITH exception`` A (an exception only adds permissions) unless the
    list names the whole ``A WITH exception``. None when the license is unknown (no expression,
    or text that is not SPDX)."""
    if expression is None:
        return None
    canonical = spdx(expression)
    if canonical is None:
        return None
    ids = {i.lower() for i in permitted}
    tokens = _TOKEN.findall(canonical)
    pos = 0

    def parse_or() -> bool:
        nonlocal pos
        value = parse_and()
        while pos < len(tokens) and tokens[pos] == "OR":
            pos += 1
            right = parse_and()
            value = value or right
        return value

    def parse_and() -> bool:
        nonlocal pos
        value = parse_atom()
        while pos < len(tokens) and tokens[pos] == "AND":
            pos += 1
            right = parse_atom()
            value = value and right
        return value

    def parse_atom() -> bool:
        nonlocal pos
        token = tokens[pos]
        pos += 1
        if token == "(":
            value = parse_or()
            pos += 1  # ")": the expression was validated by canonicalisation
            return value
        if pos < len(tokens) and tokens[pos] == "WITH":
            exception = tokens[pos + 1]
            pos += 2
            return token.lower() in ids or f"{token} WITH {exception}".lower() in ids
        return token.lower() in ids

    return parse_or()
