"""A Bitunix futures conformance server, per protocols.md ("What a conformance mock server
must enforce", Bitunix):

- headers ``api-key``, ``nonce``, ``timestamp``, ``sign`` required; empty api-key → 10003;
- ``sign`` recomputed as sha256hex(sha256hex(nonce + timestamp + apiKey + sortedKV(query) +
  rawBody) + secret) over the raw body as received; mismatch (or unknown key) → 10007
  "Sign signature error";
- ``timestamp`` in ms within ``window_s`` (60 s) of the server's clock, else 10002 (no code
  is documented for it: our choice); the ``Date`` header carries the server's clock;
- nonce reuse per key inside the window → 10002 (a mock policy, not a documented rule;
  ``reject_reused_nonce``);
- envelope ``{"code", "msg", "data"}``, HTTP 200 for API errors;
- place_order at most 10/s, batch_order and cancel_orders 5/s per key (sliding window)
  → 10006 (the server's own table, from the docs: not the client's);
- place_order: ``symbol``, ``qty``, ``side``, ``orderType``, ``price`` and ``effect`` for
  LIMIT (the docs call it required), ``tradeSide`` OPEN/CLOSE when the account is in hedge
  position mode (``position_mode="HEDGE"``; the account read says which); duplicate
  ``clientId`` → 30042 "Client ID duplicate"; batch_order ≤ ``max_batch`` (20) with
  ``successList`` / ``failureList``; cancel_orders and get_order_detail by ``orderId`` or
  ``clientId`` (unknown → 20007); cancel_all_orders; get_pending_orders pages of ``limit``
  (10 unless asked, at most 100) from ``skip``; get_history_trades; account; public tickers,
  depth and trading_pairs;
- ``expire(order_id)`` ends an open order with status ``EXPIRED`` (final).

Orders are matched by the sandbox's engine (tests/conformance/engine.py), so they rest, fill
and pay fees as on the paper exchange; a ``clientId`` is unique among all of a key's orders
(whether Bitunix limits it to open orders is unconfirmed; the stricter rule is checked).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from decimal import Decimal, InvalidOperation
from email.utils import formatdate
from typing import Any

from aiohttp import web

from framework.clock import SYSTEM_CLOCK, Clock
from framework.events import OrderState
from framework.exchanges.bitunix.signer import sign
from framework.sandbox.engine import INSUFFICIENT_FUNDS
from framework.sandbox.market import PAIRS
from tests.conformance.engine import (
    BELOW_MINIMUM,
    NOT_REDUCING,
    OFF_TICK,
    TOO_PRECISE,
    UNKNOWN_SYMBOL,
    Engine,
    Rejected,
    lose_answer,
)
from tests.conformance.loopback import LoopbackServer

SYMBOLS = {"BTCUSDT": "XBTUSD", "ETHUSDT": "ETHUSD"}  # -> the sandbox engine's pairs
#: The engine's reasons, as Bitunix codes (our choice where Bitunix documents none).
ENGINE_ERRORS = {
    INSUFFICIENT_FUNDS: (20003, "Insufficient balance"),
    UNKNOWN_SYMBOL: (20001, "Market not exists"),
    BELOW_MINIMUM: (10008, "qty does not comply with the rule"),
    OFF_TICK: (10008, "price does not comply with the rule"),
    TOO_PRECISE: (10008, "qty does not comply with the rule"),
    NOT_REDUCING: (10002, "Parameter Error: reduceOnly order would not reduce the position"),
}


#: Documented per-uid limits (requests, per seconds), per endpoint.
LIMITS = {"place_order": (10, 1.0), "batch_order": (5, 1.0), "cancel_orders": (5, 1.0)}
EFFECTS = ("GTC", "IOC", "FOK", "POST_ONLY")


class Refused(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def envelope(data: Any = None, code: int = 0, msg: str = "Success") -> web.Response:
    return web.json_response({"code": code, "msg": msg, "data": data})


class BitunixServer(LoopbackServer):
    def __init__(
        self,
        accounts: dict[str, str],
        *,
        window_s: float = 60.0,
        reject_reused_nonce: bool = True,
        max_batch: int = 20,
        delay_ms: tuple[float, float] = (0.0, 0.0),
        seed: int | None = None,
        enforce_limits: bool = True,
        position_mode: str = "ONE_WAY",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.accounts = accounts
        self.position_mode = position_mode
        self.expired: set[str] = set()  # orderIds that ended EXPIRED
        self.limits = LIMITS if enforce_limits else {}
        self._recent: dict[tuple[str, str], list[float]] = {}
        self.window_s = window_s
        self.reject_reused_nonce = reject_reused_nonce
        self.max_batch = max_batch
        self.delay_ms = delay_ms
        self.clock = clock
        self._random = random.Random(seed)
        self.engine = Engine(SYMBOLS, clock, seed)
        self.orders: dict[str, dict[str, Any]] = {}
        self.by_txid: dict[str, str] = {}  # engine txid -> orderId
        self.by_client_id: dict[tuple[str, str], str] = {}  # (key, clientId) -> orderId
        self.seen_nonces: dict[str, dict[str, float]] = {}
        #: Endpoints whose next answer is lost after they ran (one entry = one loss).
        self.lose: list[str] = []
        self.requests = 0
        self.refused: dict[int, int] = {}
        self._ids = itertools.count(1_000_000)

    def routes(self, app: web.Application) -> None:
        trade = "/api/v1/futures/trade/"
        for name in ("place_order", "batch_order", "cancel_orders", "cancel_all_orders"):
            app.router.add_post(trade + name, self._private)
        for name in ("get_order_detail", "get_pending_orders", "get_history_trades"):
            app.router.add_get(trade + name, self._private)
        app.router.add_get("/api/v1/futures/account", self._private)
        app.router.add_get("/api/v1/futures/market/{name}", self._public)

    def _now(self) -> float:
        return self.clock.wall_ns() / 1e9

    def _dated(self, response: web.Response) -> web.Response:
        response.headers["Date"] = formatdate(self._now(), usegmt=True)
        return response

    # --- authentication -------------------------------------------------------------------

    def _authenticate(self, request: web.Request, raw: str) -> str:
        headers = request.headers
        api_key = headers.get("api-key", "")
        if not api_key:
            raise Refused(10003, "api-key can't be empty")
        nonce, timestamp, given = (headers.get(h, "") for h in ("nonce", "timestamp", "sign"))
        if not nonce or not timestamp or not given:
            raise Refused(10002, "Parameter Error")
        secret = self.accounts.get(api_key)
        expected = sign(
            nonce=nonce,
            timestamp=timestamp,
            api_key=api_key,
            query=dict(request.query),
            body=raw,
            secret=secret or "",
        )
        if secret is None or expected != given:
            raise Refused(10007, "Sign signature error")
        try:
            stamped = int(timestamp) / 1000
        except ValueError:
            raise Refused(10002, "Parameter Error") from None
        now = self._now()
        if abs(now - stamped) > self.window_s:
            raise Refused(10002, "Parameter Error: timestamp outside the 60 s window")
        seen = self.seen_nonces.setdefault(api_key, {})
        if self.reject_reused_nonce:
            for old in [n for n, at in seen.items() if at < now - self.window_s]:
                del seen[old]
            if nonce in seen:
                raise Refused(10002, "Parameter Error: nonce already used")
        seen[nonce] = now
        return api_key

    async def _private(self, request: web.Request) -> web.Response:
        raw = (await request.read()).decode()
        self.requests += 1
        try:
            key = self._authenticate(request, raw)
            self._rate(key, request.path.rsplit("/", 1)[-1])
            lo, hi = self.delay_ms
            if hi > 0:
                await asyncio.sleep(self._random.uniform(lo, hi) / 1000)
            body = json.loads(raw) if raw else {}
            name = request.path.rsplit("/", 1)[-1]
            answer = self._dated(
                envelope(getattr(self, "_" + name)(key, body, dict(request.query)))
            )
            if name in self.lose:  # executed, but the answer never arrives
                self.lose.remove(name)
                lose_answer(request)
            return answer
        except Refused as refused:
            self.refused[refused.code] = self.refused.get(refused.code, 0) + 1
            return self._dated(envelope(None, refused.code, refused.msg))
        except ValueError:
            return self._dated(envelope(None, 10002, "Parameter Error"))

    def _rate(self, key: str, name: str) -> None:
        """The documented per-uid limits, counted over a sliding window: 10006 past them."""
        if name not in self.limits:
            return
        rate, period = self.limits[name]
        now = self.clock.monotonic()
        recent = [t for t in self._recent.get((key, name), []) if t > now - period]
        if len(recent) >= rate:
            self._recent[(key, name)] = recent
            raise Refused(10006, "Request too frequently")
        self._recent[(key, name)] = [*recent, now]

    async def _public(self, request: web.Request) -> web.Response:
        name, query = request.match_info["name"], request.query
        if name == "tickers":
            wanted = query.get("symbols", ",".join(SYMBOLS)).split(",")
            data: Any = []
            for symbol in (s for s in wanted if s in SYMBOLS):
                bid, ask, last = self.engine.quote(symbol)
                data.append({"symbol": symbol, "lastPrice": str(last), "markPrice": str(last)})
        elif name == "depth" and query.get("symbol") in SYMBOLS:
            bid, ask, _ = self.engine.quote(query["symbol"])
            data = {"bids": [[str(bid), "5"]], "asks": [[str(ask), "5"]]}
        elif name == "trading_pairs":
            data = [
                {
                    "symbol": s,
                    "base": s.removesuffix("USDT"),
                    "quote": "USDT",
                    "minTradeVolume": PAIRS[pair].ordermin,
                    "basePrecision": PAIRS[pair].lot_decimals,
                    "quotePrecision": PAIRS[pair].pair_decimals,
                }
                for s, pair in SYMBOLS.items()
            ]
        else:
            return self._dated(envelope(None, 10002, "Parameter Error"))
        return self._dated(envelope(data))

    # --- trading --------------------------------------------------------------------------

    def _new_order(self, key: str, symbol: str, order: dict[str, Any]) -> dict[str, Any]:
        if symbol not in SYMBOLS:
            raise Refused(20001, "Market not exists")
        for name in ("qty", "side", "orderType"):
            if name not in order:
                raise Refused(10002, f"Parameter Error: {name}")
        if order["side"] not in ("BUY", "SELL") or order["orderType"] not in ("LIMIT", "MARKET"):
            raise Refused(10002, "Parameter Error: side or orderType")
        if order["orderType"] == "LIMIT" and order.get("effect") not in EFFECTS:
            raise Refused(10002, "Parameter Error: effect")
        if self.position_mode == "HEDGE" and order.get("tradeSide") not in ("OPEN", "CLOSE"):
            raise Refused(10002, "Parameter Error: tradeSide is required in hedge mode")
        if order.get("reduceOnly", False) not in (True, False):
            raise Refused(10002, "Parameter Error: reduceOnly")
        try:
            if Decimal(str(order["qty"])) <= 0:
                raise Refused(10002, "Parameter Error: qty")
            if order["orderType"] == "LIMIT" and Decimal(str(order.get("price", "0"))) <= 0:
                raise Refused(10002, "Parameter Error: price")
        except InvalidOperation:
            raise Refused(10002, "Parameter Error") from None
        client_id = order.get("clientId")
        if client_id and (key, client_id) in self.by_client_id:
            raise Refused(30042, "Client ID duplicate")
        try:
            sim = self.engine.place(
                key,
                symbol,
                side=order["side"].lower(),
                volume=order["qty"],
                price=order.get("price") if order["orderType"] == "LIMIT" else None,
                post_only=order.get("effect") == "POST_ONLY",
                timeinforce=order["effect"] if order.get("effect") in ("IOC", "FOK") else "GTC",
                reduce_only=order.get("reduceOnly") is True,
            )
        except Rejected as rejected:
            raise Refused(*ENGINE_ERRORS.get(rejected.reason, (10002, "Parameter Error"))) from None
        order_id = str(next(self._ids))
        self.orders[order_id] = {
            "key": key,
            "orderId": order_id,
            "clientId": client_id,
            "symbol": symbol,
            "txid": sim.txid,
            **order,
        }
        self.by_txid[sim.txid] = order_id
        if client_id:
            self.by_client_id[(key, client_id)] = order_id
        return {"orderId": order_id, "clientId": client_id}

    def _place_order(self, key: str, body: dict[str, Any], query: dict[str, str]) -> Any:
        return self._new_order(key, str(body.get("symbol", "")), body)

    def _batch_order(self, key: str, body: dict[str, Any], query: dict[str, str]) -> Any:
        orders = body.get("orderList")
        if not isinstance(orders, list) or not 1 <= len(orders) <= self.max_batch:
            raise Refused(10002, f"Parameter Error: orderList holds 1..{self.max_batch}")
        success, failure = [], []
        for order in orders:
            try:
                success.append(self._new_order(key, str(body.get("symbol", "")), order))
            except Refused as refused:
                failure.append(
                    {
                        "clientId": order.get("clientId"),
                        "errorMsg": refused.msg,
                        "errorCode": refused.code,
                    }
                )
        return {"successList": success, "failureList": failure}

    def _find(self, key: str, ref: dict[str, Any]) -> dict[str, Any] | None:
        order_id = ref.get("orderId") or self.by_client_id.get((key, ref.get("clientId") or ""))
        order = self.orders.get(str(order_id))
        return order if order is not None and order["key"] == key else None

    def _cancel_orders(self, key: str, body: dict[str, Any], query: dict[str, str]) -> Any:
        success, failure = [], []
        for ref in body.get("orderList") or []:
            order = self._find(key, ref)
            if order is None or not self.engine.cancel(key, order["txid"]):
                failure.append(
                    {**ref, "errorMsg": "Order not found, please try it later", "errorCode": 20007}
                )
            else:
                success.append({"orderId": order["orderId"], "clientId": order["clientId"]})
        return {"successList": success, "failureList": failure}

    def _cancel_all_orders(self, key: str, body: dict[str, Any], query: dict[str, str]) -> Any:
        for order in self._mine(key, body.get("symbol"), pending=True):
            self.engine.cancel(key, order["txid"])
        return None

    def _public_order(self, order: dict[str, Any]) -> dict[str, Any]:
        sim = self.engine.order(order["txid"])
        if order["orderId"] in self.expired:
            status = "EXPIRED"
        elif sim.is_open:
            status = "PART_FILLED" if sim.filled else "NEW"
        else:
            status = "FILLED" if sim.state is OrderState.FILLED else "CANCELED"
        return {
            **{k: v for k, v in order.items() if k not in ("key", "txid")},
            "tradeQty": str(sim.filled),
            "fee": str(sim.fee),
            "status": status,
            "ctime": int(sim.opentm * 1000),
            "mtime": int((sim.closetm or sim.opentm) * 1000),
        }

    def _mine(self, key: str, symbol: str | None, *, pending: bool) -> list[dict[str, Any]]:
        return [
            o
            for o in self.orders.values()
            if o["key"] == key
            and symbol in (None, o["symbol"])
            and (not pending or self.engine.order(o["txid"]).is_open)
        ]

    def _get_order_detail(self, key: str, body: dict[str, Any], query: dict[str, str]) -> Any:
        order = self._find(key, query)
        if order is None:
            raise Refused(20007, "Order not found, please try it later")
        return self._public_order(order)

    def _get_pending_orders(self, key: str, body: dict[str, Any], query: dict[str, str]) -> Any:
        pending = [
            self._public_order(o) for o in self._mine(key, query.get("symbol"), pending=True)
        ]
        skip, limit = int(query.get("skip", 0)), min(int(query.get("limit", 10)), 100)
        return {"orderList": pending[skip : skip + limit], "total": len(pending)}

    def expire(self, order_id: str) -> None:
        """End an open order as Bitunix does when its time runs out: status EXPIRED."""
        order = self.orders[order_id]
        self.engine.cancel(order["key"], order["txid"])
        self.expired.add(order_id)

    def _get_history_trades(self, key: str, body: dict[str, Any], query: dict[str, str]) -> Any:
        """Newest first; ``startTime``/``endTime`` in ms, ``skip``, ``limit`` (max 100)."""
        start, end = int(query.get("startTime", 0)), int(query.get("endTime", 2**62))
        limit = min(int(query.get("limit", 10)), 100)
        skip = int(query.get("skip", 0))
        trades = []
        for fill in reversed(self.engine.fills_of(key)):
            order = self.orders[self.by_txid[fill.txid]]
            ctime = int(fill.time * 1000)
            if not start <= ctime <= end or query.get("symbol") not in (None, order["symbol"]):
                continue
            trades.append(
                {
                    "tradeId": fill.trade_id,
                    "orderId": order["orderId"],
                    "clientId": order["clientId"],
                    "symbol": order["symbol"],
                    "qty": str(fill.volume),
                    "price": str(fill.price),
                    "side": fill.side.upper(),
                    "orderType": order["orderType"],
                    "fee": str(fill.fee),
                    "ctime": ctime,
                    "roleType": "MAKER" if fill.maker else "TAKER",
                }
            )
        return {"tradeList": trades[skip : skip + limit], "total": len(trades)}

    def _account(self, key: str, body: dict[str, Any], query: dict[str, str]) -> Any:
        return {
            "marginCoin": query.get("marginCoin", "USDT"),
            "available": str(self.engine.quote_balance(key)),
            "frozen": "0",
            "margin": "0",
            "crossUnrealizedPNL": "0",
            "positionMode": self.position_mode,
        }
