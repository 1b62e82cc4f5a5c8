"""What envlock checks of the ``AWS_*`` environment before obstore reads it for an ``s3://``
snapshot, so that a mistake is one line in envlock's words (not "builder error"), and so that a
machine without credentials says so before obstore asks the cloud's instance metadata service.

obstore (object_store) has no switch to turn the instance-metadata lookup off: envlock honours
the AWS SDKs' ``AWS_EC2_METADATA_DISABLED=true`` by refusing to open an ``s3://`` snapshot that
has no other credential source, and otherwise warns that the lookup will happen.
"""

from __future__ import annotations

import os

from envlock.errors import UsageError

__all__ = ["check_s3_environment", "credentials_hint"]

# object_store's boolean syntax (config.rs): anything else is "failed to parse ... as boolean".
_TRUE = frozenset({"1", "true", "on", "yes", "y"})
_FALSE = frozenset({"0", "false", "off", "no", "n"})
_BOOLEANS = ("AWS_ALLOW_HTTP", "AWS_SKIP_SIGNATURE", "AWS_EC2_METADATA_DISABLED")
_ENDPOINTS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT")  # object_store reads both
# Where object_store finds credentials before it falls back to the instance metadata service.
_CREDENTIALS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
_SET_KEYS = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"


def _flag(name: str) -> bool | None:
    """An ``AWS_*`` boolean as object_store reads it; None when unset."""
    value = os.environ.get(name)
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise UsageError(f"{name} must be true or false (it is {value[:20]!r})")


def check_s3_environment(url: str) -> str | None:
    """Refuse an ``AWS_*`` environment obstore would reject or misuse for ``url``; a warning
    to show when it will ask the instance metadata service for credentials, else None."""
    flags = {name: _flag(name) for name in _BOOLEANS}
    endpoint = next((os.environ[v] for v in _ENDPOINTS if os.environ.get(v)), "")
    if endpoint.lower().startswith("http://") and not flags["AWS_ALLOW_HTTP"]:
        from envlock._urls import redact

        raise UsageError(
            f"snapshot {url}: the endpoint {redact(endpoint)} is plain http; set "
            "AWS_ALLOW_HTTP=true to allow it"
        )
    if flags["AWS_SKIP_SIGNATURE"] or any(os.environ.get(v) for v in _CREDENTIALS):
        return None
    if flags["AWS_EC2_METADATA_DISABLED"]:
        raise UsageError(
            f"snapshot {url}: no AWS credentials are set, and AWS_EC2_METADATA_DISABLED forbids "
            "asking the instance metadata service for them",
            hint=f"{_SET_KEYS}, or AWS_SKIP_SIGNATURE=true for a public bucket",
        )
    return (
        f"snapshot {url}: no AWS credentials are set, so the instance metadata service "
        "(169.254.169.254) is asked for an instance role; set AWS_EC2_METADATA_DISABLED=true to "
        f"never ask ({_SET_KEYS}, or AWS_SKIP_SIGNATURE=true for a public bucket)"
    )


def credentials_hint(url: str) -> str:
    """Which variables hold the credentials of the store ``url`` names."""
    if url.startswith(("s3://", "s3a://")):
        return "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    if url.startswith("gs://"):
        return "check GOOGLE_SERVICE_ACCOUNT/GOOGLE_APPLICATION_CREDENTIALS"
    return "check AZURE_STORAGE_ACCOUNT_NAME/AZURE_STORAGE_ACCOUNT_KEY"
