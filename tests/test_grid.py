"""The example grid (strategies/grid.py): its ladder moves to the mid by amends, levels
whose order filled are placed again, and on a venue that cannot amend it cancels and lays
the ladder anew."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from framework.config import load
from framework.events import OrderState, OrderUpdate
from framework.exchanges.bitunix.venue import BitunixVenue
from framework.exchanges.kraken.venue import KrakenVenue
from framework.execution import Execution
from framework.orders import LimitOrder
from framework.runner import EXIT_OK, Runner
from framework.sandbox import Fault, Sandbox
from framework.strategy import Context
from strategies.grid import Grid, ladder, moves
from tests.test_order_manager import exchange
from tests.test_runner import write_config


def resting(side: str, price: str) -> OrderUpdate:
    zero, p = Decimal(0), Decimal(price)
    return OrderUpdate("c" + price, "XBTUSD", side, OrderState.ACCEPTED, Decimal(1), zero, p,
                       None, "O" + price, None, 0.0)  # fmt: skip


ROOT = Path(__file__).resolve().parent.parent
TARGETS = ladder("XBTUSD", Decimal(100), 3, Decimal(1), Decimal(1), Decimal("0.1"))


def test_a_ladder_that_moved_is_amended_level_by_level() -> None:
    old = [resting(s, p) for s, p in [("buy", "98"), ("buy", "97"), ("buy", "96")]] + [
        resting("sell", p) for p in ("100", "101", "102")
    ]
    amends, cancels, places = moves(old, TARGETS)
    assert [(o.price, new) for o, new in amends] == [
        (Decimal(98), Decimal(99)),
        (Decimal(97), Decimal(98)),
        (Decimal(96), Decimal(97)),
        (Decimal(100), Decimal(101)),
        (Decimal(101), Decimal(102)),
        (Decimal(102), Decimal(103)),
    ]
    assert cancels == places == []


def test_a_filled_level_is_placed_again_and_a_spare_order_cancelled() -> None:
    old = [resting("buy", "99"), resting("buy", "98")]  # the third bid filled
    old += [resting("sell", p) for p in ("101", "102", "103", "110")]  # one ask too many
    amends, cancels, places = moves(old, TARGETS)
    assert amends == []  # every remaining order is where its level is
    assert [o.price for o in cancels] == [Decimal(110)]  # the farthest ask
    assert places == [LimitOrder("XBTUSD", "buy", Decimal(1), Decimal(97))]


def test_only_kraken_venues_amend() -> None:
    assert KrakenVenue.can_amend and not BitunixVenue.can_amend


async def test_the_grid_moves_its_ladder_by_amends_on_kraken(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", creds[0])
    monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", creds[1])
    config = write_config(
        tmp_path,
        f"{ROOT}/strategies/grid.py:Grid",
        params='levels = 3\nspacing_bps = 20\nvolume = "0.001"\nrefresh_s = 0.2',
        runner="streams = false",
    )
    async with Sandbox(dict([creds])) as sandbox:
        kraken = f'name = "kraken"\nbase_url = "{sandbox.base_url}"\ntier = "none"'
        text = config.read_text().replace('name = "sandbox"', kraken)
        config.write_text(text)
        runner = Runner(load(config), out=io.StringIO())
        task = asyncio.create_task(runner.main(install_signals=False))
        history = tmp_path / "history.jsonl"

        def sent(endpoint: str) -> int:
            lines = history.read_text().splitlines() if history.exists() else []
            records = [json.loads(line) for line in lines]
            return sum(
                r["event"] == "nonce_assigned" and r["endpoint"] == endpoint for r in records
            )

        async with asyncio.timeout(20):
            while sent("AmendOrder") < 12 and not task.done():
                await asyncio.wait([task], timeout=0.1)  # bounded by the timeout above
        await asyncio.sleep(0.05)  # the history is written within 10 ms of the lane's idling
        assert sent("CancelOrder") == 0  # the ladder moved without a cancel
        runner.request_stop("test finished")
        assert await task == EXIT_OK
        assert sent("AddOrderBatch") >= 1  # the ladder laid in one call
        # the stop cancels the ladder's orders one by one (cancel_on_stop, not CancelAll)
        assert 0 < sent("CancelOrder") <= 6 and sent("CancelAll") == 0


async def test_a_refused_amend_of_a_resting_order_lays_no_second_order(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    """Only a level whose order is gone is laid again: an amend that fails while the order
    still rests (here: the exchange busy on every AmendOrder) leaves the ladder as it is."""
    busy = (Fault("busy", 1.0, ("AmendOrder",)),)
    async with exchange(tmp_path, creds, faults=busy) as (sandbox, venue):
        execution = Execution(venue, [].append, clock=venue.client.clock)
        grid = Grid()
        grid.ctx = Context(execution, name="Grid", pairs=["XBTUSD"], clock=venue.client.clock)
        grid.params = Grid.Params(levels=2, spacing_bps=Decimal(50), volume=Decimal("0.001"))
        grid.pair = "XBTUSD"
        first = await venue.ticker("XBTUSD")
        await grid.lay(first)
        assert len(sandbox.engine.open) == 4
        moved = dataclasses.replace(first, bid=first.bid + 50, ask=first.ask + 50)
        grid.ctx._remember(moved)
        await grid.refresh()  # every amend refused by a busy exchange
        assert len(sandbox.engine.open) == 4 and len(execution.open_orders()) == 4
