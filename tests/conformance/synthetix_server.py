"""A Synthetix off-chain trade conformance server, per protocols.md ("What a conformance
mock server must enforce", Synthetix, and "3.x Corrections" from the official SDK):

- JSON ``POST /v1/trade``; the ``{params: {action, ...}, nonce, signature, expiresAfter}``
  shape and the older ``{action: {action, ...}, ...}`` one; ``subAccountId`` (the docs) or
  ``subaccountId`` (the official SDK);
- the EIP-712 typed data is rebuilt from the JSON (``subAccountId`` and ``orderIds`` are
  strings there, uint256 in the hash), the signer recovered and compared with the
  subaccount's owner: else 401 ``UNAUTHORIZED`` "Invalid signature";
- nonce per signer and subaccount: a positive integer ≤ 2**63 - 1 above the last accepted
  one, else 400 ``VALIDATION_ERROR`` "Nonce already used" with ``details {lastNonce,
  attemptedNonce}``;
- ``expiresAfter``: when non-zero and past, 400 ``VALIDATION_ERROR`` "Signature expired"; in
  Unix milliseconds (the REST pages and the SDK; ``expires_unit="s"`` for the WebSocket
  pages' seconds);
- actions ``placeOrders``, ``cancelOrders`` by ``orderIds`` or by ``clientOrderIds``
  (signed as CancelOrdersByCloid; both at once is refused) and ``scheduleCancel`` (the
  dead-man switch: when ``timeoutSeconds`` pass without a new one, every open order of the
  subaccount is cancelled; 0 disarms);
- a resend of a known ``clientOrderId`` gives the per-order ``errorCode``
  ``IDEMPOTENCY_CONFLICT``;
- reads (getOpenOrders, getOrderHistory, getTrades, getSubAccount) signed as
  ``SubAccountAction``: with a nonce (the SDK; the type then holds it) or without (the docs);
  ``read_nonce`` = "optional" (both), "required" or "forbidden"; a read's nonce is checked
  like a trade's;
- paging: getOpenOrders and getOrderHistory answer 50 orders unless ``limit`` (≤ 1000) says
  otherwise, from ``offset``, filtered by ``clientOrderId``; history holds the finished
  orders of the last 7 days (a wider window is refused); getTrades refuses a ``startTime``
  more than 30 days back;
- the rate limit: a token bucket per subaccount (``bucket``: 1,000 tokens per 10 s), placeOrders
  5 tokens per order, getOrderHistory 50, every other call 1; past it 429
  ``RATE_LIMIT_EXCEEDED`` (nothing runs);
- public ``POST /v1/info`` takes the same ``{"params": {...}}`` wrapper; getOrderbook's
  ``limit`` must be one of 5, 10, 20, 50, 100, 500, 1000;
- answers ``{"status": "ok", "response": ..., "request_id", "timestamp"}``.

Orders are matched by the sandbox's engine (tests/conformance/engine.py). Per-order statuses
are ``{"resting"|"filled"|"canceled": {"order": {"venueId", "clientId"}, "id"}}`` or
``{"error": message, "errorCode": code, "order": {"clientId"}}``; order statuses in reads
are "placed", "partially filled", "filled", "cancelled" (the SDK's words). The shapes of
reads are not in protocols.md: they follow the SDK and are our choice where it is silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import uuid
from typing import Any, Literal, Self

from aiohttp import web

from framework.clock import SYSTEM_CLOCK, Clock
from framework.events import Fill, OrderState
from framework.exchanges.synthetix.signer import READS, TRADES, primary_of, recover
from framework.sandbox.engine import INSUFFICIENT_FUNDS
from framework.sandbox.matching import SimOrder
from tests.conformance.engine import (
    BELOW_MINIMUM,
    NOT_REDUCING,
    OFF_TICK,
    UNKNOWN_SYMBOL,
    Engine,
    Rejected,
    lose_answer,
)
from tests.conformance.loopback import LoopbackServer

MAX_NONCE = 2**63 - 1
SYMBOLS = {"BTC-USDT": "XBTUSD", "ETH-USDT": "ETHUSD"}  # -> the sandbox engine's pairs
BOOK_LIMITS = frozenset({5, 10, 20, 50, 100, 500, 1000})
DAY_MS = 86_400_000
#: The engine's reasons as per-order (errorCode, error): our choice of words and codes, since
#: Synthetix documents the field but not these values.
ENGINE_ERRORS = {
    INSUFFICIENT_FUNDS: ("INSUFFICIENT_MARGIN", "Insufficient margin"),
    UNKNOWN_SYMBOL: ("INVALID_SYMBOL", "Unknown symbol"),
    BELOW_MINIMUM: ("VALIDATION_ERROR", "Order size below minimum"),
    OFF_TICK: ("VALIDATION_ERROR", "Invalid price tick"),
    NOT_REDUCING: ("VALIDATION_ERROR", "Reduce-only order would not reduce the position"),
}
#: Tokens each call takes from the subaccount's bucket (per order for placeOrders).
COSTS = {"placeOrders": 5, "getOrderHistory": 50}


class Refused(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


class SynthetixServer(LoopbackServer):
    def __init__(
        self,
        owners: dict[int, str],
        *,
        expires_unit: str = "ms",
        read_nonce: Literal["optional", "required", "forbidden"] = "optional",
        bucket: tuple[float, float] | None = (1000, 10.0),
        delay_ms: tuple[float, float] = (0.0, 0.0),
        seed: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.owners = {k: v.lower() for k, v in owners.items()}  # subaccount -> address
        self.expires_unit = expires_unit
        self.read_nonce = read_nonce
        self.bucket = bucket  # (tokens, per seconds); None: no rate limit
        self._tokens: dict[int, tuple[float, float]] = {}  # subaccount -> (tokens, at)
        self.delay_ms = delay_ms
        self.clock = clock
        self._random = random.Random(seed)
        self.last_nonce: dict[tuple[str, int], int] = {}
        self.accepted: list[int] = []
        self.refused: dict[str, int] = {}
        self.engine = Engine(SYMBOLS, clock, seed)
        self.orders: dict[str, dict[str, Any]] = {}  # venue id -> order (with engine txid)
        self.by_txid: dict[str, str] = {}
        #: Actions whose next answer is lost after they ran (one entry = one loss).
        self.lose: list[str] = []
        #: Dead-man switches: subaccount -> wall-clock second its orders are cancelled at.
        self.scheduled: dict[int, float] = {}
        #: Orders the dead-man switch cancelled, per subaccount.
        self.swept: dict[int, int] = {}
        self.user_agents: set[str] = set()  # the docs ask for a descriptive one
        self._ids = itertools.count(1948058938469519360)
        self._sweeper: asyncio.Task[None] | None = None

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/trade", self._trade)
        app.router.add_post("/v1/info", self._info)

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self._sweeper = asyncio.create_task(self._sweep_forever())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await super().__aexit__(*exc_info)

    async def _sweep_forever(self) -> None:
        while True:  # the dead-man switch fires even when nobody calls
            self.sweep()
            await asyncio.sleep(0.05)

    def sweep(self) -> None:
        """Cancel the open orders of every subaccount whose dead-man switch has run out."""
        now = self.clock.wall_ns() / 1e9
        for sub_account, at in list(self.scheduled.items()):
            if at <= now:
                del self.scheduled[sub_account]
                for order in self._mine(sub_account, open_only=True):
                    if self.engine.cancel(str(sub_account), order["txid"]):
                        self.swept[sub_account] = self.swept.get(sub_account, 0) + 1

    def _answer(self, response: Any) -> web.Response:
        return web.json_response(
            {
                "status": "ok",
                "response": response,
                "request_id": uuid.uuid4().hex,
                "timestamp": int(self.clock.wall_ns() / 1e6),
            }
        )

    def _error(self, refused: Refused) -> web.Response:
        self.refused[refused.message] = self.refused.get(refused.message, 0) + 1
        return web.json_response(
            {
                "status": "error",
                "error": {
                    "code": refused.code,
                    "message": refused.message,
                    "details": refused.details,
                },
                "request_id": uuid.uuid4().hex,
                "timestamp": int(self.clock.wall_ns() / 1e6),
            },
            status=refused.status,
        )

    async def _trade(self, request: web.Request) -> web.Response:
        self.user_agents.add(request.headers.get("User-Agent", ""))
        self.sweep()
        try:
            body = await request.json()
            answer = self._answer(await self._handle(body))
            action = (body.get("params") or body.get("action") or {}).get("action")
            if action in self.lose:  # executed, but the answer never arrives
                self.lose.remove(action)
                lose_answer(request)
            return answer
        except Refused as refused:
            return self._error(refused)
        except (ValueError, KeyError, TypeError, AttributeError):
            return self._error(Refused(400, "VALIDATION_ERROR", "Malformed request"))

    async def _info(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            params = body.get("params") if isinstance(body, dict) else None
            if not isinstance(params, dict):
                raise Refused(400, "VALIDATION_ERROR", "Missing params")
            if params.get("action") != "getOrderbook" or params.get("symbol") not in SYMBOLS:
                raise Refused(400, "VALIDATION_ERROR", "Unknown action or symbol")
            limit = params.get("limit", 50)
            if limit not in BOOK_LIMITS:
                raise Refused(400, "VALIDATION_ERROR", f"Invalid limit {limit}")
        except Refused as refused:
            return self._error(refused)
        except ValueError:
            return self._error(Refused(400, "VALIDATION_ERROR", "Malformed request"))
        bid, ask, _ = self.engine.quote(params["symbol"])
        return self._answer(
            {"symbol": params["symbol"], "bids": [[str(bid), "5"]], "asks": [[str(ask), "5"]]}
        )

    # --- checks every signed request passes -------------------------------------------------

    def _signer(self, primary: str, message: dict[str, Any], body: dict[str, Any]) -> str:
        try:
            return recover(primary, message, body["signature"]).lower()
        except Exception:  # any undecodable signature is just an invalid one
            return ""

    def _check_expiry(self, expires_after: int) -> None:
        if expires_after:
            now = self.clock.wall_ns() / (1e6 if self.expires_unit == "ms" else 1e9)
            if expires_after < now:
                raise Refused(400, "VALIDATION_ERROR", "Signature expired")

    def _take(self, sub_account: int, cost: float) -> None:
        """The subaccount's token bucket: refuse (nothing runs) when the call does not fit."""
        if self.bucket is None:
            return
        size, period = self.bucket
        now = self.clock.monotonic()
        tokens, at = self._tokens.get(sub_account, (size, now))
        tokens = min(size, tokens + (now - at) * size / period)
        if tokens < cost:
            self._tokens[sub_account] = (tokens, now)
            raise Refused(429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded")
        self._tokens[sub_account] = (tokens - cost, now)

    def _check_nonce(self, signer: str, sub_account: int, nonce: Any) -> None:
        """Atomic within the event loop: accept and record, or refuse with details."""
        last = self.last_nonce.get((signer, sub_account), 0)
        if (
            not isinstance(nonce, int)
            or isinstance(nonce, bool)
            or not 0 < nonce <= MAX_NONCE
            or nonce <= last
        ):
            raise Refused(
                400,
                "VALIDATION_ERROR",
                "Nonce already used",
                {"lastNonce": last, "attemptedNonce": nonce},
            )
        self.last_nonce[(signer, sub_account)] = nonce
        self.accepted.append(nonce)

    async def _handle(self, body: dict[str, Any]) -> Any:
        inner = body.get("params") or body.get("action")
        action = inner.get("action") if isinstance(inner, dict) else None
        if action not in READS | TRADES:
            raise Refused(400, "VALIDATION_ERROR", "Unknown action")
        assert isinstance(inner, dict)
        sub_account = int(inner.get("subAccountId", inner.get("subaccountId")))
        nonce = body.get("nonce")
        expires_after = int(body.get("expiresAfter", 0))
        if action in READS:
            if self.read_nonce == "required" and not nonce:
                raise Refused(400, "VALIDATION_ERROR", "nonce is required")
            if self.read_nonce == "forbidden":
                nonce = None  # signed without one; a nonce in the body is not in the type
        elif action == "cancelOrders" and ("orderIds" in inner) == ("clientOrderIds" in inner):
            raise Refused(400, "VALIDATION_ERROR", "give orderIds or clientOrderIds, not both")
        message = self._message(action, inner, sub_account, nonce, expires_after)
        signer = self._signer(primary_of(action, inner), message, body)
        if signer != self.owners.get(sub_account):
            raise Refused(401, "UNAUTHORIZED", "Invalid signature")
        orders = inner.get("orders") if action == "placeOrders" else None
        self._take(sub_account, COSTS.get(action, 1) * (len(orders) if orders else 1))
        lo, hi = self.delay_ms
        if hi > 0:
            await asyncio.sleep(self._random.uniform(lo, hi) / 1000)
        if action in TRADES or nonce:
            self._check_nonce(signer, sub_account, nonce)
        self._check_expiry(expires_after)
        if action in READS:
            return self._read(action, inner, sub_account)
        if action == "placeOrders":
            return {"statuses": [self._place(sub_account, o) for o in inner["orders"]]}
        if action == "scheduleCancel":
            return self._schedule(sub_account, int(inner["timeoutSeconds"]))
        if "clientOrderIds" in inner:
            refs = [self._by_client_id(sub_account, str(c)) for c in inner["clientOrderIds"]]
        else:
            refs = [str(i) for i in inner["orderIds"]]
        return {"statuses": [self._cancel(sub_account, ref) for ref in refs]}

    def _message(
        self,
        action: str,
        inner: dict[str, Any],
        sub_account: int,
        nonce: Any,
        expires_after: int,
    ) -> dict[str, Any]:
        """The typed-data message the client must have signed."""
        message: dict[str, Any] = {"subAccountId": sub_account}
        if action in READS:
            message["action"] = action
            if nonce:
                message["nonce"] = nonce
            return {**message, "expiresAfter": expires_after}
        if action == "placeOrders":
            message.update(orders=inner["orders"], grouping=inner.get("grouping", "na"))
        elif action == "scheduleCancel":
            message["timeoutSeconds"] = int(inner["timeoutSeconds"])
        elif "clientOrderIds" in inner:
            message["clientOrderIds"] = [str(c) for c in inner["clientOrderIds"]]
        else:
            message["orderIds"] = [int(i) for i in inner["orderIds"]]
        return {**message, "nonce": nonce, "expiresAfter": expires_after}

    # --- reads --------------------------------------------------------------------------------

    def _mine(self, sub_account: int, *, open_only: bool) -> list[dict[str, Any]]:
        return [
            o
            for o in self.orders.values()
            if o["subAccountId"] == sub_account
            and self.engine.order(o["txid"]).is_open is open_only
        ]

    def _read(self, action: str, inner: dict[str, Any], sub_account: int) -> Any:
        key = str(sub_account)
        now_ms = int(self.clock.wall_ns() / 1e6)
        if action == "getSubAccount":
            return {
                "subAccountId": key,
                "collaterals": [
                    {"symbol": "USDT", "quantity": str(self.engine.quote_balance(key))}
                ],
            }
        offset, limit = int(inner.get("offset", 0)), int(inner.get("limit", 0))
        if action == "getTrades":
            start = int(inner.get("startTime", 0))
            if "startTime" in inner and start < now_ms - 30 * DAY_MS:
                raise Refused(400, "VALIDATION_ERROR", "startTime is more than 30 days ago")
            trades = [
                self._trade_of(fill)
                for fill in reversed(self.engine.fills_of(key))
                if fill.time * 1000 >= start
            ]
            limit = min(limit or 100, 1000)
            page = trades[offset : offset + limit]
            return {"trades": page, "hasMore": offset + limit < len(trades), "total": len(trades)}
        limit = min(limit or 50, 1000)
        if action == "getOpenOrders":
            found = self._mine(sub_account, open_only=True)
        else:  # getOrderHistory: finished orders of a window of at most 7 days
            end = int(inner.get("endTime", now_ms))
            start = int(inner.get("startTime", end - 7 * DAY_MS))
            if end - start > 7 * DAY_MS:
                raise Refused(400, "VALIDATION_ERROR", "the history window is at most 7 days")
            found = [
                o
                for o in self._mine(sub_account, open_only=False)
                if start <= self._finished_ms(o) <= end
            ]
        cloid = inner.get("clientOrderId")
        if cloid:
            found = [o for o in found if o["clientOrderId"] == cloid]
        return [self._order(o) for o in found[offset : offset + limit]]

    def _finished_ms(self, order: dict[str, Any]) -> int:
        sim = self.engine.order(order["txid"])
        return int((sim.closetm or sim.opentm) * 1000)

    def _order(self, order: dict[str, Any]) -> dict[str, Any]:
        sim = self.engine.order(order["txid"])
        status = {
            OrderState.ACCEPTED: "placed",
            OrderState.PARTIALLY_FILLED: "partially filled",
            OrderState.FILLED: "filled",
        }
        return {
            "order": {"venueId": order["orderId"], "clientId": order["clientOrderId"]},
            "symbol": order["symbol"],
            "side": order["side"],
            "type": order["orderType"],
            "quantity": order["quantity"],
            "price": order["price"],
            "status": status.get(sim.state, "cancelled"),
            "filledQuantity": str(sim.filled),
            "createdTime": int(sim.opentm * 1000),
        }

    def _trade_of(self, fill: Fill) -> dict[str, Any]:
        order = self.orders[self.by_txid[fill.txid]]
        return {
            "tradeId": fill.trade_id,
            "order": {"venueId": order["orderId"], "clientId": order["clientOrderId"]},
            "symbol": order["symbol"],
            "side": fill.side,
            "price": str(fill.price),
            "quantity": str(fill.volume),
            "fee": str(fill.fee),
            "timestamp": int(fill.time * 1000),
            "maker": fill.maker,
        }

    # --- trade actions ------------------------------------------------------------------------

    def _schedule(self, sub_account: int, timeout_s: int) -> dict[str, Any]:
        if timeout_s <= 0:
            self.scheduled.pop(sub_account, None)
            return {"scheduled": False}
        at = self.clock.wall_ns() / 1e9 + timeout_s
        self.scheduled[sub_account] = at
        return {"scheduled": True, "triggerTime": int(at * 1000)}

    def _by_client_id(self, sub_account: int, cloid: str) -> str:
        return next(
            (
                o["orderId"]
                for o in self.orders.values()
                if o["subAccountId"] == sub_account and o["clientOrderId"] == cloid
            ),
            "",
        )

    def _place(self, sub_account: int, order: dict[str, Any]) -> dict[str, Any]:
        cloid = order.get("clientOrderId") or ""
        if cloid and self._by_client_id(sub_account, cloid):
            return {
                "error": "An order with this clientOrderId already exists",
                "errorCode": "IDEMPOTENCY_CONFLICT",
                "order": {"clientId": cloid},
            }
        kind = order.get("orderType")
        if kind not in ("limitGtc", "limitIoc", "limitAlo", "market"):
            return {
                "error": f"Unsupported orderType {kind}",
                "errorCode": "VALIDATION_ERROR",
                "order": {"clientId": cloid},
            }
        try:
            sim = self.engine.place(
                str(sub_account),
                str(order.get("symbol")),
                side=str(order.get("side")),
                volume=order.get("quantity"),
                price=None if kind == "market" else order.get("price"),
                post_only=kind == "limitAlo",
                timeinforce="IOC" if kind == "limitIoc" else "GTC",
                reduce_only=order.get("reduceOnly") is True,
            )
        except Rejected as rejected:
            code, error = ENGINE_ERRORS.get(rejected.reason, ("ORDER_REJECTED", rejected.reason))
            return {"error": error, "errorCode": code, "order": {"clientId": cloid}}
        order_id = str(next(self._ids))
        self.orders[order_id] = {
            "subAccountId": sub_account,
            "orderId": order_id,
            "txid": sim.txid,
            **order,
        }
        self.by_txid[sim.txid] = order_id
        return self._status(order_id, sim)

    def _status(self, order_id: str, sim: SimOrder) -> dict[str, Any]:
        ident = {
            "order": {"venueId": order_id, "clientId": self.orders[order_id]["clientOrderId"]},
            "id": order_id,
        }
        if sim.is_open:
            return {"resting": ident}
        if sim.state is OrderState.FILLED:
            price = sim.cost / sim.filled
            return {"filled": {**ident, "totalSize": str(sim.filled), "avgPrice": str(price)}}
        return {"canceled": ident}

    def _cancel(self, sub_account: int, order_id: str) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if (
            order is None
            or order["subAccountId"] != sub_account
            or not self.engine.cancel(str(sub_account), order["txid"])
        ):
            return {
                "error": "Order not found",
                "errorCode": "ORDER_NOT_FOUND",
                "order": {"venueId": order_id},
            }
        return self._status(order_id, self.engine.order(order["txid"]))
