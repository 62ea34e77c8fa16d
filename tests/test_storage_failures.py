"""A state file that cannot be written (a full disk, injected at the write: this machine has
no small tmpfs to fill): calls fail typed, nothing hangs, no nonce goes out that the store
could not reserve, and the bot stops with one line and its own exit code."""

from __future__ import annotations

import asyncio
import errno
import io
import sqlite3
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from framework.config import load
from framework.errors import StateError
from framework.exchanges.kraken.client import KrakenClient
from framework.journal import OrderJournal
from framework.nonce import SqliteStore
from framework.nonce.history import NonceHistory
from framework.runner import EXIT_ORDERS_LEFT, EXIT_STATE, EXIT_STOPPED_BY_STRATEGY, Runner, run
from framework.sandbox import Fault, FaultRules, Sandbox
from tests.helpers import strategies
from tests.test_runner import write_config


def disk_full(*args: Any, **kwargs: Any) -> None:
    raise sqlite3.OperationalError("database or disk is full")


async def test_a_store_that_cannot_reserve_stops_the_lane_and_no_unreserved_nonce_goes_out(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "nonces.sqlite")
    async with (
        Sandbox(dict([creds])) as sandbox,
        KrakenClient(
            *creds, sandbox.base_url, store=store, nonce_unit="counter", nonce_block=3, tier=None
        ) as kraken,
    ):
        await kraken.balance()
        monkeypatch.setattr(SqliteStore, "_write", disk_full)
        outcomes = []
        async with asyncio.timeout(5):  # nothing hangs
            for _ in range(8):
                try:
                    await kraken.balance()
                    outcomes.append("ok")
                except StateError as exc:
                    outcomes.append("state")
                    assert "nonces.sqlite" in str(exc) and "disk is full" in str(exc)
        assert outcomes[0] == "ok" and outcomes[-1] == "state"  # the reserved block is used up
        assert outcomes == sorted(outcomes)  # once stopped, nothing more goes out
        assert kraken.lane.broken is not None
        monkeypatch.undo()
        accepted = sandbox.accepted_nonces(creds[0])
    (state,) = SqliteStore(tmp_path / "nonces.sqlite").floors()
    assert max(accepted) <= state.floor  # every nonce sent had been reserved on disk


@pytest.mark.parametrize(
    ("code", "text"),
    [(errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system")],
)
async def test_a_history_that_cannot_be_written_stops_the_lane_after_the_call_that_ran(
    tmp_path: Path,
    creds: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    text: str,
) -> None:
    """A full disk, or one remounted read-only (this VM runs tests as root, which
    file modes do not stop: the failure is injected at the write)."""
    history = NonceHistory(tmp_path / "history.jsonl")

    def failing(fd: int, data: Any) -> int:
        raise OSError(code, text)

    async with (
        Sandbox(dict([creds])) as sandbox,
        KrakenClient(*creds, sandbox.base_url, history=history, tier=None) as kraken,
    ):
        monkeypatch.setattr("framework.nonce.history.os.write", failing)
        async with asyncio.timeout(5):
            assert await kraken.balance()  # it ran: its answer is not lost
            with pytest.raises(StateError, match=text):
                await kraken.balance()
        monkeypatch.undo()
    assert "history.jsonl" in str(kraken.lane.broken)


async def trading(
    config: Path,
    sandbox: Sandbox,
    creds: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    extra: str = "",
) -> tuple[Runner, asyncio.Task[int]]:
    """The bot of ``config`` on Kraken at ``sandbox`` (plus ``extra`` config lines), once it
    has an order resting."""
    monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", creds[0])
    monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", creds[1])
    text = config.read_text()  # noqa: ASYNC240 - a small file, before the bot starts
    kraken = f'name = "kraken"\nbase_url = "{sandbox.base_url}"\ntier = "none"'
    config.write_text(text.replace('name = "sandbox"', kraken) + extra)  # noqa: ASYNC240
    strategies.SEEN.clear()
    runner = Runner(load(config), out=io.StringIO())
    task = asyncio.create_task(runner.main(install_signals=False))
    async with asyncio.timeout(20):
        while not sandbox.engine.open:
            strategies.SEEN.changed.clear()
            await strategies.SEEN.changed.wait()
    return runner, task


async def test_the_bot_stops_with_one_line_when_its_store_fills_up(
    tmp_path: Path,
    creds: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # every call writes the store, and the REST safety-net poll calls often: the first call
    # after the disk fills stops the bot, whatever calls came before it
    config = write_config(
        tmp_path,
        "tests.helpers.strategies:Recorder",
        params="cancel_on_fill = false",  # its resting order stays open
        runner="stream_poll_s = 0.1",
    )
    async with Sandbox(dict([creds])) as sandbox:
        extra = "[nonce]\nunit = 'counter'\nreserve_block = 1\n"
        _, task = await trading(config, sandbox, creds, monkeypatch, extra)
        async with asyncio.timeout(20):
            monkeypatch.setattr(SqliteStore, "_write", disk_full)
            assert await task == EXIT_STATE
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("orderly: stopped: a state file cannot be written: nonce store")
    assert "disk is full" in line and line.endswith("; 1 order left open")  # one, not "1 orders"


async def test_cancel_on_stop_failing_leaves_the_dead_man_armed_and_exits_non_zero(
    tmp_path: Path,
    creds: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(
        tmp_path,
        "tests.helpers.strategies:Recorder",
        params="cancel_on_fill = false",
        runner="dead_man_timeout_s = 60\ndead_man_refresh_s = 0.2",
    )
    refuse_cancels = FaultRules(
        faults=(Fault("unavailable", 1.0, endpoints=("CancelAll", "CancelOrder")),)
    )
    async with Sandbox(dict([creds]), faults=refuse_cancels) as sandbox:
        runner, task = await trading(config, sandbox, creds, monkeypatch)
        async with asyncio.timeout(20):
            runner.request_stop("test finished")
            assert await task == EXIT_ORDERS_LEFT
        assert sandbox.engine.open  # still resting, under the armed switch
        assert sandbox.engine._dead_man  # armed, never disarmed
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "could not cancel" in line and "dead-man switch stays armed" in line


@pytest.mark.parametrize("full_at", ["the market order", "the first fill delivered"])
async def test_a_journal_that_cannot_be_written_stops_the_bot_and_its_orders_are_cancelled(
    tmp_path: Path,
    creds: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    full_at: str,
) -> None:
    """The order journal's disk fills up: no new order goes out (none could be found again
    after a crash), the bot stops with one line and exit 3, and the orders it has resting
    are still cancelled on the way out (the journal's failure does not block changes in
    memory). Before, a place failing in a hook was a hook error and the bot ran on, unable
    to trade; a fill that could not be marked delivered crashed the bot (exit 1) with its
    orders open."""
    config = write_config(
        tmp_path, "tests.helpers.strategies:Recorder", params="cancel_on_fill = false"
    )
    journal = tmp_path / "orders.sqlite"
    text = config.read_text().replace("[state]\n", f'[state]\njournal = "{journal}"\n')
    config.write_text(text)
    write = OrderJournal._write

    def fills_up(
        self: OrderJournal, doing: str, sql: str, rows: Iterable[tuple[object, ...]]
    ) -> None:
        rows = list(rows)  # the Recorder's resting limit order is written; then the disk fills
        market = any("market" in row for row in rows)
        if full or (market if full_at == "the market order" else doing.endswith("delivered")):
            full.append(doing)
            raise self._error(doing, sqlite3.OperationalError("database or disk is full"))
        write(self, doing, sql, rows)

    full: list[str] = []
    monkeypatch.setattr(OrderJournal, "_write", fills_up)
    async with Sandbox(dict([creds])) as sandbox:
        _, task = await trading(config, sandbox, creds, monkeypatch)
        async with asyncio.timeout(20):
            assert await task == EXIT_STATE
        assert not sandbox.engine.open  # cancelled on stop
        sent = {o.ordertype for o in sandbox.engine.orders.values()}
    assert sent == ({"limit"} if full_at == "the market order" else {"limit", "market"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("orderly: stopped: a state file cannot be written: order journal")
    assert "disk is full" in line and "0 orders left open" in line


class FillsUp(io.StringIO):
    """A file on a disk that fills up after its first ``room`` lines."""

    def __init__(self, name: str, room: int) -> None:
        super().__init__()
        self.name, self.room = name, room

    def write(self, text: str) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= text.count("\n")
        return super().write(text)

    def flush(self) -> None:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")


def test_a_log_file_or_stdout_that_cannot_be_written_costs_lines_not_the_bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found with a 300 kB tmpfs under the log file: the bot died at the next log line
    (exit 1, "unexpected OSError") with its orders open; standard output redirected to a
    full disk (or a closed pipe) did the same at the next summary line. Now each loses
    lines, says so once on stderr, and the bot goes on to its own end (here: stop_bot,
    exit 1 on purpose)."""
    config = write_config(
        tmp_path,
        "tests.helpers.strategies:Recorder",
        params="fail_on_tick = true",
        runner='on_hook_error = "stop_bot"\nstreams = false',
    )
    log_file = FillsUp(str(tmp_path / "log.jsonl"), room=3)
    monkeypatch.setattr("framework.log.open", lambda *a, **k: log_file, raising=False)
    monkeypatch.setattr(sys, "stdout", FillsUp("<stdout>", room=0))
    assert run(load(config)) == EXIT_STOPPED_BY_STRATEGY  # an OSError would have escaped
    err = capsys.readouterr().err
    for what in (f"log {tmp_path / 'log.jsonl'}", "standard output"):
        assert err.count(f"{what} cannot be written (No space left on device): its lines") == 1
    assert "stopping: on_tick failed: RuntimeError" in err
