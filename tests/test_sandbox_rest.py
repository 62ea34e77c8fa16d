"""The sandbox answers more of the REST endpoints real Kraken clients call (issue 11, in
part): Assets, SystemStatus, Spread and public Trades; BalanceEx, TradeBalance, QueryTrades,
CancelOrderBatch and GetWebSocketsToken, in Kraken's shapes."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from framework.call import PrivateCall
from framework.clock import ManualClock
from framework.sandbox import Sandbox
from framework.sandbox.ws import Connection
from framework.sandbox.ws_methods import Refusal
from tests.helpers.kraken import client


async def test_public_assets_status_spread_and_trades(creds: tuple[str, str]) -> None:
    async with Sandbox(dict([creds])) as sandbox, client(*creds, sandbox.base_url) as kraken:
        assert (await kraken.public("SystemStatus"))["status"] == "online"
        assets = await kraken.public("Assets")
        assert assets["XXBT"]["altname"] == "XBT" and assets["ZUSD"]["decimals"] == 4
        assert set(await kraken.public("Assets", {"asset": "XBT"})) == {"XXBT"}
        spread = await kraken.public("Spread", {"pair": "XBTUSD"})
        (_, bid, ask) = spread["XXBTZUSD"][0]
        assert Decimal(bid) < Decimal(ask)
        await kraken.add_order(pair="XBTUSD", side="buy", ordertype="market", volume="0.01")
        trades = await kraken.public("Trades", {"pair": "XBTUSD"})
        price, volume, _, side, kind, _, _ = trades["XXBTZUSD"][-1]
        assert (Decimal(volume), side, kind) == (Decimal("0.01"), "b", "m")
        assert Decimal(price) > 0 and int(trades["last"]) > 0


async def test_private_balances_trades_batch_cancel_and_token(creds: tuple[str, str]) -> None:
    async with Sandbox(dict([creds])) as sandbox, client(*creds, sandbox.base_url) as kraken:
        for n in range(3):
            await kraken.add_order(
                pair="XBTUSD",
                side="buy",
                ordertype="limit",
                volume="0.01",
                price=str(1000 + n),
                cl_ord_id=f"batch-{n}",
            )
        held = (await kraken.private("BalanceEx"))["ZUSD"]
        assert Decimal(held["hold_trade"]) > Decimal(30)  # three 10 USD orders, with fees
        assert Decimal((await kraken.private("TradeBalance"))["eb"]) > 0
        open_ = (await kraken.private("OpenOrders"))["open"]
        first = next(t for t, o in open_.items() if o["cl_ord_id"] == "batch-0")
        cancelled = await kraken.private(
            "CancelOrderBatch", {"orders": [first, "batch-1", {"cl_ord_id": "batch-2"}]}
        )
        assert cancelled == {"count": 3} and (await kraken.private("OpenOrders"))["open"] == {}
        await kraken.add_order(pair="XBTUSD", side="buy", ordertype="market", volume="0.01")
        (trade_id,) = (await kraken.private("TradesHistory"))["trades"]
        assert set(await kraken.private("QueryTrades", {"txid": trade_id})) == {trade_id}
        token = await kraken.private("GetWebSocketsToken")
        assert len(token["token"]) > 20 and token["expires"] == 900


async def test_amend_and_edit_orders_and_query_by_userref(creds: tuple[str, str]) -> None:
    async with Sandbox(dict([creds])) as sandbox, client(*creds, sandbox.base_url) as kraken:
        placed = await kraken.add_order(
            pair="XBTUSD", side="buy", ordertype="limit", volume="0.01", price="1000", userref=7
        )
        (txid,) = placed.txids
        amended = await kraken.private(
            "AmendOrder", {"txid": txid, "order_qty": "0.02", "limit_price": "1001.5"}
        )
        assert amended["amend_id"]
        (order,) = (await kraken.private("QueryOrders", {"txid": txid, "userref": 7})).values()
        assert Decimal(order["vol"]) == Decimal("0.02")
        assert Decimal(order["descr"]["price"]) == Decimal("1001.5")
        assert await kraken.private("QueryOrders", {"txid": txid, "userref": 8}) == {}
        edited = await kraken.private(
            "EditOrder", {"txid": txid, "pair": "XBTUSD", "price": "999.0"}
        )
        assert edited["originaltxid"] == txid and edited["txid"] != txid
        open_ = (await kraken.private("OpenOrders"))["open"]
        assert list(open_) == [edited["txid"]]
        assert Decimal(open_[edited["txid"]]["descr"]["price"]) == Decimal("999.0")
        assert Decimal(open_[edited["txid"]]["vol"]) == Decimal("0.02")


async def test_ledgers_follow_the_trades(creds: tuple[str, str]) -> None:
    async with Sandbox(dict([creds])) as sandbox, client(*creds, sandbox.base_url) as kraken:
        await kraken.add_order(pair="XBTUSD", side="buy", ordertype="market", volume="0.01")
        ledger = (await kraken.private("Ledgers"))["ledger"]
        by_asset = {e["asset"]: e for e in ledger.values()}
        assert Decimal(by_asset["XXBT"]["amount"]) == Decimal("0.01")
        assert Decimal(by_asset["ZUSD"]["amount"]) < 0 and Decimal(by_asset["ZUSD"]["fee"]) > 0
        balances = await kraken.balance()
        assert Decimal(by_asset["ZUSD"]["balance"]) == balances["ZUSD"]
        assert Decimal(by_asset["XXBT"]["balance"]) == balances["XXBT"]
        first = next(iter(ledger))
        assert set(await kraken.private("QueryLedgers", {"id": first})) == {first}
        only_btc = (await kraken.private("Ledgers", {"asset": "XXBT"}))["ledger"]
        assert {e["asset"] for e in only_btc.values()} == {"XXBT"}


def test_sandbox_config_can_cut_websockets_at_random() -> None:
    """``[sandbox] ws_drop_every_s`` (``orderly sandbox --ws-drop-every``) reaches the
    sandbox's WebSocket; unset, it never cuts."""
    from framework.config import Config
    from framework.sandbox.paper import sandbox_from

    config = Config.model_validate({"sandbox": {"ws_drop_every_s": [20, 60]}})
    assert sandbox_from(config).ws.drop_every_s == (20, 60)
    assert sandbox_from(Config()).ws.drop_every_s is None


async def test_a_sandbox_traded_by_rest_alone_keeps_nothing_for_websocket_clients(
    creds: tuple[str, str],
) -> None:
    """The WebSocket feeds keep public trades until the next push; with no client
    subscribed they kept them for ever (and a late subscriber got the backlog as news)."""
    async with Sandbox(dict([creds])) as sandbox:
        ask = sandbox.market.quote("XBTUSD")[1]
        for _ in range(3):
            price = (ask * 2).quantize(Decimal("0.1"))
            sandbox.engine.place(creds[0], "XBTUSD", "buy", Decimal("0.001"), price)
        assert len(sandbox.engine.fills) == 3 and sandbox.ws._public_trades == []


def test_expired_websocket_tokens_are_forgotten_but_a_connection_keeps_its_own(
    creds: tuple[str, str],
) -> None:
    """A weeks-long sandbox kept every token it ever issued (one per bot per 5 s at most);
    expired ones now go when the next is issued. A connection that subscribed with a token
    goes on using it after it expires (as on Kraken, while it stays connected); a new
    connection cannot."""
    clock = ManualClock()
    sandbox = Sandbox(dict([creds]), clock=clock)  # not started: no market driver
    first = sandbox.engine.get_websockets_token(creds[0], {})["token"]
    subscribed = Connection(ws=None)  # type: ignore[arg-type]
    assert sandbox.ws._authorise(subscribed, {"token": first}) == creds[0]
    clock.advance(901)
    second = sandbox.engine.get_websockets_token(creds[0], {})["token"]
    assert list(sandbox.engine.ws_tokens) == [second]
    assert sandbox.ws._authorise(subscribed, {"token": first}) == creds[0]
    with pytest.raises(Refusal, match="EAPI:Invalid token"):
        sandbox.ws._authorise(Connection(ws=None), {"token": first})  # type: ignore[arg-type]


#: What a careless or hostile client sends: numbers that are not, out of range, not finite.
ODD = ["", "-1", "1e400", "NaN", "Infinity", "1E+30", "abc", "1,2", "[]", "null", "é", "0.001"]
ENDPOINTS = [
    "AddOrder", "AddOrderBatch", "CancelOrder", "CancelOrderBatch", "CancelAllOrdersAfter",
    "EditOrder", "AmendOrder", "QueryOrders", "OpenOrders", "ClosedOrders", "TradesHistory",
    "QueryTrades", "Ledgers", "QueryLedgers", "Balance", "TradeBalance",
]  # fmt: skip
FIELDS = [
    "pair", "type", "ordertype", "volume", "price", "oflags", "cl_ord_id", "userref",
    "txid", "timeout", "deadline", "start", "end", "ofs", "asset", "id", "trades",
]  # fmt: skip


async def test_odd_parameters_get_a_kraken_error_never_an_http_500(
    creds: tuple[str, str],
) -> None:
    """Seeded: 600 signed private calls with odd values in every field (a trade first, so
    the reads have rows to filter). Every answer is Kraken's envelope with HTTP 200; an
    ``ofs`` or ``start`` that is not a number was an HTTP 500 (ValueError in the sandbox)."""
    rng = random.Random(11)
    async with Sandbox(dict([creds])) as sandbox, client(*creds, sandbox.base_url) as kraken:
        await kraken.add_order(pair="XBTUSD", side="buy", ordertype="market", volume="0.01")
        nonces = iter(range(3 * 10**12, 4 * 10**12))  # above the lane's ms nonces
        for _ in range(600):
            endpoint = rng.choice(ENDPOINTS)
            params = {rng.choice(FIELDS): rng.choice(ODD) for _ in range(rng.randint(1, 5))}
            if rng.random() < 0.3:  # an order that is well formed but for one field
                params = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", **params}
            request = kraken.wire.build(PrivateCall(endpoint, params), next(nonces))
            answer = await kraken.transport.send(request)
            envelope = json.loads(answer.body)
            assert answer.status == 200 and isinstance(envelope["error"], list), (params, answer)


#: Odd values for the WebSocket methods: wrong types where lists, numbers or ids belong.
WS_ODD: list[Any] = ["", -1, 1e30, "NaN", "abc", None, [], {}, True, 10**30, [1, {}], {"a": 1}]
WS_FIELDS = [
    "order_type", "side", "order_qty", "symbol", "limit_price", "order_id", "cl_ord_id",
    "order_userref", "time_in_force", "post_only", "timeout", "orders", "deadline",
]  # fmt: skip
WS_METHODS = [
    "add_order", "amend_order", "cancel_order", "cancel_all", "cancel_all_orders_after",
    "batch_add", "batch_cancel", "subscribe", "nope",
]  # fmt: skip


async def answer_to(ws: aiohttp.ClientWebSocketResponse, request: dict[str, Any]) -> Any:
    """The answer to ``request`` (by its ``req_id``), past heartbeats and channel data; the
    connection must stay open until it comes."""
    while True:
        message = await ws.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.TEXT, (request, message)
        answer = json.loads(message.data)
        if answer.get("req_id") == request["req_id"]:
            return answer


async def test_odd_websocket_requests_get_an_error_answer_and_keep_the_connection(
    creds: tuple[str, str],
) -> None:
    """Seeded: 300 authorised WebSocket v2 requests with wrongly typed fields. Each gets its
    answer on the same connection; an ``order_id`` or ``orders`` that was a number instead
    of a list raised TypeError in the sandbox and cost the client its connection."""
    rng = random.Random(5)
    async with Sandbox(dict([creds])) as sandbox, aiohttp.ClientSession() as http:
        token = sandbox.engine.get_websockets_token(creds[0], {})["token"]
        async with http.ws_connect(sandbox.ws_url) as ws:
            assert json.loads((await ws.receive(timeout=5)).data)["channel"] == "status"
            for req_id in range(300):
                params = {rng.choice(WS_FIELDS): rng.choice(WS_ODD) for _ in range(3)}
                request = {"method": rng.choice(WS_METHODS), "params": params, "req_id": req_id}
                await ws.send_str(json.dumps({**request, "params": {**params, "token": token}}))
                await answer_to(ws, request)


async def test_numbers_the_websocket_echoes_back_never_cost_the_connection(
    creds: tuple[str, str],
) -> None:
    """A valid add_order whose ``cl_ord_id`` is a fraction, and a ``req_id`` that is one:
    numbers are decoded exactly (as Decimal) and a reply echoing them could not be written,
    which closed the connection. Each gets its answer; the connection stays."""
    async with Sandbox(dict([creds])) as sandbox, aiohttp.ClientSession() as http:
        token = sandbox.engine.get_websockets_token(creds[0], {})["token"]
        order = {"order_type": "limit", "side": "buy", "order_qty": 0.01, "symbol": "BTC/USD"}
        requests = [
            {"method": "add_order", "params": {**order, "limit_price": 100, "cl_ord_id": 1.5}},
            {"method": "ping", "req_id": 2.5},
            {"method": "add_order", "req_id": 7, "params": {**order, "limit_price": 100}},
        ]
        async with http.ws_connect(sandbox.ws_url) as ws:
            assert json.loads((await ws.receive(timeout=5)).data)["channel"] == "status"
            answers = []
            for request in requests:
                params = request.get("params")
                sent = {**request, **({"params": {**params, "token": token}} if params else {})}
                await ws.send_str(json.dumps(sent))
                while True:  # past heartbeats and channel data, to this request's answer
                    message = await ws.receive(timeout=5)
                    assert message.type == aiohttp.WSMsgType.TEXT, (request, message)
                    answer = json.loads(message.data)
                    if answer.get("method") in ("add_order", "pong"):
                        answers.append(answer)
                        break
    assert answers[1]["req_id"] == 2.5
    assert answers[2]["success"] is True and answers[2]["req_id"] == 7


#: Order endpoints and a well formed request for each, to change one or two fields of.
NEAR_VALID: dict[str, dict[str, Any]] = {
    "AddOrder": {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.01"},
    "EditOrder": {"pair": "XBTUSD", "volume": "0.02"},
    "AmendOrder": {"order_qty": "0.02"},
    "CancelOrder": {},
    "QueryOrders": {},
}


async def test_near_valid_orders_get_a_kraken_error_never_an_http_500(
    creds: tuple[str, str],
) -> None:
    """Seeded: 400 signed order calls, each well formed but for one or two fields (a valid
    order, or one naming an order that exists, with an odd value put in). Every answer is
    Kraken's envelope with HTTP 200; a ``userref`` that was not an integer was an HTTP 500."""
    rng = random.Random(3)
    async with Sandbox(dict([creds])) as sandbox, client(*creds, sandbox.base_url) as kraken:
        nonces = iter(range(3 * 10**12, 4 * 10**12))
        for _ in range(400):
            endpoint = rng.choice(list(NEAR_VALID))
            params = {**NEAR_VALID[endpoint], "price": "100"} if endpoint == "AddOrder" else {}
            params.update(NEAR_VALID[endpoint])
            if endpoint != "AddOrder":
                params["txid"] = rng.choice(list(sandbox.engine.orders) or ["none"])
            for field in rng.sample(FIELDS, rng.randint(1, 2)):
                params[field] = rng.choice([*ODD, "0x10", "-9-9", "9" * 40, " 1", "post"])
            request = kraken.wire.build(PrivateCall(endpoint, params), next(nonces))
            answer = await kraken.transport.send(request)
            envelope = json.loads(answer.body)
            assert answer.status == 200 and isinstance(envelope["error"], list), (params, answer)
        assert sandbox.engine.orders  # some of them were orders the engine took


async def test_near_valid_websocket_orders_get_an_answer_and_keep_the_connection(
    creds: tuple[str, str],
) -> None:
    """Seeded: 300 WebSocket order requests, each well formed but for one or two fields,
    numbers among the odd values (decoded as Decimal). Each gets its answer, none is an
    internal error, and the connection stays."""
    rng = random.Random(4)
    odd: list[Any] = [*WS_ODD, 1.5, -0.5, 2**70, "BTC/USD", "buy", "limit"]
    async with Sandbox(dict([creds])) as sandbox, aiohttp.ClientSession() as http:
        token = sandbox.engine.get_websockets_token(creds[0], {})["token"]
        order = {"order_type": "limit", "side": "buy", "order_qty": 0.01, "symbol": "BTC/USD"}
        async with http.ws_connect(sandbox.ws_url) as ws:
            assert json.loads((await ws.receive(timeout=5)).data)["channel"] == "status"
            for req_id in range(300):
                method = rng.choice(["add_order", "amend_order", "cancel_order", "batch_add"])
                if method == "add_order":
                    params: dict[str, Any] = {**order, "limit_price": 100}
                elif method == "batch_add":
                    params = {"symbol": "BTC/USD", "orders": [{**order, "limit_price": 100}] * 2}
                else:
                    known = list(sandbox.engine.orders) or ["none"]
                    params = {"order_id": rng.choice(known), "order_qty": 0.02}
                for field in rng.sample(WS_FIELDS, rng.randint(1, 2)):
                    params[field] = rng.choice(odd)
                request = {"method": method, "params": {**params, "token": token}, "req_id": req_id}
                await ws.send_str(json.dumps(request))
                answer = await answer_to(ws, request)
                assert "Internal" not in str(answer.get("error")), (request, answer)
