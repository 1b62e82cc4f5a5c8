"""TOML reading: tomli, whose compiled (mypyc) wheels parse a lock about 2.5x faster than the
standard library's pure-Python tomllib (``lock --check`` runs on every commit)."""

from __future__ import annotations

import tomli as tomllib

__all__ = ["tomllib"]
