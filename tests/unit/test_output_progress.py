"""Progress off a terminal: a long run says what it is doing every few seconds."""

from __future__ import annotations

import time

import pytest

from envlock.cli import output
from envlock.progress import LockProgress


def test_off_a_terminal_the_status_is_printed_while_the_work_lasts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVLOCK_PROGRESS_INTERVAL", "0.05")
    stats = LockProgress()
    stats.enter("resolving default for linux-64 / cp311")
    with output.progress(stats):
        stats.candidate_tried()
        time.sleep(0.3)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) >= 2
    assert all(ln.startswith("resolving default for linux-64 / cp311 · ") for ln in lines)
    assert "1 candidates tried" in lines[-1]
    time.sleep(0.15)  # nothing more once the work is done
    assert capsys.readouterr().err == ""


def test_quiet_prints_no_status(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVLOCK_PROGRESS_INTERVAL", "0.05")
    monkeypatch.setattr(output.Verbosity, "level", -1)
    with output.progress(LockProgress()):
        time.sleep(0.2)
    assert capsys.readouterr().err == ""


def test_the_interval_can_be_turned_off_and_bad_values_fall_back(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVLOCK_PROGRESS_INTERVAL", "0")
    with output.progress(LockProgress()):
        time.sleep(0.1)
    assert capsys.readouterr().err == ""
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("ENVLOCK_PROGRESS_INTERVAL", bad)
        assert output._plain_every() == output.PLAIN_EVERY
