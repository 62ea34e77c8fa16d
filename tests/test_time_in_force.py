"""Immediate-or-cancel and fill-or-kill limit orders (``LimitOrder(time_in_force=...)``):
never resting, on every exchange that has them, through the order manager; kept across a
restart by the journal."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from framework.errors import InvalidArguments
from framework.events import OrderState
from framework.exchanges.kraken.order_fields import order_params
from framework.exchanges.kraken.ws_orders import v2_order
from framework.execution import Execution
from framework.journal import OrderJournal
from framework.orders import LimitOrder, TrackedOrder
from tests.test_order_manager import exchange
from tests.test_venues import bitunix_venue, synthetix_venue


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"time_in_force": "day"}, "time_in_force must be"),
        ({"time_in_force": "ioc", "post_only": True}, "not both"),
    ],
)
def test_a_bad_time_in_force_is_refused_on_creation(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidArguments, match=error):
        LimitOrder("XBTUSD", "buy", Decimal(1), Decimal(100), **fields)


def test_kraken_fields() -> None:
    ioc = LimitOrder("XBTUSD", "buy", Decimal(1), Decimal(100), time_in_force="ioc")
    rest = order_params(ioc, "c1")
    assert rest["timeinforce"] == "IOC" and v2_order(rest)["time_in_force"] == "ioc"
    assert "timeinforce" not in order_params(LimitOrder("XBTUSD", "buy", 1, 100), "c2")


@contextlib.asynccontextmanager
async def kraken(tmp_path: Path, creds: tuple[str, str], entry: str) -> AsyncIterator[Any]:
    async with exchange(tmp_path, creds, entry=entry) as (_, venue):
        yield venue, "XBTUSD"


OPENERS: dict[str, Callable[[Path, tuple[str, str]], Any]] = {
    "kraken-rest": lambda tmp, creds: kraken(tmp, creds, "rest"),
    "kraken-ws": lambda tmp, creds: kraken(tmp, creds, "ws"),
    "bitunix": lambda tmp, creds: _venue(bitunix_venue(), "BTCUSDT"),
    "synthetix": lambda tmp, creds: _venue(synthetix_venue(), "BTC-USDT"),
}


@contextlib.asynccontextmanager
async def _venue(opened: Any, pair: str) -> AsyncIterator[Any]:
    async with opened as (_, venue):
        yield venue, pair


@pytest.mark.parametrize("where", sorted(OPENERS))
async def test_an_ioc_order_trades_at_once_or_is_cancelled_never_rests(
    tmp_path: Path, creds: tuple[str, str], where: str
) -> None:
    async with OPENERS[where](tmp_path, creds) as (venue, pair):
        execution = Execution(venue, [].append)
        ticker = await venue.ticker(pair)
        tick = Decimal("0.1")
        low = (ticker.bid * Decimal("0.9")).quantize(tick)
        high = (ticker.ask * Decimal("1.1")).quantize(tick)
        volume = Decimal("0.001")
        missed = await execution.place(LimitOrder(pair, "buy", volume, low, time_in_force="ioc"))
        took = await execution.place(LimitOrder(pair, "buy", volume, high, time_in_force="ioc"))
        for _ in range(10):  # polls until both are final (each poll asks the exchange once)
            if not execution.open_orders():
                break
            await execution.poll()
        assert execution.book.get(missed.cl_ord_id).state is OrderState.CANCELLED
        assert execution.book.get(took.cl_ord_id).state is OrderState.FILLED
        assert not await venue.open_orders()  # nothing rests at the exchange


async def test_synthetix_refuses_fill_or_kill_before_sending() -> None:
    async with synthetix_venue() as (_, venue):
        execution = Execution(venue, [].append)
        fok = LimitOrder("BTC-USDT", "buy", Decimal("0.001"), Decimal(100), time_in_force="fok")
        refused = await execution.place(fok)
        assert refused.state is OrderState.REJECTED
        assert (refused.reason or "").startswith("Synthetix has no fill-or-kill order")
        assert not await venue.open_orders()


def test_the_journal_keeps_the_time_in_force(tmp_path: Path) -> None:
    journal = OrderJournal(tmp_path / "orders.sqlite", exchange="kraken", key_id="k")
    orders = [
        TrackedOrder(LimitOrder("XBTUSD", "buy", 1, 100, time_in_force=tif), f"c-{tif}")
        for tif in ("gtc", "ioc", "fok")
    ]
    journal.save(*orders)
    journal.close()
    again = OrderJournal(tmp_path / "orders.sqlite", exchange="kraken", key_id="k")
    restored = {o.cl_ord_id: o.request for o in again.open_orders()}
    assert {cid: getattr(r, "time_in_force", None) for cid, r in restored.items()} == {
        "c-gtc": "gtc",
        "c-ioc": "ioc",
        "c-fok": "fok",
    }


async def test_an_order_the_venue_cannot_send_leaves_the_rest_of_its_batch_placed() -> None:
    """Found with a batch mixing one fill-or-kill order into Synthetix orders: the venue
    refused the whole batch before sending, and every order came back REJECTED "Synthetix
    has no fill-or-kill order". Now nothing went: each order is sent alone, and only the
    one the exchange cannot take is refused."""
    async with synthetix_venue() as (_, venue):
        execution = Execution(venue, [].append)
        fok, gtc = (
            LimitOrder("BTC-USDT", "buy", Decimal("0.001"), Decimal(100), time_in_force=tif)
            for tif in ("fok", "gtc")
        )
        refused, placed = await execution.place_batch([fok, gtc])
        assert refused.state is OrderState.REJECTED
        assert refused.reason == "Synthetix has no fill-or-kill order"
        assert placed.state is OrderState.ACCEPTED
        assert [o.cl_ord_id for o in await venue.open_orders()] == [placed.cl_ord_id]
