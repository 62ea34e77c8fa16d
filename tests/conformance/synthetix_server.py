"""A Synthetix off-chain trade conformance server, per protocols.md ("What a conformance
mock server must enforce", Synthetix):

- JSON ``POST /v1/trade``; the ``{params: {action, ...}, nonce, signature, expiresAfter}``
  shape and the older ``{action: {action, ...}, ...}`` one;
- the EIP-712 typed data is rebuilt from the JSON (``subAccountId`` and ``orderIds`` are
  strings there, uint256 in the hash), the signer recovered and compared with the
  subaccount's owner: else 401 ``UNAUTHORIZED`` "Invalid signature";
- nonce per signer and subaccount: a positive integer ≤ 2**63 - 1 above the last accepted
  one, else 400 ``VALIDATION_ERROR`` "Nonce already used" with ``details {lastNonce,
  attemptedNonce}``;
- ``expiresAfter``: when non-zero and past, 400 ``VALIDATION_ERROR`` "Signature expired"; its
  unit ("s" or "ms") is a setting, since the docs disagree;
- ``orderIds`` together with ``clientOrderIds`` is refused; a duplicate ``clientOrderId`` of
  the subaccount is refused (our choice of message: "Duplicate clientOrderId");
- answers ``{"status": "ok", "response": ..., "request_id", "timestamp"}``;
- reads (getOpenOrders, getOrderHistory, getTrades, getSubAccount) signed as
  ``SubAccountAction`` without a nonce; public ``POST /v1/info`` getOrderbook.

Orders are matched by the sandbox's engine (tests/conformance/engine.py). Per-order statuses
are ``{"resting"|"filled"|"canceled": {"order": {"venueId", "clientId"}, "id"}}`` or
``{"error": message, "order": {"clientId"}}``; the shapes of statuses and reads are not in
protocols.md: they follow public SDKs and are our choice where those are silent.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from typing import Any

from aiohttp import web

from framework.clock import SYSTEM_CLOCK, Clock
from framework.exchanges.synthetix.signer import PRIMARY, READS, recover
from framework.sandbox.auth import KrakenFailure
from framework.sandbox.matching import SimOrder
from tests.conformance.engine import Engine, lose_answer
from tests.conformance.loopback import LoopbackServer

MAX_NONCE = 2**63 - 1
SYMBOLS = {"BTC-USDT": "XBTUSD", "ETH-USDT": "ETHUSD"}  # -> the sandbox engine's pairs
#: The engine's reasons, in words (Synthetix documents no per-order error strings).
ENGINE_ERRORS = {
    "EOrder:Insufficient funds": "Insufficient margin",
    "EQuery:Unknown asset pair": "Unknown symbol",
    "EOrder:Order minimum not met": "Order size below minimum",
    "EOrder:Tick size check failed": "Invalid price tick",
}


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
        expires_unit: str = "s",
        delay_ms: tuple[float, float] = (0.0, 0.0),
        seed: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.owners = {k: v.lower() for k, v in owners.items()}  # subaccount -> address
        self.expires_unit = expires_unit
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
        self._ids = itertools.count(1948058938469519360)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/trade", self._trade)
        app.router.add_post("/v1/info", self._info)

    def _answer(self, response: Any) -> web.Response:
        return web.json_response(
            {
                "status": "ok",
                "response": response,
                "request_id": uuid.uuid4().hex,
                "timestamp": int(self.clock.wall_ns() / 1e6),
            }
        )

    async def _trade(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            answer = self._answer(await self._handle(body))
            action = (body.get("params") or body.get("action") or {}).get("action")
            if action in self.lose:  # executed, but the answer never arrives
                self.lose.remove(action)
                lose_answer(request)
            return answer
        except Refused as refused:
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
        except (ValueError, KeyError, TypeError):
            return web.json_response(
                {
                    "status": "error",
                    "error": {
                        "code": "VALIDATION_ERROR",
                        "message": "Malformed request",
                        "details": {},
                    },
                },
                status=400,
            )

    async def _info(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("action") != "getOrderbook" or body.get("symbol") not in SYMBOLS:
            return web.json_response(
                {"status": "error", "error": {"code": "VALIDATION_ERROR", "message": "Unknown"}},
                status=400,
            )
        bid, ask, _ = self.engine.quote(body["symbol"])
        return self._answer(
            {
                "symbol": body["symbol"],
                "bids": [{"price": str(bid), "quantity": "5"}],
                "asks": [{"price": str(ask), "quantity": "5"}],
            }
        )

    def _read(self, inner: dict[str, Any], body: dict[str, Any]) -> Any:
        """A SubAccountAction read: signature over (subAccountId, action, expiresAfter)."""
        action, sub_account = inner["action"], int(inner["subAccountId"])
        expires_after = int(body.get("expiresAfter", 0))
        message = {"subAccountId": sub_account, "action": action, "expiresAfter": expires_after}
        try:
            signer = recover("SubAccountAction", message, body["signature"]).lower()
        except Exception:  # any undecodable signature is just an invalid one
            signer = ""
        if signer != self.owners.get(sub_account):
            raise Refused(401, "UNAUTHORIZED", "Invalid signature")
        self._check_expiry(expires_after)
        key = str(sub_account)
        mine = [o for o in self.orders.values() if o["subAccountId"] == sub_account]
        if action == "getOpenOrders":
            return [self._order(o) for o in mine if self.engine.order(o["txid"]).status == "open"]
        if action == "getOrderHistory":
            return [self._order(o) for o in mine]
        if action == "getTrades":
            start = int(inner.get("startTime", 0))
            trades = [
                self._trade_of(trade_id, t)
                for trade_id, t in reversed(self.engine.engine.trades_of(key))
                if t["time"] * 1000 >= start
            ]
            offset, limit = int(inner.get("offset", 0)), int(inner.get("limit", 100))
            page = trades[offset : offset + limit]
            return {"trades": page, "hasMore": offset + limit < len(trades), "total": len(trades)}
        return {  # getSubAccount
            "subAccountId": key,
            "collaterals": [{"symbol": "USDT", "quantity": str(self.engine.quote_balance(key))}],
        }

    def _order(self, order: dict[str, Any]) -> dict[str, Any]:
        sim = self.engine.order(order["txid"])
        status = {"open": "partiallyFilled" if sim.filled else "open", "closed": "filled"}
        return {
            "order": {"venueId": order["orderId"], "clientId": order["clientOrderId"]},
            "orderId": order["orderId"],
            "symbol": order["symbol"],
            "side": order["side"],
            "type": order["orderType"],
            "quantity": order["quantity"],
            "price": order["price"],
            "status": status.get(sim.status, "cancelled"),
            "filledQuantity": str(sim.filled),
            "createdTime": int(sim.opentm * 1000),
        }

    def _trade_of(self, trade_id: str, t: dict[str, Any]) -> dict[str, Any]:
        order = self.orders[self.by_txid[t["ordertxid"]]]
        return {
            "tradeId": trade_id,
            "order": {"venueId": order["orderId"], "clientId": order["clientOrderId"]},
            "symbol": order["symbol"],
            "side": t["type"],
            "price": t["price"],
            "quantity": t["vol"],
            "fee": t["fee"],
            "timestamp": int(t["time"] * 1000),
            "maker": t["maker"],
        }

    def _check_expiry(self, expires_after: int) -> None:
        if expires_after:
            now = self.clock.wall_ns() / (1e6 if self.expires_unit == "ms" else 1e9)
            if expires_after < now:
                raise Refused(400, "VALIDATION_ERROR", "Signature expired")

    async def _handle(self, body: dict[str, Any]) -> Any:
        inner = body.get("params") or body.get("action")
        if isinstance(inner, dict) and inner.get("action") in READS:
            return self._read(inner, body)
        if not isinstance(inner, dict) or inner.get("action") not in PRIMARY:
            raise Refused(400, "VALIDATION_ERROR", "Unknown action")
        action = inner["action"]
        sub_account = int(inner["subAccountId"])
        nonce, expires_after = body["nonce"], int(body.get("expiresAfter", 0))
        if action == "cancelOrders" and "orderIds" in inner and "clientOrderIds" in inner:
            raise Refused(400, "VALIDATION_ERROR", "orderIds and clientOrderIds are exclusive")
        if action == "placeOrders":
            message = {
                "subAccountId": sub_account,
                "orders": inner["orders"],
                "grouping": inner.get("grouping", "na"),
                "nonce": nonce,
                "expiresAfter": expires_after,
            }
        else:
            message = {
                "subAccountId": sub_account,
                "orderIds": [int(i) for i in inner["orderIds"]],
                "nonce": nonce,
                "expiresAfter": expires_after,
            }
        try:
            signer = recover(PRIMARY[action], message, body["signature"]).lower()
        except Exception:  # any undecodable signature is just an invalid one
            signer = ""
        if signer != self.owners.get(sub_account):
            raise Refused(401, "UNAUTHORIZED", "Invalid signature")
        lo, hi = self.delay_ms
        if hi > 0:
            await asyncio.sleep(self._random.uniform(lo, hi) / 1000)
        self._check_nonce(signer, sub_account, nonce)
        self._check_expiry(expires_after)
        if action == "placeOrders":
            return {"statuses": [self._place(sub_account, o) for o in inner["orders"]]}
        return {"statuses": [self._cancel(sub_account, str(i)) for i in inner["orderIds"]]}

    def _check_nonce(self, signer: str, sub_account: int, nonce: Any) -> None:
        """Atomic within the event loop: accept and record, or refuse with details."""
        last = self.last_nonce.get((signer, sub_account), 0)
        if not isinstance(nonce, int) or not 0 < nonce <= MAX_NONCE or nonce <= last:
            raise Refused(
                400,
                "VALIDATION_ERROR",
                "Nonce already used",
                {"lastNonce": last, "attemptedNonce": nonce},
            )
        self.last_nonce[(signer, sub_account)] = nonce
        self.accepted.append(nonce)

    def _place(self, sub_account: int, order: dict[str, Any]) -> dict[str, Any]:
        cloid = order.get("clientOrderId") or ""
        if cloid and any(
            o["subAccountId"] == sub_account and o["clientOrderId"] == cloid
            for o in self.orders.values()
        ):
            return {"error": "Duplicate clientOrderId", "order": {"clientId": cloid}}
        kind = order.get("orderType")
        if kind not in ("limitGtc", "limitIoc", "limitAlo", "market"):
            return {"error": f"Unsupported orderType {kind}", "order": {"clientId": cloid}}
        try:
            sim = self.engine.place(
                str(sub_account),
                str(order.get("symbol")),
                side=str(order.get("side")),
                volume=order.get("quantity"),
                price=None if kind == "market" else order.get("price"),
                post_only=kind == "limitAlo",
            )
        except KrakenFailure as failure:
            return {
                "error": ENGINE_ERRORS.get(failure.error, failure.error),
                "order": {"clientId": cloid},
            }
        if kind == "limitIoc":
            self.engine.cancel(str(sub_account), sim.txid)
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
        if sim.status == "open":
            return {"resting": ident}
        if sim.status == "closed":
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
            return {"error": "Order not found", "order": {"venueId": order_id}}
        return self._status(order_id, self.engine.order(order["txid"]))
