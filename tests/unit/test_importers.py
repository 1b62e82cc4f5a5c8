"""Importing pip requirement files and pyproject.toml for ``envlock init``: every rule, and
hostile inputs (cycles, bombs, binary data, wrong TOML types) fail in one line naming the file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from envlock.errors import UsageError
from envlock.importers import Imported, ImportedIndex, import_file
from envlock.importers.model import MAX_BYTES
from envlock.importers.requirements import MAX_FILES


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def reqs(tmp_path: Path, text: str, name: str = "requirements.txt") -> Imported:
    return import_file(write(tmp_path / name, text))


def fails(path: Path) -> str:
    with pytest.raises(UsageError) as info:
        import_file(path)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- requirement files ---------------------------------------------------------------------


def test_comments_blank_lines_continuations_markers_and_extras(tmp_path):
    got = reqs(
        tmp_path,
        """\
        # a comment
        requests[socks]>=2.31   # inline comment

        numpy>=1.26 ; platform_machine != 'aarch64'
        django\\
        >=4.2,\\
        <5   # continued over three lines
            # indented comment
        """,
    )
    assert got.dependencies == (
        "requests[socks]>=2.31",
        'numpy>=1.26; platform_machine != "aarch64"',
        "django<5,>=4.2",
    )
    assert got.indexes == () and not got.prerelease and got.warnings == ()


def test_hash_like_fragment_without_space_is_part_of_the_requirement(tmp_path):
    # pip only starts a comment at a '#' after whitespace: "pkg#x" is not a valid requirement.
    message = fails(write(tmp_path / "r.txt", "pkg#frag\n"))
    assert "r.txt:1" in message and "invalid requirement" in message


def test_a_comment_line_ends_a_continuation_as_pip_does(tmp_path):
    got = reqs(tmp_path, "attrs \\\n# comment \\\nsix\n")
    assert got.dependencies == ("attrs", "six")


def test_trailing_backslash_at_end_of_file(tmp_path):
    assert reqs(tmp_path, "attrs>=23 \\").dependencies == ("attrs>=23",)


def test_bom_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"\xef\xbb\xbfattrs==23.1\r\nsix\r\n")
    assert import_file(path).dependencies == ("attrs==23.1", "six")


def test_hashes_are_ignored_with_one_warning(tmp_path):
    got = reqs(
        tmp_path,
        """\
        attrs==23.1.0 \\
            --hash=sha256:aaaa \\
            --hash sha256:bbbb
            # via -r requirements.in
        six==1.16.0 --hash=sha256:cccc
        """,
    )
    assert got.dependencies == ("attrs==23.1.0", "six==1.16.0")
    assert len(got.warnings) == 1 and "3 --hash option(s) ignored" in got.warnings[0]


def test_includes_are_relative_to_the_including_file(tmp_path):
    write(tmp_path / "reqs" / "base.txt", "django==4.2.11\n-r ../common/shared.txt\n")
    write(tmp_path / "common" / "shared.txt", "attrs\n")
    write(tmp_path / "reqs" / "extra.txt", "six\n")
    top = write(
        tmp_path / "reqs" / "dev.txt",
        "-r base.txt\n--requirement=extra.txt\n-rbase.txt\npytest\n",
    )
    assert import_file(top).dependencies == ("django==4.2.11", "attrs", "six", "pytest")


def test_diamond_includes_are_not_cycles_and_identical_lines_merge(tmp_path):
    write(tmp_path / "base.txt", "django==4.2\n")
    write(tmp_path / "test.txt", "-r base.txt\npytest\n")
    write(tmp_path / "lint.txt", "-r base.txt\nruff\n")
    top = write(tmp_path / "dev.txt", "-r test.txt\n-r lint.txt\nDjango>=4\ndjango==4.2\n")
    # Identical requirements appear once; different ones for one name are kept (the resolver
    # intersects them).
    assert import_file(top).dependencies == ("django==4.2", "pytest", "ruff", "Django>=4")


def test_include_cycle_is_an_error_naming_the_chain(tmp_path):
    write(tmp_path / "a.txt", "attrs\n-r b.txt\n")
    write(tmp_path / "b.txt", "-r a.txt\n")
    message = fails(tmp_path / "a.txt")
    assert "include each other" in message and "a.txt -> " in message and "b.txt" in message


def test_self_include_is_a_cycle(tmp_path):
    assert "include each other" in fails(write(tmp_path / "r.txt", "-r r.txt\n"))


def test_missing_include_names_file_and_line(tmp_path):
    message = fails(write(tmp_path / "r.txt", "attrs\n\n-r nope.txt\n"))
    assert message.startswith(f"{tmp_path / 'r.txt'}:3:") and "nope.txt not found" in message


def test_include_bomb_is_refused(tmp_path):
    write(tmp_path / "leaf.txt", "attrs\n")
    top = write(tmp_path / "r.txt", "-r leaf.txt\n" * (MAX_FILES + 5))
    assert f"more than {MAX_FILES}" in fails(top)


def test_include_from_url_is_refused(tmp_path):
    message = fails(write(tmp_path / "r.txt", "-r https://example.com/r.txt\n"))
    assert "r.txt:1" in message and "URLs" in message


def test_constraint_files_become_constraints_with_pips_nesting_rules(tmp_path):
    write(
        tmp_path / "pins" / "constraints.txt",
        """\
        # a constraints file: limits, never installs
        urllib3<2
        Requests==2.31.0 ; python_version >= "3.8"
        -c more.txt
        -r extra-requirements.txt
        """,
    )
    write(tmp_path / "pins" / "more.txt", "idna==3.6\n")
    write(tmp_path / "pins" / "extra-requirements.txt", "rich\n-c ../last.txt\n")
    write(tmp_path / "last.txt", "six<2\n")
    got = reqs(tmp_path, "--constraint=pins/constraints.txt\nattrs\n")
    # pip: -r inside a constraints file includes requirements, -c inside anything constraints.
    assert got.dependencies == ("rich", "attrs")
    assert got.constraints == (
        "urllib3<2",
        'Requests==2.31.0; python_version >= "3.8"',
        "idna==3.6",
        "six<2",
    )
    assert not got.warnings


def test_constraint_hashes_are_dropped_and_extras_removed_with_warnings(tmp_path):
    write(
        tmp_path / "c.txt",
        """\
        pyjwt[crypto]==2.8.0 \\
            --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000
        uvicorn[standard,other]<1 ; sys_platform == "linux"
        """,
    )
    got = reqs(tmp_path, "-c c.txt\n")
    assert got.constraints == ("pyjwt==2.8.0", 'uvicorn<1; sys_platform == "linux"')
    assert got.dependencies == ()
    assert any("c.txt: 1 --hash option(s) ignored" in w for w in got.warnings)
    assert any(
        "c.txt: extras removed from 2 constraint(s)" in w and "pyjwt[crypto]==2.8.0" in w
        for w in got.warnings
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("-e ./local", "c.txt:2: editable installs (-e) are not supported"),
        ("pkg @ https://example.com/pkg-1.0.whl", "c.txt:2: direct URL requirements"),
        ("https://example.com/pkg-1.0.tar.gz", "c.txt:2: direct URL requirements"),
        ("./vendor/pkg-1.0.tar.gz", "c.txt:2: local paths and archive files"),
        ("git+https://example.com/pkg.git", "c.txt:2: VCS requirements are not supported"),
    ],
)
def test_constraint_lines_envlock_cannot_honour_are_refused_naming_file_and_line(
    tmp_path, line, expected
):
    write(tmp_path / "c.txt", f"ok==1\n{line}\n")
    assert expected in fails(write(tmp_path / "requirements.txt", "-c c.txt\n"))


def test_a_missing_or_remote_constraints_file_is_refused(tmp_path):
    assert "requirements.txt:1: included file nope.txt not found" in fails(
        write(tmp_path / "requirements.txt", "-c nope.txt\n")
    )
    assert "constraints files from URLs are not supported" in fails(
        write(tmp_path / "requirements.txt", "-c https://example.com/c.txt\n")
    )


def test_an_airflow_sized_constraints_file_is_imported_whole(tmp_path):
    pins = [f"provider-{i}==1.{i}.0" for i in range(728)]
    write(tmp_path / "constraints-3.11.txt", "# generated\n" + "\n".join(pins) + "\n")
    got = reqs(tmp_path, "apache-airflow==2.10.5\n-c constraints-3.11.txt\n")
    assert got.dependencies == ("apache-airflow==2.10.5",)
    assert got.constraints == tuple(pins)


def test_pre_sets_prerelease(tmp_path):
    assert reqs(tmp_path, "--pre\nattrs\n").prerelease


def test_index_urls_become_indexes_extra_ones_first(tmp_path):
    got = reqs(
        tmp_path,
        """\
        -i https://mirror.example.com/pypi/simple
        --extra-index-url=https://pkgs.example.com/simple/
        --extra-index-url https://pkgs.example.com/other/simple
        attrs
        """,
    )
    assert got.indexes == (
        ImportedIndex("pkgs-example-com", "https://pkgs.example.com/simple/"),
        ImportedIndex("pkgs-example-com-2", "https://pkgs.example.com/other/simple/"),
        ImportedIndex("mirror-example-com", "https://mirror.example.com/pypi/simple/"),
    )
    assert any("first that has it" in w for w in got.warnings)


def test_pypi_alone_means_no_index_table(tmp_path):
    assert reqs(tmp_path, "--index-url https://pypi.org/simple\nattrs\n").indexes == ()


def test_extra_index_puts_pypi_last(tmp_path):
    got = reqs(tmp_path, "--extra-index-url https://pkgs.example.com/simple\nattrs\n")
    assert [i.name for i in got.indexes] == ["pkgs-example-com", "pypi"]


def test_credentials_are_stripped_with_a_warning(tmp_path):
    got = reqs(
        tmp_path,
        "--extra-index-url https://deploy:s3cr3t@pkgs.example.com/simple/\nattrs\n",
    )
    assert got.indexes[0].url == "https://pkgs.example.com/simple/"
    assert "s3cr3t" not in repr(got)
    warning = next(w for w in got.warnings if "credentials removed" in w)
    assert "ENVLOCK_INDEX_PKGS_EXAMPLE_COM_USERNAME" in warning and "netrc" in warning


def test_credentials_holding_url_delimiters_are_stripped_whole(tmp_path):
    got = reqs(tmp_path, "-i https://user:p/ss#w?rd@pkgs.example.com/simple\nattrs\n")
    assert [i.url for i in got.indexes] == ["https://pkgs.example.com/simple/"]
    assert "p/ss" not in repr(got) and "w?rd" not in repr(got)
    assert any("ENVLOCK_INDEX_PKGS_EXAMPLE_COM_USERNAME" in w for w in got.warnings)
    # An '@' in the path of a plain host (Azure Artifacts' feed@view) is not a credential.
    url = "https://pkgs.dev.azure.com/org/_packaging/feed@Local/pypi/simple/"
    got = reqs(tmp_path, f"--index-url {url}\nattrs\n")
    assert [i.url for i in got.indexes] == [url]
    assert not any("credentials" in w for w in got.warnings)


def test_credentials_for_pypi_are_dropped_with_a_warning(tmp_path):
    got = reqs(tmp_path, "--index-url https://me:t/k@pypi.org/simple\nattrs\n")
    assert got.indexes == ()
    assert "t/k" not in repr(got)
    assert any("credentials removed from index https://pypi.org/simple/" in w for w in got.warnings)


def test_environment_variables_are_refused(tmp_path):
    message = fails(
        write(tmp_path / "r.txt", "attrs\n--extra-index-url https://${TOKEN}@h.example/simple\n")
    )
    assert "r.txt:2" in message and "${TOKEN}" in message and "not expanded" in message


def test_trusted_host_becomes_insecure_hosts(tmp_path):
    got = reqs(tmp_path, "--trusted-host Mirror.LAN\n-i http://mirror.lan/simple\nattrs\n")
    assert got.insecure_hosts == ("mirror.lan",)
    assert got.indexes[0].url == "http://mirror.lan/simple/"


def test_bad_index_url_is_refused(tmp_path):
    message = fails(write(tmp_path / "r.txt", "-i ftp://x/simple\n"))
    assert "r.txt:1" in message and "http(s)://" in message


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("-e .", "editable"),
        ("--editable=git+https://github.com/o/r#egg=r", "editable"),
        ("-e git+https://github.com/o/r#egg=r", "editable"),
        ("git+https://github.com/pallets/flask@main#egg=flask", "VCS"),
        ("https://example.com/pkg-1.0.tar.gz", "direct URL"),
        ("flask @ https://example.com/flask-3.0-py3-none-any.whl", "direct URL"),
        ("./vendor/mypkg", "local paths"),
        ("/opt/wheels/pkg-1.0-py3-none-any.whl", "local paths"),
        ("pkg-1.0-py3-none-any.whl", "local paths"),
        ("..", "local paths"),
        ("--find-links ./wheels", "--find-links"),
        ("-f https://example.com/wheels/", "--find-links"),
        ("--no-index", "--no-index"),
        ("--frobnicate", "unsupported option"),
        ("--index-url", "needs a value"),
        ("attrs --hash='sha256:x", "cannot parse options"),
        ("requests>=", "invalid requirement"),
        ("--trusted-host 'bad host!'", "not a host name"),
    ],
)
def test_unsupported_lines_name_file_line_and_what(tmp_path, line, says):
    message = fails(write(tmp_path / "r.txt", f"attrs\n# note\n{line}\n"))
    assert message.startswith(f"{tmp_path / 'r.txt'}:3: ") and says in message


def test_continued_line_errors_point_at_its_first_line(tmp_path):
    message = fails(write(tmp_path / "r.txt", "attrs\n-e \\\n  .\n"))
    assert "r.txt:2:" in message


def test_ignored_pip_options_warn(tmp_path):
    got = reqs(tmp_path, "--no-binary :all:\n--prefer-binary\n--only-binary=:all:\nattrs\n")
    assert got.dependencies == ("attrs",)
    assert [w for w in got.warnings if "--no-binary ignored" in w]


def test_missing_directory_binary_huge_and_non_utf8_files(tmp_path):
    assert "not found" in fails(tmp_path / "absent.txt")
    assert "directory" in fails(tmp_path)
    garbage = tmp_path / "garbage.txt"
    garbage.write_bytes(bytes(range(256)) * 4)
    assert "binary data" in fails(garbage)
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9\n")
    assert "not UTF-8" in fails(latin)
    huge = tmp_path / "huge.txt"
    huge.write_bytes(b"attrs\n" * (MAX_BYTES // 6 + 10))
    assert "larger than" in fails(huge)


def test_many_lines_are_fine(tmp_path):
    text = "".join(f"pkg{i}=={i}.0\n" for i in range(5000))
    assert len(reqs(tmp_path, text).dependencies) == 5000


# --- pyproject.toml ------------------------------------------------------------------------

PROJECT = """\
[project]
name = "My_Proj"
requires-python = ">=3.10"
dependencies = ["httpx>=0.27", "rich; sys_platform != 'win32'"]

[project.optional-dependencies]
Dev_Tools = ["ruff"]
test = ["pytest>=8"]
all = ["my-proj[dev-tools,test]; python_version >= '3.11'", "my_proj"]
"""


def pyproject(tmp_path: Path, text: str) -> Path:
    return write(tmp_path / "pyproject.toml", text)


def test_project_dependencies_extras_and_self_references(tmp_path):
    got = import_file(pyproject(tmp_path, PROJECT))
    assert got.dependencies == ("httpx>=0.27", 'rich; sys_platform != "win32"')
    assert got.requires_python == SpecifierSet(">=3.10")
    assert dict(got.environments) == {
        "dev-tools": ("ruff",),
        "test": ("pytest>=8",),
        # the self-reference's marker carries over; a bare self-reference adds nothing
        "all": ('ruff; python_version >= "3.11"', 'pytest>=8; python_version >= "3.11"'),
    }


def test_dependency_groups_expand_includes_and_self_references(tmp_path):
    got = import_file(
        pyproject(
            tmp_path,
            PROJECT
            + """
[dependency-groups]
Lint = ["mypy"]
typing = [{include-group = "lint"}, "types-requests"]
dev = [{include-group = "Typing"}, "my-proj[test]", "ipython"]
""",
        )
    )
    envs = dict(got.environments)
    assert envs["lint"] == ("mypy",)
    assert envs["typing"] == ("mypy", "types-requests")
    assert envs["dev"] == ("mypy", "types-requests", "pytest>=8", "ipython")


def test_dependency_groups_without_a_project_table(tmp_path):
    got = import_file(pyproject(tmp_path, '[dependency-groups]\ndocs = ["sphinx"]\n'))
    assert got.dependencies == () and dict(got.environments) == {"docs": ("sphinx",)}


def test_group_named_like_an_extra_gets_a_suffix(tmp_path):
    got = import_file(pyproject(tmp_path, PROJECT + '[dependency-groups]\nTest = ["hypothesis"]\n'))
    assert got.environments["test"] == ("pytest>=8",)
    assert got.environments["test-group"] == ("hypothesis",)
    assert any("test-group" in w for w in got.warnings)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            '[dependency-groups]\na = [{include-group = "b"}]\nb = [{include-group = "a"}]\n',
            "include each other: a -> b -> a",
        ),
        ('[dependency-groups]\na = [{include-group = "a"}]\n', "include each other"),
        ('[dependency-groups]\na = [{include-group = "zzz"}]\n', "unknown group 'zzz'"),
        ('[dependency-groups]\na = [{include = "b"}]\n', "entries are requirement strings"),
        ("[dependency-groups]\na = [1]\n", "entries are requirement strings"),
        ('[dependency-groups]\na = "x"\n', "must be a list"),
        ('[dependency-groups]\nA_b = ["x"]\na-B = ["y"]\n', "defined twice"),
        ('[dependency-groups]\n"bad name!" = ["x"]\n', "not a valid group name"),
        ('dependency-groups = ["x"]\n', "[dependency-groups] must be a table"),
        ('[dependency-groups]\ndefault = ["x"]\n', "reserves 'default'"),
        ('[dependency-groups]\na = ["not a req!"]\n', "invalid requirement"),
        (
            '[tool.poetry]\nname = "x"\n[tool.poetry.dependencies]\npython = "^3.10"\n',
            "Poetry project without a [project] table",
        ),
        ('[build-system]\nrequires = ["setuptools"]\n', "no [project] table"),
        ('project = "x"\n', "[project] must be a table"),
        ('[project]\nname = "x"\ndependencies = "attrs"\n', "must be a list of strings"),
        ('[project]\nname = "x"\ndependencies = [1]\n', "must be a list of strings"),
        ('[project]\nname = "x"\ndynamic = ["dependencies"]\n', "dynamic"),
        ('[project]\nname = "x"\nrequires-python = 3.10\n', "requires-python"),
        ('[project]\nname = "x"\nrequires-python = "3.10+"\n', "requires-python"),
        ('[project]\nname = "x"\noptional-dependencies = ["a"]\n', "must be a table"),
        (
            '[project]\nname = "x"\n[project.optional-dependencies]\nt = "pytest"\n',
            "must be a list of strings",
        ),
        (
            '[project]\nname = "x"\n[project.optional-dependencies]\n"a b" = []\n',
            "not a valid extra name",
        ),
        (
            '[project]\nname = "x"\n[project.optional-dependencies]\nA = []\na = []\n',
            "extra defined twice",
        ),
        ('[project]\nname = "x"\ndependencies = ["x[nope]"]\n', "does not define"),
        ('[project]\nname = "x"\ndependencies = ["y @ https://e.com/y.whl"]\n', "direct URL"),
        ('[project]\nname = "x"\ndependencies = ["y>="]\n', "invalid requirement"),
        ("[project\n", "invalid TOML"),
    ],
)
def test_bad_pyproject_fails_in_one_line(tmp_path, text, says):
    message = fails(pyproject(tmp_path, text))
    assert message.startswith(str(tmp_path / "pyproject.toml")) and says in message


def test_a_refused_direct_url_in_pyproject_is_shown_without_its_credentials(tmp_path):
    text = '[project]\nname = "x"\ndependencies = ["y @ https://u:p/ss@e.com/y.whl"]\n'
    message = fails(pyproject(tmp_path, text))
    assert "direct URL" in message and "https://e.com/y.whl" in message
    assert "p/ss" not in message


def test_dynamic_optional_dependencies_warn(tmp_path):
    got = import_file(
        pyproject(tmp_path, '[project]\nname = "x"\ndynamic = ["optional-dependencies"]\n')
    )
    assert got.environments == {} and any("dynamic" in w for w in got.warnings)


def test_mutually_recursive_extras_are_a_union(tmp_path):
    got = import_file(
        pyproject(
            tmp_path,
            '[project]\nname = "x"\n[project.optional-dependencies]\n'
            'a = ["x[b]", "aa"]\nb = ["x[a]", "bb"]\n',
        )
    )
    assert set(got.environments["a"]) == {"aa", "bb"}
    assert set(got.environments["b"]) == {"aa", "bb"}


def test_binary_pyproject_is_refused(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_bytes(b"\x00\x01\x02[project]")
    assert "binary data" in fails(path)


def test_diamond_group_and_extra_bombs_expand_quickly(tmp_path):
    n = 40  # without memoisation: 2**40 expansions
    groups = "".join(
        f'g{i} = [{{include-group = "g{i + 1}"}}, {{include-group = "g{i + 1}"}}]\n'
        for i in range(n)
    )
    extras = "".join(f'e{i} = ["x[e{i + 1}]", "x[e{i + 1}]"]\n' for i in range(n))
    got = import_file(
        pyproject(
            tmp_path,
            f'[project]\nname = "x"\n[project.optional-dependencies]\n{extras}e{n} = ["leaf"]\n'
            f'[dependency-groups]\n{groups}g{n} = ["leaf"]\n',
        )
    )
    assert got.environments["g0"] == ("leaf",) and got.environments["e0"] == ("leaf",)


def test_cyclic_extra_bomb_is_refused(tmp_path):
    names = [f"e{i}" for i in range(12)]
    refs = ", ".join(f'"x[{n}]"' for n in names)
    extras = "".join(f'{n} = [{refs}, "{n}-dep"]\n' for n in names)
    message = fails(
        pyproject(tmp_path, f'[project]\nname = "x"\n[project.optional-dependencies]\n{extras}')
    )
    assert "too intricately" in message


def test_deeply_nested_toml_is_invalid_toml(tmp_path):
    assert "invalid TOML" in fails(pyproject(tmp_path, "a = " + "[" * 100_000))
