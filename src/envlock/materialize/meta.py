"""``envlock.json``: what an environment was built from, written by materialize and read by
``verify``, the ``--force`` rules and the up-to-date check (one format, one module)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from envlock.errors import UsageError

ENV_META = "envlock.json"
# A bundled environment's interpreter files (path, hash, size; links as ``symlink=<target>``),
# in RECORD's CSV form, so ``verify`` checks them like a package's files.
INTERPRETER_RECORD = "envlock-interpreter.RECORD"


@dataclass(frozen=True)
class EnvMeta:
    envlock: str
    lock: str  # file name of the lock, beside the spec
    lock_sha256: str
    environment: str
    platform: str
    python: str
    base_python: str  # "" for a bundled interpreter
    packages: Mapping[str, str] = field(default_factory=dict)
    compiled: bool = False
    # A bundled interpreter: its version, build, archive name and sha256 (empty for a venv).
    interpreter: Mapping[str, str] = field(default_factory=dict)

    @property
    def bundled(self) -> bool:
        return bool(self.interpreter)

    def to_json(self) -> str:
        data = {k.replace("_", "-"): v for k, v in asdict(self).items()}
        data["packages"] = dict(sorted(self.packages.items()))
        # Each mode records only its own interpreter (a venv's envlock.json is as before).
        if self.interpreter:
            data["interpreter"] = dict(sorted(self.interpreter.items()))
            if not self.base_python:
                del data["base-python"]
        else:
            del data["interpreter"]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> EnvMeta:
        """Raises ValueError for anything that is not an envlock.json this version reads."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        packages = data.get("packages", {})
        if not isinstance(packages, dict):
            raise ValueError("packages is not a table")
        interpreter = data.get("interpreter", {})
        if not isinstance(interpreter, dict):
            raise ValueError("interpreter is not a table")

        def text_of(key: str) -> str:
            value = data.get(key, "")
            if not isinstance(value, str):
                raise ValueError(f"{key} is not a string")
            return value

        return cls(
            envlock=text_of("envlock"),
            lock=text_of("lock"),
            lock_sha256=text_of("lock-sha256"),
            environment=text_of("environment"),
            platform=text_of("platform"),
            python=text_of("python"),
            base_python=text_of("base-python"),
            packages={str(k): str(v) for k, v in packages.items()},
            compiled=bool(data.get("compiled", False)),
            interpreter={str(k): str(v) for k, v in interpreter.items()},
        )


def is_environment(directory: Path) -> bool:
    """Whether ``directory`` holds an environment envlock made (a readable envlock.json)."""
    try:
        EnvMeta.from_json((directory / ENV_META).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return True


def read_meta(directory: Path) -> EnvMeta:
    try:
        return EnvMeta.from_json((directory / ENV_META).read_text("utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{directory} is not an envlock environment (no {ENV_META})") from None
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"{directory / ENV_META}: not a valid environment record ({exc})"
        ) from None
