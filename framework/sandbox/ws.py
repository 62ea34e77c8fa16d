"""The sandbox's Kraken WebSocket v2 endpoint (``ws://127.0.0.1:PORT/v2``, public and
private on one path): any v2 client can stream from it and trade on it.

- On connect: a ``status`` message. ``ping`` → ``pong``; a ``heartbeat`` every second once
  subscribed; every request's ``req_id`` is echoed; errors are strings, as in v2.
- Public channels: ``ticker``, ``book`` (snapshot then updates, each with Kraken's CRC32
  checksum over the top 10 levels), ``trade``, ``ohlc``, ``instrument``.
- Private, with a token from REST ``GetWebSocketsToken`` (15 minutes to use it): channels
  ``executions`` (snapshot of open orders, then order events and trades, numbered by
  ``sequence``) and ``balances``; methods ``add_order``, ``amend_order``, ``cancel_order``,
  ``cancel_all``, ``cancel_all_orders_after``, ``batch_add``, ``batch_cancel``: the engine
  and the rate counters the REST endpoints use (Kraken shares them between REST and WS).
- The market moves on a driver task every step of the market clock: resting orders match,
  feeds are pushed. ``drop_every_s=(lo, hi)`` cuts every connection (no close frame) at
  seeded random moments, for tests of reconnection; ``drop_all()`` does it at once.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from framework.events import Fill
from framework.log import get_logger
from framework.sandbox import ws_messages as msg
from framework.sandbox.auth import KrakenFailure
from framework.sandbox.engine import SimOrder
from framework.sandbox.kraken_shapes import trade_number
from framework.sandbox.market import PAIRS
from framework.sandbox.ws_methods import OrderMethods, Refusal
from framework.sandbox.ws_subscriptions import PRIVATE, Subscriptions
from framework.transport import decode_json

if TYPE_CHECKING:
    from framework.sandbox.server import Sandbox

log = get_logger("framework.sandbox.ws")


@dataclass(eq=False)
class Connection:
    """One client; messages leave in order through its outbox (one writer task)."""

    ws: web.WebSocketResponse
    transport: asyncio.Transport | None = None
    account: str | None = None  # set by the first private subscription or order
    token: str | None = None  # the token that set it
    books: dict[str, tuple[int, list[list[str]], list[list[str]]]] = field(default_factory=dict)
    channels: dict[str, set[Any]] = field(default_factory=dict)  # channel -> symbols/intervals
    sequence: dict[str, int] = field(default_factory=dict)
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    def send(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        if channel in PRIVATE:
            self.sequence[channel] = message["sequence"] = self.sequence.get(channel, 0) + 1
        self.outbox.put_nowait(msg.encode(message))

    async def write(self) -> None:
        while True:
            text = await self.outbox.get()
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):  # closed under us: the reader ends it
                return


class SandboxWebSocket(Subscriptions):
    """The ``/v2`` endpoint of one sandbox."""

    def __init__(
        self, sandbox: Sandbox, *, drop_every_s: tuple[float, float] | None, seed: int | None
    ) -> None:
        self.sandbox = sandbox
        self.engine = sandbox.engine
        self.market = sandbox.market
        self.connections: set[Connection] = set()
        self.drop_every_s = drop_every_s
        self.drops = 0
        self._random = random.Random(f"{seed}:ws")
        self._next_drop: float | None = None
        self._public_trades: list[dict[str, Any]] = []
        self._connected = asyncio.Event()
        self.engine.listeners.append(self._on_order_event)
        self.methods = OrderMethods(self.engine, sandbox.limits)

    # --- connections ----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Connection(ws, request.transport)
        self.connections.add(conn)
        self._connected.set()
        writer = asyncio.create_task(conn.write())
        conn.send(
            {
                "channel": "status",
                "type": "update",
                "data": [
                    {
                        "api_version": "v2",
                        "connection_id": self._random.getrandbits(63),
                        "system": "online",
                        "version": "2.0.10",
                    }
                ],
            }
        )
        try:
            async for frame in ws:
                if frame.type is WSMsgType.TEXT:
                    self._request(conn, frame.data)
        finally:
            self.connections.discard(conn)
            writer.cancel()
        return ws

    def drop_all(self) -> int:
        """Cut every connection without a close frame; returns how many."""
        cut = 0
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
                cut += 1
            self.connections.discard(conn)
        self.drops += 1
        return cut

    async def close_all(self, grace_s: float = 1.0) -> None:
        """Close every connection (going away, 1001); one that does not close in time is
        cut. A server stopping with clients connected would otherwise wait for them."""
        closing = [
            conn.ws.close(code=1001, message=b"server stopping") for conn in self.connections
        ]
        try:
            async with asyncio.timeout(grace_s):
                await asyncio.gather(*closing, return_exceptions=True)
        except TimeoutError:
            pass
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        self.connections.clear()

    # --- the driver -----------------------------------------------------------------------

    async def run(self) -> None:
        """Move the market every step and push the feeds; a heartbeat every second."""
        clock, step = self.sandbox.clock, self.market.rules.step_s
        beat = 0.0
        while True:
            if not self.connections:  # idle until someone connects
                self._connected.clear()
                await self._connected.wait()
            await clock.sleep(step)
            self.engine.sync()
            self._push_market()
            beat += step
            if beat >= 1.0:
                beat = 0.0
                for conn in list(self.connections):
                    if conn.channels:
                        conn.send({"channel": "heartbeat"})
            self._maybe_drop(clock.monotonic())

    def _maybe_drop(self, now: float) -> None:
        if self.drop_every_s is None:
            return
        if self._next_drop is None:
            self._next_drop = now + self._random.uniform(*self.drop_every_s)
        elif now >= self._next_drop:
            self._next_drop = None
            log.info("sandbox_ws_dropped", connections=self.drop_all())

    def _push_market(self) -> None:
        trades, self._public_trades = self._public_trades, []
        for conn in list(self.connections):
            for pair in conn.channels.get("ticker", ()):
                conn.send(
                    {"channel": "ticker", "type": "update", "data": [msg.ticker(self.market, pair)]}
                )
            for pair in conn.channels.get("book", ()):
                self._book_update(conn, pair)
            wanted = conn.channels.get("trade", ())
            mine = [t for t in trades if msg.SYMBOLS.get(t["symbol"]) in wanted]
            if mine:
                conn.send({"channel": "trade", "type": "update", "data": mine})
            for pair, interval in conn.channels.get("ohlc", ()):
                row = msg.candle(self.market, pair, interval)
                if row is not None:
                    conn.send({"channel": "ohlc", "type": "update", "data": [row]})

    def _book_update(self, conn: Connection, pair: str) -> None:
        depth, old_bids, old_asks = conn.books[pair]
        bids, asks = msg.levels(self.market, pair, depth)
        changed_bids, changed_asks = msg.book_diff(old_bids, bids), msg.book_diff(old_asks, asks)
        if not changed_bids and not changed_asks:
            return
        conn.books[pair] = (depth, bids, asks)
        conn.send(
            {
                "channel": "book",
                "type": "update",
                "data": [
                    {
                        "symbol": msg.SYMBOL_OF[pair],
                        "bids": changed_bids,
                        "asks": changed_asks,
                        "checksum": msg.book_checksum(bids, asks),
                        "timestamp": msg.rfc3339(self.market.now()),
                    }
                ],
            }
        )

    def _on_order_event(self, kind: str, order: SimOrder, fill: Fill | None) -> None:
        """Push an engine event to the connections that want it; nothing is kept or built
        for no one (a sandbox traded by REST alone would pile up its public trades)."""
        mine = [c for c in self.connections if c.account == order.key]
        watched = fill is not None and any(c.channels.get("trade") for c in self.connections)
        if not mine and not watched:
            return
        now = self.market.now()
        if fill is not None and watched:  # (watched implies a fill; said for mypy)
            self._public_trades.append(
                {
                    "symbol": msg.SYMBOL_OF[order.pair],
                    "side": order.side,
                    "price": float(fill.price),
                    "qty": float(fill.volume),
                    "ord_type": order.ordertype,
                    "trade_id": trade_number(fill),
                    "timestamp": msg.rfc3339(now),
                }
            )
        entry = msg.execution(kind, order, fill, now)
        for conn in mine:
            if "executions" in conn.channels:
                conn.send({"channel": "executions", "type": "update", "data": [entry]})
            if fill is not None and "balances" in conn.channels:
                held = self.engine.balances(order.key)
                info = PAIRS[order.pair]
                changed = {a: held.get(a, Decimal(0)) for a in (info.base, info.quote)}
                updates = [
                    {
                        **b,
                        "type": "trade",
                        "ref_id": fill.trade_id,
                        "ledger_id": f"L{fill.trade_id}",
                        "timestamp": msg.rfc3339(now),
                        "wallet_type": "spot",
                        "wallet_id": "main",
                    }
                    for b in msg.balances(changed)
                ]
                conn.send({"channel": "balances", "type": "update", "data": updates})

    # --- requests -------------------------------------------------------------------------

    def _request(self, conn: Connection, text: str) -> None:
        time_in = msg.rfc3339(self.market.now())
        request = decode_json(text, decimals=True)  # None: not JSON, or nested too deep
        if not isinstance(request, dict):
            conn.send({"error": "Malformed request", "success": False, "time_in": time_in})
            return
        method, params = request.get("method"), request.get("params") or {}
        answer: dict[str, Any] = {"method": method}
        if "req_id" in request:
            answer["req_id"] = request["req_id"]
        try:
            if not isinstance(params, dict):
                raise Refusal("Invalid params")
            if method == "ping":
                answer["method"] = "pong"
                results: list[Any] = [None]
            elif method in ("subscribe", "unsubscribe"):
                results = self._subscription(conn, method, params)
            elif method in self.methods.table:
                results = self._order_method(conn, method, params)
            else:
                raise Refusal(f"Method not found: {method}")
        except Exception as refused:  # a refusal; or a sandbox bug, logged: the client stays
            if not isinstance(refused, Refusal | KrakenFailure):
                log.exception("sandbox_request_failed", method=str(method)[:40])
                refused = KrakenFailure("EGeneral:Internal error")
            error = refused.error if isinstance(refused, KrakenFailure) else str(refused)
            conn.send(
                {
                    **answer,
                    "error": error,
                    "success": False,
                    "time_in": time_in,
                    "time_out": msg.rfc3339(self.market.now()),
                }
            )
            return
        for result in results:
            stamped = {**answer, "time_in": time_in, "time_out": msg.rfc3339(self.market.now())}
            if method != "ping":
                if isinstance(result, Exception):
                    stamped.update(success=False, error=str(result))
                else:
                    stamped.update(success=True, result=result)
            conn.send(stamped)
        if method == "subscribe":
            self._snapshots(conn, params)

    # --- order methods: framework/sandbox/ws_methods.py ----------------------------------

    def _order_method(self, conn: Connection, method: str, params: dict[str, Any]) -> list[Any]:
        return self.methods.run(self._authorise(conn, params), method, params)
