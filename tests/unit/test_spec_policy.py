"""``[policy]`` in the spec: values, errors, the spec hash, deny matching (pure)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from envlock.errors import SpecError
from envlock.platforms import Target
from envlock.spec import parse_spec
from envlock.spec_policy import denied_by

BASE = {"python": "3.11", "interpreter": "system", "platforms": ["linux-64"]}


def _spec(policy, **extra):
    return parse_spec({**BASE, **extra, "policy": policy}, Path("envlock.toml")).root


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7 days", 7 * 86400),
        ("1 day", 86400),
        ("36 hours", 36 * 3600),
        ("2 weeks", 14 * 86400),
        ("90 min", 5400),
        ("7d", 7 * 86400),
        ("12h", 43200),
        (" 3 Days ", 3 * 86400),
    ],
)
def test_min_age(text, seconds):
    assert _spec({"min-age": text}).policy.min_age == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["7", "seven days", "7 fortnights", "-1 day", "99999 weeks", 7, ""])
def test_bad_min_age(bad):
    with pytest.raises(SpecError, match=r"policy\.min-age"):
        _spec({"min-age": bad})


def test_allowed_indexes_names_and_prefixes():
    spec = _spec(
        {"allowed-indexes": ["corp", "https://mirror.example.com", "pypi"]},
        index=[{"name": "corp", "url": "https://corp.example/simple"}],
    )
    policy = spec.policy
    assert policy.index_allowed("https://corp.example/simple/")
    assert policy.index_allowed("https://mirror.example.com/simple/")
    assert policy.index_allowed("https://pypi.org/simple/")
    # A bare host is a prefix of its own paths, not of a look-alike host.
    assert not policy.index_allowed("https://mirror.example.com.evil.org/simple/")
    assert not policy.index_allowed("https://other.example/simple/")
    assert not policy.index_allowed(None)


def test_no_rule_allows_everything_and_leaves_the_hash_alone():
    plain = parse_spec(BASE, Path("envlock.toml")).root
    assert plain.policy.empty and plain.policy.index_allowed(None)
    assert _spec({}).content_hash() == plain.content_hash()
    assert _spec({"deny": ["x"]}).content_hash() != plain.content_hash()


def test_policy_is_inherited_by_environments():
    spec = parse_spec(
        {**BASE, "policy": {"deny": ["x<2"]}, "environments": {"train": {"python": "3.12"}}},
        Path("envlock.toml"),
    )
    assert spec.environments["train"].policy.deny == ("x<2",)


def test_policy_in_an_environment_is_refused():
    with pytest.raises(SpecError, match="policy"):
        parse_spec({**BASE, "environments": {"t": {"policy": {}}}}, Path("envlock.toml"))


@pytest.mark.parametrize(
    ("rule", "name", "version", "platform", "hit"),
    [
        ("pyyaml<5.4", "PyYAML", "5.3.1", "linux-64", True),
        ("pyyaml<5.4", "pyyaml", "5.4", "linux-64", False),
        ("tensorflow", "tensorflow", "2.16.0", "linux-64", True),
        ("tensorflow", "tensorflow", "2.17.0rc1", "linux-64", True),  # prereleases too
        ("foo_bar==1.*", "foo-bar", "1.2", "linux-64", True),
        ("lib; sys_platform == 'win32'", "lib", "1.0", "linux-64", False),
        ("lib; sys_platform == 'win32'", "lib", "1.0", "win-64", True),
    ],
)
def test_denied_by(rule, name, version, platform, hit):
    target = Target(platform, "3.11")
    found = denied_by((Requirement(rule),), name, Version(version), target.environment)
    assert (found is not None) is hit


def test_url_prefixes_stop_at_path_boundaries():
    policy = _spec({"allowed-indexes": ["https://pkgs.example.com/simple"]}).policy
    assert policy.index_allowed("https://pkgs.example.com/simple/")
    assert policy.index_allowed("https://pkgs.example.com/simple")
    assert policy.index_allowed("https://PKGS.example.com/simple/team/")
    assert not policy.index_allowed("https://pkgs.example.com/simple-untrusted/")
    assert not policy.index_allowed("https://pkgs.example.com/simple/../untrusted/")
    assert not policy.index_allowed("https://pkgs.example.com/simple/%2E%2E/untrusted/")


def test_pypi_files_must_be_on_files_pythonhosted_org():
    policy = _spec({"allowed-indexes": ["pypi"]}).policy
    pypi = "https://pypi.org/simple/"
    wheel = "/packages/ab/cd/lib-1.0-py3-none-any.whl"
    assert policy.file_allowed(pypi, "https://files.pythonhosted.org" + wheel)
    # The index label alone proves nothing: the file is what gets installed.
    assert not policy.file_allowed(pypi, "https://evil.example.com" + wheel)
    assert not policy.file_allowed(pypi, "https://files.pythonhosted.org.evil.com" + wheel)
    assert not policy.file_allowed(pypi, "http://files.pythonhosted.org" + wheel)
    assert not policy.file_allowed(None, "https://files.pythonhosted.org" + wheel)


def test_an_index_serves_files_from_its_own_host_and_the_files_it_names():
    index = [
        {
            "name": "corp",
            "url": "https://corp.example/simple/",
            "files": ["https://cdn.example.net/corp"],
        },
        {"name": "other", "url": "https://other.example/simple/"},
    ]
    for rule in ("corp", "https://corp.example/"):
        policy = _spec({"allowed-indexes": [rule, "other"]}, index=index).policy
        corp = "https://corp.example/simple/"
        assert policy.file_allowed(corp, "https://corp.example/packages/lib-1.0.tar.gz")
        assert policy.file_allowed(corp, "https://cdn.example.net/corp/lib-1.0.tar.gz")
        assert not policy.file_allowed(corp, "https://cdn.example.net/corp-evil/lib-1.0.tar.gz")
        # Files of one allowed index are not files of another.
        assert not policy.file_allowed(corp, "https://other.example/lib-1.0.tar.gz")
        assert policy.file_allowed("https://other.example/simple/", "https://other.example/x")


def test_a_loopback_index_serves_files_from_its_own_port():
    url = "http://127.0.0.1:8123/simple/"
    policy = _spec({"allowed-indexes": ["local"]}, index=[{"name": "local", "url": url}]).policy
    assert policy.file_allowed(url, "http://127.0.0.1:8123/files/lib-1.0-py3-none-any.whl")
    assert not policy.file_allowed(url, "http://127.0.0.1:8124/files/lib-1.0-py3-none-any.whl")


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ("https://cdn.example.net/", "must be a list"),
        (["cdn.example.net"], "not an http(s)"),
        (["https://u:p/ss#w?rd@cdn.example.net/"], "credentials"),
        (["https://cdn.example.net/?x=1"], "not a URL prefix"),
    ],
)
def test_bad_index_files_are_one_line_errors(files, says):
    index = [{"name": "corp", "url": "https://corp.example/simple/", "files": files}]
    with pytest.raises(SpecError, match=r"index\[0\]\.files") as info:
        parse_spec({**BASE, "index": index}, Path("envlock.toml"))
    assert says in str(info.value) and "p/ss" not in str(info.value)


@pytest.mark.parametrize(
    "rule",
    [
        'lib; extra == "gpu"',
        "lib>=2; python_version >= '3' and 'x' in extras",
        "lib; dependency_groups == 'dev'",
    ],
)
def test_a_deny_marker_on_extras_or_groups_is_refused(rule):
    with pytest.raises(SpecError, match=r"policy\.deny\[0\].*cannot be used in a deny marker"):
        _spec({"deny": [rule]})
    # The word as a quoted value is no variable.
    assert _spec({"deny": ["lib; platform_release == 'extra'"]}).policy.deny


# --- license-exceptions --------------------------------------------------------------------------


def test_license_exceptions_add_licenses_for_matching_packages_only():
    policy = _spec(
        {
            "allowed-licenses": ["MIT"],
            "license-exceptions": {
                "NVIDIA_*": ["LicenseRef-NVIDIA-Proprietary"],
                "cuda-?": ["LicenseRef-CUDA", "bsd-3-clause"],
                "special.pkg": ["GPL-3.0-only"],
            },
        }
    ).policy
    assert policy.license_exceptions == (
        ("nvidia-*", ("LicenseRef-NVIDIA-Proprietary",)),
        ("cuda-?", ("LicenseRef-CUDA", "BSD-3-Clause")),
        ("special-pkg", ("GPL-3.0-only",)),
    )
    assert policy.licenses_for("nvidia-cublas-cu12") == ("MIT", "LicenseRef-NVIDIA-Proprietary")
    assert policy.licenses_for("NVIDIA.cudnn_cu12") == ("MIT", "LicenseRef-NVIDIA-Proprietary")
    assert policy.licenses_for("cuda-x") == ("MIT", "LicenseRef-CUDA", "BSD-3-Clause")
    assert policy.licenses_for("cuda-xy") == ("MIT",)
    assert policy.licenses_for("Special_Pkg") == ("MIT", "GPL-3.0-only")
    assert policy.licenses_for("torch") == ("MIT",)
    assert _spec({}).policy.licenses_for("nvidia-x") is None  # no list: anything goes


def test_license_exceptions_are_part_of_the_spec_hash():
    plain = _spec({"allowed-licenses": ["MIT"]}).content_hash()
    one = _spec({"allowed-licenses": ["MIT"], "license-exceptions": {"a-*": ["ISC"]}})
    other = _spec({"allowed-licenses": ["MIT"], "license-exceptions": {"a-*": ["0BSD"]}})
    assert len({plain, one.content_hash(), other.content_hash()}) == 3


@pytest.mark.parametrize(
    ("exceptions", "says"),
    [
        (["nvidia-*"], "key 'policy.license-exceptions': must be a table of name globs"),
        ({"nvidia/*": ["MIT"]}, "not a package name or glob"),
        ({"nvidia-[0-9]": ["MIT"]}, "not a package name or glob"),
        ({"": ["MIT"]}, "not a package name or glob"),
        ({"a-*": "MIT"}, "key 'policy.license-exceptions.\"a-*\"': must be a list of strings"),
        ({"a-*": ["Not A License"]}, "\"a-*\"': not an SPDX identifier: 'Not A License'"),
        ({"torch": []}, "key 'policy.license-exceptions.torch': lists no license"),
        ({"Foo_Bar": ["MIT"], "foo.bar": ["ISC"]}, "'foo.bar' repeats the glob 'foo-bar'"),
    ],
)
def test_bad_license_exceptions_are_one_line_errors(exceptions, says):
    with pytest.raises(SpecError) as info:
        _spec({"allowed-licenses": ["MIT"], "license-exceptions": exceptions})
    assert says in info.value.message and "\n" not in info.value.message


def test_license_exceptions_without_allowed_licenses_are_refused():
    with pytest.raises(SpecError) as info:
        _spec({"license-exceptions": {"nvidia-*": ["LicenseRef-NVIDIA-Proprietary"]}})
    assert "license-exceptions': needs allowed-licenses" in info.value.message
