"""An index that lies, breaks or stalls: one-line errors, nothing written, nothing trusted."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from integration.helpers import envlock, load_lock, write_spec
from support.proxy import ForwardProxy
from support.wheels import Dist, build_wheel, metadata_bytes

SPEC = 'python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["a"]\n'


def _one_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


def _locked_then_broken(index, project, **index_opts):  # type: ignore[no-untyped-def]
    server = index([Dist("a", "1.0")], **index_opts)
    write_spec(project, server.url, SPEC)
    assert envlock(project, "lock").code == 0
    return server, (project / "pylock.toml").read_bytes()


# --- malformed pages --------------------------------------------------------------------------

JSON = {"Content-Type": "application/vnd.pypi.simple.v1+json"}
GOOD = {"filename": "a-2.0-py3-none-any.whl", "url": "a.whl", "hashes": {"sha256": "0" * 64}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{this is not json", "not valid JSON"),
        (json.dumps({"meta": {"api-version": "1.1"}, "name": "a"}).encode(), "'files'"),
        (
            json.dumps({"meta": {"api-version": "1.1"}, "name": "a", "files": [{"x": 1}]}).encode(),
            "'filename'",
        ),
        (
            json.dumps(
                {
                    "meta": {"api-version": "1.1"},
                    "name": "a",
                    "files": [{**GOOD, "hashes": {"sha256": "xyz"}}],
                }
            ).encode(),
            "sha256 'xyz' is not 64 hex digits",
        ),
        (
            json.dumps(
                {"meta": {"api-version": "1.1"}, "name": "a", "files": [{**GOOD, "size": "big"}]}
            ).encode(),
            "'size'",
        ),
        (
            json.dumps({"meta": {"api-version": "2.0"}, "name": "a", "files": [GOOD]}).encode(),
            "speaks simple API 2.0; envlock understands 1.x",
        ),
    ],
)
def test_malformed_page_is_one_line_error_naming_the_url_and_the_lock_stays(
    index, project, body: bytes, message: str
) -> None:
    server, before = _locked_then_broken(index, project)
    server.override("/simple/a/", 200, body, JSON)
    r = envlock(project, "lock", "--upgrade")
    assert r.code == 3
    line = _one_error(r.stderr)
    assert f"{server.url}a/" in line and message in line
    assert (project / "pylock.toml").read_bytes() == before


def test_html_page_with_a_bad_hash_fragment_is_refused(index, project) -> None:
    server, before = _locked_then_broken(index, project, mode="html")
    server.override(
        "/simple/a/",
        200,
        b'<a href="../../files/a-1.0-py3-none-any.whl#sha256=123">a</a>',
        {"Content-Type": "text/html"},
    )
    r = envlock(project, "lock", "--upgrade")
    assert r.code == 3 and "is not 64 hex digits" in _one_error(r.stderr)
    assert (project / "pylock.toml").read_bytes() == before


def test_page_that_is_not_a_simple_index_page_is_refused(index, project) -> None:
    server, _ = _locked_then_broken(index, project)
    server.override("/simple/a/", 200, b"\x00\x01", {"Content-Type": "application/octet-stream"})
    r = envlock(project, "lock", "--upgrade")
    assert r.code == 3 and "not a simple-index page" in _one_error(r.stderr)


@pytest.mark.parametrize("mode", ["json", "html"])
def test_newer_minor_api_version_locks_with_a_warning(index, project, mode: str) -> None:
    server = index([Dist("a", "1.0")], api_version="1.7", mode=mode)
    write_spec(project, server.url, SPEC)
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert f"warning: {server.url} speaks simple API 1.7, newer than the 1.1 envlock knows" in (
        r.stderr
    )


@pytest.mark.parametrize("mode", ["json", "html"])
def test_another_major_api_version_is_refused(index, project, mode: str) -> None:
    server = index([Dist("a", "1.0")], api_version="2.0", mode=mode)
    write_spec(project, server.url, SPEC)
    r = envlock(project, "lock")
    assert r.code == 3 and "speaks simple API 2.0" in _one_error(r.stderr)
    assert not (project / "pylock.toml").exists()


# --- hashes: never a lock with a hash the bytes do not have ------------------------------------


def test_index_without_hashes_gets_them_from_the_bytes(index, project) -> None:
    server = index([Dist("a", "1.0", requires=["b"]), Dist("b", "2.0")], hashes=False, pep658=False)
    write_spec(project, server.url, SPEC)
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    for pkg in load_lock(project / "pylock.toml")["packages"]:
        (wheel,) = pkg["wheels"]
        data = server.file_path(wheel["name"]).read_bytes()
        assert wheel["hashes"]["sha256"] == hashlib.sha256(data).hexdigest()
        assert wheel["size"] == len(data)


def test_bytes_that_contradict_the_index_hash_stop_the_lock(index, project) -> None:
    # No PEP 658 file and no range requests: the whole wheel is read for its metadata, and
    # its bytes must have the sha256 the index lists.
    server = index([Dist("a", "1.0")], pep658=False, range_requests=False)
    write_spec(project, server.url, SPEC)
    served = server.file_path("a-1.0-py3-none-any.whl")
    served.write_bytes(served.read_bytes() + b"tampered")
    r = envlock(project, "lock")
    assert r.code == 4
    line = _one_error(r.stderr)
    assert "a-1.0-py3-none-any.whl" in line and "sha256" in line
    assert not (project / "pylock.toml").exists()


@pytest.mark.parametrize("lie", [Dist("a", "2.0"), Dist("other", "1.0")], ids=["version", "name"])
def test_metadata_naming_another_release_than_its_file_fails_the_lock(
    lie: Dist, index, project, cache: Path
) -> None:
    server = index([Dist("a", "1.0")])
    server.serve_metadata("a-1.0-py3-none-any.whl", metadata_bytes(lie))
    write_spec(project, server.url, SPEC)
    r = envlock(project, "lock")
    assert r.code == 4, r.stderr
    line = _one_error(r.stderr)
    said = f"{lie.name} {lie.version}"
    assert f"a-1.0-py3-none-any.whl: its metadata says {said}, the file name a 1.0" in line
    assert not (project / "pylock.toml").exists()


def test_metadata_of_another_release_inside_the_wheel_fails_the_lock_too(
    index, project, tmp_path: Path
) -> None:
    """Metadata from a whole download (no sidecar, no ranges) is held to its file name too."""
    server = index([Dist("a", "1.0")], pep658=False, range_requests=False, hashes=False)
    other = build_wheel(Dist("a", "3.0"), tmp_path / "other")  # says 3.0 inside
    server.file_path("a-1.0-py3-none-any.whl").write_bytes(other.read_bytes())
    write_spec(project, server.url, SPEC)
    r = envlock(project, "lock")
    assert r.code == 4, r.stderr
    line = _one_error(r.stderr)
    assert "a-1.0-py3-none-any.whl: its metadata says a 3.0, the file name a 1.0" in line
    assert not (project / "pylock.toml").exists()


def test_a_small_wheel_read_whole_by_a_range_request_is_hash_checked(index, project) -> None:
    """A range request that answers with the whole file (206 covering every byte): those bytes
    are checked against the index's sha256 before a lock records it."""
    server = index([Dist("a", "1.0")], pep658=False)
    served = server.file_path("a-1.0-py3-none-any.whl")
    data = bytearray(served.read_bytes())
    assert len(data) < 64 * 1024  # one tail request covers it
    data[10] ^= 0xFF  # the first local header's time: the zip still reads, the hash differs
    served.write_bytes(bytes(data))
    write_spec(project, server.url, SPEC)
    r = envlock(project, "lock")
    assert r.code == 4, r.stderr
    line = _one_error(r.stderr)
    assert "a-1.0-py3-none-any.whl" in line and "sha256" in line
    assert not (project / "pylock.toml").exists()
    assert [q.status for q in server.requests if q.path.startswith("/files/")] == [206]


def test_metadata_sidecar_that_disagrees_with_the_wheel_is_caught_at_install(
    index, project, cache: Path
) -> None:
    server = index([Dist("a", "1.0"), Dist("evil", "1.0")])
    # The index's PEP 658 file for a says it needs nothing... but adds a dependency the wheel
    # itself does not declare (or the other way round): the lock follows the sidecar.
    server.serve_metadata(
        "a-1.0-py3-none-any.whl", metadata_bytes(Dist("a", "1.0", requires=["evil"]))
    )
    write_spec(project, server.url, SPEC)
    assert envlock(project, "lock").code == 0
    r = envlock(project, "build", "--output", str(project / "env"))
    assert r.code == 4
    line = _one_error(r.stderr)
    assert "a-1.0-py3-none-any.whl: its METADATA declares other dependencies than the lock" in line
    assert "-evil" in line
    assert not (project / "env").exists()


def test_yanked_file_pinned_exactly_is_locked_with_the_reason(index, project) -> None:
    server = index(
        [Dist("a", "1.0", yanked="CVE-2026-0001: remote code execution"), Dist("a", "0.9")]
    )
    write_spec(project, server.url, SPEC.replace('["a"]', '["a==1.0"]'))
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert (
        "warning: a 1.0 is yanked: CVE-2026-0001: remote code execution (locked because it is "
        "pinned with ==)"
    ) in r.stderr


# --- transport --------------------------------------------------------------------------------


def test_plain_http_to_another_host_is_refused_unless_named(index, project) -> None:
    server = index([Dist("a", "1.0")])
    server.host = "pypi.example.test"  # the files it lists live on that host too
    with ForwardProxy({"pypi.example.test": ("127.0.0.1", server.port)}) as proxy:
        remote = f"http://pypi.example.test:{server.port}/simple/"
        write_spec(project, remote, SPEC)
        env = {"HTTP_PROXY": proxy.url, "http_proxy": proxy.url, "NO_PROXY": "", "no_proxy": ""}
        r = envlock(project, "lock", env=env)
        assert r.code == 3
        line = _one_error(r.stderr)
        assert "refusing plain http:// to pypi.example.test" in line
        assert 'insecure-hosts = ["pypi.example.test"]' in r.stderr
        assert "ENVLOCK_INSECURE_HOSTS=pypi.example.test" in r.stderr
        assert proxy.seen == []  # refused before any request
        r = envlock(project, "lock", env={**env, "ENVLOCK_INSECURE_HOSTS": "pypi.example.test"})
        assert r.code == 0, r.stderr
        assert any("pypi.example.test" in s for s in proxy.seen)
        wheel = load_lock(project / "pylock.toml")["packages"][0]["wheels"][0]
        assert wheel["url"].startswith("http://pypi.example.test:")
        # ... or the spec names it
        (project / "pylock.toml").unlink()
        text = (project / "envlock.toml").read_text()
        (project / "envlock.toml").write_text('insecure-hosts = ["pypi.example.test"]\n' + text)
        assert envlock(project, "lock", env=env).code == 0


def test_https_to_http_redirect_is_refused(index, project, tls_cert) -> None:
    cert, context = tls_cert
    plain = index([Dist("a", "1.0")])
    secure = index([Dist("a", "1.0")], tls=context)
    secure.override("/simple/a/", 302, b"", {"Location": f"{plain.url}a/"})
    write_spec(project, secure.url, SPEC)
    r = envlock(project, "lock", env={"SSL_CERT_FILE": str(cert)})
    assert r.code == 3
    assert "refusing a redirect from HTTPS to http" in _one_error(r.stderr)
    assert plain.count("/simple/") == 0


def test_retry_after_longer_than_the_cap_fails_at_once_naming_the_server(index, project) -> None:
    server = index([Dist("a", "1.0")])
    write_spec(project, server.url, SPEC)
    server.fail("/simple/a/", 503, times=5, retry_after=3600)
    started = time.monotonic()
    r = envlock(project, "lock")
    assert time.monotonic() - started < 20
    assert r.code == 3
    line = _one_error(r.stderr)
    assert "127.0.0.1" in line and "asks to retry after 3600 s" in line
    assert "waits at most 60 s" in line
    assert "ENVLOCK_RETRY_AFTER_MAX" in r.stderr


def test_retry_after_within_the_cap_is_honoured(index, project) -> None:
    server = index([Dist("a", "1.0")])
    write_spec(project, server.url, SPEC)
    server.fail("/simple/a/", 429, times=1, retry_after=2)
    started = time.monotonic()
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert time.monotonic() - started >= 2
    statuses = [req.status for req in server.requests if req.path == "/simple/a/"]
    assert statuses[:2] == [429, 200]


def test_a_trickling_server_cannot_hold_a_run(index, project) -> None:
    server = index([Dist("a", "1.0")])
    write_spec(project, server.url, SPEC)
    server.trickle("/simple/a/", 0.5)  # one byte every half second: alive, never done
    started = time.monotonic()
    r = envlock(project, "lock", env={"ENVLOCK_HTTP_DEADLINE": "2"})
    assert time.monotonic() - started < 30
    assert r.code == 3
    line = _one_error(r.stderr)
    assert f"did not answer {server.url}a/ within the 2 s deadline" in line
    assert "ENVLOCK_HTTP_DEADLINE" in r.stderr


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        (
            "SSL_CERT_FILE",
            "/nonexistent/ca.pem",
            "SSL_CERT_FILE=/nonexistent/ca.pem is not a readable file",
        ),
        (
            "SSL_CERT_DIR",
            "/nonexistent/certs",
            "SSL_CERT_DIR=/nonexistent/certs is not a readable directory",
        ),
        ("ENVLOCK_HTTP_DEADLINE", "soon", "ENVLOCK_HTTP_DEADLINE must be a number of seconds"),
        ("ENVLOCK_RETRY_AFTER_MAX", "-1", "ENVLOCK_RETRY_AFTER_MAX must be a number of seconds"),
    ],
)
def test_bad_network_settings_are_one_line_errors(
    index, project, var: str, value: str, message: str
) -> None:
    server = index([Dist("a", "1.0")])
    write_spec(project, server.url, SPEC)
    r = envlock(project, "lock", env={var: value})
    assert r.code == 2
    assert message in _one_error(r.stderr)


def test_certificate_file_without_certificates_names_the_variable(
    index, project, tmp_path: Path
) -> None:
    server = index([Dist("a", "1.0")])
    write_spec(project, server.url, SPEC)
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    r = envlock(project, "lock", env={"SSL_CERT_FILE": str(bogus)})
    assert r.code == 2
    assert f"SSL_CERT_FILE={bogus} holds no usable certificates" in _one_error(r.stderr)


def test_file_url_index_on_disk(project, tmp_path: Path) -> None:
    from support.wheels import build

    root = tmp_path / "simple"
    (root / "a").mkdir(parents=True)
    wheel = build(Dist("a", "1.0"), root / "a")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (root / "a" / "index.html").write_text(f'<a href="{wheel.name}#sha256={sha}">a</a>\n')
    write_spec(project, root.as_uri() + "/", SPEC)
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    (pkg,) = load_lock(project / "pylock.toml")["packages"]
    assert pkg["wheels"][0]["url"] == wheel.as_uri()
    assert pkg["wheels"][0]["hashes"]["sha256"] == sha
