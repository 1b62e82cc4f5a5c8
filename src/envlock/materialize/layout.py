"""Where things go in an environment of a given platform (the venv install scheme)."""

from __future__ import annotations

from dataclasses import dataclass

from envlock.platforms import Target


@dataclass(frozen=True)
class Layout:
    """Relative paths of an environment for one target platform: a virtual environment, or
    (``bundled``) the tree of the environment's own interpreter, which has the same paths."""

    windows: bool
    python_version: str  # "3.11"
    bundled: bool = False  # the interpreter is in the environment itself, not named by pyvenv.cfg

    @classmethod
    def for_target(cls, target: Target, *, bundled: bool = False) -> Layout:
        return cls(target.platform_info.windows, target.python_version, bundled)

    @property
    def site_packages(self) -> str:
        if self.windows:
            return "Lib/site-packages"
        return f"lib/python{self.python_version}/site-packages"

    @property
    def scripts(self) -> str:
        return "Scripts" if self.windows else "bin"

    @property
    def windows_python(self) -> str:
        """The interpreter as a launcher in ``Scripts`` names it: ``%~dp0`` + this."""
        return "..\\python.exe" if self.bundled else "python.exe"

    def headers(self, project: str) -> str:
        root = "Include" if self.windows else "include"
        return f"{root}/site/python{self.python_version}/{project}"

    def scheme(self, key: str, project: str) -> str | None:
        """Directory of a ``.data/<key>/`` subtree (wheel spec), None for an unknown key."""
        return {
            "purelib": self.site_packages,
            "platlib": self.site_packages,
            "scripts": self.scripts,
            "headers": self.headers(project),
            "data": "",
        }.get(key)
