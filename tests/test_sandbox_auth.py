"""The sandbox as Kraken's conformance server: raw HTTP requests, exact error strings."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from framework.clock import ManualClock
from framework.exchanges.kraken import sign
from framework.sandbox import AuthRules, OrderRules, Sandbox
from framework.sandbox.kraken_rules import api_sign
from tests.test_kraken_signer import DOC_NONCE, DOC_SECRET

DOC_KEY = "doc-vector-key"
DOC_BODY = b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
DOC_SIGN = (
    "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
    method: str,
    body: bytes,
    *,
    key: str | None = DOC_KEY,
    api_sign: str | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["API-Key"] = key
    if api_sign is not None:
        headers["API-Sign"] = api_sign
    async with http.post(
        f"{sandbox.base_url}/0/private/{method}", data=body, headers=headers
    ) as response:
        return response.status, await response.json()


def form(nonce: int, **params: Any) -> bytes:
    return urlencode({"nonce": nonce, **params}).encode()


async def signed(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
    method: str,
    nonce: int,
    body: bytes | None = None,
    **kw: Any,
) -> tuple[int, dict[str, Any]]:
    body = form(nonce) if body is None else body
    return await post(
        http,
        sandbox,
        method,
        body,
        api_sign=sign(f"/0/private/{method}", nonce, body, DOC_SECRET),
        **kw,
    )


async def test_accepts_the_documented_vector(http: aiohttp.ClientSession) -> None:
    async with Sandbox({DOC_KEY: DOC_SECRET}) as sandbox:
        status, reply = await post(http, sandbox, "AddOrder", DOC_BODY, api_sign=DOC_SIGN)
    assert status == 200 and reply["error"] == []
    assert reply["result"]["txid"] and "buy 1.25 XBTUSD" in reply["result"]["descr"]["order"]


async def test_accepts_json_bodies_signed_over_raw_bytes(http: aiohttp.ClientSession) -> None:
    body = json.dumps(
        {
            "nonce": DOC_NONCE,
            "ordertype": "limit",
            "pair": "XBTUSD",
            "price": "37500",
            "type": "buy",
            "volume": "1.25",
        },
        separators=(",", ":"),
    ).encode()
    expected = (
        "kMkTQfyYJH05IdnWQ9TIqL9Kq+dKqcD5O/TGPPLRwwy1is/YvqEYtMAHf7tXsqwfbLwp7pbzJzWHxzKPnL8rfA=="
    )
    async with Sandbox({DOC_KEY: DOC_SECRET}) as sandbox:
        status, reply = await post(
            http, sandbox, "AddOrder", body, api_sign=expected, content_type="application/json"
        )
    assert (status, reply["error"]) == (200, [])


@pytest.mark.parametrize(
    ("key", "api_sign", "body", "error"),
    [
        (None, "x", form(5), "EAPI:Invalid key"),
        ("unknown-key", "x", form(5), "EAPI:Invalid key"),
        (DOC_KEY, "bm90IGEgc2lnbmF0dXJl", form(5), "EAPI:Invalid signature"),
        (DOC_KEY, None, form(5), "EAPI:Invalid signature"),
        (DOC_KEY, "x", b"pair=XBTUSD", "EGeneral:Invalid arguments:nonce"),
        (DOC_KEY, "x", b"nonce=abc", "EGeneral:Invalid arguments:nonce"),
    ],
)
async def test_auth_errors_are_kraken_strings_with_http_200(
    http: aiohttp.ClientSession, key: str | None, api_sign: str | None, body: bytes, error: str
) -> None:
    async with Sandbox({DOC_KEY: DOC_SECRET}) as sandbox:
        status, reply = await post(http, sandbox, "Balance", body, key=key, api_sign=api_sign)
    assert status == 200 and reply == {"error": [error], "result": {}}


async def test_nonce_must_strictly_increase(http: aiohttp.ClientSession) -> None:
    async with Sandbox({DOC_KEY: DOC_SECRET}) as sandbox:
        assert (await signed(http, sandbox, "Balance", 100))[1]["error"] == []
        assert (await signed(http, sandbox, "Balance", 100))[1]["error"] == ["EAPI:Invalid nonce"]
        assert (await signed(http, sandbox, "Balance", 99))[1]["error"] == ["EAPI:Invalid nonce"]
        assert (await signed(http, sandbox, "Balance", 101))[1]["error"] == []
        assert sandbox.accepted_nonces(DOC_KEY) == [100, 101]


async def test_nonce_window(http: aiohttp.ClientSession) -> None:
    async with Sandbox({DOC_KEY: DOC_SECRET}, rules=AuthRules(nonce_window=10)) as sandbox:
        assert (await signed(http, sandbox, "Balance", 100))[1]["error"] == []
        assert (await signed(http, sandbox, "Balance", 95))[1]["error"] == []  # inside
        assert (await signed(http, sandbox, "Balance", 95))[1]["error"] == [
            "EAPI:Invalid nonce"  # an exact repeat is refused, even inside the window
        ]
        assert (await signed(http, sandbox, "Balance", 90))[1]["error"] == [
            "EAPI:Invalid nonce"  # at the edge: last - window is outside
        ]


async def test_repeat_inside_the_window_can_be_allowed(http: aiohttp.ClientSession) -> None:
    rules = AuthRules(nonce_window=10, repeat_in_window=True)
    async with Sandbox({DOC_KEY: DOC_SECRET}, rules=rules) as sandbox:
        for nonce in (100, 95, 95):
            assert (await signed(http, sandbox, "Balance", nonce))[1]["error"] == []


async def test_json_body_without_content_type(http: aiohttp.ClientSession) -> None:
    body = b'{"nonce":7}'
    async with Sandbox({DOC_KEY: DOC_SECRET}) as sandbox:
        reply = await signed(http, sandbox, "Balance", 7, body, content_type="text/plain")
    assert reply[1]["error"] == []


async def test_configurable_order_error_strings(http: aiohttp.ClientSession) -> None:
    rules = OrderRules(
        duplicate_cl_ord_id_error="EOrder:Invalid order", unknown_order_error="EOrder:Invalid order"
    )
    async with Sandbox({DOC_KEY: DOC_SECRET}, order_rules=rules) as sandbox:
        await signed(http, sandbox, "AddOrder", 1, limit_order(1, cl_ord_id="a"))
        dup = await signed(http, sandbox, "AddOrder", 2, limit_order(2, cl_ord_id="a"))
        gone = await signed(http, sandbox, "CancelOrder", 3, form(3, txid="NOPE"))
    assert dup[1]["error"] == gone[1]["error"] == ["EOrder:Invalid order"]


async def test_lockout_after_repeated_failures_then_recovery(http: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    rules = AuthRules(lockout_threshold=3, lockout_seconds=60)
    async with Sandbox({DOC_KEY: DOC_SECRET}, rules=rules, clock=clock) as sandbox:
        assert (await signed(http, sandbox, "Balance", 100))[1]["error"] == []
        for _ in range(3):
            assert (await signed(http, sandbox, "Balance", 50))[1]["error"] == [
                "EAPI:Invalid nonce"
            ]
        assert (await signed(http, sandbox, "Balance", 200))[1]["error"] == [
            "EGeneral:Temporary lockout"
        ]
        clock.advance(61)
        assert (await signed(http, sandbox, "Balance", 201))[1]["error"] == []


async def test_bad_signatures_count_towards_lockout(http: aiohttp.ClientSession) -> None:
    rules = AuthRules(lockout_threshold=2)
    async with Sandbox({DOC_KEY: DOC_SECRET}, rules=rules) as sandbox:
        for _ in range(2):
            await post(http, sandbox, "Balance", form(5), api_sign="bad")
        assert (await signed(http, sandbox, "Balance", 6))[1]["error"] == [
            "EGeneral:Temporary lockout"
        ]


async def test_success_resets_the_failure_count(http: aiohttp.ClientSession) -> None:
    rules = AuthRules(lockout_threshold=2)
    async with Sandbox({DOC_KEY: DOC_SECRET}, rules=rules) as sandbox:
        for nonce in (10, 20, 30):
            await post(http, sandbox, "Balance", form(nonce), api_sign="bad")
            assert (await signed(http, sandbox, "Balance", nonce))[1]["error"] == []


def limit_order(nonce: int, **fields: Any) -> bytes:
    """A form-encoded XBTUSD limit buy, with ``fields`` added or replaced."""
    order = {
        "pair": "XBTUSD",
        "type": "buy",
        "ordertype": "limit",
        "volume": "0.5",
        "price": "100",
        **fields,
    }
    return form(nonce, **{k: v for k, v in order.items() if v is not None})


async def test_order_endpoints_record_orders(http: aiohttp.ClientSession) -> None:
    async with Sandbox({DOC_KEY: DOC_SECRET}) as sandbox:

        async def call(method: str, nonce: int, body: bytes) -> dict[str, Any]:
            return (await signed(http, sandbox, method, nonce, body))[1]

        added = await call("AddOrder", 1, limit_order(1, cl_ord_id="my-order-1"))
        txid = added["result"]["txid"][0]
        dup = await call("AddOrder", 2, limit_order(2, cl_ord_id="my-order-1"))
        assert dup["error"] == ["EOrder:Duplicate cl_ord_id"]
        both = await call("AddOrder", 3, limit_order(3, cl_ord_id="x", userref=5))
        assert both["error"][0].startswith("EGeneral:Invalid arguments")
        no_price = await call("AddOrder", 4, limit_order(4, price=None, validate="true"))
        assert no_price["error"] == ["EGeneral:Invalid arguments:price"]
        market = await call("AddOrder", 5, limit_order(5, ordertype="market", validate="true"))
        assert "txid" not in market["result"]
        found = await call("OpenOrders", 6, form(6, cl_ord_id="my-order-1"))
        assert list(found["result"]["open"]) == [txid]
        cancelled = await call("CancelOrder", 7, form(7, txid=txid))
        assert cancelled["result"] == {"count": 1, "pending": False}
        again = await call("CancelOrder", 8, form(8, txid=txid))
        assert again["error"] == ["EOrder:Unknown order"]
        closed = await call("ClosedOrders", 9, form(9, cl_ord_id="my-order-1"))
        assert list(closed["result"]["closed"]) == [txid]
        queried = await call("QueryOrders", 10, form(10, txid=txid))
        assert queried["result"][txid]["status"] == "canceled"


async def test_public_endpoints(http: aiohttp.ClientSession) -> None:
    async with Sandbox({DOC_KEY: DOC_SECRET}) as sandbox:
        async with http.get(f"{sandbox.base_url}/0/public/Time") as response:
            time_reply = await response.json()
        async with http.get(f"{sandbox.base_url}/0/public/Ticker?pair=NOPE") as response:
            bad = await response.json()
    assert set(time_reply["result"]) == {"unixtime", "rfc1123"}
    assert bad == {"error": ["EQuery:Unknown asset pair"], "result": {}}


def test_the_sandboxs_own_signature_matches_the_documented_vectors() -> None:
    """protocols.md 1.2: the docs' AddOrder vector and the SDK's golden Balance vector."""
    assert api_sign("/0/private/AddOrder", str(DOC_NONCE), DOC_BODY, DOC_SECRET) == DOC_SIGN
    golden = base64.b64encode(b"\x01" * 32).decode()
    assert api_sign(
        "/0/private/Balance", "1700000000000000000", b"nonce=1700000000000000000", golden
    ) == (
        "6i7+cpXVLDDnDOekgsRcgFQhkYFyPDSSxhSVA8OrA6vjziXcy2K1DP3n7f9B/Kgni71WjBSQusZKxduRsdF20Q=="
    )


async def test_a_userref_that_is_not_an_integer_is_an_invalid_argument(
    http: aiohttp.ClientSession,
) -> None:
    """Kraken's ``userref`` is a 32-bit integer; anything else is refused with the field
    named (the sandbox answered an internal error before)."""
    async with Sandbox({DOC_KEY: DOC_SECRET}) as sandbox:
        for nonce, userref in enumerate(("abc", "1.5", str(2**40)), 1):
            _, reply = await signed(
                http, sandbox, "AddOrder", nonce, limit_order(nonce, userref=userref)
            )
            assert reply["error"] == ["EGeneral:Invalid arguments:userref"], userref
        _, good = await signed(http, sandbox, "AddOrder", 9, limit_order(9, userref="-7"))
        assert good["error"] == [] and good["result"]["txid"]
