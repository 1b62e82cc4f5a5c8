"""The one error hierarchy: every expected failure is one line (plus a hint) and an exit code.

::

    EnvlockError                 exit 1   base: ``str(err)`` is the one-line message
    ├── UsageError               exit 2   the command was called wrongly
    │   └── SpecError            exit 2   envlock.toml (or a flag's value) is invalid
    ├── ResolutionError          exit 1   no set of packages satisfies the spec for a target
    ├── StaleLockError           exit 1   a lock is stale, or no longer matches its index
    │   └── MissingLockError     exit 1   an environment has no lock yet (one message everywhere)
    ├── MissingArtifactsError    exit 1   the cache lacks what an offline build needs
    ├── BuildError               exit 1   a locked sdist could not be built into a wheel
    ├── CacheBusyError           exit 1   a cache lock stayed taken longer than ENVLOCK_LOCK_TIMEOUT
    ├── PolicyError              exit 1   a lock (or what lock resolved) breaks the [policy]
    ├── NetworkError             exit 3   an index or file host is unreachable or answered an error
    │   ├── IndexPageError       exit 3   an index answered with something that is not a valid page
    │   └── InsecureTransport    exit 3   plain HTTP to a non-loopback host, or an HTTPS downgrade
    └── IntegrityError           exit 4   bytes differ from what they were promised (hash, size,
                                          metadata), or a wheel is unsafe to install

The CLI catches ``EnvlockError`` in one place (``envlock.cli.app.main``), prints ``error: …`` and
the hint, and exits with ``exit_code``; anything else is reported as an internal error (exit 70).
Every message and hint is stripped of URL credentials when the error is made, wherever it is
raised or shown.
"""

from __future__ import annotations

from envlock._urls import redact_text

EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70


class EnvlockError(Exception):
    """Base class: ``str(err)`` is the one-line message, ``hint`` an optional next step."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        message = redact_text(message)
        super().__init__(message)
        self.message = message
        self.hint = None if hint is None else redact_text(hint)

    def __str__(self) -> str:
        return self.message


class UsageError(EnvlockError):
    """The command was called wrongly."""

    exit_code = 2


class SpecError(UsageError):
    """The spec (or a command-line value) is invalid."""


class ResolutionError(EnvlockError):
    """No set of packages satisfies the requirements for a target."""


class StaleLockError(EnvlockError):
    """The lock is missing, does not match the spec, or no longer matches its index."""


class MissingLockError(StaleLockError):
    """An environment has no lock file yet: one message and exit code for every command."""

    def __init__(self, path: object, label: str) -> None:
        super().__init__(
            f"{path} does not exist: environment '{label}' is not locked yet",
            hint="run `envlock lock` to write it (and commit it)",
        )


class MissingArtifactsError(EnvlockError):
    """The cache lacks artifacts the environment needs (run ``envlock fetch``)."""


class BuildError(EnvlockError):
    """A locked sdist could not be turned into a wheel for a target."""


class CacheBusyError(EnvlockError):
    """Another process held a cache lock longer than ``ENVLOCK_LOCK_TIMEOUT`` allows."""


class PolicyError(EnvlockError):
    """A lock, or what ``lock`` resolved, breaks the spec's ``[policy]``."""


class NetworkError(EnvlockError):
    """The index could not be reached or answered with an error."""

    exit_code = 3


class IndexPageError(NetworkError):
    """An index answered with a page that is malformed or speaks an unsupported API version."""


class InsecureTransport(NetworkError):
    """A request would go over plain HTTP to a host not trusted for it, or downgrade HTTPS."""


class IntegrityError(EnvlockError):
    """Bytes differ from what they were promised (hash, size, metadata), or a wheel is unsafe."""

    exit_code = 4


class CommandError(EnvlockError):
    """The command could not be started (a shell's 127 for not found, 126 otherwise)."""

    def __init__(self, message: str, exit_code: int, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code
