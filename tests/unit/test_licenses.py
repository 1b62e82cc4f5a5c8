"""Licenses from metadata, and the allowed-licenses rule (pure)."""

from __future__ import annotations

import pytest

from envlock.licenses import allowed, from_metadata, spdx


@pytest.mark.parametrize(
    ("expression", "text", "classifiers", "expected"),
    [
        ("mit", None, (), "MIT"),
        ("MIT OR Apache-2.0", "whatever", (), "MIT OR Apache-2.0"),
        (None, "MIT", (), "MIT"),
        (None, "Apache License, Version 2.0", (), "Apache-2.0"),
        (None, "BSD-3-Clause", ("License :: OSI Approved :: MIT License",), "BSD-3-Clause"),
        # The License field holds the whole license text: the classifier names it.
        (
            None,
            "Copyright (c) 2020 X\n\nPermission is hereby granted",
            ("License :: OSI Approved :: MIT License",),
            "MIT",
        ),
        (
            None,
            None,
            (
                "License :: OSI Approved :: MIT License",
                "License :: OSI Approved :: Apache Software License",
            ),
            "Apache-2.0 OR MIT",
        ),
        # "BSD License" does not say which BSD: kept as said, never guessed.
        (None, None, ("License :: OSI Approved :: BSD License",), "BSD License"),
        (None, "Copyright 2020 Y\nAll rights reserved", (), "Copyright 2020 Y"),
        (None, None, ("Programming Language :: Python",), None),
        (None, None, (), None),
        ("not an expression (", None, (), "not an expression ("),
    ],
)
def test_from_metadata(expression, text, classifiers, expected):
    assert from_metadata(expression, text, classifiers) == expected


def test_raw_text_is_cut_to_one_short_line():
    found = from_metadata(None, "x" * 1000 + "\nmore", ())
    assert found is not None and len(found) == 200 and "\n" not in found


@pytest.mark.parametrize(
    ("expression", "permitted", "expected"),
    [
        ("MIT", ["MIT"], True),
        ("mit", ["MIT"], True),
        ("GPL-3.0-only", ["MIT"], False),
        ("MIT OR GPL-3.0-only", ["MIT"], True),
        ("MIT AND GPL-3.0-only", ["MIT"], False),
        ("MIT AND (Apache-2.0 OR GPL-3.0-only)", ["MIT", "Apache-2.0"], True),
        ("(MIT OR GPL-3.0-only) AND BSD-3-Clause", ["MIT"], False),
        ("GPL-2.0-only WITH Classpath-exception-2.0", ["GPL-2.0-only"], True),
        (
            "GPL-2.0-only WITH Classpath-exception-2.0",
            ["GPL-2.0-only WITH Classpath-exception-2.0"],
            True,
        ),
        ("GPL-2.0-only WITH Classpath-exception-2.0", ["MIT"], False),
        ("LicenseRef-Proprietary", ["MIT"], False),
        ("BSD License", ["BSD-3-Clause"], None),
        (None, ["MIT"], None),
    ],
)
def test_allowed(expression, permitted, expected):
    assert allowed(expression, permitted) is expected


def test_spdx_refuses_multiline_and_huge_text():
    assert spdx("MIT\nMIT") is None
    assert spdx("MIT OR " * 100 + "MIT") is None
    assert spdx("") is None
