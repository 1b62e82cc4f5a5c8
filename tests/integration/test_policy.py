"""``[policy]`` end to end: ``lock`` resolves around deny and min-age and refuses to write a lock
that breaks the policy; ``audit`` finds every violation in an existing lock. The real CLI
against real loopback indexes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from integration.helpers import envlock, selected, write_spec
from support.wheels import Dist

WIN = "cp311-cp311-win_amd64"
LINUX = "cp311-cp311-manylinux_2_17_x86_64"


def _ago(days: float) -> str:
    when = datetime.now(timezone.utc) - timedelta(days=days)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec(project: Path, url: str, deps: str, policy: str, platforms: str = '["linux-64"]') -> None:
    write_spec(
        project,
        url,
        f"""
        python = "3.11"
        platforms = {platforms}
        dependencies = {deps}

        [policy]
        {policy}
        """,
    )


def _audit_json(project: Path, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    r = envlock(project, "audit", "--format", "json", *args)
    assert r.code in (0, 1), r.stderr
    return r.code, json.loads(r.stdout)


def test_deny_resolves_around_a_denied_version(index, project):
    server = index(
        [Dist("app", "1.0", requires=["lib>=1"]), Dist("lib", "1.0"), Dist("lib", "2.0")]
    )
    _spec(project, server.url, '["app"]', 'deny = ["lib>=2"]')
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.toml", "linux-64") == {"app": "1.0", "lib": "1.0"}
    assert envlock(project, "audit").code == 0


def test_deny_of_every_version_fails_naming_the_rule_and_writes_nothing(index, project):
    server = index([Dist("app", "1.0", requires=["lib"]), Dist("lib", "1.0")])
    _spec(project, server.url, '["app"]', 'deny = ["LIB"]')
    r = envlock(project, "lock")
    assert r.code == 1
    assert "lib 1.0: denied by the [policy] deny rule 'LIB'" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (project / "pylock.toml").exists()


def test_deny_with_a_marker_only_applies_to_its_platforms(index, project):
    server = index(
        [
            Dist("lib", "1.0", tag=LINUX),
            Dist("lib", "1.0", tag=WIN),
            Dist("lib", "2.0", tag=LINUX),
            Dist("lib", "2.0", tag=WIN),
        ]
    )
    _spec(
        project,
        server.url,
        '["lib"]',
        "deny = [\"lib>=2; sys_platform == 'win32'\"]",
        '["linux-64", "win-64"]',
    )
    assert envlock(project, "lock").code == 0
    assert selected(project / "pylock.toml", "linux-64") == {"lib": "2.0"}
    assert selected(project / "pylock.toml", "win-64") == {"lib": "1.0"}


def test_audit_reports_a_denied_version_already_in_the_lock(index, project):
    server = index([Dist("lib", "1.0"), Dist("lib", "2.0")])
    _spec(project, server.url, '["lib"]', "")
    assert envlock(project, "lock").code == 0
    _spec(project, server.url, '["lib"]', 'deny = ["lib==2.0"]')
    r = envlock(project, "audit")
    assert r.code == 1
    assert "lib 2.0: denied by the rule 'lib==2.0'" in r.stderr
    assert "1 policy violation" in r.stderr
    code, data = _audit_json(project)
    assert code == 1
    assert [(v["name"], v["rule"]) for v in data["violations"]] == [("lib", "deny")]
    (pkg,) = data["environments"][0]["packages"]
    assert pkg["status"] == "violation"


def test_min_age_holds_back_a_fresh_release_and_says_so(index, project):
    server = index(
        [Dist("lib", "1.0", upload_time=_ago(400)), Dist("lib", "2.0", upload_time=_ago(1))]
    )
    _spec(project, server.url, '["lib"]', 'min-age = "7 days"')
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.toml", "linux-64") == {"lib": "1.0"}
    assert "held back by min-age (7 days)" in r.stderr
    assert "lib 2.0 (uploaded" in r.stderr and "locked 1.0" in r.stderr
    assert envlock(project, "audit").code == 0


def test_min_age_lets_an_exact_pin_through(index, project):
    server = index(
        [Dist("lib", "1.0", upload_time=_ago(400)), Dist("lib", "2.0", upload_time=_ago(1))]
    )
    _spec(project, server.url, '["lib==2.0"]', 'min-age = "1 week"')
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.toml", "linux-64") == {"lib": "2.0"}
    assert envlock(project, "audit").code == 0  # the spec pins it: not a violation


def test_min_age_refuses_files_with_no_upload_time(index, project):
    server = index([Dist("lib", "1.0", upload_time=None)])
    _spec(project, server.url, '["lib"]', 'min-age = "2 days"')
    r = envlock(project, "lock")
    assert r.code == 1
    assert "gives no upload time" in r.stderr


def test_audit_flags_a_fresh_file_locked_before_the_cooldown_existed(index, project):
    server = index([Dist("lib", "1.0", upload_time=_ago(2))])
    _spec(project, server.url, '["lib"]', "")
    assert envlock(project, "lock").code == 0
    _spec(project, server.url, '["lib"]', 'min-age = "7d"')
    r = envlock(project, "audit")
    assert r.code == 1
    assert "within min-age (7d)" in r.stderr
    assert "pylock.toml is stale" in r.stderr  # the audit says it describes an older lock
    assert envlock(project, "lock", "--check").code == 1  # a policy change makes the lock stale


def test_allowed_indexes_refuses_a_package_from_another_index(index, project):
    public = index([Dist("app", "1.0", requires=["private-lib"])])
    private = index([Dist("private-lib", "1.0")])
    spec = f"""
        python = "3.11"
        platforms = ["linux-64"]
        dependencies = ["app"]

        [[index]]
        name = "public"
        url = "{public.url}"
        [[index]]
        name = "private"
        url = "{private.url}"
        packages = ["private-lib"]
    """
    write_spec(project, None, spec)
    assert envlock(project, "lock").code == 0
    write_spec(project, None, spec + '\n[policy]\nallowed-indexes = ["public"]\n')
    r = envlock(project, "audit")
    assert r.code == 1
    assert f"private-lib 1.0: comes from {private.url}" in r.stderr
    before = (project / "pylock.toml").read_bytes()
    r = envlock(project, "lock", "--upgrade")
    assert r.code == 1
    assert "allowed-indexes" in r.stderr and "nothing was written" in r.stderr
    assert (project / "pylock.toml").read_bytes() == before
    # A URL prefix admits it.
    write_spec(project, None, spec + f'\n[policy]\nallowed-indexes = ["public", "{private.url}"]\n')
    assert envlock(project, "lock").code == 0
    assert envlock(project, "audit").code == 0


def test_allowed_licenses(index, project):
    server = index(
        [
            Dist(
                "app",
                "1.0",
                requires=["mit-lib", "dual", "classic", "mystery"],
                metadata=["License-Expression: MIT"],
            ),
            Dist("mit-lib", "1.0", metadata=["License: MIT License"]),
            Dist("dual", "1.0", metadata=["License-Expression: GPL-3.0-only OR Apache-2.0"]),
            Dist("classic", "1.0", metadata=["Classifier: License :: OSI Approved :: BSD License"]),
            Dist("mystery", "1.0"),
            Dist("gpl", "1.0", metadata=["License-Expression: GPL-3.0-or-later"]),
        ]
    )
    _spec(project, server.url, '["app"]', 'allowed-licenses = ["MIT", "apache-2.0"]')
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert "license unknown" in r.stderr and "classic 1.0" in r.stderr and "mystery 1.0" in r.stderr
    code, data = _audit_json(project)
    assert code == 0  # unknown is reported, not a violation
    packages = {p["name"]: p for p in data["environments"][0]["packages"]}
    assert packages["app"]["license"] == "MIT"
    assert packages["mit-lib"]["license"] == "MIT"
    assert packages["dual"]["license"] == "GPL-3.0-only OR Apache-2.0"
    assert packages["classic"]["license"] == "BSD License"
    assert packages["mystery"]["license"] is None
    assert {n: p["status"] for n, p in packages.items()} == {
        "app": "ok",
        "mit-lib": "ok",
        "dual": "ok",
        "classic": "unknown",
        "mystery": "unknown",
    }
    _spec(project, server.url, '["app", "gpl"]', 'allowed-licenses = ["MIT", "Apache-2.0"]')
    r = envlock(project, "lock")
    assert r.code == 1
    assert "gpl 1.0: license GPL-3.0-or-later is not in allowed-licenses" in r.stderr


def test_audit_table_json_and_platform_filter(index, project):
    server = index(
        [
            Dist(
                "app",
                "1.0",
                requires=["winonly; sys_platform == 'win32'"],
                metadata=["License-Expression: MIT"],
            ),
            Dist("winonly", "2.0"),
        ]
    )
    _spec(project, server.url, '["app"]', "", '["linux-64", "win-64"]')
    assert envlock(project, "lock").code == 0
    r = envlock(project, "audit")
    assert r.code == 0, r.stderr
    assert "app" in r.stdout and "winonly" in r.stdout and "local" in r.stdout
    _, data = _audit_json(project, "--platform", "linux-64")
    assert [p["name"] for p in data["environments"][0]["packages"]] == ["app"]
    _, data = _audit_json(project)
    win = next(p for p in data["environments"][0]["packages"] if p["name"] == "winonly")
    assert win["platforms"] == ["win-64"]
    assert win["files"][0]["sha256"] == server.sha256("winonly-2.0-py3-none-any.whl")
    assert win["upload-time"] == "2024-01-01T00:00:00Z"
    again = envlock(project, "audit", "--format", "json")
    assert again.stdout == envlock(project, "audit", "--format", "json").stdout
    out = project / "audit.json"
    assert envlock(project, "audit", "--format", "json", "-o", str(out)).code == 0
    assert json.loads(out.read_text()) == data
    r = envlock(project, "audit", "--platform", "osx-arm64")
    assert r.code == 2 and "no osx-arm64 resolution" in r.stderr


def test_audit_without_a_lock_says_run_lock(index, project):
    server = index([Dist("lib", "1.0")])
    _spec(project, server.url, '["lib"]', "")
    r = envlock(project, "audit")
    assert r.code == 1 and "envlock lock" in r.stderr


def test_bad_policy_values_are_one_line_errors(index, project):
    server = index([Dist("lib", "1.0")])
    cases = {
        'min-age = "soon"': "policy.min-age",
        "min-age = 7": "policy.min-age",
        'allowed-indexes = ["nowhere"]': "no index named 'nowhere'",
        'allowed-indexes = ["https://user:pw@host/simple/"]': "credentials",
        'allowed-licenses = ["Not A License"]': "not an SPDX identifier",
        'deny = ["lib[extra]"]': "a deny rule is a name and versions",
        'deny = ["lib @ https://x/lib.whl"]': "a deny rule",
        'deny = ["lib>="]': "invalid requirement",
        "deny = [\"lib; extra == 'gpu'\"]": "'extra' cannot be used in a deny marker",
        'color = "red"': "policy.color",
    }
    for policy, expected in cases.items():
        _spec(project, server.url, '["lib"]', policy)
        for command in ("lock", "audit"):
            r = envlock(project, command)
            assert r.code == 2, (policy, r.stderr)
            assert expected in r.stderr, (policy, r.stderr)
            assert "Traceback" not in r.stderr
            assert "pw@" not in r.stderr


def test_min_age_exempts_only_the_specs_own_pins(index, project):
    # A dependency pinning a fresh release is not the team's decision: the cooldown holds.
    server = index(
        [
            Dist("app", "1.0", requires=["lib==2.0"], upload_time=_ago(400)),
            Dist("lib", "2.0", upload_time=_ago(1)),
        ]
    )
    _spec(project, server.url, '["app"]', 'min-age = "7 days"')
    r = envlock(project, "lock")
    assert r.code == 1
    assert "lib 2.0: uploaded" in r.stderr and "within min-age (7 days)" in r.stderr
    assert not (project / "pylock.toml").exists()
    _spec(project, server.url, '["app", "lib==2.0"]', 'min-age = "7 days"')
    assert envlock(project, "lock").code == 0
    assert envlock(project, "audit").code == 0


def _edit_lock(project: Path, old: str, new: str) -> None:
    path = project / "pylock.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_audit_checks_the_file_urls_not_the_index_label(index, project):
    server = index([Dist("lib", "1.0")])
    _spec(project, server.url, '["lib"]', 'allowed-indexes = ["local", "pypi"]')
    assert envlock(project, "lock").code == 0
    wheel = server.file_url("lib-1.0-py3-none-any.whl")
    _edit_lock(project, f'index = "{server.url}"', 'index = "https://pypi.org/simple/"')
    # Labelled PyPI, served from elsewhere: a violation, whatever the label says.
    _edit_lock(project, wheel, "https://evil.example.com/files/lib-1.0-py3-none-any.whl")
    r = envlock(project, "audit")
    assert r.code == 1, r.stderr
    assert "lib 1.0: file lib-1.0-py3-none-any.whl is on evil.example.com" in r.stderr
    assert "https://pypi.org/simple/ does not serve files" in r.stderr
    # Nor may it borrow the host of another allowed index.
    _edit_lock(project, "https://evil.example.com/files/", f"{server.base_url}/files/")
    assert envlock(project, "audit").code == 1
    # PyPI's own files host is where PyPI's files are.
    pythonhosted = "https://files.pythonhosted.org/packages/ab/cd/"
    _edit_lock(project, f"{server.base_url}/files/", pythonhosted)
    r = envlock(project, "audit")
    assert r.code == 0, r.stderr


def test_lock_refuses_an_index_listing_files_on_another_host_unless_the_spec_names_it(
    index, project
):
    good = index([Dist("lib", "1.0")])
    elsewhere = index([Dist("lib", "1.0")])
    wheel = "lib-1.0-py3-none-any.whl"
    good.list_at(wheel, elsewhere.file_url(wheel))
    spec = f"""
        python = "3.11"
        platforms = ["linux-64"]
        dependencies = ["lib"]

        [policy]
        allowed-indexes = ["good"]

        [[index]]
        name = "good"
        url = "{good.url}"
    """
    write_spec(project, None, spec)
    r = envlock(project, "lock")
    assert r.code == 1, r.stderr
    assert f"file {wheel} is on 127.0.0.1:{elsewhere.port}" in r.stderr
    assert "nothing was written" in r.stderr
    assert not (project / "pylock.toml").exists()
    # An index table may name where it serves its files.
    write_spec(project, None, spec + f'files = ["{elsewhere.base_url}/files"]\n')
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert envlock(project, "audit").code == 0


def test_a_url_prefix_rule_does_not_admit_a_longer_path(index, project):
    server = index([Dist("lib", "1.0")])
    _spec(project, server.url, '["lib"]', f'allowed-indexes = ["{server.base_url}/sim"]')
    r = envlock(project, "lock")
    assert r.code == 1, r.stderr
    assert f"comes from {server.url}, which allowed-indexes does not list" in r.stderr
    _spec(project, server.url, '["lib"]', f'allowed-indexes = ["{server.base_url}/simple"]')
    assert envlock(project, "lock").code == 0
    assert envlock(project, "audit").code == 0


def test_license_exceptions_allow_a_license_for_matching_packages_only(index, project):
    proprietary = ["License-Expression: LicenseRef-NVIDIA-Proprietary"]
    server = index(
        [
            Dist(
                "app",
                "1.0",
                requires=["nvidia-cublas-cu12", "vendored-blob"],
                metadata=["License-Expression: MIT"],
            ),
            Dist("nvidia-cublas-cu12", "12.4", metadata=proprietary),
            Dist("vendored-blob", "1.0", metadata=proprietary),
        ]
    )
    policy = 'allowed-licenses = ["MIT"]\nlicense-exceptions = {{ {} }}'
    _spec(
        project,
        server.url,
        '["app"]',
        policy.format('"nvidia-*" = ["LicenseRef-NVIDIA-Proprietary"]'),
    )
    r = envlock(project, "lock")
    assert r.code == 1  # the lock refuses what the audit would flag: one line, the package named
    assert (
        "vendored-blob 1.0: license LicenseRef-NVIDIA-Proprietary is not in allowed-licenses"
        in r.stderr
    )
    assert "nvidia-cublas-cu12" not in r.stderr
    exceptions = (
        '"nvidia-*" = ["LicenseRef-NVIDIA-Proprietary"], '
        '"vendored-blob" = ["LicenseRef-NVIDIA-Proprietary"]'
    )
    _spec(project, server.url, '["app"]', policy.format(exceptions))
    assert envlock(project, "lock").code == 0
    code, data = _audit_json(project)
    assert code == 0
    statuses = {p["name"]: p["status"] for p in data["environments"][0]["packages"]}
    assert statuses == {"app": "ok", "nvidia-cublas-cu12": "ok", "vendored-blob": "ok"}
    # The same lock against a spec whose exceptions no longer cover vendored-blob.
    _spec(
        project,
        server.url,
        '["app"]',
        policy.format('"nvidia-*" = ["LicenseRef-NVIDIA-Proprietary"]'),
    )
    r = envlock(project, "audit")
    assert r.code == 1, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert (
        "vendored-blob 1.0: license LicenseRef-NVIDIA-Proprietary is not in allowed-licenses" in out
    )
    assert "nvidia-cublas-cu12 12.4: license" not in out
