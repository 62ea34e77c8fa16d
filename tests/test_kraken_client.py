"""KrakenClient against the sandbox over HTTP: typed calls, encodings, error translation."""

from __future__ import annotations

import asyncio
import random
import socket
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from aiohttp import web

from framework.errors import (
    AmbiguousOutcome,
    AuthError,
    ConfigError,
    InvalidArguments,
    InvalidRequest,
    OrderRejected,
    TransientError,
)
from framework.exchanges.kraken.wire import encode, form_value
from framework.sandbox import Sandbox
from tests.helpers.kraken import client


async def test_typed_calls(creds: tuple[str, str]) -> None:
    key, secret = creds
    async with Sandbox({key: secret}) as sandbox, client(key, secret, sandbox.base_url) as k:
        assert (await k.balance())["ZUSD"] == Decimal("100000.0000")
        placed = await k.add_order(
            pair="XBTUSD",
            side="buy",
            ordertype="limit",
            volume=Decimal("0.25"),
            price=Decimal("50000"),
            cl_ord_id="grid-1",
        )
        assert len(placed.txids) == 1 and "buy 0.25 XBTUSD" in placed.description
        assert list(await k.open_orders(cl_ord_id="grid-1")) == list(placed.txids)
        assert (await k.query_orders(placed.txids))[placed.txids[0]]["status"] == "open"
        assert (await k.cancel_order(cl_ord_id="grid-1")).count == 1
        assert await k.open_orders() == {}
        ticker = await k.ticker("XBTUSD")
        assert ticker.pair == "XBTUSD" and ticker.ask > ticker.bid > 0
        assert (await k.server_time()).unixtime > 1_600_000_000


async def test_json_encoding_and_nested_params(creds: tuple[str, str]) -> None:
    key, secret = creds
    orders = [
        {"type": "buy", "ordertype": "limit", "volume": "1", "price": str(p)} for p in (100, 101)
    ]
    async with Sandbox({key: secret}) as sandbox:
        async with client(key, secret, sandbox.base_url) as k:  # form, nested -> JSON
            batch = await k.private("AddOrderBatch", {"pair": "XBTUSD", "orders": orders})
        async with client(key, secret, sandbox.base_url, body_encoding="json") as k:
            assert await k.balance()
    assert [set(o) for o in batch["orders"]] == [{"txid", "descr"}] * 2


async def test_user_mistakes_are_typed_before_sending(creds: tuple[str, str]) -> None:
    key, secret = creds
    async with Sandbox({key: secret}) as sandbox, client(key, secret, sandbox.base_url) as k:
        with pytest.raises(InvalidArguments, match="needs a price"):
            await k.add_order(pair="XBTUSD", side="buy", ordertype="limit", volume="1")
        with pytest.raises(InvalidArguments, match="side"):
            await k.add_order(
                pair="XBTUSD",
                side="long",
                ordertype="market",  # type: ignore[arg-type]
                volume="1",
            )
        with pytest.raises(InvalidArguments, match="not a number"):
            await k.add_order(pair="XBTUSD", side="buy", ordertype="market", volume="lots")
        with pytest.raises(InvalidArguments, match="mutually exclusive"):
            await k.add_order(
                pair="XBTUSD", side="buy", ordertype="market", volume="1", cl_ord_id="a", userref=1
            )
        with pytest.raises(InvalidRequest, match="Unknown asset pair"):
            await k.add_order(pair="NOPE", side="buy", ordertype="market", volume="1")
        assert sandbox.stats()[k.key_id]["accepted"] == 1  # only the last one reached it


async def test_exchange_errors_are_translated(creds: tuple[str, str]) -> None:
    key, secret = creds
    async with Sandbox({key: secret}) as sandbox:
        async with client(key, "A" * 88, sandbox.base_url) as k:
            with pytest.raises(AuthError, match="EAPI:Invalid signature") as bad:
                await k.balance()
        assert bad.value.code == "EAPI:Invalid signature" and bad.value.endpoint == "Balance"
        async with client(key, secret, sandbox.base_url) as k:
            with pytest.raises(OrderRejected, match="EOrder:Unknown order"):
                await k.cancel_order(txid="NOPE")


def test_empty_credentials_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="must both be set"):
        client("", "", "http://127.0.0.1:1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_unreachable_exchange_is_transient(creds: tuple[str, str]) -> None:
    key, secret = creds
    async with client(key, secret, f"http://127.0.0.1:{free_port()}") as k:
        with pytest.raises(TransientError, match="cannot reach Kraken"):
            await k.balance()


async def test_lost_answer_on_an_order_is_ambiguous_and_on_a_read_transient(
    creds: tuple[str, str],
) -> None:
    """A server that never answers: AddOrder may have run, Balance certainly changed nothing."""
    key, secret = creds

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.json_response({"error": [], "result": {}})

    async def html_500(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>bad gateway</html>", content_type="text/html")

    app = web.Application()
    app.router.add_post("/0/private/{method}", hang)
    app.router.add_post("/slow/0/private/{method}", html_500)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with client(key, secret, f"http://127.0.0.1:{port}", timeout=0.2) as k:
            with pytest.raises(AmbiguousOutcome, match="no answer in time"):
                await k.add_order(pair="XBTUSD", side="buy", ordertype="market", volume="1")
            with pytest.raises(TransientError) as read:
                await k.balance()
            assert not isinstance(read.value, AmbiguousOutcome)
        async with client(key, secret, f"http://127.0.0.1:{port}/slow") as k:
            with pytest.raises(AmbiguousOutcome, match="HTTP 502"):
                await k.add_order(pair="XBTUSD", side="buy", ordertype="market", volume="1")
    finally:
        await runner.cleanup()


def test_form_bodies_are_what_urlencode_makes() -> None:
    """The form encoder takes unreserved text as it is and quotes the rest: byte for byte
    what ``urllib.parse.urlencode`` gives, for any keys and values."""
    chars = "aZ09_.-~ +&=%/?#:;,\"'<>éß€\u2028\n\t"
    rng = random.Random(7)
    for _ in range(500):
        params = {
            "".join(rng.choices(chars, k=rng.randint(1, 6))): "".join(
                rng.choices(chars, k=rng.randint(0, 8))
            )
            for _ in range(rng.randint(0, 4))
        }
        params["flag"] = rng.choice([True, False, 12, Decimal("0.10")])  # type: ignore[assignment]
        body, _ = encode(params, 1234567890123)
        expected = [("nonce", "1234567890123"), *((k, form_value(v)) for k, v in params.items())]
        assert body == urlencode(expected).encode(), params
