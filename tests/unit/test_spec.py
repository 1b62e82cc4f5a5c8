"""envlock.toml parsing and validation: values, inheritance, one-line errors, content hash."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from envlock._toml import tomllib
from envlock.errors import SpecError
from envlock.platforms import PlatformOptions
from envlock.spec import load_spec, parse_spec
from envlock.spec_indexes import DEFAULT_INDEX_URL, Index

FULL_SPEC = """\
python = "3.11"
platforms = ["linux-64", "osx-arm64"]
dependencies = ["requests>=2.31", "rich[jupyter]; sys_platform == 'linux'"]
exclude-newer = 2024-03-01T12:00:00Z
allow-sdist = ["Some_Pkg", "other.pkg"]
prerelease = "allow"

[[index]]
name = "internal"
url = "https://pkgs.example.com/simple"

[[index]]
name = "pypi"
url = "https://pypi.org/simple/"

[platform-tags]
glibc = "2.17"
macos-x86_64 = "11.0"
macos-arm64 = "12.0"

[environments.test]
dependencies = ["pytest"]

[environments.docs]
python = "3.12"
platforms = ["win-64"]
exclude-newer = "2024-01-01"
allow-sdist = true
prerelease = "disallow"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "envlock.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _parse(text: str, path: Path = Path("/proj/envlock.toml")):
    return parse_spec(tomllib.loads(textwrap.dedent(text)), path)


def _error(text: str, path: Path = Path("/proj/envlock.toml")) -> SpecError:
    with pytest.raises(SpecError) as info:
        _parse(text, path)
    return info.value


# --- happy path ------------------------------------------------------------------------------


def test_full_spec_top_level_values_are_parsed(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, FULL_SPEC))
    root = spec.root

    assert root.name is None
    assert root.label == "default"
    assert root.python == "3.11"
    assert root.platforms == ("linux-64", "osx-arm64")
    assert root.dependencies == ("requests>=2.31", 'rich[jupyter]; sys_platform == "linux"')
    assert [r.name for r in root.requirements] == ["requests", "rich"]
    assert root.exclude_newer == datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert root.allow_sdist == frozenset({"some-pkg", "other-pkg"})
    assert root.prerelease == "allow"
    assert root.spec_dir == tmp_path
    assert root.lock_path == tmp_path / "pylock.toml"


def test_multiple_indexes_keep_order_and_get_trailing_slash(tmp_path: Path) -> None:
    root = load_spec(_write(tmp_path, FULL_SPEC)).root
    assert root.indexes == (
        Index("internal", "https://pkgs.example.com/simple/"),
        Index("pypi", "https://pypi.org/simple/"),
    )


def test_index_defaults_to_pypi_simple() -> None:
    spec = _parse('python = "3.11"\nplatforms = ["linux-64"]\n')
    assert spec.root.indexes == (Index("pypi", DEFAULT_INDEX_URL),)


def test_defaults_when_optional_keys_absent() -> None:
    root = _parse('python = "3.11.7"\nplatforms = ["win-64"]\n').root
    assert root.python == "3.11.7"
    assert root.dependencies == ()
    assert root.exclude_newer is None
    assert root.allow_sdist is False
    assert root.prerelease == "disallow"
    assert root.platform_options == PlatformOptions()


def test_platform_tags_floors_are_parsed(tmp_path: Path) -> None:
    root = load_spec(_write(tmp_path, FULL_SPEC)).root
    assert root.platform_options == PlatformOptions(
        glibc=(2, 17), macos_x86_64=(11, 0), macos_arm64=(12, 0)
    )


def test_platform_tags_musllinux_and_legacy_aliases() -> None:
    root = _parse(
        """
        python = "3.11"
        platforms = ["linux-64"]
        [platform-tags]
        musllinux = "1.2"
        manylinux-legacy-aliases = true
        """
    ).root
    assert root.platform_options.musllinux == (1, 2)
    assert root.platform_options.manylinux_legacy_aliases is True
    assert root.platform_options.glibc == (2, 28)


def test_exclude_newer_as_string_with_z_is_utc() -> None:
    root = _parse(
        'python = "3.11"\nplatforms = ["linux-64"]\nexclude-newer = "2024-03-01T12:00:00Z"\n'
    ).root
    assert root.exclude_newer == datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)


def test_exclude_newer_string_with_offset_is_converted_to_utc() -> None:
    root = _parse(
        'python = "3.11"\nplatforms = ["linux-64"]\nexclude-newer = "2024-03-01T12:00:00+02:00"\n'
    ).root
    assert root.exclude_newer == datetime(2024, 3, 1, 10, 0, tzinfo=timezone.utc)
    assert root.exclude_newer.utcoffset().total_seconds() == 0


def test_exclude_newer_toml_datetime_with_offset_is_converted_to_utc() -> None:
    root = _parse(
        'python = "3.11"\nplatforms = ["linux-64"]\nexclude-newer = 2024-03-01T12:00:00-05:00\n'
    ).root
    assert root.exclude_newer == datetime(2024, 3, 1, 17, 0, tzinfo=timezone.utc)


def test_exclude_newer_bare_date_string_is_midnight_utc() -> None:
    root = _parse('python = "3.11"\nplatforms = ["linux-64"]\nexclude-newer = "2024-03-01"\n').root
    assert root.exclude_newer == datetime(2024, 3, 1, tzinfo=timezone.utc)


def test_allow_sdist_true_allows_every_package() -> None:
    root = _parse('python = "3.11"\nplatforms = ["linux-64"]\nallow-sdist = true\n').root
    assert root.allow_sdist is True
    assert root.sdist_allowed("anything")


def test_allow_sdist_list_matches_normalized_names(tmp_path: Path) -> None:
    root = load_spec(_write(tmp_path, FULL_SPEC)).root
    assert root.sdist_allowed("some-pkg")
    assert root.sdist_allowed("SOME.PKG")
    assert root.sdist_allowed("Other_Pkg")
    assert not root.sdist_allowed("requests")


def test_environment_inherits_python_and_platforms_when_absent(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, FULL_SPEC))
    test = spec.environments["test"]
    assert test.name == "test"
    assert test.python == "3.11"
    assert test.platforms == ("linux-64", "osx-arm64")
    assert test.exclude_newer == spec.root.exclude_newer
    assert test.allow_sdist == spec.root.allow_sdist
    assert test.prerelease == "allow"
    assert test.indexes == spec.root.indexes
    assert test.platform_options == spec.root.platform_options
    assert test.lock_path == tmp_path / "pylock.test.toml"


def test_environment_dependencies_are_added_to_top_level(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, FULL_SPEC))
    assert spec.environments["test"].dependencies == (
        "requests>=2.31",
        'rich[jupyter]; sys_platform == "linux"',
        "pytest",
    )
    assert spec.environments["docs"].dependencies == spec.root.dependencies


def test_environment_own_values_override_top_level(tmp_path: Path) -> None:
    docs = load_spec(_write(tmp_path, FULL_SPEC)).environments["docs"]
    assert docs.python == "3.12"
    assert docs.platforms == ("win-64",)
    assert docs.exclude_newer == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert docs.allow_sdist is True
    assert docs.prerelease == "disallow"


def test_duplicate_platforms_are_collapsed_in_order() -> None:
    root = _parse('python = "3.11"\nplatforms = ["win-64", "linux-64", "win-64"]\n').root
    assert root.platforms == ("win-64", "linux-64")


# --- ENVLOCK_INDEX_URL --------------------------------------------------------------------------


def test_envlock_index_url_mirrors_the_first_index_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVLOCK_INDEX_URL", "http://127.0.0.1:9999/mirror")
    root = load_spec(_write(tmp_path, FULL_SPEC)).root
    assert root.indexes == (
        Index(
            "internal", "https://pkgs.example.com/simple/", mirror="http://127.0.0.1:9999/mirror/"
        ),
        Index("pypi", "https://pypi.org/simple/"),
    )
    assert [i.fetch_url for i in root.indexes] == [
        "http://127.0.0.1:9999/mirror/",
        "https://pypi.org/simple/",
    ]


def test_envlock_index_url_mirrors_default_pypi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVLOCK_INDEX_URL", "http://127.0.0.1:9999/simple/")
    root = _parse('python = "3.11"\nplatforms = ["linux-64"]\n').root
    assert root.indexes == (
        Index("pypi", "https://pypi.org/simple/", mirror="http://127.0.0.1:9999/simple/"),
    )


def test_a_mirror_of_the_index_does_not_change_the_spec_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = BASE + '\n[policy]\nallowed-indexes = ["pypi"]\n'
    plain = _parse(text)
    monkeypatch.setenv("ENVLOCK_INDEX_URL", "http://user:secret@127.0.0.1:9999/simple")
    mirrored = _parse(text)
    assert mirrored.root.content_hash() == plain.root.content_hash()
    assert mirrored.environments["test"].content_hash() == plain.environments["test"].content_hash()
    # The policy admits the mirror's files for the index it mirrors.
    assert mirrored.root.policy.file_allowed(
        "https://pypi.org/simple/", "http://127.0.0.1:9999/files/a-1.0-py3-none-any.whl"
    )
    assert not plain.root.policy.file_allowed(
        "https://pypi.org/simple/", "http://127.0.0.1:9999/files/a-1.0-py3-none-any.whl"
    )


def test_a_malformed_envlock_index_url_is_a_one_line_error_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVLOCK_INDEX_URL", "ftp://user:hunter2@mirror.lan/simple/")
    err = _error('python = "3.11"\nplatforms = ["linux-64"]\n')
    assert err.message.startswith("ENVLOCK_INDEX_URL: not an http(s):// or file:// URL")
    assert "hunter2" not in err.message and "\n" not in err.message


# --- errors --------------------------------------------------------------------------------------


def test_unknown_key_is_one_line_error_naming_file_and_key() -> None:
    err = _error('python = "3.11"\nplatforms = ["linux-64"]\ndependancies = ["x"]\n')
    message = str(err)
    assert message.startswith("/proj/envlock.toml: key 'dependancies': unknown key")
    assert "dependencies" in message  # the allowed keys are listed
    assert "\n" not in message
    assert err.exit_code == 2


def test_unknown_key_in_environment_table_names_full_key() -> None:
    err = _error(
        """
        python = "3.11"
        platforms = ["linux-64"]
        [environments.test]
        index = "https://example.com/simple"
        """
    )
    assert str(err).startswith("/proj/envlock.toml: key 'environments.test.index': unknown key")
    assert "\n" not in str(err)
    assert err.exit_code == 2


def test_unknown_key_in_platform_tags_names_full_key() -> None:
    err = _error('python = "3.11"\nplatforms = ["linux-64"]\n[platform-tags]\nglib = "2.17"\n')
    assert "key 'platform-tags.glib': unknown key" in str(err)
    assert err.exit_code == 2


def test_bad_toml_is_one_line_error_naming_file(tmp_path: Path) -> None:
    path = _write(tmp_path, 'python = "3.11"\nplatforms = [linux-64]\n')
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid TOML: ")
    assert "line 2" in message
    assert "\n" not in message
    assert info.value.exit_code == 2


def test_missing_spec_file_is_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "envlock.toml"
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: spec file not found"
    assert info.value.exit_code == 2


def test_non_utf8_spec_is_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "envlock.toml"
    path.write_bytes(b'python = "3.11\xff"\n')
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: spec is not UTF-8 text"


def test_invalid_requirement_names_file_key_index_and_requirement() -> None:
    err = _error('python = "3.11"\nplatforms = ["linux-64"]\ndependencies = ["ok", "bad >>> 1"]\n')
    message = str(err)
    assert message.startswith(
        "/proj/envlock.toml: key 'dependencies[1]': invalid requirement 'bad >>> 1'"
    )
    assert "\n" not in message
    assert err.exit_code == 2


def test_invalid_requirement_in_environment_names_environment_key() -> None:
    err = _error(
        """
        python = "3.11"
        platforms = ["linux-64"]
        [environments.ci]
        dependencies = ["pytest (("]
        """
    )
    assert "key 'environments.ci.dependencies[0]': invalid requirement 'pytest (('" in str(err)
    assert "\n" not in str(err)


def test_non_string_requirement_is_error() -> None:
    err = _error('python = "3.11"\nplatforms = ["linux-64"]\ndependencies = [3]\n')
    assert "key 'dependencies[0]': must be a string, got 3" in str(err)


def test_direct_url_requirement_is_rejected() -> None:
    err = _error(
        'python = "3.11"\nplatforms = ["linux-64"]\n'
        'dependencies = ["foo @ https://example.com/foo-1.0-py3-none-any.whl"]\n'
    )
    assert "key 'dependencies[0]': direct URL requirements are not supported" in str(err)


def test_unknown_platform_name_lists_known_platforms() -> None:
    err = _error('python = "3.11"\nplatforms = ["linux-64", "macos-arm64"]\n')
    message = str(err)
    assert message.startswith("/proj/envlock.toml: key 'platforms': unknown platform 'macos-arm64'")
    for known in ("linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64"):
        assert known in message
    assert "\n" not in message
    assert err.exit_code == 2


def test_unknown_platform_in_environment_names_environment_key() -> None:
    err = _error(
        """
        python = "3.11"
        platforms = ["linux-64"]
        [environments.gpu]
        platforms = ["linux-ppc64le"]
        """
    )
    assert "key 'environments.gpu.platforms': unknown platform 'linux-ppc64le'" in str(err)


def test_empty_platform_list_is_error() -> None:
    err = _error('python = "3.11"\nplatforms = []\n')
    assert "key 'platforms': must be a non-empty list" in str(err)


def test_missing_python_is_error() -> None:
    err = _error('platforms = ["linux-64"]\n')
    assert str(err).startswith("/proj/envlock.toml: key 'python': is required")
    assert err.exit_code == 2


@pytest.mark.parametrize("value", ['"3"', '"2.7"', '"3.11.7.1"', "3.11", '"py3.11"'])
def test_malformed_python_version_is_error(value: str) -> None:
    err = _error(f'python = {value}\nplatforms = ["linux-64"]\n')
    assert "key 'python': must be a CPython 3 version" in str(err)


def test_bad_prerelease_value_is_error() -> None:
    err = _error('python = "3.11"\nplatforms = ["linux-64"]\nprerelease = "if-necessary"\n')
    message = str(err)
    assert message.startswith("/proj/envlock.toml: key 'prerelease': must be one of")
    assert "'disallow'" in message and "'allow'" in message
    assert err.exit_code == 2


def test_bad_allow_sdist_value_is_error() -> None:
    err = _error('python = "3.11"\nplatforms = ["linux-64"]\nallow-sdist = "numpy"\n')
    assert "key 'allow-sdist': must be true, false or a list of package names" in str(err)


def test_duplicate_index_name_is_error() -> None:
    err = _error(
        """
        python = "3.11"
        platforms = ["linux-64"]
        [[index]]
        name = "pypi"
        url = "https://pypi.org/simple/"
        [[index]]
        name = "pypi"
        url = "https://mirror.example.com/simple/"
        """
    )
    assert str(err) == "/proj/envlock.toml: key 'index[1].name': duplicate index name 'pypi'"
    assert err.exit_code == 2


def test_index_without_http_url_is_error() -> None:
    err = _error(
        """
        python = "3.11"
        platforms = ["linux-64"]
        [[index]]
        name = "internal"
        url = "pkgs.example.com/simple"
        """
    )
    assert "key 'index[0].url': must be an http(s):// or file:// URL" in str(err)


def test_exclude_newer_without_timezone_is_error() -> None:
    err = _error(
        'python = "3.11"\nplatforms = ["linux-64"]\nexclude-newer = "2024-03-01T12:00:00"\n'
    )
    assert "key 'exclude-newer'" in str(err)
    assert "needs a timezone" in str(err)


def test_exclude_newer_toml_local_datetime_is_error() -> None:
    err = _error('python = "3.11"\nplatforms = ["linux-64"]\nexclude-newer = 2024-03-01T12:00:00\n')
    assert "key 'exclude-newer': timestamp needs a timezone" in str(err)


def test_exclude_newer_garbage_is_error() -> None:
    err = _error('python = "3.11"\nplatforms = ["linux-64"]\nexclude-newer = "last tuesday"\n')
    assert "key 'exclude-newer': not an RFC 3339 timestamp: 'last tuesday'" in str(err)


def test_bad_glibc_floor_is_error() -> None:
    err = _error('python = "3.11"\nplatforms = ["linux-64"]\n[platform-tags]\nglibc = "2.17.1"\n')
    assert "key 'platform-tags.glibc': must be a version like \"2.28\"" in str(err)


@pytest.mark.parametrize("name", ["default", "-bad", "has space"])
def test_reserved_or_malformed_environment_name_is_error(name: str) -> None:
    err = _error(f'python = "3.11"\nplatforms = ["linux-64"]\n[environments."{name}"]\n')
    assert f"key 'environments.{name}'" in str(err)


# --- Spec.select ----------------------------------------------------------------------------------


def test_select_without_names_gives_root_then_environments(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, FULL_SPEC))
    assert [e.label for e in spec.select([])] == ["default", "docs", "test"]


def test_select_by_name_and_default(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, FULL_SPEC))
    assert [e.label for e in spec.select(["test", "default"])] == ["test", "default"]


def test_select_unknown_environment_is_error_listing_known(tmp_path: Path) -> None:
    path = _write(tmp_path, FULL_SPEC)
    spec = load_spec(path)
    with pytest.raises(SpecError) as info:
        spec.select(["prod"])
    assert str(info.value) == f"{path}: no environment named 'prod' (known: default, docs, test)"
    assert info.value.exit_code == 2


# --- content hash ---------------------------------------------------------------------------------

BASE = """\
python = "3.11"
platforms = ["linux-64"]
dependencies = ["requests>=2"]

[environments.test]
dependencies = ["pytest"]
"""


def test_content_hash_is_stable_and_prefixed() -> None:
    first = _parse(BASE).root.content_hash()
    assert first.startswith("sha256:")
    assert len(first) == len("sha256:") + 64
    assert _parse(BASE).root.content_hash() == first


def test_content_hash_changes_when_dependencies_change() -> None:
    changed = BASE.replace('"requests>=2"', '"requests>=2", "rich"')
    assert _parse(changed).root.content_hash() != _parse(BASE).root.content_hash()


def test_content_hash_changes_when_python_changes() -> None:
    changed = BASE.replace('"3.11"', '"3.12"')
    assert _parse(changed).root.content_hash() != _parse(BASE).root.content_hash()


def test_content_hash_ignores_comments_and_formatting() -> None:
    commented = "# my project\n" + BASE.replace(
        'dependencies = ["requests>=2"]', 'dependencies = [ "requests>=2" ]  # web'
    )
    assert _parse(commented).root.content_hash() == _parse(BASE).root.content_hash()


def test_content_hash_of_root_ignores_other_environments() -> None:
    changed = BASE.replace('["pytest"]', '["pytest", "coverage"]')
    assert _parse(changed).root.content_hash() == _parse(BASE).root.content_hash()
    assert (
        _parse(changed).environments["test"].content_hash()
        != _parse(BASE).environments["test"].content_hash()
    )


def test_content_hash_ignores_platform_list() -> None:
    changed = BASE.replace('["linux-64"]', '["linux-64", "osx-arm64", "win-64"]')
    assert _parse(changed).root.content_hash() == _parse(BASE).root.content_hash()


def test_content_hash_of_environment_follows_top_level_dependencies() -> None:
    changed = BASE.replace('"requests>=2"', '"requests>=2.31"')
    assert (
        _parse(changed).environments["test"].content_hash()
        != _parse(BASE).environments["test"].content_hash()
    )


def test_content_hash_changes_with_tag_floor() -> None:
    changed = BASE + '\n[platform-tags]\nglibc = "2.17"\n'
    assert _parse(changed).root.content_hash() != _parse(BASE).root.content_hash()


def test_content_hash_ignores_index_credentials() -> None:
    def with_index(url: str) -> str:
        return f'{BASE}\n[[index]]\nname = "corp"\nurl = "{url}"\n'

    plain = _parse(with_index("https://pkgs.example.com/simple/")).root.content_hash()
    secret = _parse(with_index("https://user:s3cret@pkgs.example.com/simple/")).root
    assert secret.content_hash() == plain


def test_content_hash_ignores_dependency_order_and_whitespace() -> None:
    reordered = BASE.replace('["requests>=2"]', '["rich", "requests >= 2"]')
    plain = BASE.replace('["requests>=2"]', '["requests>=2", "rich"]')
    assert _parse(reordered).root.content_hash() == _parse(plain).root.content_hash()


def test_requirement_name_case_does_not_change_the_content_hash(tmp_path: Path) -> None:
    a = parse_spec({"python": "3.11", "dependencies": ["Requests>=2"]}, tmp_path / "envlock.toml")
    b = parse_spec({"python": "3.11", "dependencies": ["requests>=2"]}, tmp_path / "envlock.toml")
    assert a.root.content_hash() == b.root.content_hash()


def test_exclude_newer_accepts_a_bare_toml_date(tmp_path: Path) -> None:
    path = tmp_path / "envlock.toml"
    path.write_text('python = "3.11"\nexclude-newer = 2024-03-01\n')
    spec = load_spec(path)
    assert spec.root.exclude_newer is not None
    assert spec.root.exclude_newer.isoformat() == "2024-03-01T00:00:00+00:00"


# --- index pinning, uniform versions, insecure hosts -------------------------------------------


def test_index_packages_are_pinned_and_normalised() -> None:
    spec = _parse(
        """
        python = "3.11"
        platforms = ["linux-64"]
        [[index]]
        name = "pypi"
        url = "https://pypi.org/simple/"
        [[index]]
        name = "private"
        url = "https://pkgs.example.com/simple"
        packages = ["Internal_Lib", "other"]
        """
    )
    pypi, private = spec.root.indexes
    assert not pypi.explicit and pypi.packages == frozenset()
    assert private.explicit and private.packages == {"internal-lib", "other"}
    assert private.url == "https://pkgs.example.com/simple/"


@pytest.mark.parametrize(
    ("packages", "message"),
    [
        ('"x"', "must be a list of package names"),
        ('[""]', "must be a list of package names"),
        ('["bad name!"]', "not a package name: 'bad name!'"),
    ],
)
def test_bad_index_packages_are_errors(packages: str, message: str) -> None:
    err = _error(
        f'python = "3.11"\n[[index]]\nname = "a"\nurl = "https://a/simple/"\n'
        f"packages = {packages}\n"
    )
    assert "key 'index[0].packages'" in str(err) and message in str(err)


def test_pinning_changes_the_spec_hash() -> None:
    base = (
        'python = "3.11"\nplatforms = ["linux-64"]\n[[index]]\nname = "a"\nurl = "https://a/s/"\n'
    )
    plain = _parse(base).root.content_hash()
    pinned = _parse(base + 'packages = ["x"]\n').root.content_hash()
    assert plain != pinned


def test_uniform_versions_is_inherited_and_hashed() -> None:
    spec = _parse(
        """
        python = "3.11"
        uniform-versions = true
        [environments.a]
        [environments.b]
        uniform-versions = false
        """
    )
    assert spec.root.uniform_versions
    assert spec.environments["a"].uniform_versions
    assert not spec.environments["b"].uniform_versions
    off = _parse('python = "3.11"\n').root
    assert off.content_hash() != spec.root.content_hash()


def test_uniform_versions_must_be_a_boolean() -> None:
    err = _error('python = "3.11"\nuniform-versions = "yes"\n')
    assert "key 'uniform-versions': must be true or false" in str(err)


def test_insecure_hosts_are_read_and_checked() -> None:
    spec = _parse('python = "3.11"\ninsecure-hosts = ["Mirror.LAN", "10.0.0.5:8080"]\n')
    assert spec.root.insecure_hosts == {"mirror.lan", "10.0.0.5:8080"}
    assert _parse('python = "3.11"\n').root.insecure_hosts == frozenset()
    err = _error('python = "3.11"\ninsecure-hosts = ["http://x/"]\n')
    assert "key 'insecure-hosts': not a host name" in str(err)
    err = _error('python = "3.11"\ninsecure-hosts = "x"\n')
    assert "key 'insecure-hosts': must be a list" in str(err)


def test_legacy_aliases_default_on_and_can_be_turned_off() -> None:
    assert _parse('python = "3.11"\n').root.platform_options.manylinux_legacy_aliases
    off = _parse('python = "3.11"\n[platform-tags]\nmanylinux-legacy-aliases = false\n')
    assert not off.root.platform_options.manylinux_legacy_aliases


# -- interpreter = "bundled" | "system", python-mirror, [interpreter-sources] -------------------

SOURCE = 'url = "https://files.example/py/cpython-3.11.9-linux.tar.gz"\nsha256 = "' + "AB" * 32


def test_interpreter_defaults_to_bundled_and_environments_inherit_or_override() -> None:
    spec = _parse(
        'python = "3.11"\n[environments.legacy]\ninterpreter = "system"\n[environments.other]\n'
    )
    assert spec.root.interpreter == "bundled"
    assert spec.environments["legacy"].interpreter == "system"
    assert spec.environments["other"].interpreter == "bundled"
    system = _parse('python = "3.11"\ninterpreter = "system"\n[environments.x]\n')
    assert system.environments["x"].interpreter == "system"


def test_interpreter_sources_and_mirror_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVLOCK_PYTHON_MIRROR", raising=False)
    spec = _parse(
        'python = "3.11"\npython-mirror = "https://mirror.lan/pbs"\n'
        f'[interpreter-sources.linux-64]\n{SOURCE}"\nversion = "3.11.9"\n'
    )
    source = spec.root.interpreter_sources["linux-64"]
    assert source.sha256 == "ab" * 32 and source.version == "3.11.9"
    assert spec.root.mirror == "https://mirror.lan/pbs"
    monkeypatch.setenv("ENVLOCK_PYTHON_MIRROR", "file:///srv/pbs")
    assert spec.root.mirror == "file:///srv/pbs"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('interpreter = "docker"', "interpreter"),
        ("interpreter = true", "interpreter"),
        ('python-mirror = "ftp://m/x"', "python-mirror"),
        ('python-mirror = "https://u:p@m/x"', "python-mirror"),
        (
            '[interpreter-sources.linux-99]\nurl = "https://h/x.tar.gz"',
            "interpreter-sources.linux-99",
        ),
        ("[interpreter-sources]\nlinux-64 = 1", "interpreter-sources.linux-64"),
        (f'[interpreter-sources.linux-64]\n{SOURCE[:-5]}"', "interpreter-sources.linux-64.sha256"),
        (
            '[interpreter-sources.linux-64]\nurl = "https://h/python.zip"\nsha256 = "'
            + "a" * 64
            + '"',
            "interpreter-sources.linux-64.url",
        ),
        (
            '[interpreter-sources.linux-64]\nurl = "https://u:pw@h/p.tar.gz"\nsha256 = "'
            + "a" * 64
            + '"',
            "interpreter-sources.linux-64.url",
        ),
        (
            f'[interpreter-sources.linux-64]\n{SOURCE}"\nversion = "3.11"',
            "interpreter-sources.linux-64.version",
        ),
        (
            f'[interpreter-sources.linux-64]\n{SOURCE}"\npath = "/x"',
            "interpreter-sources.linux-64.path",
        ),
        ('[environments.x]\ninterpreter = "conda"', "environments.x.interpreter"),
    ],
)
def test_bad_interpreter_keys_are_one_line_errors_naming_the_key(text: str, key: str) -> None:
    with pytest.raises(SpecError) as info:
        _parse(f'python = "3.11"\n{text}\n')
    message = str(info.value)
    assert f"key '{key}'" in message and "\n" not in message
    assert "pw@" not in message and ":p@" not in message


def test_the_interpreter_is_part_of_the_content_hash(tmp_path: Path) -> None:
    path = tmp_path / "envlock.toml"
    base = {"python": "3.11", "platforms": ["linux-64"]}
    bundled = parse_spec(base, path).root.content_hash()
    system = parse_spec({**base, "interpreter": "system"}, path).root.content_hash()
    sourced = parse_spec(
        {
            **base,
            "interpreter-sources": {
                "linux-64": {"url": "https://h/p.tar.gz", "sha256": "a" * 64, "version": "3.11.2"}
            },
        },
        path,
    ).root.content_hash()
    other_platform = parse_spec(
        {
            **base,
            "interpreter-sources": {"win-64": {"url": "https://h/p.tar.gz", "sha256": "a" * 64}},
        },
        path,
    ).root.content_hash()
    assert len({bundled, system, sourced}) == 3
    assert other_platform == bundled  # a source for a platform not locked changes nothing
    mirrored = parse_spec({**base, "python-mirror": "https://m/pbs"}, path).root.content_hash()
    assert mirrored == bundled  # where bytes come from is not what they are


def test_the_snapshot_key_is_read_and_checked() -> None:
    assert _parse('python = "3.11"\nsnapshot = "s3://bucket/team"\n').root.snapshot == (
        "s3://bucket/team"
    )
    assert _parse('python = "3.11"\n[environments.x]\n').environments["x"].snapshot is None
    for bad in ('"https://b/x"', '"s3://key:secret@b/x"', "1"):
        with pytest.raises(SpecError) as info:
            _parse(f'python = "3.11"\nsnapshot = {bad}\n')
        assert "snapshot" in str(info.value) and "secret" not in str(info.value)


# --- constraints ---------------------------------------------------------------------------------


def test_constraints_are_inherited_and_added_to_like_dependencies() -> None:
    spec = _parse(
        BASE.replace('dependencies = ["requests>=2"]', 'constraints = ["urllib3<2"]')
        + "constraints = [\"Pytest==8.0 ; python_version >= '3.8'\"]\n"
    )
    assert spec.root.constraints == ("urllib3<2",)
    assert spec.environments["test"].constraints == (
        "urllib3<2",
        'Pytest==8.0; python_version >= "3.8"',
    )
    assert spec.root.dependencies == ()


def test_constraints_are_part_of_the_spec_hash_only_when_present() -> None:
    plain = _parse(BASE).root.content_hash()
    assert _parse("constraints = []\n" + BASE).root.content_hash() == plain  # older locks stay
    limited = _parse('constraints = ["urllib3<2"]\n' + BASE).root.content_hash()
    assert limited != plain
    assert _parse('constraints = ["URLLIB3 <2"]\n' + BASE).root.content_hash() == limited
    assert _parse('constraints = ["urllib3<1.27"]\n' + BASE).root.content_hash() != limited


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"urllib3<2"', "key 'constraints': must be a list of PEP 508 requirement strings"),
        ('["requests[socks]<3"]', "key 'constraints[0]': a constraint is a name, versions"),
        ('["ok<1", "x @ https://e.com/x.whl"]', "key 'constraints[1]': direct URL requirements"),
        ('["not a requirement!"]', "key 'constraints[0]': invalid requirement"),
        ("[3]", "key 'constraints[0]': must be a string"),
    ],
)
def test_bad_constraints_are_one_line_errors_naming_the_key(value: str, expected: str) -> None:
    err = _error(f'python = "3.11"\nplatforms = ["linux-64"]\nconstraints = {value}\n')
    assert expected in str(err) and "\n" not in err.message


def test_bad_environment_constraints_name_the_environment_key() -> None:
    err = _error(BASE + 'constraints = ["a[x]"]\n')
    assert "key 'environments.test.constraints[0]'" in err.message
