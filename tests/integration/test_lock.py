"""``envlock lock`` end to end: the real CLI against a real HTTP index on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from envlock.lock.lockfile import load as load_locked
from integration.helpers import envlock, load_lock, selected, selected_files, write_spec
from support.wheels import Dist

LINUX = "cp311-cp311-manylinux_2_17_x86_64"
MAC = "cp311-cp311-macosx_11_0_arm64"
WIN = "cp311-cp311-win_amd64"


def native(name: str, version: str, *tags: str, **kw: object) -> list[Dist]:
    return [Dist(name, version, tag=t, **kw) for t in tags]  # type: ignore[arg-type]


def test_lock_for_three_foreign_platforms_selects_exactly_each_resolution(index, project):
    server = index(
        [
            Dist(
                "app",
                "1.0",
                requires=[
                    "numpyish>=1",
                    'linuxonly; sys_platform == "linux"',
                    'winonly; platform_system == "Windows"',
                ],
            ),
            *native("numpyish", "1.5", LINUX, MAC, WIN, "cp312-cp312-win_amd64"),
            Dist("linuxonly", "0.1"),
            Dist("winonly", "0.2"),
        ]
    )
    write_spec(
        project,
        server.url,
        """
        python = "3.11"
        platforms = ["linux-64", "osx-arm64", "win-64"]
        dependencies = ["app"]
    """,
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    lock_path = project / "pylock.toml"
    assert selected(lock_path, "linux-64") == {"app": "1.0", "numpyish": "1.5", "linuxonly": "0.1"}
    assert selected(lock_path, "osx-arm64") == {"app": "1.0", "numpyish": "1.5"}
    assert selected(lock_path, "win-64") == {"app": "1.0", "numpyish": "1.5", "winonly": "0.2"}
    files = selected_files(lock_path, "win-64")
    assert files["numpyish"] == "numpyish-1.5-cp311-cp311-win_amd64.whl"
    data = load_lock(lock_path)
    numpyish = next(p for p in data["packages"] if p["name"] == "numpyish")
    # Exactly the files the three targets install: not the cp312 wheel.
    assert sorted(w["name"] for w in numpyish["wheels"]) == sorted(
        f"numpyish-1.5-{t}.whl" for t in (LINUX, MAC, WIN)
    )
    for w in numpyish["wheels"]:
        assert w["hashes"]["sha256"] == server.sha256(w["name"])
        assert w["size"] == server.file_path(w["name"]).stat().st_size
        assert w["url"] == server.file_url(w["name"])
        assert "upload-time" in w
    assert data["requires-python"] == "==3.11.*"
    assert len(data["environments"]) == 3
    assert "linux" in next(p for p in data["packages"] if p["name"] == "linuxonly")["marker"]
    assert "pylock.toml" in r.stderr


def test_package_with_different_versions_per_platform_gets_one_entry_per_version(index, project):
    server = index(
        [
            *native("lib", "2.0", LINUX),
            *native("lib", "1.0", LINUX, WIN),
        ]
    )
    write_spec(
        project,
        server.url,
        """
        python = "3.11"
        platforms = ["linux-64", "win-64"]
        dependencies = ["lib"]
    """,
    )
    assert envlock(project, "lock").code == 0
    lock_path = project / "pylock.toml"
    assert selected(lock_path, "linux-64") == {"lib": "2.0"}
    assert selected(lock_path, "win-64") == {"lib": "1.0"}
    entries = [p for p in load_lock(lock_path)["packages"] if p["name"] == "lib"]
    assert [e["version"] for e in entries] == ["1.0", "2.0"]
    assert all("marker" in e for e in entries)


def test_lock_is_byte_identical_across_runs_and_fresh_caches(index, project, tmp_path):
    server = index(
        [
            Dist("a", "1.0", requires=["b[x]"]),
            Dist("b", "1.0", extras=["x"], requires=['c; extra == "x"']),
            Dist("c", "3.0"),
        ]
    )
    write_spec(
        project,
        server.url,
        'python = "3.12"\nplatforms = ["linux-64", "osx-64"]\ndependencies = ["a"]\n',
    )
    assert envlock(project, "lock", "--cache-dir", str(tmp_path / "c1")).code == 0
    first = (project / "pylock.toml").read_bytes()
    (project / "pylock.toml").unlink()
    assert envlock(project, "lock", "--cache-dir", str(tmp_path / "c2")).code == 0
    assert (project / "pylock.toml").read_bytes() == first
    r = envlock(project, "lock")
    assert "unchanged" in r.stderr
    assert (project / "pylock.toml").read_bytes() == first


def test_check_fails_when_missing_stale_or_platform_added_and_uses_no_network(index, project):
    server = index([Dist("a", "1.0")])
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    r = envlock(project, "lock", "--check")
    assert r.code == 1 and "does not exist" in r.stderr and "not locked yet" in r.stderr
    assert envlock(project, "lock").code == 0
    server.reset_counts()
    r = envlock(project, "lock", "--check")
    assert r.code == 0, r.stderr
    assert server.count() == 0
    r = envlock(project, "lock", "--check", "--platform", "linux-64", "--platform", "win-64")
    assert r.code == 1 and "win-64" in r.stderr
    spec = project / "envlock.toml"
    spec.write_text(spec.read_text().replace('["a"]', '["a", "b"]'))
    r = envlock(project, "lock", "--check")
    assert r.code == 1 and "stale" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2
    assert server.count() == 0


def test_relock_keeps_locked_versions_until_upgrade(index, project):
    server = index([Dist("a", "1.0", requires=["b"]), Dist("b", "1.0")])
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    assert envlock(project, "lock").code == 0
    server.add(Dist("a", "2.0", requires=["b"]))
    server.add(Dist("b", "2.0"))
    assert envlock(project, "lock").code == 0
    assert selected(project / "pylock.toml", "linux-64") == {"a": "1.0", "b": "1.0"}
    assert envlock(project, "lock", "--upgrade-package", "B").code == 0
    assert selected(project / "pylock.toml", "linux-64") == {"a": "1.0", "b": "2.0"}
    assert envlock(project, "lock", "--upgrade").code == 0
    assert selected(project / "pylock.toml", "linux-64") == {"a": "2.0", "b": "2.0"}


def test_lock_skips_yanked_unless_pinned(index, project):
    server = index([Dist("a", "1.0"), Dist("a", "2.0", yanked="broken")])
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    assert envlock(project, "lock").code == 0
    assert selected(project / "pylock.toml", "linux-64") == {"a": "1.0"}
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a==2.0"]\n',
    )
    assert envlock(project, "lock").code == 0
    assert selected(project / "pylock.toml", "linux-64") == {"a": "2.0"}


def test_exclude_newer_ignores_later_uploads(index, project):
    server = index(
        [
            Dist("a", "1.0", upload_time="2024-01-01T00:00:00Z"),
            Dist("a", "2.0", upload_time="2025-06-01T00:00:00Z"),
        ]
    )
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\n'
        'dependencies = ["a"]\nexclude-newer = "2025-01-01T00:00:00Z"\n',
    )
    assert envlock(project, "lock").code == 0
    assert selected(project / "pylock.toml", "linux-64") == {"a": "1.0"}
    assert envlock(project, "lock", "--exclude-newer", "2026-01-01T00:00:00Z", "-U").code == 0
    assert selected(project / "pylock.toml", "linux-64") == {"a": "2.0"}
    r = envlock(project, "lock", "--exclude-newer", "yesterday")
    assert r.code == 2 and "RFC 3339" in r.stderr


def test_prereleases_only_when_allowed_or_named(index, project):
    server = index([Dist("a", "1.0"), Dist("a", "2.0b1")])
    base = 'python = "3.11"\nplatforms = ["linux-64"]\n'
    write_spec(project, server.url, base + 'dependencies = ["a"]\n')
    assert envlock(project, "lock").code == 0
    assert selected(project / "pylock.toml", "linux-64") == {"a": "1.0"}
    write_spec(project, server.url, base + 'dependencies = ["a>=2.0b1"]\n')
    assert envlock(project, "lock").code == 0
    assert selected(project / "pylock.toml", "linux-64") == {"a": "2.0b1"}
    write_spec(project, server.url, base + 'dependencies = ["a"]\nprerelease = "allow"\n')
    assert envlock(project, "lock", "-U").code == 0
    assert selected(project / "pylock.toml", "linux-64") == {"a": "2.0b1"}


def test_requires_python_is_checked_against_the_target_not_the_host(index, project):
    server = index(
        [Dist("a", "1.0", requires_python=">=3.8"), Dist("a", "2.0", requires_python=">=3.13")]
    )
    write_spec(
        project, server.url, 'python = "3.10"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    assert envlock(project, "lock").code == 0
    assert selected(project / "pylock.toml", "linux-64", "3.10") == {"a": "1.0"}
    write_spec(
        project, server.url, 'python = "3.13"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    # Stable: 1.0 still fits 3.13, so only --upgrade moves to 2.0.
    assert envlock(project, "lock").code == 0
    assert selected(project / "pylock.toml", "linux-64", "3.13") == {"a": "1.0"}
    assert envlock(project, "lock", "--upgrade").code == 0
    assert selected(project / "pylock.toml", "linux-64", "3.13") == {"a": "2.0"}


def test_extras_and_extras_of_extras(index, project):
    server = index(
        [
            Dist("top", "1.0", extras=["all"], requires=['mid[fast]; extra == "all"']),
            Dist("mid", "1.0", extras=["fast"], requires=['speedy; extra == "fast"']),
            Dist("speedy", "1.0"),
        ]
    )
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["top[all]"]\n',
    )
    assert envlock(project, "lock").code == 0
    assert selected(project / "pylock.toml", "linux-64") == {
        "top": "1.0",
        "mid": "1.0",
        "speedy": "1.0",
    }


def test_no_wheel_for_target_is_a_clear_error(index, project):
    server = index([*native("nat", "1.0", LINUX), Dist("nat", "1.0", kind="sdist")])
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["win-64"]\ndependencies = ["nat"]\n'
    )
    r = envlock(project, "lock")
    assert r.code == 1
    assert "error: no version of nat can be installed on win-64 / cp311: nat 1.0: it has no " in (
        r.stderr
    )
    assert "no wheel for Windows x86_64 (wheels for: manylinux_2_17_x86_64)" in r.stderr
    assert 'hint: set allow-sdist = ["nat"] in the spec' in r.stderr
    assert "Traceback" not in r.stderr
    assert not (project / "pylock.toml").exists()


def test_conflict_explains_the_clash_in_a_few_lines(index, project):
    server = index(
        [
            Dist("a", "1.0", requires=["c<2"]),
            Dist("b", "1.0", requires=["c>=2"]),
            Dist("c", "1.0"),
            Dist("c", "2.0"),
        ]
    )
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a", "b"]\n',
    )
    r = envlock(project, "lock")
    assert r.code == 1
    assert "Traceback" not in r.stderr
    assert "  a 1.0 (in the spec) requires c<2\n" in r.stderr
    assert "  b 1.0 (in the spec) requires c>=2\n" in r.stderr
    assert "  no version of c satisfies all of them (newest: 2.0)\n" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 7


def test_failed_lock_leaves_existing_lock_untouched(index, project):
    server = index([Dist("a", "1.0")])
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    assert envlock(project, "lock").code == 0
    before = (project / "pylock.toml").read_bytes()
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a", "does-not-exist"]\n',
    )
    r = envlock(project, "lock")
    assert r.code == 1 and "no project named 'does-not-exist'" in r.stderr
    assert (project / "pylock.toml").read_bytes() == before
    assert [p.name for p in project.iterdir() if p.name.startswith(".")] == []


def test_static_sdist_metadata_without_building(index, project):
    server = index([Dist("src", "1.0", kind="sdist", requires=["dep"]), Dist("dep", "1.0")])
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64", "win-64"]\n'
        'dependencies = ["src"]\nallow-sdist = ["src"]\n',
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.toml", "win-64") == {"src": "1.0", "dep": "1.0"}
    entry = next(p for p in load_lock(project / "pylock.toml")["packages"] if p["name"] == "src")
    assert entry["sdist"]["name"] == "src-1.0.tar.gz"
    assert "wheels" not in entry


def test_dynamic_sdist_metadata_comes_from_its_build_backend(index, project):
    server = index(
        [Dist("dyn", "1.0", kind="sdist", sdist_dynamic=True, requires=["dep"]), Dist("dep", "1.0")]
    )
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["dyn"]\nallow-sdist = true\n',
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.toml", "linux-64") == {"dyn": "1.0", "dep": "1.0"}


@pytest.mark.parametrize("mode", ["json", "html"])
def test_pep658_metadata_means_no_wheel_download(index, project, mode):
    server = index([Dist("a", "1.0", requires=["b"]), Dist("b", "1.0")], mode=mode)
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    assert envlock(project, "lock").code == 0
    wheel_gets = [r for r in server.requests if r.path.endswith(".whl") and r.method == "GET"]
    assert wheel_gets == []
    assert server.count("/files/a-1.0-py3-none-any.whl.metadata") == 1


def test_range_requests_read_metadata_without_full_download(index, project):
    big = {"a/blob.bin": bytes(range(256)) * 4096}  # 1 MiB of payload
    server = index([Dist("a", "1.0", files=big)], mode="html", pep658=False)
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    gets = [q for q in server.requests if q.path.endswith(".whl") and q.method == "GET"]
    assert gets and all("range" in q.headers for q in gets)
    # HTML has no sizes (PEP 700): the lock still records the exact one.
    entry = load_lock(project / "pylock.toml")["packages"][0]
    assert entry["wheels"][0]["size"] == server.file_path("a-1.0-py3-none-any.whl").stat().st_size


def test_full_download_is_the_last_resort(index, project):
    server = index([Dist("a", "1.0")], mode="html", pep658=False, range_requests=False)
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    assert envlock(project, "lock").code == 0
    assert selected(project / "pylock.toml", "linux-64") == {"a": "1.0"}


def test_metadata_is_cached_forever_and_pages_revalidated(index, project):
    server = index([Dist("a", "1.0")])
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    assert envlock(project, "lock").code == 0
    server.reset_counts()
    assert envlock(project, "lock", "--upgrade").code == 0
    assert server.count("/files/") == 0
    page_requests = [q for q in server.requests if q.path.startswith("/simple/a")]
    assert page_requests and all(q.status == 304 for q in page_requests)


def test_first_index_that_has_a_package_wins(index, project):
    internal = index([Dist("corp-tool", "1.0")])
    public = index([Dist("corp-tool", "99.0"), Dist("other", "1.0")])
    (project / "envlock.toml").write_text(f"""
python = "3.11"
platforms = ["linux-64"]
dependencies = ["corp-tool", "other"]
[[index]]
name = "internal"
url = "{internal.url}"
[[index]]
name = "public"
url = "{public.url}"
""")
    assert envlock(project, "lock").code == 0
    assert selected(project / "pylock.toml", "linux-64") == {"corp-tool": "1.0", "other": "1.0"}
    entries = {p["name"]: p for p in load_lock(project / "pylock.toml")["packages"]}
    assert entries["corp-tool"]["index"] == internal.url
    assert entries["other"]["index"] == public.url


def test_envlock_index_url_overrides_the_first_index(index, project):
    mirror = index([Dist("a", "3.0")])
    write_spec(
        project,
        "http://127.0.0.1:9/simple/",
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n',
    )
    r = envlock(project, "lock", env={"ENVLOCK_INDEX_URL": mirror.url})
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.toml", "linux-64") == {"a": "3.0"}


def test_unreachable_index_is_a_network_error_exit_3(project):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write_spec(
        project,
        f"http://127.0.0.1:{port}/simple/",
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n',
    )
    r = envlock(project, "lock")
    assert r.code == 3
    assert "cannot reach" in r.stderr and "Traceback" not in r.stderr


def test_retries_on_503_and_429_with_retry_after(index, project):
    server = index([Dist("a", "1.0")])
    server.fail("/simple/a/", 503, 2)
    server.fail("/files/", 429, 1, retry_after=1)
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    statuses = [q.status for q in server.requests if q.path == "/simple/a/"]
    assert statuses[:3] == [503, 503, 200]


def test_credentials_are_used_but_never_written_or_printed(index, project, tmp_path):
    server = index([Dist("a", "1.0")], auth=("alice", "s3cret-pw"))
    authed = server.url.replace("http://", "http://alice:s3cret-pw@")
    write_spec(project, authed, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n')
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    text = (project / "pylock.toml").read_text()
    assert "s3cret-pw" not in text and "alice" not in text
    assert "s3cret-pw" not in r.stderr + r.stdout
    # Wrong password: a one-line error that does not echo the secret.
    write_spec(
        project,
        server.url.replace("http://", "http://alice:wrong-pw@"),
        'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n',
    )
    r = envlock(project, "lock", "-U")
    assert r.code == 3 and "401" in r.stderr and "wrong-pw" not in r.stderr


def test_netrc_credentials(index, project, tmp_path):
    server = index([Dist("a", "1.0")], auth=("bob", "netrc-pw"))
    home = tmp_path / "home"
    (home / ".netrc").write_text("machine 127.0.0.1 login bob password netrc-pw\n")
    (home / ".netrc").chmod(0o600)
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert "netrc-pw" not in (project / "pylock.toml").read_text()


def test_named_environments_get_their_own_lock_files(index, project):
    server = index([Dist("a", "1.0"), Dist("b", "1.0"), Dist("c", "1.0", requires_python=">=3.12")])
    write_spec(
        project,
        server.url,
        """
        python = "3.11"
        platforms = ["linux-64"]
        dependencies = ["a"]
        [environments.train]
        python = "3.12"
        dependencies = ["c"]
        [environments.serve]
        platforms = ["linux-aarch64"]
        dependencies = ["b"]
    """,
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.toml", "linux-64") == {"a": "1.0"}
    assert selected(project / "pylock.train.toml", "linux-64", "3.12") == {"a": "1.0", "c": "1.0"}
    assert selected(project / "pylock.serve.toml", "linux-aarch64") == {"a": "1.0", "b": "1.0"}
    assert envlock(project, "lock", "--check").code == 0
    assert envlock(project, "lock", "--check", "--env", "train").code == 0
    r = envlock(project, "lock", "--env", "nope")
    assert r.code == 2 and "nope" in r.stderr


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('python = "3.11"\ndependencies = ["a>="]\n', "dependencies[0]"),
        ('python = "3.11"\nplatfroms = ["linux-64"]\n', "platfroms"),
        ('python = "3.11"\nplatforms = ["linux-128"]\n', "linux-128"),
        ('python = "3.11\n', "invalid TOML"),
        ("dependencies = []\n", "python"),
    ],
)
def test_spec_errors_are_one_line_exit_2(project, body, needle):
    (project / "envlock.toml").write_text(body)
    r = envlock(project, "lock")
    assert r.code == 2
    assert needle in r.stderr and "envlock.toml" in r.stderr
    assert "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.startswith("error")]) == 1


def test_unknown_cli_platform_is_usage_error(project):
    write_spec(project, None, 'python = "3.11"\n')
    r = envlock(project, "lock", "--platform", "solaris-sparc")
    assert r.code == 2 and "solaris-sparc" in r.stderr


def test_platforms_command_lists_every_platform(project):
    r = envlock(project, "platforms")
    assert r.code == 0
    for name in ("linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64"):
        assert name in r.stdout
    assert "manylinux_2_28_x86_64" in r.stdout


def test_tls_index_trusted_through_ssl_cert_file(index, project, tls_cert):
    """A private CA (corporate proxy, internal index): trusted only via SSL_CERT_FILE."""
    cert, context = tls_cert
    server = index([Dist("a", "1.0")], tls=context)
    assert server.url.startswith("https://")
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    r = envlock(project, "lock")
    assert r.code == 3 and "Traceback" not in r.stderr
    assert "certificate" in r.stderr.lower()
    r = envlock(project, "lock", env={"SSL_CERT_FILE": str(cert)})
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.toml", "linux-64") == {"a": "1.0"}


def test_wheels_only_above_the_os_floor_suggest_the_floor_to_set(index, project):
    server = index(
        [
            *native("sci", "2.0", "cp311-cp311-macosx_14_0_arm64", LINUX),
            Dist("sci", "2.0", kind="sdist"),
        ]
    )
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["osx-arm64"]\ndependencies = ["sci"]\n'
    )
    r = envlock(project, "lock")
    assert r.code == 1
    assert "no version of sci can be installed on osx-arm64 / cp311" in r.stderr
    assert "its macOS arm64 wheels need macOS 14.0 (the floor is 13.0)" in r.stderr
    assert 'hint: set [platform-tags] macos-arm64 = "14.0"' in r.stderr
    write_spec(
        project,
        server.url,
        'python = "3.11"\nplatforms = ["osx-arm64"]\n'
        'dependencies = ["sci"]\n[platform-tags]\nmacos-arm64 = "14.0"\n',
    )
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    lock = load_locked(project / "pylock.toml")
    (art,) = lock.artifacts(lock.target("osx-arm64"))  # the target as locked: floor 14.0
    assert art.filename == "sci-2.0-cp311-cp311-macosx_14_0_arm64.whl"


# --- lock --check: the fast path -------------------------------------------------------------


def test_check_imports_no_network_resolver_or_cli_framework(index, project):
    server = index([Dist("a", "1.0")])
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    assert envlock(project, "lock").code == 0
    probe = (
        "import sys\n"
        "from envlock.cli import main\n"
        "sys.argv = ['envlock', 'lock', '--check']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "heavy = [m for m in ('typer', 'httpx', 'resolvelib', 'rich', 'filelock') "
        "if m in sys.modules]\n"
        "print(code, heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=project, capture_output=True, text=True
    )
    assert proc.stdout.strip() == "0 []", proc.stderr


@pytest.mark.parametrize(
    "case", ["fresh", "stale", "missing lock", "no spec", "bad platform", "bad env"]
)
def test_fast_check_answers_like_the_full_cli(index, project, case):
    server = index([Dist("a", "1.0")])
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    assert envlock(project, "lock").code == 0
    args = ["lock", "--check"]
    if case == "stale":
        write_spec(project, server.url, 'python = "3.12"\nplatforms = ["linux-64"]\n')
    elif case == "missing lock":
        (project / "pylock.toml").unlink()
    elif case == "no spec":
        args += ["--spec", "other.toml"]
    elif case == "bad platform":
        args += ["--platform", "amiga"]
    elif case == "bad env":
        args += ["-e", "nope"]
    fast = envlock(project, *args)
    full = envlock(project, *args, "--upgrade")  # a flag only the full CLI takes
    assert (fast.code, fast.stdout, fast.stderr) == (full.code, full.stdout, full.stderr)
    assert fast.code == {"fresh": 0, "stale": 1, "missing lock": 1}.get(case, 2)


def test_unwritable_lock_path_is_one_line_and_leaves_nothing(index, project):
    server = index([Dist("a", "1.0")])
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    (project / "pylock.toml").mkdir()  # something that cannot be replaced by a file
    r = envlock(project, "lock")
    assert r.code == 1
    assert r.stderr.splitlines()[-1] == "error: pylock.toml: cannot write: Is a directory"
    assert sorted(p.name for p in project.iterdir()) == ["envlock.toml", "pylock.toml"]


def test_lock_file_follows_the_umask(index, project):
    server = index([Dist("a", "1.0")])
    write_spec(
        project, server.url, 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'
    )
    assert envlock(project, "lock").code == 0
    umask = os.umask(0o022)
    os.umask(umask)
    assert (project / "pylock.toml").stat().st_mode & 0o777 == 0o666 & ~umask


def test_platforms_with_a_bad_glibc_is_one_line(project):
    r = envlock(project, "platforms", "--glibc", "abc")
    assert r.code == 2
    assert r.stderr.strip() == "error: --glibc: must be a version like \"2.28\", got 'abc'"
