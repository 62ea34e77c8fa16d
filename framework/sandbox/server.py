"""The embedded sandbox exchange: an aiohttp server on 127.0.0.1 speaking Kraken's REST API.

It is Orderly's paper-trading venue and the Kraken conformance server of the tests. Private
calls go through :class:`~framework.sandbox.auth.Gatekeeper` (keys, signatures, nonces,
lockout) exactly as Kraken documents them, then to the
:class:`~framework.sandbox.matching.MatchingEngine`; public calls read the simulated
:class:`~framework.sandbox.market.Market`. Every answer is Kraken's envelope
``{"error": [...], "result": ...}`` with HTTP 200 for API-level errors.

    async with Sandbox(accounts={key: secret}, rules=AuthRules(nonce_window=0)) as sandbox:
        ... KrakenClient(key, secret, base_url=sandbox.base_url) ...

``delay_ms=(lo, hi)`` sleeps a random time (seeded) between signature and nonce check, so
requests sent in order can reach the nonce check out of order, as on a real network.
``GET /sandbox/stats`` reports per-key counters (by key id, never the key).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import random
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from framework.clock import SYSTEM_CLOCK, Clock
from framework.errors import ConfigError
from framework.log import get_logger
from framework.sandbox.auth import AuthRules, Gatekeeper, KrakenFailure
from framework.sandbox.faults import ERRORS as FAULT_ERRORS
from framework.sandbox.faults import FaultInjector, FaultRules
from framework.sandbox.kraken_rules import TIERS
from framework.sandbox.kraken_shapes import trade_number
from framework.sandbox.market import ALIASES, ASSETS, INTERVALS, PAIRS, Market, MarketRules
from framework.sandbox.matching import MatchingEngine, OrderRules
from framework.sandbox.ratelimit import RateLimits
from framework.sandbox.ws import SandboxWebSocket
from framework.secret import key_id

log = get_logger("framework.sandbox")

Handler = Callable[[str, dict[str, Any]], dict[str, Any]]


def generate_credentials() -> tuple[str, str]:
    """A fresh sandbox API key (56 chars) and secret (64 bytes, base64), like Kraken's."""
    api_key = base64.b64encode(secrets.token_bytes(42)).decode()
    return api_key, base64.b64encode(secrets.token_bytes(64)).decode()


def _envelope(result: Any = None, error: str | None = None) -> web.Response:
    """Kraken's envelope; an error carries ``"result": {}`` as in Kraken's documented example."""
    if error is not None:
        return web.json_response({"error": [error], "result": {}})
    return web.json_response({"error": [], "result": result})


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)


def _pairs(request: web.Request, *, required: bool) -> list[str]:
    wanted = request.query.get("pair")
    if not wanted:
        if required:
            raise KrakenFailure("EGeneral:Invalid arguments:pair")
        return list(PAIRS)
    names = [ALIASES.get(n.strip()) for n in wanted.split(",")]
    if None in names:
        raise KrakenFailure("EQuery:Unknown asset pair")
    return [n for n in names if n is not None]


class Sandbox:
    """The sandbox server. ``port=0`` picks a free loopback port."""

    def __init__(
        self,
        accounts: dict[str, str] | None = None,
        *,
        rules: AuthRules | None = None,
        order_rules: OrderRules | None = None,
        market: MarketRules | None = None,
        tier: str | None = None,
        faults: FaultRules | None = None,
        delay_ms: tuple[float, float] = (0.0, 0.0),
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = SYSTEM_CLOCK,
        account_of: Mapping[str, str] | None = None,
        ws_drop_every_s: tuple[float, float] | None = None,
    ) -> None:
        if accounts is None:
            accounts = dict([generate_credentials()])
        #: API key -> the account it trades (several keys of one account share its balances
        #: and orders; nonces and REST counters stay per key). A key not listed is its own.
        self.account_of = dict(account_of or {})
        self.gate = Gatekeeper(dict(accounts), rules or AuthRules(), clock)
        self.market = Market(market or MarketRules(), clock)
        self.engine = MatchingEngine(self.market, order_rules)
        self.limits = RateLimits(TIERS[tier], clock) if tier is not None else None
        self.faults = FaultInjector(faults or FaultRules())
        self.delay_ms = delay_ms
        self.clock = clock
        self._random = random.Random(seed)
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self.ws = SandboxWebSocket(self, drop_every_s=ws_drop_every_s, seed=seed)
        self._driver: asyncio.Task[None] | None = None
        engine = self.engine
        self._private: dict[str, Handler] = {
            "Balance": engine.balance,
            "AddOrder": engine.add_order,
            "AddOrderBatch": engine.add_order_batch,
            "CancelOrder": engine.cancel_order,
            "CancelAll": engine.cancel_all,
            "CancelAllOrdersAfter": engine.cancel_all_orders_after,
            "QueryOrders": engine.query_orders,
            "OpenOrders": engine.open_orders,
            "ClosedOrders": engine.closed_orders,
            "TradesHistory": engine.trades_history,
            "BalanceEx": engine.balance_ex,
            "TradeBalance": engine.trade_balance,
            "QueryTrades": engine.query_trades,
            "CancelOrderBatch": engine.cancel_order_batch,
            "AmendOrder": engine.amend_order,
            "Ledgers": engine.ledgers,
            "QueryLedgers": engine.query_ledgers,
            "EditOrder": engine.edit_order,
            "GetWebSocketsToken": engine.get_websockets_token,
        }

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/0/private/{method}", self._handle_private)
        app.router.add_route("*", "/0/public/{method}", self._handle_public)
        app.router.add_get("/sandbox/stats", self._stats)
        app.router.add_get("/v2", self.ws.handle)
        return app

    async def start(self) -> str:
        """Start listening; returns the base URL."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:  # the port is taken, or not ours to use
            await self._runner.cleanup()
            reason = exc.strerror or str(exc)
            raise ConfigError(
                f"the sandbox cannot listen on {self.host}:{self.port}: {reason}"
            ) from None
        self.port = self._runner.addresses[0][1]
        self._driver = asyncio.create_task(self.ws.run(), name="sandbox-ws")
        log.info("sandbox_started", url=self.base_url, keys=[key_id(k) for k in self.gate.accounts])
        return self.base_url

    @property
    def ws_url(self) -> str:
        """Kraken WebSocket v2, public and private: ``ws://127.0.0.1:PORT/v2``."""
        return f"ws://{self.host}:{self.port}/v2"

    async def stop(self) -> None:
        if self._driver is not None:
            self._driver.cancel()
            await asyncio.gather(self._driver, return_exceptions=True)
            self._driver = None
        await self.ws.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def stats(self) -> dict[str, Any]:
        """Counters per key id."""
        return {
            key_id(api_key): {
                "accepted": s.accepted,
                "invalid_nonce": s.invalid_nonce,
                "invalid_signature": s.invalid_signature,
                "locked_out": s.locked_out,
                "rate_limited": self.limits.refused.get(api_key, 0) if self.limits else 0,
                "last_nonce": s.last,
            }
            for api_key, s in self.gate.keys.items()
        }

    def accepted_nonces(self, api_key: str) -> list[int]:
        """Every nonce accepted for ``api_key``, in acceptance order (tests)."""
        return list(self.gate.state(api_key).accepted_nonces)

    async def _handle_private(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        try:
            state, nonce, body = self.gate.authenticate(
                request.path,
                request.headers.get("API-Key"),
                request.headers.get("API-Sign"),
                raw,
                request.headers.get("Content-Type", ""),
                request.remote or "-",
            )
            lo, hi = self.delay_ms
            if hi > 0:
                await self.clock.sleep(self._random.uniform(lo, hi) / 1000)
            self.gate.check_nonce(state, nonce)
            api_key = request.headers["API-Key"]
            handler = self._private.get(method)
            if method == "GetApiKeyInfo":  # about the key, not the account it trades
                handler = lambda _account, _body: self.gate.key_info(api_key)  # noqa: E731
            if handler is None:
                raise KrakenFailure("EGeneral:Unknown method")
            account = self.account_of.get(api_key, api_key)
            if self.limits is not None:
                self.limits.charge(
                    api_key,
                    method,
                    body,
                    lambda ref: self.engine.order_age(account, ref),
                    account=account,
                )
            fault = self.faults.pick(method)
            if fault in FAULT_ERRORS:
                raise KrakenFailure(FAULT_ERRORS[fault])
            if fault == "http_502":
                return web.Response(
                    status=502,
                    text="<html><body>502 Bad Gateway</body></html>",
                    content_type="text/html",
                )
            if fault == "drop":
                return _drop(request)
            if fault == "late":
                await self.clock.sleep(self.faults.rules.late_s)
            result = handler(account, body)
            if fault == "lost":
                return _drop(request)
            if fault == "slow":
                await self.clock.sleep(self.faults.rules.slow_s)
            if fault == "garbled":
                whole = _envelope(result).body
                assert isinstance(whole, bytes)
                return web.Response(body=whole[: len(whole) // 2], content_type="application/json")
            return _envelope(result)
        except KrakenFailure as failure:
            return _envelope(error=failure.error)

    async def _handle_public(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.engine.sync()
        market = self.market
        try:
            if method == "Time":
                return _envelope(market.time())
            if method == "SystemStatus":
                stamp = dt.datetime.fromtimestamp(market.now(), dt.UTC)
                return _envelope(
                    {"status": "online", "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ")}
                )
            if method == "Assets":
                wanted = set(request.query.get("asset", "").split(",")) - {""}
                return _envelope(
                    {
                        name: info
                        for name, info in ASSETS.items()
                        if not wanted or {name, info["altname"]} & wanted
                    }
                )
            if method == "Spread":
                pair = _pairs(request, required=True)[0]
                bid, ask = market.quote(pair)
                now = int(market.now())
                return _envelope({PAIRS[pair].name: [[now, str(bid), str(ask)]], "last": now})
            if method == "Trades":
                pair = _pairs(request, required=True)[0]
                fills = [f for f in self.engine.fills.values() if f.pair == pair][-1000:]
                rows = [
                    [
                        str(f.price),
                        str(f.volume),
                        f.time,
                        f.side[0],
                        self.engine.orders[f.txid].ordertype[0],
                        "",
                        trade_number(f),
                    ]
                    for f in fills
                ]
                last = str(int(fills[-1].time * 1e9)) if fills else "0"
                return _envelope({PAIRS[pair].name: rows, "last": last})
            if method == "AssetPairs":
                return _envelope(
                    {PAIRS[p].name: PAIRS[p].asset_pair() for p in _pairs(request, required=False)}
                )
            if method == "Ticker":
                return _envelope(
                    {PAIRS[p].name: market.ticker(p) for p in _pairs(request, required=False)}
                )
            if method == "Depth":
                pair = _pairs(request, required=True)[0]
                count = int(request.query.get("count", "100"))
                if not 1 <= count <= 500:
                    raise KrakenFailure("EGeneral:Invalid arguments:count")
                return _envelope(market.depth(pair, count))
            if method == "OHLC":
                pair = _pairs(request, required=True)[0]
                interval = int(request.query.get("interval", "1"))
                if interval not in INTERVALS:
                    raise KrakenFailure("EGeneral:Invalid arguments:interval")
                since = request.query.get("since")
                return _envelope(market.ohlc(pair, interval, int(since) if since else None))
            raise KrakenFailure("EGeneral:Unknown method")
        except ValueError:
            return _envelope(error="EGeneral:Invalid arguments")
        except KrakenFailure as failure:
            return _envelope(error=failure.error)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())
