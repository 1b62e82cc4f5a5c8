"""Resolutions -> PEP 751 lock files and back; staleness checks."""
