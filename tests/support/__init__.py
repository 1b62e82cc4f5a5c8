"""Test support: real wheels/sdists built at test time, served by a real local index.

Import as ``from support.wheels import Dist`` / ``from support.index import IndexServer``
(``tests/conftest.py`` puts ``tests/`` on ``sys.path``).
"""

from .index import IndexServer, Request
from .wheels import Dist, build_sdist, build_wheel, metadata_bytes

__all__ = ["Dist", "IndexServer", "Request", "build_sdist", "build_wheel", "metadata_bytes"]
