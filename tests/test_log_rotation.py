"""The JSON log of a bot that runs for weeks starts again past ``[runner].log_max_mb``,
keeping ``log_backups`` full ones (name.1 newest), and turns only between whole lines."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from framework import log
from framework.config import Config
from framework.log import RotatingFile


def test_the_log_turns_between_whole_lines_and_keeps_its_backups(tmp_path: Path) -> None:
    path = tmp_path / "orderly.jsonl"
    with RotatingFile(path, max_bytes=2_000, backups=2) as stream:
        log.configure("info", stream=stream, json=True)  # type: ignore[arg-type]
        for n in range(200):
            log.get_logger("test").info("tick", n=n, pad="x" * 40)
        log.configure("warning")
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["orderly.jsonl", "orderly.jsonl.1", "orderly.jsonl.2"]
    for file in files:
        assert 0 < file.stat().st_size <= 2_000 + 200  # one line past the size at most
        assert (file.stat().st_mode & 0o777) == 0o600
        numbers = [json.loads(line)["n"] for line in file.read_text().splitlines()]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # whole, in order
    newest = [json.loads(line)["n"] for line in path.read_text().splitlines()]
    assert newest[-1] == 199  # the oldest lines are gone, the newest kept


def test_the_runner_config_sets_the_size_and_the_backups() -> None:
    runner = Config.model_validate({"runner": {"log_max_mb": 1, "log_backups": 0}}).runner
    assert (runner.log_max_mb, runner.log_backups) == (1, 0)
    default = Config().runner
    assert (default.log_max_mb, default.log_backups) == (50, 5)


def test_a_turn_the_file_system_refuses_costs_lines_not_the_bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "orderly.jsonl"

    def refuse(*args: object) -> None:
        raise OSError(errno.EACCES, "Permission denied")

    with RotatingFile(path, max_bytes=500, backups=50) as stream:
        log.configure("info", stream=stream, json=True)  # type: ignore[arg-type]
        with monkeypatch.context() as patch:
            patch.setattr("framework.log.shift_backups", refuse)
            for n in range(20):  # every turn refused meanwhile; logging goes on
                log.get_logger("test").info("tick", n=n, pad="x" * 40)
        for n in range(20, 40):
            log.get_logger("test").info("tick", n=n, pad="x" * 40)
        log.configure("warning")
    said = capsys.readouterr().err
    assert "cannot be written (Permission denied): its lines are lost until it can" in said
    assert "is written again" in said
    written = [
        json.loads(line)["n"] for f in tmp_path.iterdir() for line in f.read_text().splitlines()
    ]
    assert 39 in written and len(written) >= 30  # lines lost, not the logger
