"""Bitunix futures: signer vectors, and the client over real HTTP against the conformance
server (tests/conformance/bitunix_server.py)."""

from __future__ import annotations

import asyncio
import io
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from framework import log
from framework.cli import main as orderly
from framework.clock import ManualClock
from framework.errors import AuthError, OrderRejected, TransientError
from framework.exchanges.bitunix import BitunixClient, sign
from framework.nonce import NonceHistory
from tests.conformance.bitunix_server import BitunixServer

KEY, SECRET = "bitunix-test-key-0001", "bitunix-test-secret-0001"
BODY = '{"uid":"2899","arr":[{"id":1,"name":"maple"},{"id":2,"name":"lily"}]}'


@pytest.mark.parametrize(
    ("nonce", "timestamp", "api_key", "query", "body", "secret", "expected"),
    [
        (
            "33333333333333333",
            "1747104711262",
            "11111111111111111",
            {"marginCoin": "USDT"},
            "",
            "22222222222222222",
            "40e87256554e263e39201a3979469b7fbb640d1c7c41759abf5c6a18f937f922",
        ),  # official demo
        (
            "123456",
            "20241120123045",
            "yourApiKey",
            {"uid": 200, "id": 1},
            BODY,
            "yourSecretKey",
            "00397cd1e52c7dce3258067324363b6361fabc9178a0912b330c138db8745655",
        ),  # docs' inputs
    ],
)
def test_vectors(
    nonce: str,
    timestamp: str,
    api_key: str,
    query: dict[str, Any],
    body: str,
    secret: str,
    expected: str,
) -> None:
    assert (
        sign(
            nonce=nonce, timestamp=timestamp, api_key=api_key, query=query, body=body, secret=secret
        )
        == expected
    )


async def test_server_accepts_the_official_demo_request() -> None:
    clock = ManualClock(wall_ns=1747104711262 * 10**6)
    async with BitunixServer({"11111111111111111": "22222222222222222"}, clock=clock) as server:
        headers = {
            "api-key": "11111111111111111",
            "nonce": "33333333333333333",
            "timestamp": "1747104711262",
            "sign": "40e87256554e263e39201a3979469b7fbb640d1c7c41759abf5c6a18f937f922",
        }
        async with aiohttp.ClientSession() as http:
            url = f"{server.base_url}/api/v1/futures/account?marginCoin=USDT"
            async with http.get(url, headers=headers) as response:
                ok = await response.json()
            async with http.get(url, headers={**headers, "sign": "0" * 64}) as response:
                bad = await response.json()
            async with http.get(url, headers={**headers, "api-key": ""}) as response:
                empty = await response.json()
    assert ok["code"] == 0 and ok["data"]["marginCoin"] == "USDT"
    assert bad == {"code": 10007, "msg": "Sign signature error", "data": None}
    assert empty["code"] == 10003


async def test_orders_round_trip() -> None:
    async with (
        BitunixServer({KEY: SECRET}) as server,
        BitunixClient(KEY, SECRET, server.base_url) as bitunix,
    ):
        placed = await bitunix.place_order(
            symbol="BTCUSDT",
            side="BUY",
            qty="0.01",
            order_type="LIMIT",
            price="50000",
            client_id="g-1",
        )
        assert placed["clientId"] == "g-1" and placed["orderId"]
        with pytest.raises(OrderRejected, match="30042 Client ID duplicate") as dup:
            await bitunix.place_order(
                symbol="BTCUSDT",
                side="BUY",
                qty="0.01",
                order_type="LIMIT",
                price="50000",
                client_id="g-1",
            )
        assert dup.value.code == "30042"
        assert (await bitunix.get_order_detail(client_id="g-1"))["orderId"] == placed["orderId"]
        assert [o["clientId"] for o in await bitunix.get_pending_orders("BTCUSDT")] == ["g-1"]
        cancelled = await bitunix.cancel_orders("BTCUSDT", client_ids=["g-1"])
        assert cancelled["successList"][0]["clientId"] == "g-1"
        assert await bitunix.get_pending_orders() == []
        with pytest.raises(OrderRejected, match="20007"):
            await bitunix.get_order_detail(client_id="nope")
        assert (await bitunix.account())["marginCoin"] == "USDT"
        assert (await bitunix.tickers(["BTCUSDT"]))[0]["symbol"] == "BTCUSDT"


async def test_batch_is_split_and_results_mapped_back() -> None:
    orders = [
        {
            "side": "BUY",
            "qty": "0.01",
            "orderType": "LIMIT",
            "price": str(40000 + i),
            "clientId": f"b-{i}",
        }
        for i in range(45)
    ]
    orders[30]["clientId"] = "b-3"  # a duplicate of an earlier order: refused alone
    async with (
        BitunixServer({KEY: SECRET}) as server,
        BitunixClient(KEY, SECRET, server.base_url) as bitunix,
    ):
        results = await bitunix.batch_order("BTCUSDT", orders)
        calls = server.requests
    assert calls == 3  # 20 + 20 + 5
    assert isinstance(results[30], OrderRejected) and results[30].code == "30042"
    assert [r["clientId"] for r in results if isinstance(r, dict)] == [
        o["clientId"] for i, o in enumerate(orders) if i != 30
    ]


async def test_64_coroutines_never_reuse_a_nonce(tmp_path: Path) -> None:
    history = NonceHistory(tmp_path / "h.jsonl")
    async with BitunixServer({KEY: SECRET}, delay_ms=(0, 5), seed=1) as server:
        async with BitunixClient(KEY, SECRET, server.base_url, history=history) as bitunix:
            assert bitunix.lane.ordering == "unordered"

            async def producer() -> None:
                for _ in range(4):
                    await bitunix.account()

            await asyncio.gather(*(producer() for _ in range(64)))
        nonces = [n for seen in server.seen_nonces.values() for n in seen]
        assert server.refused == {} and server.requests == 256
    history.close()
    assert len(set(nonces)) == 256 and all(re.fullmatch(r"[0-9a-f]{32}", n) for n in nonces)
    assert orderly(["nonces", "check", "--file", str(tmp_path / "h.jsonl")]) == 0


async def test_server_clock_is_learned_from_the_date_header() -> None:
    clock = ManualClock(wall_ns=time.time_ns() + 90 * 10**9)  # the server runs 90 s ahead
    async with (
        BitunixServer({KEY: SECRET}, clock=clock) as server,
        BitunixClient(KEY, SECRET, server.base_url) as bitunix,
    ):
        assert 89_000 <= bitunix.clock_offset_ms <= 91_000
        assert await bitunix.account()  # stamped in server time: inside the window


async def test_a_call_older_than_the_window_is_not_sent() -> None:
    async with (
        BitunixServer({KEY: SECRET}, delay_ms=(150, 150)) as server,
        BitunixClient(KEY, SECRET, server.base_url, max_in_flight=1, window_s=0.1) as bitunix,
    ):
        results = await asyncio.gather(
            *(bitunix.account() for _ in range(3)), return_exceptions=True
        )
        sent = server.requests
    assert isinstance(results[0], dict)
    assert all(isinstance(r, TransientError) and "time window" in str(r) for r in results[1:])
    assert sent == 1


async def test_refusals_are_typed_and_secrets_stay_out() -> None:
    stream = io.StringIO()
    log.configure("debug", stream=stream, json=True)
    async with (
        BitunixServer({KEY: SECRET}) as server,
        BitunixClient(KEY, "wrong-secret-value", server.base_url) as bitunix,
    ):
        with pytest.raises(AuthError, match="10007") as refused:
            await bitunix.account()
        texts = [str(refused.value), repr(refused.value), repr(bitunix), stream.getvalue()]
    assert all(KEY not in t and "wrong-secret-value" not in t for t in texts)


@pytest.mark.parametrize("paced", [True, False])
async def test_order_bursts_keep_to_the_documented_limits(paced: bool) -> None:
    async with (
        BitunixServer({KEY: SECRET}) as server,
        BitunixClient(KEY, SECRET, server.base_url, paced=paced) as bitunix,
    ):
        results = await asyncio.gather(
            *(
                bitunix.place_order(
                    symbol="BTCUSDT",
                    side="BUY",
                    qty="0.01",
                    order_type="LIMIT",
                    price="40000",
                    client_id=f"r-{n}",
                )
                for n in range(25)
            ),
            return_exceptions=True,
        )
    refused = server.refused.get(10006, 0)
    if paced:  # 25 orders at 10/s: paced, never refused
        assert refused == 0 and all(isinstance(r, dict) for r in results)
    else:  # the control: the same burst unpaced is refused
        assert refused > 0
