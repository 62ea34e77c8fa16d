"""The sandbox market through KrakenClient: matching, balances, trades, public data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from framework.clock import ManualClock
from framework.errors import InsufficientFunds, InvalidRequest
from framework.exchanges.kraken import KrakenClient
from framework.sandbox import MarketRules, OrderRules, Sandbox
from framework.sandbox.market import HISTORY_MINUTES
from tests.helpers.kraken import client

Market = tuple[Sandbox, KrakenClient, ManualClock]


@pytest.fixture
async def market(creds: tuple[str, str]) -> AsyncIterator[Market]:
    clock = ManualClock(wall_ns=1_800_000_000 * 10**9)
    sandbox = Sandbox(
        dict([creds]), clock=clock, market=MarketRules(seed=5, step_s=1.0, volatility=0.002)
    )
    async with sandbox, client(*creds, sandbox.base_url, clock=clock) as kraken:
        yield sandbox, kraken, clock


async def test_market_order_fills_at_the_touch_and_moves_balances(market: Market) -> None:
    _, kraken, _ = market
    ask = (await kraken.ticker("XBTUSD")).ask
    placed = await kraken.add_order(pair="XBTUSD", side="buy", ordertype="market", volume="0.1")
    order = (await kraken.query_orders(placed.txids))[placed.txids[0]]
    assert order["status"] == "closed" and Decimal(order["price"]) == ask
    balance = await kraken.balance()
    fee = ask * Decimal("0.1") * Decimal("0.0026")
    assert balance["XXBT"] == Decimal("2.1")
    assert balance["ZUSD"] == Decimal(100000) - ask * Decimal("0.1") - fee.quantize(
        Decimal("0.00000001")
    )
    trades = (await kraken.private("TradesHistory"))["trades"]
    (trade,) = trades.values()
    assert trade["ordertxid"] == placed.txids[0] and trade["maker"] is False


async def test_resting_limit_fills_when_the_market_reaches_it(market: Market) -> None:
    _, kraken, clock = market
    bid = (await kraken.ticker("XBTUSD")).bid
    buy = await kraken.add_order(
        pair="XBTUSD",
        side="buy",
        ordertype="limit",
        volume="0.01",
        price=str(bid - Decimal(30)),
        cl_ord_id="dip",
    )
    sell = await kraken.add_order(
        pair="XBTUSD",
        side="sell",
        ordertype="limit",
        volume="0.01",
        price=str(bid + Decimal(30)),
        cl_ord_id="pop",
    )
    assert set(await kraken.open_orders()) == {buy.txids[0], sell.txids[0]}
    for _ in range(600):  # bounded: at most ten minutes of market steps
        clock.advance(1.0)
        if not await kraken.open_orders():
            break
    closed = (await kraken.private("ClosedOrders", {"cl_ord_id": "dip"}))["closed"]
    assert closed[buy.txids[0]]["status"] == "closed"
    assert Decimal(closed[buy.txids[0]]["price"]) == bid - Decimal(30)  # at its own price
    trades = (await kraken.private("TradesHistory"))["trades"].values()
    assert all(t["maker"] for t in trades) and len(trades) == 2


async def test_partial_fills(creds: tuple[str, str]) -> None:
    clock = ManualClock(wall_ns=1_800_000_000 * 10**9)
    sandbox = Sandbox(
        dict([creds]),
        clock=clock,
        market=MarketRules(seed=5, step_s=1.0, volatility=0.002),
        order_rules=OrderRules(partial_fill_probability=1.0),
    )
    async with sandbox, client(*creds, sandbox.base_url, clock=clock) as kraken:
        bid = (await kraken.ticker("XBTUSD")).bid
        placed = await kraken.add_order(
            pair="XBTUSD", side="buy", ordertype="limit", volume="0.01", price=str(bid - Decimal(5))
        )
        seen = set()
        for _ in range(300):
            clock.advance(1.0)
            order = (await kraken.query_orders(placed.txids))[placed.txids[0]]
            seen.add(order["vol_exec"])
            if order["status"] == "closed":
                break
    assert "0.005" in {str(Decimal(v).normalize()) for v in seen}  # half first
    assert order["status"] == "closed"


async def test_order_checks(market: Market) -> None:
    _, kraken, _ = market
    with pytest.raises(InsufficientFunds):
        await kraken.add_order(pair="XBTUSD", side="sell", ordertype="market", volume="3")
    with pytest.raises(InvalidRequest, match="EOrder:Order minimum not met"):
        await kraken.add_order(pair="XBTUSD", side="buy", ordertype="market", volume="0.00001")
    with pytest.raises(InvalidRequest, match="EOrder:Tick size check failed"):
        await kraken.add_order(
            pair="XBTUSD", side="buy", ordertype="limit", volume="0.01", price="100.05"
        )
    # funds reserved by open orders count
    await kraken.add_order(
        pair="XBTUSD", side="sell", ordertype="limit", volume="1.5", price="900000"
    )
    with pytest.raises(InsufficientFunds):
        await kraken.add_order(
            pair="XBTUSD", side="sell", ordertype="limit", volume="1", price="900000"
        )


async def test_post_only_that_would_take_is_cancelled(market: Market) -> None:
    _, kraken, _ = market
    ask = (await kraken.ticker("XBTUSD")).ask
    placed = await kraken.add_order(
        pair="XBTUSD",
        side="buy",
        ordertype="limit",
        volume="0.01",
        price=str(ask + 10),
        oflags="post",
    )
    order = (await kraken.query_orders(placed.txids))[placed.txids[0]]
    assert order["status"] == "canceled" and order["vol_exec"] == "0"


async def test_public_data_shapes(market: Market) -> None:
    _, kraken, clock = market
    pairs = await kraken.public("AssetPairs")
    assert set(pairs) == {"XXBTZUSD", "XETHZUSD"}
    assert pairs["XXBTZUSD"]["altname"] == "XBTUSD" and pairs["XXBTZUSD"]["tick_size"] == "0.1"
    depth = (await kraken.public("Depth", {"pair": "XBTUSD", "count": 5}))["XXBTZUSD"]
    assert len(depth["asks"]) == len(depth["bids"]) == 5
    assert Decimal(depth["asks"][0][0]) > Decimal(depth["bids"][0][0])
    clock.advance(60 * 30)
    ohlc = await kraken.public("OHLC", {"pair": "XBTUSD", "interval": 5})
    rows = ohlc["XXBTZUSD"]
    past = HISTORY_MINUTES // 5  # the market's history before it started, then its 30 minutes
    assert past + 6 <= len(rows) <= past + 7 and all(len(r) == 8 for r in rows)
    assert rows[past - 1][0] < 1_800_000_000 <= rows[past][0]
    assert rows[past - 1][4] == rows[past][1]  # the history closes where the market opens
    assert all(Decimal(r[3]) <= Decimal(r[1]) <= Decimal(r[2]) for r in rows)  # low<=open<=high
    assert ohlc["last"] == rows[-2][0]
    with pytest.raises(InvalidRequest, match="interval"):
        await kraken.public("OHLC", {"pair": "XBTUSD", "interval": 7})
    with pytest.raises(InvalidRequest, match="count"):
        await kraken.public("Depth", {"pair": "XBTUSD", "count": 501})


async def test_seeded_path_is_reproducible(creds: tuple[str, str]) -> None:
    prices = []
    for _ in range(2):
        clock = ManualClock(wall_ns=1_800_000_000 * 10**9)
        sandbox = Sandbox(dict([creds]), clock=clock, market=MarketRules(seed=9))
        async with sandbox, client(*creds, sandbox.base_url, clock=clock) as kraken:
            clock.advance(100)
            prices.append((await kraken.ticker("XBTUSD")).last)
    assert prices[0] == prices[1]
