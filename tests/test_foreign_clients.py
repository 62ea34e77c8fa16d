"""Kraken clients nobody here wrote (ccxt, python-kraken-sdk, krakenex) trade against the sandbox,
unchanged, with their own signing and nonces: every call's result is checked."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import krakenex
import pytest
from kraken.spot import Market, SpotWSClient, Trade, User

from framework.exchanges.kraken.book import Book
from framework.sandbox import Sandbox


async def test_ccxt_trades_against_the_sandbox(creds: tuple[str, str]) -> None:
    async with Sandbox(dict([creds])) as sandbox:
        kraken: Any = ccxt.kraken(
            {"apiKey": creds[0], "secret": creds[1], "enableRateLimit": False}
        )  # the sandbox here enforces no rate limit; ccxt would wait 3 s a call
        kraken.urls["api"] = {"public": sandbox.base_url, "private": sandbox.base_url}
        try:
            markets = await kraken.load_markets()  # Assets and AssetPairs
            assert {"BTC/USD", "ETH/USD"} <= set(markets)
            ticker = await kraken.fetch_ticker("BTC/USD")
            assert 0 < ticker["bid"] < ticker["ask"]
            book = await kraken.fetch_order_book("BTC/USD", 5)
            assert len(book["bids"]) == 5 and book["bids"][0][0] < book["asks"][0][0]
            candles = await kraken.fetch_ohlcv("BTC/USD", "1m")
            assert candles and all(low <= high for _, _, high, low, _, _ in candles)
            balance = await kraken.fetch_balance()
            assert balance["total"]["USD"] == 100_000
            order = await kraken.create_order("BTC/USD", "limit", "buy", 0.001, 1000)
            assert [o["id"] for o in await kraken.fetch_open_orders("BTC/USD")] == [order["id"]]
            await kraken.cancel_order(order["id"])
            assert await kraken.fetch_open_orders("BTC/USD") == []
            batch = await kraken.create_orders(
                [
                    {
                        "symbol": "BTC/USD",
                        "type": "limit",
                        "side": "buy",
                        "amount": 0.001,
                        "price": price,
                    }
                    for price in (1000, 1001)
                ]
            )
            assert len(batch) == 2 and all(o["id"] for o in batch)
            taker = await kraken.create_order("BTC/USD", "limit", "buy", 0.001, ticker["ask"] * 2)
            trades = await kraken.fetch_my_trades("BTC/USD")
            assert [t["order"] for t in trades] == [taker["id"]]
            assert trades[0]["amount"] == 0.001
            closed = await kraken.fetch_closed_orders("BTC/USD")
            statuses = {o["id"]: o["status"] for o in closed}
            assert statuses[order["id"]] == "canceled" and statuses[taker["id"]] == "closed"
            ioc = {"timeInForce": "IOC"}  # ccxt's own encoding of Kraken's timeinforce
            missed = await kraken.create_order("BTC/USD", "limit", "buy", 0.001, 1000, ioc)
            resting = await kraken.fetch_open_orders("BTC/USD")  # the batch's two
            assert missed["id"] not in {o["id"] for o in resting} and len(resting) == 2
            closed = await kraken.fetch_closed_orders("BTC/USD")
            assert {o["id"]: o["status"] for o in closed}[missed["id"]] == "canceled"
        finally:
            await kraken.close()
        (stats,) = sandbox.stats().values()
    assert stats["invalid_nonce"] == 0 and stats["invalid_signature"] == 0


async def test_python_kraken_sdk_rest_clients_trade_against_the_sandbox(
    creds: tuple[str, str],
) -> None:
    """The SDK's REST clients are synchronous (requests): they run in a thread while the
    sandbox serves from this loop."""
    async with Sandbox(dict([creds])) as sandbox:
        url = sandbox.base_url
        market, user = Market(url=url), User(*creds, url=url)
        trade = Trade(*creds, url=url)

        def session() -> None:
            assert "XXBT" in market.get_assets()
            assert market.get_asset_pairs(pair="XBTUSD")["XXBTZUSD"]["wsname"] == "XBT/USD"
            assert market.get_system_status()["status"] == "online"
            (book,) = market.get_order_book(pair="XBTUSD", count=3).values()
            assert len(book["bids"]) == 3
            assert Decimal(user.get_account_balance()["ZUSD"]) == 100_000
            placed = trade.create_order(
                ordertype="limit", side="buy", volume="0.001", pair="XBTUSD", price="1000"
            )
            (txid,) = placed["txid"]
            assert list(user.get_open_orders()["open"]) == [txid]
            assert trade.cancel_order(txid=txid)["count"] == 1
            assert user.get_closed_orders()["closed"][txid]["status"] == "canceled"
            assert user.get_open_orders()["open"] == {}

        await asyncio.to_thread(session)
        (stats,) = sandbox.stats().values()
    assert stats["invalid_nonce"] == 0 and stats["invalid_signature"] == 0


async def test_python_kraken_sdk_websocket_client_streams_and_trades(
    creds: tuple[str, str],
) -> None:
    """SpotWSClient, unchanged, on the sandbox's /v2: ticker and book (every book message's
    checksum verified with Orderly's book), private executions, and an order placed and
    cancelled over the WebSocket, each answer matched by its req_id."""
    got: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    async def on_message(message: dict[str, Any]) -> None:
        got.append(message)
        arrived.set()

    async def first(match: Any, within: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                found = next((m for m in got if match(m)), None)
                if found is not None:
                    return found
                arrived.clear()
                await arrived.wait()

    async with Sandbox(dict([creds]), seed=5) as sandbox:
        root = f"ws://127.0.0.1:{sandbox.port}"  # the SDK adds "/v2"
        client = SpotWSClient(
            *creds, callback=on_message, rest_url=sandbox.base_url, ws_url=root, auth_ws_url=root
        )
        await client.start()
        try:
            await client.subscribe(params={"channel": "ticker", "symbol": ["BTC/USD"]})
            await client.subscribe(params={"channel": "book", "symbol": ["BTC/USD"]})
            await client.subscribe(params={"channel": "executions"})
            ticker = await first(lambda m: m.get("channel") == "ticker")
            assert ticker["data"][0]["bid"] < ticker["data"][0]["ask"]
            await first(lambda m: m.get("channel") == "executions")
            await first(lambda m: m.get("channel") == "book" and m.get("type") == "update")
            await client.send_message(
                {
                    "method": "add_order",
                    "params": {
                        "order_type": "limit",
                        "side": "buy",
                        "order_qty": 0.001,
                        "symbol": "BTC/USD",
                        "limit_price": 1000.0,
                        "cl_ord_id": "sdk-1",
                    },
                    "req_id": 7,
                }
            )
            added = await first(lambda m: m.get("method") == "add_order")
            assert added["success"] and added["req_id"] == 7
            order_id = added["result"]["order_id"]
            await client.send_message(
                {"method": "cancel_order", "params": {"order_id": [order_id]}, "req_id": 8}
            )
            cancelled = await first(lambda m: m.get("method") == "cancel_order")
            assert cancelled["success"] and cancelled["result"]["order_id"] == order_id
            await first(
                lambda m: (
                    m.get("channel") == "executions"
                    and any(e.get("exec_type") == "canceled" for e in m["data"])
                )
            )
        finally:
            await client.close()
    events = [m["data"][0] for m in got if m.get("channel") == "executions" and m["data"]]
    assert [(e["exec_type"], e["order_id"]) for e in events] == [
        ("new", order_id),
        ("canceled", order_id),
    ]

    # The SDK parsed the book as floats; as its own order book client does, each level is
    # put back in the pair's precision (price 1, qty 8 decimals) and every checksum checked.
    def wire(levels: list[dict[str, float]]) -> list[dict[str, Decimal]]:
        return [
            {"price": Decimal(f"{lv['price']:.1f}"), "qty": Decimal(f"{lv['qty']:.8f}")}
            for lv in levels
        ]

    book = Book("BTC/USD")
    checked = 0
    for message in (m for m in got if m.get("channel") == "book"):
        entry = message["data"][0]
        apply = book.load if message["type"] == "snapshot" else book.apply
        apply(wire(entry["bids"]), wire(entry["asks"]), entry["checksum"])
        checked += 1
    assert checked >= 2 and not book.stale


async def test_krakenex_trades_against_the_sandbox(creds: tuple[str, str]) -> None:
    """krakenex 2.2, the oldest of them (requests, its own nonces and signing), in a thread."""
    async with Sandbox(dict([creds])) as sandbox:
        api = krakenex.API(*creds)
        api.uri = sandbox.base_url
        query = api.query_private

        def private(method: str, data: dict[str, Any] | None = None) -> Any:
            # krakenex's nonce is the time in whole ms: two calls in one ms share a nonce and
            # the second is refused (EAPI:Invalid nonce), as Kraken would. Not ours to fix.
            time.sleep(0.002)
            return query(method, data)

        api.query_private = private

        def session() -> None:
            ticker = api.query_public("Ticker", {"pair": "XBTUSD"})
            assert ticker["error"] == [] and "XXBTZUSD" in ticker["result"]
            assert Decimal(api.query_private("Balance")["result"]["ZUSD"]) == 100_000
            placed = api.query_private(
                "AddOrder",
                {
                    "pair": "XBTUSD",
                    "type": "buy",
                    "ordertype": "limit",
                    "volume": "0.001",
                    "price": "1000",
                    "userref": 7,
                },
            )
            (txid,) = placed["result"]["txid"]
            assert list(api.query_private("OpenOrders", {"userref": 7})["result"]["open"]) == [txid]
            assert api.query_private("CancelOrder", {"txid": txid})["result"]["count"] == 1
            closed = api.query_private("QueryOrders", {"txid": txid})["result"][txid]
            assert closed["status"] == "canceled"
            assert api.query_private("CancelOrder", {"txid": txid})["error"] == [
                "EOrder:Unknown order"
            ]

        await asyncio.to_thread(session)
        (stats,) = sandbox.stats().values()
    assert stats["invalid_nonce"] == 0 and stats["invalid_signature"] == 0


async def test_python_kraken_sdk_amends_against_the_sandbox(creds: tuple[str, str]) -> None:
    """The SDK's amend_order (cl_ord_id, limit_price, order_qty, post_only, deadline): the
    order changes in place; an elapsed deadline and a post-only price through the spread
    are refused and change nothing."""
    async with Sandbox(dict([creds])) as sandbox:
        trade, user = Trade(*creds, url=sandbox.base_url), User(*creds, url=sandbox.base_url)
        soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).isoformat()
        gone = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()

        def session() -> None:
            cid = "sdk-amend-1"
            trade.create_order(
                ordertype="limit", side="buy", volume="0.001", pair="XBTUSD", price="1000",
                extra_params={"cl_ord_id": cid},
            )  # fmt: skip
            assert "amend_id" in trade.amend_order(
                cl_ord_id=cid, limit_price="1001", order_qty="0.002", deadline=soon
            )
            with pytest.raises(Exception, match="Deadline elapsed"):
                trade.amend_order(cl_ord_id=cid, limit_price="1002", deadline=gone)
            # an error string the SDK does not know comes back in the answer, not raised
            answer = trade.amend_order(cl_ord_id=cid, limit_price="999999", post_only=True)
            assert answer["error"] == ["EOrder:Post only order"]
            (order,) = user.get_open_orders()["open"].values()
            assert (order["descr"]["price"], Decimal(order["vol"])) == ("1001.0", Decimal("0.002"))

        await asyncio.to_thread(session)
