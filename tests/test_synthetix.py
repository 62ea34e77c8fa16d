"""Synthetix: EIP-712 vectors, and the client over real HTTP against the conformance server
(tests/conformance/synthetix_server.py)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import aiohttp
import pytest

from framework.errors import AuthError, InvalidArguments, OrderRejected, TransientError
from framework.exchanges.synthetix import SynthetixClient, recover, sign_action
from framework.exchanges.synthetix.client import order_id_of
from framework.exchanges.synthetix.signer import typed_data
from tests.conformance.synthetix_server import SynthetixServer

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # Hardhat key #0
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
SUB = 1867542890123456789
ORDER = {
    "symbol": "BTC-USDT",
    "side": "buy",
    "orderType": "limitGtc",
    "price": "50000.00",
    "triggerPrice": "",
    "quantity": "0.1",
    "reduceOnly": False,
    "isTriggerMarket": False,
    "clientOrderId": "",
    "closePosition": False,
}
PLACE = {
    "subAccountId": SUB,
    "orders": [ORDER],
    "grouping": "na",
    "nonce": 1704067200000,
    "expiresAfter": 0,
}
CANCEL = {
    "subAccountId": SUB,
    "orderIds": [1948058938469519360],
    "nonce": 1704067200001,
    "expiresAfter": 0,
}
VECTORS = [
    (
        "PlaceOrders",
        PLACE,
        27,
        "0x8f1b5f4e6755b78f340d11aaa51e129ccb2deec7edae55667dfc458ccab4d61a",
        "0x5d8cfdc83693001cedb01b8e5605357e368d0142bdc95b1050ed0d21d0739f19",
    ),
    (
        "CancelOrders",
        CANCEL,
        28,
        "0xa5e1a208255a150fb535e5874f33e758a36e6a71e992bc4e8fa2180ee223fab6",
        "0x61f7febc9bf191292c81722e40ca7eb9688c9a6d01db944f9399a0e1b76e43e4",
    ),
]


@pytest.mark.parametrize(("primary", "message", "v", "r", "s"), VECTORS)
def test_vectors(primary: str, message: dict[str, Any], v: int, r: str, s: str) -> None:
    assert sign_action(primary, message, KEY) == {"v": v, "r": r, "s": s}
    assert recover(primary, message, {"v": v, "r": r, "s": s}) == ADDRESS


def test_domain_separator_and_struct_hashes() -> None:
    from eth_account.messages import encode_typed_data

    place = encode_typed_data(full_message=typed_data("PlaceOrders", PLACE))
    cancel = encode_typed_data(full_message=typed_data("CancelOrders", CANCEL))
    assert place.header.hex() == (
        "f2c29ce8c9f7da15c7cf3e5dd99e22368ce2ed7e5fbe9d676e8c92789a9014d0"
    )
    assert place.body.hex() == "2e9135b6b5ccd4c99b68c802a08e1613e4898ac8cf6a1e3ddfaeb8bc4da8bebb"
    assert cancel.body.hex() == ("5dce98c5bc73ff826ba705d9ea9e8a6c541d3474bbef328ee1a56b5c5a84eec2")


async def post(server: SynthetixServer, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.base_url}/v1/trade", json=body) as response,
    ):
        return response.status, await response.json()


async def test_server_verifies_the_vectors() -> None:
    async with SynthetixServer({SUB: ADDRESS}) as server:
        place_sig = dict(zip(("v", "r", "s"), VECTORS[0][2:], strict=True))
        status, ok = await post(
            server,
            {
                "params": {
                    "action": "placeOrders",
                    "subAccountId": str(SUB),
                    "orders": [ORDER],
                    "grouping": "na",
                    "source": "direct",
                },
                "nonce": 1704067200000,
                "signature": place_sig,
                "expiresAfter": 0,
            },
        )
        assert (status, ok["status"]) == (200, "ok")
        cancel_sig = dict(zip(("v", "r", "s"), VECTORS[1][2:], strict=True))
        status, _ = await post(
            server,
            {
                "action": {
                    "action": "cancelOrders",
                    "subAccountId": str(SUB),
                    "orderIds": ["1948058938469519360"],
                },  # the older request shape
                "nonce": 1704067200001,
                "signature": cancel_sig,
                "expiresAfter": 0,
            },
        )
        assert status == 200
        status, bad = await post(
            server,
            {
                "params": {
                    "action": "placeOrders",
                    "subAccountId": str(SUB),
                    "orders": [ORDER],
                    "grouping": "na",
                },
                "nonce": 1704067200002,
                "signature": place_sig,
                "expiresAfter": 0,
            },
        )
        assert status == 401 and bad["error"] == {
            "code": "UNAUTHORIZED",
            "message": "Invalid signature",
            "details": {},
        }


async def test_place_and_cancel_round_trip() -> None:
    async with (
        SynthetixServer({SUB: ADDRESS}) as server,
        SynthetixClient(KEY, SUB, server.base_url) as snx,
    ):
        placed = await snx.place_orders(
            [
                {
                    "symbol": "BTC-USDT",
                    "side": "buy",
                    "orderType": "limitGtc",
                    "price": "50000.00",
                    "quantity": "0.1",
                    "clientOrderId": "c-1",
                }
            ]
        )
        first = placed[0]
        assert isinstance(first, dict)
        assert "resting" in first
        order_id = order_id_of(first)
        assert order_id is not None
        (dup,) = await snx.place_orders([{**ORDER, "clientOrderId": "c-1"}])
        assert isinstance(dup, OrderRejected) and dup.code == "IDEMPOTENCY_CONFLICT"
        cancelled = await snx.cancel_orders([order_id])
        assert [order_id_of(c) for c in cancelled if isinstance(c, dict)] == [order_id]
        assert "canceled" in cancelled[0]
        with pytest.raises(InvalidArguments, match="quantity"):
            await snx.place_orders([{"symbol": "BTC-USDT", "side": "buy", "orderType": "market"}])


async def test_a_stranger_is_refused() -> None:
    stranger = "0x" + "11" * 32
    async with (
        SynthetixServer({SUB: ADDRESS}) as server,
        SynthetixClient(stranger, SUB, server.base_url) as snx,
    ):
        with pytest.raises(AuthError, match="Invalid signature") as refused:
            await snx.place_orders([ORDER])
    assert stranger not in str(refused.value) and stranger not in repr(snx)


async def test_64_coroutines_strictly_increasing() -> None:
    async with SynthetixServer({SUB: ADDRESS}, delay_ms=(0, 5), seed=3) as server:
        async with SynthetixClient(KEY, SUB, server.base_url) as snx:

            async def producer() -> None:
                for _ in range(3):
                    await snx.cancel_orders([1])

            await asyncio.gather(*(producer() for _ in range(64)))
        accepted = server.accepted
    assert server.refused == {} and len(accepted) == 192
    assert all(b > a for a, b in itertools.pairwise(accepted))


async def test_resync_from_last_nonce() -> None:
    async with (
        SynthetixServer({SUB: ADDRESS}) as server,
        SynthetixClient(KEY, SUB, server.base_url) as snx,
    ):
        ahead = int(time.time() * 1000) + 10**9  # another system used nonces far ahead
        server.last_nonce[(ADDRESS.lower(), SUB)] = ahead
        assert await snx.cancel_orders([1])
    assert server.refused == {"Nonce already used": 1}
    assert server.accepted == [ahead + 1]


@pytest.mark.parametrize(
    ("client_unit", "server_unit", "accepted"),
    [("s", "s", True), ("ms", "ms", True), ("s", "ms", False)],
)
async def test_expires_after_unit_is_configurable(
    client_unit: Any, server_unit: str, accepted: bool
) -> None:
    server = SynthetixServer({SUB: ADDRESS}, expires_unit=server_unit)
    async with (
        server,
        SynthetixClient(
            KEY, SUB, server.base_url, expires_after_s=30, expires_unit=client_unit
        ) as snx,
    ):
        if accepted:
            assert await snx.cancel_orders([1])
        else:  # seconds read as milliseconds: long past
            with pytest.raises(TransientError, match="Signature expired"):
                await snx.cancel_orders([1])
