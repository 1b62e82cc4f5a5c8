"""``envlock init``: the real CLI writes a starter spec that envlock's own loader accepts, imports
real-world requirement files and pyproject.toml, refuses to overwrite, and locks right away."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from envlock._toml import tomllib
from envlock.actions.init import choose_python, default_platforms, host_python
from envlock.actions.init_template import SpecValues, render, toml_string
from envlock.platforms import host_platform
from envlock.spec import Spec, load_spec, parse_spec
from integration.helpers import envlock, selected
from support.wheels import Dist

DATA = Path(__file__).parent / "data" / "init"
HOST_PLATFORMS = list(dict.fromkeys([host_platform(), "linux-64"]))


def norm(*reqs: str) -> list[str]:
    return [str(Requirement(r)) for r in reqs]


def init(project: Path, *args: str, env: dict[str, str] | None = None) -> Spec:
    r = envlock(project, "init", *args, env=env)
    assert r.code == 0, r.stderr
    return load_spec(project / "envlock.toml")


def copy_fixture(name: str, project: Path) -> Path:
    shutil.copytree(DATA / name, project / name)
    return project / name


# --- pure pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requires", "host", "expected"),
    [
        (None, "3.11", "3.11"),
        (">=3.8", "3.11", "3.11"),
        (">=3.12", "3.11", "3.12"),
        ("<3.11,>=3.9", "3.12", "3.10"),
        ("~=3.11.4", "3.11", "3.11"),
        ("==3.13.*", "3.10", "3.13"),
        (">=3.10,!=3.11.*", "3.11", "3.10"),
    ],
)
def test_choose_python(requires, host, expected):
    spec = SpecifierSet(requires) if requires else None
    assert choose_python(spec, host) == expected


def test_choose_python_fails_when_nothing_fits():
    from envlock.errors import UsageError

    with pytest.raises(UsageError, match="--python"):
        choose_python(SpecifierSet("<3.0"), "3.11")


def test_default_platforms_host_first_once():
    assert default_platforms("osx-arm64") == ("osx-arm64", "linux-64")
    assert default_platforms("linux-64") == ("linux-64",)


@pytest.mark.parametrize(
    "value", ['a"b', "a'b", "both ' and \"", "back\\slash", "tab\tand\nnewline\x7f", "ünï"]
)
def test_toml_strings_round_trip(value):
    assert tomllib.loads(f"k = {toml_string(value)}")["k"] == value


def test_rendered_spec_loads_with_every_value(tmp_path):
    from envlock.importers import ImportedIndex

    values = SpecValues(
        python="3.12.4",
        platforms=("win-64", "linux-aarch64"),
        dependencies=('a; sys_platform == "linux"', "b[x]>=1"),
        environments={"docs": ("sphinx",), "x.y": ()},
        indexes=(ImportedIndex("corp", "https://corp.example/simple/"),),
        insecure_hosts=("mirror.lan",),
        prerelease=True,
        interpreter="system",
    )
    spec = parse_spec(tomllib.loads(render(values)), tmp_path / "envlock.toml")
    root = spec.root
    assert (root.python, root.platforms, root.dependencies) == (
        "3.12.4",
        ("win-64", "linux-aarch64"),
        ('a; sys_platform == "linux"', "b[x]>=1"),
    )
    assert [(i.name, i.url) for i in root.indexes] == [("corp", "https://corp.example/simple/")]
    assert root.prerelease == "allow" and root.interpreter == "system"
    assert root.insecure_hosts == {"mirror.lan"}
    assert spec.environments["docs"].dependencies == (*root.dependencies, "sphinx")
    assert spec.environments["x.y"].dependencies == root.dependencies


# --- the command -------------------------------------------------------------------------------


def test_default_init_uses_host_python_and_platforms(project):
    r = envlock(project, "init", "requests>=2.31", "numpy; sys_platform == 'linux'")
    assert r.code == 0, r.stderr
    spec = load_spec(project / "envlock.toml")
    assert spec.root.python == host_python()
    assert list(spec.root.platforms) == HOST_PLATFORMS
    assert list(spec.root.dependencies) == norm("requests>=2.31", "numpy; sys_platform == 'linux'")
    assert spec.root.interpreter == "bundled" and spec.environments == {}
    assert "wrote envlock.toml" in r.stderr and "envlock lock`" in r.stderr
    text = (project / "envlock.toml").read_text()
    for commented in ("# [policy]", "# deny = ", "# min-age = ", "# allowed-licenses = "):
        assert commented in text
    assert '# allowed-indexes = ["pypi"]' in text and '# interpreter = "bundled"' in text
    # Uncommenting the policy example gives a [policy] table with the documented keys.
    uncommented = "\n".join(
        line[2:].split("  #")[0]
        if line.startswith(("# [policy]", "# allowed-", "# deny", "# min"))
        else line
        for line in text.splitlines()
    )
    assert set(tomllib.loads(uncommented)["policy"]) == {
        "allowed-indexes",
        "deny",
        "min-age",
        "allowed-licenses",
    }
    assert [p.name for p in project.iterdir()] == ["envlock.toml"]  # no temporary file left


def test_explicit_python_platforms_interpreter_and_spec_path(project):
    r = envlock(
        project,
        "init",
        "--python",
        "3.12",
        "-p",
        "osx-arm64",
        "--platform",
        "win-64",
        "--platform",
        "osx-arm64",
        "--interpreter",
        "system",
        "--spec",
        "sub/dir/my.toml",
        "attrs",
    )
    assert r.code == 0, r.stderr
    spec = load_spec(project / "sub" / "dir" / "my.toml")
    assert (spec.root.python, spec.root.platforms) == ("3.12", ("osx-arm64", "win-64"))
    assert spec.root.interpreter == "system"
    assert "envlock lock --spec sub/dir/my.toml" in r.stderr
    assert not (project / "envlock.toml").exists()


def test_file_mode_follows_the_umask(project):
    old = os.umask(0o027)
    try:
        init(project)
    finally:
        os.umask(old)
    assert stat.S_IMODE((project / "envlock.toml").stat().st_mode) == 0o640


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--python", "3"], "--python: must be a CPython 3 version"),
        (["--python", "2.7"], "--python"),
        (["--platform", "solaris-64"], "unknown platform 'solaris-64'"),
        (["--interpreter", "pypy"], "--interpreter"),
        (["requests>="], "invalid requirement 'requests>='"),
        (["attrs", "x @ https://e.com/x.whl"], "direct URL"),
        (["--from", "nope.txt"], "nope.txt: requirements file not found"),
    ],
)
def test_bad_arguments_fail_in_one_line_and_write_nothing(project, args, says):
    r = envlock(project, "init", *args)
    assert r.code == 2, r.stderr
    assert says in r.stderr and r.stderr.startswith("error: ")
    assert "Traceback" not in r.stderr
    assert list(project.iterdir()) == []


def test_refuses_to_overwrite(project):
    (project / "envlock.toml").write_text('python = "3.11"\n')
    r = envlock(project, "init", "attrs")
    assert r.code == 2
    assert "already exists" in r.stderr and "hint:" in r.stderr
    assert (project / "envlock.toml").read_text() == 'python = "3.11"\n'


def test_refuses_a_dangling_symlink(project):
    (project / "envlock.toml").symlink_to(project / "elsewhere.toml")
    assert envlock(project, "init").code == 2
    assert not (project / "elsewhere.toml").exists()


# --- imports of real-world files ------------------------------------------------------------------

PIP_COMPILE = norm(
    "annotated-types==0.6.0",
    "anyio==4.3.0",
    "click==8.1.7",
    "fastapi==0.110.0",
    'greenlet==3.0.3 ; platform_machine == "aarch64" or (platform_machine == "ppc64le" or '
    '(platform_machine == "x86_64" or (platform_machine == "amd64" or (platform_machine == '
    '"AMD64" or (platform_machine == "win32" or platform_machine == "WIN32")))))',
    "h11==0.14.0",
    "httptools==0.6.1",
    "idna==3.6",
    "pydantic==2.6.4",
    "pydantic-core==2.16.3",
    "python-dotenv==1.0.1",
    "pyyaml==6.0.1",
    "sniffio==1.3.1",
    "sqlalchemy[asyncio]==2.0.28",
    "starlette==0.36.3",
    "typing-extensions==4.10.0",
    "uvicorn[standard]==0.29.0",
    'uvloop==0.19.0 ; (sys_platform != "win32" and sys_platform != "cygwin") and '
    'platform_python_implementation != "PyPy"',
    "watchfiles==0.21.0",
    "websockets==12.0",
)


def test_pip_compile_output_with_hashes_and_via_comments(project):
    src = copy_fixture("pip-compile", project)
    r = envlock(project, "init", "--from", str(src / "requirements.txt"))
    assert r.code == 0, r.stderr
    spec = load_spec(project / "envlock.toml")
    assert list(spec.root.dependencies) == PIP_COMPILE
    assert [i.name for i in spec.root.indexes] == ["pypi"]  # --index-url PyPI: the default
    assert "--hash option(s) ignored" in r.stderr
    assert "from requirements.txt" in (project / "envlock.toml").read_text()


def test_pip_compile_input(project):
    spec = init(project, "--from", str(DATA / "pip-compile" / "requirements.in"))
    assert list(spec.root.dependencies) == norm(
        "fastapi>=0.110", "uvicorn[standard]>=0.29", "sqlalchemy[asyncio]>=2.0"
    )


DJANGO_BASE = norm(
    "python-slugify==8.0.4",
    "Pillow==10.2.0",
    "argon2-cffi==23.1.0",
    "whitenoise==6.6.0",
    "redis==5.0.3",
    "hiredis==2.3.2",
    "celery==5.3.6",
    "django-celery-beat==2.6.0",
    "flower==2.0.1",
    "uvicorn[standard]==0.29.0",
    "django==4.2.11",
    "django-environ==0.11.2",
    "django-model-utils==4.4.0",
    "django-allauth[mfa]==0.61.1",
    "django-crispy-forms==2.1",
    "crispy-bootstrap5==2024.2",
    "django-redis==5.4.0",
)


def test_django_requirements_dir_with_includes(project):
    src = copy_fixture("django", project)
    spec = init(project, "--from", str(src / "requirements.txt"))
    assert list(spec.root.dependencies) == [
        *DJANGO_BASE,
        *norm("gunicorn==21.2.0", "psycopg[c]==3.1.18", "sentry-sdk==1.44.0"),
        *norm("django-anymail[mailgun]==10.3"),
    ]
    r = envlock(project, "init", "--from", str(src / "requirements/local.txt"), "--spec", "l.toml")
    assert r.code == 0, r.stderr
    deps = list(load_spec(project / "l.toml").root.dependencies)
    assert deps[: len(DJANGO_BASE)] == DJANGO_BASE and len(deps) == len(DJANGO_BASE) + 14
    assert deps[-1] == "pytest-django==4.8.0" and "Werkzeug[watchdog]==3.0.1" in deps


def test_httpx_shaped_pyproject_extras_and_dependency_groups(project):
    src = copy_fixture("httpx", project)
    r = envlock(project, "init", "--from", str(src / "pyproject.toml"))
    assert r.code == 0, r.stderr
    spec = load_spec(project / "envlock.toml")
    top = norm("certifi", "httpcore==1.*", "anyio", "idna")
    assert list(spec.root.dependencies) == top
    assert spec.root.python == host_python()  # requires-python >=3.8 allows the host's
    brotli = norm(
        "brotli; platform_python_implementation == 'CPython'",
        "brotlicffi; platform_python_implementation != 'CPython'",
    )
    cli = norm("click==8.*", "pygments==2.*", "rich>=10,<14")
    test = [
        *brotli,
        *norm("h2>=3,<5", "socksio==1.*", "zstandard>=0.18.0", "chardet==5.2.0"),
        *norm("pytest==8.3.3", "trio==0.27.0", "trustme==1.2.0", "uvicorn==0.32.0"),
    ]
    lint = norm("mypy==1.13.0", "ruff==0.7.3")
    expected = {
        "brotli": brotli,
        "cli": cli,
        "http2": norm("h2>=3,<5"),
        "socks": norm("socksio==1.*"),
        "zstd": norm("zstandard>=0.18.0"),
        "test": test,
        "lint": lint,
        "dev": [*test, *lint, *cli],
    }
    assert {n: list(e.dependencies) for n, e in spec.environments.items()} == {
        n: top + deps for n, deps in expected.items()
    }
    assert spec.environments["dev"].lock_path.name == "pylock.dev.toml"


def test_black_shaped_pyproject_picks_a_python_from_requires_python(project):
    src = copy_fixture("black", project)
    spec = init(project, "--from", str(src / "pyproject.toml"))
    host = host_python()
    assert spec.root.python == (host if int(host.split(".")[1]) >= 12 else "3.12")
    assert spec.environments["all"].dependencies[-4:] == tuple(
        norm(
            "colorama>=0.4.3",
            "aiohttp>=3.10",
            "ipython>=7.8.0; sys_platform != 'win32'",
            "tokenize-rt>=3.2.0; sys_platform != 'win32'",
        )
    )
    assert set(spec.environments) == {"colorama", "uvloop", "d", "jupyter", "all"}


def test_python_option_outside_requires_python_warns(project):
    src = copy_fixture("black", project)
    r = envlock(project, "init", "--python", "3.10", "--from", str(src / "pyproject.toml"))
    assert r.code == 0, r.stderr
    assert "outside the project's requires-python" in r.stderr
    assert load_spec(project / "envlock.toml").root.python == "3.10"


def test_private_index_credentials_never_reach_the_file(project):
    src = copy_fixture("private", project)
    r = envlock(project, "init", "--from", str(src / "requirements.txt"), "extra-tool")
    assert r.code == 0, r.stderr
    text = (project / "envlock.toml").read_text()
    assert "s3cr3t" not in text and "deploy" not in text
    assert "credentials removed" in r.stderr and "s3cr3t" not in r.stderr
    spec = load_spec(project / "envlock.toml")
    assert [(i.name, i.url) for i in spec.root.indexes] == [
        ("pkgs-example-com", "https://pkgs.example.com/simple/"),
        ("pypi", "https://pypi.org/simple/"),
    ]
    assert spec.root.prerelease == "allow"
    assert list(spec.root.dependencies) == norm(
        "our-internal-lib>=2.1", 'requests[socks]>=2.31 ; python_version >= "3.10"', "extra-tool"
    )


@pytest.mark.parametrize(
    "line",
    [
        "--index-url https://user:p/ss#w?rd@pkgs.example.com/simple/",
        "-i https://user:p/ss#w?rd@pkgs.example.com/simple/",
        "--index-url=https://user:p/ss#w?rd@pkgs.example.com/simple/",
        "--extra-index-url https://user:p/ss#w?rd@pkgs.example.com/simple/",
    ],
)
def test_a_password_with_slash_hash_and_question_mark_never_reaches_file_or_output(project, line):
    # urlsplit would take "p" for the host's port and leave "/ss#w?rd@..." as path and fragment.
    (project / "requirements.txt").write_text(f"{line}\nattrs\n")
    r = envlock(project, "init", "--from", "requirements.txt")
    assert r.code == 0, r.stderr
    text = (project / "envlock.toml").read_text()
    for part in ("p/ss#w?rd", "p/ss", "w?rd", "user:"):
        assert part not in text and part not in r.stdout and part not in r.stderr, part
    assert "credentials removed from index https://pkgs.example.com/simple/" in r.stderr
    assert "ENVLOCK_INDEX_PKGS_EXAMPLE_COM_PASSWORD" in r.stderr and "netrc" in r.stderr
    urls = [i.url for i in load_spec(project / "envlock.toml").root.indexes]
    assert "https://pkgs.example.com/simple/" in urls


def test_credentials_in_a_refused_url_are_not_echoed(project):
    lines = [
        "-r https://user:p/ss#w?rd@pkgs.example.com/reqs.txt",
        "lib @ https://user:p/ss#w?rd@pkgs.example.com/lib-1.0-py3-none-any.whl",
        "--index-url ftp://user:p/ss#w?rd@pkgs.example.com/simple/",
    ]
    for line in lines:
        (project / "requirements.txt").write_text(f"{line}\n")
        r = envlock(project, "init", "--from", "requirements.txt")
        assert r.code == 2, r.stderr
        assert "pkgs.example.com" in r.stderr
        assert "p/ss" not in r.stderr and "w?rd" not in r.stderr, r.stderr
        assert not (project / "envlock.toml").exists()


def test_unsupported_line_is_named_with_file_and_line(project):
    (project / "requirements.txt").write_text("attrs\n-e ./src/mylib\n")
    r = envlock(project, "init", "--from", "requirements.txt")
    assert r.code == 2
    assert "requirements.txt:2: editable installs" in r.stderr
    assert not (project / "envlock.toml").exists()


def test_poetry_only_pyproject_is_a_clear_error(project):
    (project / "pyproject.toml").write_text('[tool.poetry.dependencies]\npython = "^3.11"\n')
    r = envlock(project, "init", "--from", "pyproject.toml")
    assert r.code == 2 and "Poetry project without a [project] table" in r.stderr


# --- init, then lock --------------------------------------------------------------------------


def test_init_then_lock_against_the_index(index, project):
    server = index([Dist("app", "1.0", requires=["helper>=2"]), Dist("helper", "2.1")])
    env = {"ENVLOCK_INDEX_URL": server.url}
    init(project, "--interpreter", "system", "--platform", "linux-64", "app", env=env)
    r = envlock(project, "lock", env=env)
    assert r.code == 0, r.stderr
    python = host_python()
    assert selected(project / "pylock.toml", "linux-64", python) == {
        "app": "1.0",
        "helper": "2.1",
    }
    assert envlock(project, "lock", "--check", env=env).code == 0


def test_init_from_requirements_with_index_url_then_lock(index, project):
    server = index([Dist("app", "1.0"), Dist("tool", "3.0"), Dist("tool", "4.0b1")])
    (project / "requirements.txt").write_text(
        f"--index-url {server.url}\n--pre\napp==1.0 --hash=sha256:00\n"
    )
    (project / "pyproject.toml").write_text(
        '[project]\nname = "svc"\ndependencies = ["app"]\n[dependency-groups]\ndev = ["tool"]\n'
    )
    init(project, "--from", "requirements.txt", "--interpreter", "system", "-p", "linux-64")
    r = envlock(project, "lock")
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.toml", "linux-64", host_python()) == {"app": "1.0"}
    (project / "envlock.toml").unlink()
    (project / "pylock.toml").unlink()
    env = {"ENVLOCK_INDEX_URL": server.url}
    spec = init(project, "--from", "pyproject.toml", "--interpreter", "system", env=env)
    assert set(spec.environments) == {"dev"}
    r = envlock(project, "lock", "--platform", "linux-64", env=env)
    assert r.code == 0, r.stderr
    assert selected(project / "pylock.dev.toml", "linux-64", host_python()) == {
        "app": "1.0",
        "tool": "3.0",
    }
