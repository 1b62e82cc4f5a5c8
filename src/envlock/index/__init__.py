"""Talking to package indexes: pages, metadata, credentials, caching."""
