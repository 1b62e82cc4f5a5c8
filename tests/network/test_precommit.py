"""The pre-commit hooks of ``.pre-commit-hooks.yaml``, for real: ``pre-commit try-repo`` installs
envlock from this checkout into its own hook environment (from PyPI: marked ``network``) and
runs the hooks in a throwaway git repository holding a spec and a lock made against PyPI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.helpers import Result, envlock

pytestmark = pytest.mark.network

CHECKOUT = Path(__file__).resolve().parents[2]
PRE_COMMIT = [sys.executable, "-m", "pre_commit"]
SPEC = 'python = "3.11"\ninterpreter = "system"\nplatforms = ["linux-64"]\n'


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=x", "-c", "user.email=x@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture(scope="module")
def hooks_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the hooks repository, PRE_COMMIT_HOME) shared by the module, so envlock is installed
    into pre-commit's hook environment once.

    ``try-repo`` of a checkout with changes commits only tracked files: this snapshot holds
    exactly what a commit of the working tree would (tracked and new files, not ignored ones)."""
    repo = tmp_path_factory.mktemp("envlock-hooks")
    listed = _git(CHECKOUT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        source = CHECKOUT / name
        if source.is_file():  # a tracked file deleted in the working tree is not committed
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "snapshot")
    yield repo, tmp_path_factory.mktemp("pre-commit-home")


def _project(tmp_path: Path, dependencies: str) -> Path:
    """A git repository with a spec and its lock (made against PyPI), committed."""
    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "-q")
    (project / "envlock.toml").write_text(SPEC + f"dependencies = {dependencies}\n")
    made = envlock(project, "lock")
    assert made.code == 0, made.stderr
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "lock")
    return project


def _try_repo(project: Path, hooks: tuple[Path, Path], hook: str) -> Result:
    repo, home = hooks
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        # The hook's own environment must not see this venv's envlock: it gets its own.
        "PYTHONPATH": "",
        "NO_COLOR": "1",
    }
    proc = subprocess.run(
        [*PRE_COMMIT, "try-repo", str(repo), hook, "--all-files", "--verbose"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def test_hooks_file_names_both_hooks_for_spec_and_lock_files() -> None:
    import re

    import yaml

    hooks = {h["id"]: h for h in yaml.safe_load((CHECKOUT / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["envlock-check"]["entry"] == "envlock lock --check"
    assert hooks["envlock-audit"]["entry"] == "envlock audit"
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        files = re.compile(hook["files"])
        for name in ("envlock.toml", "pylock.toml", "pylock.dev.toml", "sub/dir/envlock.toml"):
            assert files.search(name), name
        for name in ("README.md", "pylock.toml.orig", "my-envlock.toml", "pyproject.toml"):
            assert not files.search(name), name


def test_envlock_check_passes_on_a_fresh_lock_and_fails_when_the_spec_changes(
    tmp_path: Path, hooks_repo: tuple[Path, Path]
) -> None:
    project = _project(tmp_path, '["six"]')
    fresh = _try_repo(project, hooks_repo, "envlock-check")
    assert fresh.code == 0, fresh.stdout + fresh.stderr
    assert "envlock lock --check" in fresh.stdout and "Passed" in fresh.stdout

    spec = project / "envlock.toml"
    spec.write_text(spec.read_text().replace('["six"]', '["six", "idna"]'))
    stale = _try_repo(project, hooks_repo, "envlock-check")
    assert stale.code == 1, stale.stdout + stale.stderr
    assert "Failed" in stale.stdout
    assert "pylock.toml is stale" in stale.stdout
    assert "run `envlock lock`" in stale.stdout


def test_envlock_audit_passes_on_a_clean_lock(
    tmp_path: Path, hooks_repo: tuple[Path, Path]
) -> None:
    project = _project(tmp_path, '["six"]')
    result = _try_repo(project, hooks_repo, "envlock-audit")
    assert result.code == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout and "six" in result.stdout


def test_envlock_audit_fails_on_a_policy_violation(
    tmp_path: Path, hooks_repo: tuple[Path, Path]
) -> None:
    project = _project(tmp_path, '["six"]')
    # A policy the existing lock breaks: audit checks the lock, it does not re-lock.
    spec = project / "envlock.toml"
    spec.write_text(spec.read_text() + '\n[policy]\ndeny = ["six"]\n')
    result = _try_repo(project, hooks_repo, "envlock-audit")
    assert result.code == 1, result.stdout + result.stderr
    assert "Failed" in result.stdout and "six" in result.stdout
