"""A Kraken client nobody here wrote (ccxt) trades against the sandbox: markets, ticker,
balance, an order placed, listed and cancelled, with its own signing and nonces."""

from __future__ import annotations

from typing import Any

import ccxt.async_support as ccxt

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
            balance = await kraken.fetch_balance()
            assert balance["total"]["USD"] == 100_000
            order = await kraken.create_order("BTC/USD", "limit", "buy", 0.001, 1000)
            assert [o["id"] for o in await kraken.fetch_open_orders("BTC/USD")] == [order["id"]]
            await kraken.cancel_order(order["id"])
            assert await kraken.fetch_open_orders("BTC/USD") == []
        finally:
            await kraken.close()
        (stats,) = sandbox.stats().values()
    assert stats["invalid_nonce"] == 0 and stats["invalid_signature"] == 0
