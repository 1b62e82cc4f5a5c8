"""Projects often asked for by mistake, and the project meant (uv's list: ``sklearn`` is a stub
that refuses to install, ``dotenv`` is not python-dotenv)."""

from __future__ import annotations

from packaging.utils import canonicalize_name

CONFUSED = {
    "sklearn": "scikit-learn",
    "dotenv": "python-dotenv",
}


def confusion(name: str) -> str | None:
    """``sklearn is often confused for scikit-learn …`` when ``name`` is such a project."""
    meant = CONFUSED.get(canonicalize_name(name))
    if meant is None:
        return None
    return f"{name} is often confused for {meant}: did you mean {meant}?"
