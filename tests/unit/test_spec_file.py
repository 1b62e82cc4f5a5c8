"""Finding the spec: --spec FILE, --spec DIR, or the nearest envlock.toml walking up."""

from __future__ import annotations

from pathlib import Path

import pytest

from envlock.errors import SpecError
from envlock.spec_file import init_target, locate_spec


def test_spec_in_the_current_directory_is_named_relatively(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "envlock.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    assert locate_spec(None) == Path("envlock.toml")


def test_nearest_parent_spec_wins(tmp_path: Path) -> None:
    (tmp_path / "envlock.toml").write_text("")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "envlock.toml").write_text("")
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    assert locate_spec(None, cwd=deep) == (tmp_path / "a" / "envlock.toml").resolve()


def test_a_directory_named_envlock_toml_is_not_a_spec(tmp_path: Path) -> None:
    (tmp_path / "envlock.toml").write_text("")
    (tmp_path / "sub" / "envlock.toml").mkdir(parents=True)
    assert locate_spec(None, cwd=tmp_path / "sub") == (tmp_path / "envlock.toml").resolve()


def test_spec_option_is_a_file_or_a_directory(tmp_path: Path) -> None:
    assert locate_spec(tmp_path) == tmp_path / "envlock.toml"
    assert locate_spec(str(tmp_path / "other.toml")) == tmp_path / "other.toml"
    assert init_target(tmp_path) == tmp_path / "envlock.toml"
    assert init_target(None) == Path("envlock.toml")


def test_no_spec_anywhere_is_one_line_pointing_at_init(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        locate_spec(None, cwd=tmp_path)
    assert str(info.value) == f"no envlock.toml in {tmp_path} or any parent directory"
    assert info.value.hint is not None and "envlock init" in info.value.hint
