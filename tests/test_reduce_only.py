"""Reduce-only orders (``reduce_only=True``): they may only make a position smaller, so a
close sent twice (a retry, a restart that closes again) cannot open the other way. On the
wire of each exchange that has them, refused where it cannot be honoured, kept by the
journal."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from framework.errors import InvalidArguments
from framework.events import OrderState
from framework.exchanges.bitunix.venue import order_fields as bitunix_fields
from framework.exchanges.kraken.order_fields import order_params
from framework.exchanges.kraken.ws_orders import v2_order
from framework.exchanges.synthetix.venue import order_fields as synthetix_fields
from framework.execution import Execution
from framework.journal import OrderJournal
from framework.orders import LimitOrder, MarketOrder, OrderBook
from tests.test_order_manager import exchange
from tests.test_time_in_force import _venue
from tests.test_venues import bitunix_venue, synthetix_venue


def test_the_flag_is_a_boolean_and_reaches_each_exchanges_fields() -> None:
    with pytest.raises(InvalidArguments, match="True or False; got 'false'"):
        MarketOrder("XBTUSD", "sell", Decimal(1), reduce_only="false")  # type: ignore[arg-type]
    close = LimitOrder("XBTUSD", "sell", Decimal(1), Decimal(100), reduce_only=True)
    plain = LimitOrder("XBTUSD", "sell", Decimal(1), Decimal(100))
    assert order_params(close, "c1")["reduce_only"] is True
    assert v2_order(order_params(close, "c1"))["reduce_only"] is True
    assert "reduce_only" not in order_params(plain, "c2")  # bodies as before when unset
    assert bitunix_fields(close, "c1")["reduceOnly"] is True
    assert "reduceOnly" not in bitunix_fields(plain, "c2")
    assert synthetix_fields(close, "c1")["reduceOnly"] is True
    with pytest.raises(InvalidArguments, match="one-way position mode"):
        bitunix_fields(close, "c1", hedge=True)  # a close there names its positionId


async def settle(execution: Execution, *cl_ord_ids: str) -> list[OrderState]:
    for _ in range(10):  # polls until final (each poll asks the exchange once)
        if not execution.open_orders():
            break
        await execution.poll()
    return [execution.book.get(c).state for c in cl_ord_ids]


@pytest.mark.parametrize("where", ["bitunix", "synthetix"])
async def test_a_close_sent_twice_does_not_open_the_other_way(where: str) -> None:
    """The perps exchanges: a long of 0.002 closed by a reduce-only sell; the same close
    again (as a restart that closes once more would send it) is refused; flat at the end."""
    opened, pair = (
        (bitunix_venue(), "BTCUSDT") if where == "bitunix" else (synthetix_venue(), "BTC-USDT")
    )
    async with _venue(opened, pair) as (venue, pair):
        execution = Execution(venue, [].append)
        volume = Decimal("0.002")
        long = await execution.place(MarketOrder(pair, "buy", volume))
        close = MarketOrder(pair, "sell", volume, reduce_only=True)
        first = await execution.place(close)
        assert await settle(execution, long.cl_ord_id, first.cl_ord_id) == [OrderState.FILLED] * 2
        again = await execution.place(close)
        assert again.state is OrderState.REJECTED
        assert (
            again.reason
            == {  # the exchange's code and words (the servers' text is ours)
                "bitunix": "10002 Parameter Error: reduceOnly order would not reduce the position",
                "synthetix": "VALIDATION_ERROR: Reduce-only order would not reduce the position",
            }[where]
        )
        fills = [fill for _, fill in await venue.fills_since(0.0)]
        assert (
            len(fills) == 2 and sum(f.volume if f.side == "buy" else -f.volume for f in fills) == 0
        )


@pytest.mark.parametrize("entry", ["rest", "ws"])
async def test_kraken_spot_has_no_position_to_reduce(
    tmp_path: Path, creds: tuple[str, str], entry: str
) -> None:
    """Kraken takes ``reduce_only`` for margin positions; the sandbox is spot only, and
    answers as Kraken does when there is none."""
    async with exchange(tmp_path, creds, entry=entry) as (_, venue):
        execution = Execution(venue, [].append)
        refused = await execution.place(
            MarketOrder("XBTUSD", "sell", Decimal("0.001"), reduce_only=True)
        )
        assert refused.state is OrderState.REJECTED
        assert refused.reason == "EOrder:Reduce only:No position exists"


def test_the_journal_keeps_the_flag(tmp_path: Path) -> None:
    journal = OrderJournal(tmp_path / "orders.sqlite", exchange="bitunix", key_id="k")
    requests: list[Any] = [
        LimitOrder("BTCUSDT", "sell", Decimal(1), Decimal(100), reduce_only=True),
        MarketOrder("BTCUSDT", "buy", Decimal(1), reduce_only=True),
        MarketOrder("BTCUSDT", "buy", Decimal(1)),
    ]
    OrderBook(journal=journal).record_all(requests)
    journal.close()
    again = OrderJournal(tmp_path / "orders.sqlite", exchange="bitunix", key_id="k")
    assert [o.request for o in again.open_orders()] == requests
    again.close()
