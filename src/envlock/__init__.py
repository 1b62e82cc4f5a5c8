"""envlock: reproducible, auditable, relocatable Python environments."""

__version__ = "0.1.0"
