"""The one error hierarchy: every expected failure carries an exit code and a one-line message."""

from __future__ import annotations


class EnvlockError(Exception):
    """Base class: ``str(err)`` is the one-line message, ``hint`` an optional next step."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class SpecError(EnvlockError):
    """The spec (or a command-line value) is invalid."""

    exit_code = 2


class UsageError(EnvlockError):
    """The command was called wrongly."""

    exit_code = 2


class ResolutionError(EnvlockError):
    """No set of packages satisfies the requirements for a target."""

    exit_code = 1


class StaleLockError(EnvlockError):
    """The lock is missing or does not match the spec."""

    exit_code = 1


class NetworkError(EnvlockError):
    """The index could not be reached or answered with an error."""

    exit_code = 3


class IntegrityError(EnvlockError):
    """A downloaded file does not match the hash it was promised to have."""

    exit_code = 3
