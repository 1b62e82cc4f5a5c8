"""The README's "Use in CI" snippets: every ``envlock`` command of the GitHub Actions and GitLab CI
examples runs, in order, against a project locked from the loopback index, with the OSV database
the snippets download replaced by one written by the test. The YAML itself must parse."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from integration.helpers import envlock, write_spec
from support.osv import write_osv_zip
from support.wheels import Dist

README = Path(__file__).resolve().parents[2] / "README.md"


def _snippets() -> dict[str, Any]:
    text = README.read_text()
    section = text.split("\n## Use in CI\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    found: dict[str, Any] = {}
    for block in blocks:
        first = block.splitlines()[0]
        found[first.lstrip("# ").strip()] = yaml.safe_load(block)
    return found


def _commands(snippet: Any) -> list[list[str]]:
    lines: list[str] = []
    if "jobs" in snippet:  # GitHub Actions
        for job in snippet["jobs"].values():
            lines += [s["run"] for s in job["steps"] if "run" in s]
    else:  # GitLab CI
        for job in snippet.values():
            lines += job["script"]
    return [shlex.split(line) for line in lines if line.startswith("envlock ")]


def test_the_snippets_parse_and_their_envlock_commands_work(index, project: Path):
    snippets = _snippets()
    assert set(snippets) == {
        ".pre-commit-config.yaml",
        ".github/workflows/envlock.yml",
        ".gitlab-ci.yml",
    }
    hooks = snippets[".pre-commit-config.yaml"]["repos"][0]["hooks"]
    ids = {h["id"] for h in hooks}
    ours = yaml.safe_load((README.parent / ".pre-commit-hooks.yaml").read_text())
    assert ids == {h["id"] for h in ours}

    server = index([Dist("app", "1.0", requires=["lib"]), Dist("lib", "2.0")])
    write_spec(
        project,
        server.url,
        """
        python = "3.11"
        platforms = ["linux-64"]
        dependencies = ["app"]
        """,
    )
    assert envlock(project, "lock").code == 0
    (project / "osv").mkdir()
    unrelated = {
        "id": "PYSEC-2000-1",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "other"}, "versions": ["1.0"]}],
    }
    write_osv_zip(project / "osv" / "all.zip", [unrelated])
    for name in (".github/workflows/envlock.yml", ".gitlab-ci.yml"):
        commands = _commands(snippets[name])
        assert [c[1] for c in commands] == ["lock", "audit", "fetch", "build"], name
        for command in commands:
            r = envlock(project, *command[1:])
            assert r.code == 0, (name, command, r.stderr)
        assert (project / "env-linux-64.tar.gz").stat().st_size > 0
        (project / "env-linux-64.tar.gz").unlink()
