"""The nonce store checks itself at open: a store that lost writes (deleted, WAL lost,
zero-length) for a key its history knows is refused with the way to resume; a corrupted one
is a typed error; resuming never sends a nonce the exchange refuses; crash-restarts in a row
do not push the floor ahead of the clock."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from framework.cli import main as orderly
from framework.errors import StateError, StoreBehind
from framework.exchanges.kraken.client import KrakenClient
from framework.nonce import SqliteStore
from framework.nonce.history import NonceHistory
from framework.nonce.source import IncreasingNonces
from framework.sandbox import Sandbox


def config_for(tmp: Path) -> Path:
    path = tmp / "bot.toml"
    path.write_text(f'[state]\nstore = "{tmp / "nonces.sqlite"}"\nhistory = "{tmp / "h.jsonl"}"\n')
    return path


async def trade(sandbox: Sandbox, creds: tuple[str, str], tmp: Path, calls: int = 3) -> None:
    store, history = SqliteStore(tmp / "nonces.sqlite"), NonceHistory(tmp / "h.jsonl")
    try:
        async with KrakenClient(
            *creds, sandbox.base_url, store=store, history=history, tier=None
        ) as kraken:
            for _ in range(calls):
                await kraken.balance()
    finally:
        history.close()
        store.close()


def lose_the_store(tmp: Path, how: str) -> None:
    db = tmp / "nonces.sqlite"
    if how == "deleted":
        for path in tmp.glob("nonces.sqlite*"):
            path.unlink()
    elif how == "zero-length":
        for path in tmp.glob("nonces.sqlite-*"):
            path.unlink()
        db.write_bytes(b"")


@pytest.mark.parametrize("how", ["deleted", "zero-length"])
async def test_a_store_that_lost_its_floor_is_refused_then_resumed_from_the_history(
    tmp_path: Path, creds: tuple[str, str], how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with Sandbox(dict([creds])) as sandbox:
        await trade(sandbox, creds, tmp_path)
        lose_the_store(tmp_path, how)
        with pytest.raises(StoreBehind, match="orderly nonces resume") as refused:
            await trade(sandbox, creds, tmp_path)
        assert "lost writes" in str(refused.value) and "\n" not in str(refused.value)
        assert orderly(["nonces", "resume", "--config", str(config_for(tmp_path))]) == 0
        assert "->" in capsys.readouterr().out
        await trade(sandbox, creds, tmp_path)
        assert sandbox.stats()[next(iter(sandbox.stats()))].get("invalid_nonce", 0) == 0


async def test_a_store_without_its_wal_is_refused(tmp_path: Path, creds: tuple[str, str]) -> None:
    """The floor's last commits live in the -wal file until a checkpoint: a copy of the
    main file alone is behind."""
    copy = tmp_path / "copy"
    copy.mkdir()
    async with Sandbox(dict([creds])) as sandbox:
        store, history = SqliteStore(tmp_path / "nonces.sqlite"), NonceHistory(copy / "h.jsonl")
        store._db.execute("PRAGMA wal_autocheckpoint=0")  # keep every commit in the WAL
        async with KrakenClient(
            *creds, sandbox.base_url, store=store, history=history, tier=None, nonce_block=1
        ) as kraken:
            for _ in range(3):
                await kraken.balance()
            history.flush()
            shutil.copy(tmp_path / "nonces.sqlite", copy / "nonces.sqlite")  # no -wal
        history.close()
        store.close()
        with pytest.raises(StoreBehind):
            await trade(sandbox, creds, copy)


def test_a_corrupted_store_is_a_typed_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "nonces.sqlite").write_bytes(os.urandom(4096))
    with pytest.raises(StateError, match=r"nonces.sqlite: cannot open: file is not a database"):
        SqliteStore(tmp_path / "nonces.sqlite")


async def test_twenty_crash_restarts_leave_the_floor_under_two_seconds_ahead(
    tmp_path: Path,
) -> None:
    """Each run takes a few nonces, then dies without closing (nothing released)."""
    for _ in range(20):
        store = SqliteStore(tmp_path / "nonces.sqlite")
        source = IncreasingNonces(store, "k1", unit="ms")
        for _ in range(5):
            await source.next()
        for fd in store._locks.values():  # the kernel drops a dead process's lock
            os.close(fd)
        store._locks.clear()
        store._db.close()
    (state,) = SqliteStore(tmp_path / "nonces.sqlite").floors()
    ahead_s = (state.floor - time.time_ns() // 1_000_000) / 1000
    assert ahead_s < 2.0
