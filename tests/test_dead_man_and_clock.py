"""Dead-man switch (CancelAllOrdersAfter) and clock sanity."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from framework.clock import ManualClock
from framework.config import Config, load
from framework.errors import InvalidRequest
from framework.events import OrderState
from framework.exchanges.kraken.venue import kraken_venue
from framework.execution import Execution
from framework.orders import LimitOrder
from framework.runner import Runner
from framework.sandbox import Sandbox
from tests.helpers import strategies
from tests.helpers.kraken import client
from tests.test_runner import write_config


async def test_cancel_all_orders_after(creds: tuple[str, str]) -> None:
    clock = ManualClock(wall_ns=time.time_ns())
    async with (
        Sandbox(dict([creds]), clock=clock) as sandbox,
        client(*creds, sandbox.base_url, clock=clock) as kraken,
    ):
        reply = await kraken.private("CancelAllOrdersAfter", {"timeout": 60})
        assert set(reply) == {"currentTime", "triggerTime"}
        await kraken.add_order(
            pair="XBTUSD", side="buy", ordertype="limit", volume="0.01", price="1000"
        )
        clock.advance(59)
        assert len(await kraken.open_orders()) == 1
        await kraken.private("CancelAllOrdersAfter", {"timeout": 60})  # re-armed in time
        clock.advance(59)
        assert len(await kraken.open_orders()) == 1
        clock.advance(2)  # nobody re-armed it
        assert await kraken.open_orders() == {}
        await kraken.add_order(
            pair="XBTUSD", side="buy", ordertype="limit", volume="0.01", price="1000"
        )
        await kraken.private("CancelAllOrdersAfter", {"timeout": 10})
        await kraken.private("CancelAllOrdersAfter", {"timeout": 0})  # disarmed
        clock.advance(20)
        assert len(await kraken.open_orders()) == 1
        with pytest.raises(InvalidRequest, match="timeout"):
            await kraken.private("CancelAllOrdersAfter", {"timeout": 86400})


async def bot_against(
    sandbox: Sandbox, tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[Runner, asyncio.Task[int]]:
    monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", creds[0])
    monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", creds[1])
    config = write_config(
        tmp_path,
        "tests.helpers.strategies:Recorder",
        params="cancel_on_fill = false",  # the resting order stays until the stop
        runner="dead_man_timeout_s = 60\ndead_man_refresh_s = 0.2\ncancel_on_stop = false",
    )
    config.write_text(
        config.read_text().replace(
            'name = "sandbox"', f'name = "kraken"\nbase_url = "{sandbox.base_url}"\ntier = "none"'
        )
    )
    strategies.SEEN.clear()
    runner = Runner(load(config), out=io.StringIO())
    task = asyncio.create_task(runner.main(install_signals=False))
    async with asyncio.timeout(20):  # until the resting order is on the book
        while not sandbox.engine.open:
            strategies.SEEN.changed.clear()
            await strategies.SEEN.changed.wait()
    return runner, task


async def test_a_dead_bot_leaves_no_orders_resting(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(wall_ns=time.time_ns())
    async with Sandbox(dict([creds]), clock=clock) as sandbox:
        runner, task = await bot_against(sandbox, tmp_path, creds, monkeypatch)
        runner._exit = 130
        task.cancel()  # the bot dies without stopping cleanly
        assert await task == 130
        assert sandbox.engine.open
        clock.advance(61)
        sandbox.engine.sync()
        assert not sandbox.engine.open  # the exchange cancelled them


async def test_a_clean_stop_disarms_the_switch(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(wall_ns=time.time_ns())
    async with Sandbox(dict([creds]), clock=clock) as sandbox:
        runner, task = await bot_against(sandbox, tmp_path, creds, monkeypatch)
        runner.request_stop("test")
        assert await task == 0
        clock.advance(120)
        sandbox.engine.sync()
        assert sandbox.engine.open  # cancel_on_stop is off and the switch was disarmed


@pytest.fixture
async def skewed(tmp_path: Path, creds: tuple[str, str]) -> AsyncIterator[Execution]:
    """An exchange whose clock is 30 s ahead of ours."""
    clock = ManualClock(wall_ns=time.time_ns() + 30 * 10**9)
    config = Config.model_validate(
        {
            "exchange": {"order_deadline_s": 5, "tier": "none"},
            "state": {"store": str(tmp_path / "n.sqlite"), "history": str(tmp_path / "h.jsonl")},
        }
    )
    async with (
        Sandbox(dict([creds]), clock=clock) as sandbox,
        kraken_venue(config, *creds, sandbox.base_url) as venue,
    ):
        yield Execution(venue, lambda event: None)


async def test_clock_offset_is_measured_and_applied_to_deadlines(skewed: Execution) -> None:
    order = LimitOrder(pair="XBTUSD", side="buy", volume=Decimal("0.01"), price=Decimal(1000))
    before = await skewed.place(order)
    assert before.state is OrderState.REJECTED and "Deadline elapsed" in str(before.reason)
    offset = await skewed.venue.clock_offset()
    assert 29 <= offset <= 31
    after = await skewed.place(order)
    assert after.state is OrderState.ACCEPTED
