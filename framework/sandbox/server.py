"""The embedded sandbox exchange: an aiohttp server on 127.0.0.1 speaking Kraken's REST API.

It is Orderly's paper-trading venue and the Kraken conformance server of the tests. Private
calls go through :class:`~framework.sandbox.auth.Gatekeeper` (keys, signatures, nonces,
lockout) exactly as Kraken documents them; every answer is Kraken's envelope
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
import random
import secrets
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

from aiohttp import web

from framework.clock import SYSTEM_CLOCK, Clock
from framework.log import get_logger
from framework.sandbox.auth import AuthRules, Gatekeeper, KrakenFailure
from framework.sandbox.orders import PAIRS, OrderKeeper, OrderRules
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


class Sandbox:
    """The sandbox server. ``port=0`` picks a free loopback port."""

    def __init__(
        self,
        accounts: dict[str, str] | None = None,
        *,
        rules: AuthRules | None = None,
        order_rules: OrderRules | None = None,
        delay_ms: tuple[float, float] = (0.0, 0.0),
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if accounts is None:
            accounts = dict([generate_credentials()])
        self.gate = Gatekeeper(dict(accounts), rules or AuthRules(), clock)
        self.orders = OrderKeeper(order_rules or OrderRules())
        self.delay_ms = delay_ms
        self._random = random.Random(seed)
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._private: dict[str, Handler] = {
            "Balance": self.orders.balance,
            "AddOrder": self.orders.add_order,
            "AddOrderBatch": self.orders.add_order_batch,
            "CancelOrder": self.orders.cancel_order,
            "CancelAll": self.orders.cancel_all,
            "QueryOrders": self.orders.query_orders,
            "OpenOrders": self.orders.open_orders,
            "ClosedOrders": self.orders.closed_orders,
        }

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/0/private/{method}", self._handle_private)
        app.router.add_get("/0/public/Time", self._time)
        app.router.add_get("/0/public/Ticker", self._ticker)
        app.router.add_get("/sandbox/stats", self._stats)
        return app

    async def start(self) -> str:
        """Start listening; returns the base URL."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("sandbox_started", url=self.base_url, keys=[key_id(k) for k in self.gate.accounts])
        return self.base_url

    async def stop(self) -> None:
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
                await asyncio.sleep(self._random.uniform(lo, hi) / 1000)
            self.gate.check_nonce(state, nonce)
            handler = self._private.get(method)
            if handler is None:
                raise KrakenFailure("EGeneral:Unknown method")
            api_key = request.headers["API-Key"]
            return _envelope(handler(api_key, body))
        except KrakenFailure as failure:
            return _envelope(error=failure.error)

    async def _time(self, request: web.Request) -> web.Response:
        now = time.time()
        return _envelope({"unixtime": int(now), "rfc1123": formatdate(now, usegmt=True)})

    async def _ticker(self, request: web.Request) -> web.Response:
        wanted = request.query.get("pair", ",".join(PAIRS))
        result = {}
        for pair in wanted.split(","):
            if pair not in PAIRS:
                return _envelope(error="EQuery:Unknown asset pair")
            name, price = PAIRS[pair]
            result[name] = {
                "a": [price, "1", "1.000"],
                "b": [price, "1", "1.000"],
                "c": [price, "0.1"],
                "v": ["0", "0"],
                "p": [price, price],
                "t": [0, 0],
                "l": [price, price],
                "h": [price, price],
                "o": price,
            }
        return _envelope(result)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())
