"""BitunixClient: Bitunix futures REST over one unordered lane per API key.

    async with BitunixClient(api_key=..., api_secret=..., base_url=...) as bitunix:
        placed = await bitunix.place_order(symbol="BTCUSDT", side="BUY", qty="0.01",
                                           order_type="LIMIT", price="60000", client_id="g-1")

Bitunix's nonce is a fresh random string, so calls need no order: the lane is *unordered*
(:class:`~framework.nonce.source.RandomNonces`, 32 lowercase hex characters, up to
``max_in_flight`` calls at once). What Bitunix does check is the ``timestamp`` header: it
must be within ``window_s`` (60 s) of the server's clock. So the client

- estimates the server's clock from the HTTP ``Date`` header (whole seconds; at open, with
  one public call, and on every answer) and stamps requests in server time;
- refuses locally a call that waited in the queue longer than the window (it would be
  refused anyway, and a stale order is better not sent);
- paces place_order and batch_order to Bitunix's documented per-second limits
  (:mod:`framework.exchanges.bitunix.limits`; ``paced=False`` turns it off).

The lane sends through the core's pipeline (framework/transport.py) with Bitunix's pure
parts (:class:`~framework.exchanges.bitunix.wire.BitunixWire`): bodies are compact JSON,
signed and sent byte for byte; GET parameters are signed as Bitunix's sorted ``key+value``
string; answers are the ``{code, msg, data}`` envelope, translated by
:mod:`framework.exchanges.bitunix.errors`. A rate-limit refusal proves the call did not run;
any other failure of a state-changing call without a clear answer is ambiguous.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

import aiohttp

from framework.call import PrivateCall
from framework.clock import SYSTEM_CLOCK, Clock, wall
from framework.errors import (
    ConfigError,
    ExchangeError,
    InvalidArguments,
    OrderlyError,
)
from framework.exchanges.base import LaneClient, WireClock, plain
from framework.exchanges.bitunix.errors import EXCHANGE, translate
from framework.exchanges.bitunix.limits import Pacer
from framework.exchanges.bitunix.wire import BitunixWire, parse
from framework.log import get_logger
from framework.nonce.history import NonceHistory
from framework.nonce.source import RandomNonces
from framework.secret import Secret, key_id
from framework.transport import Request

log = get_logger("framework.exchanges.bitunix")

DEFAULT_BASE_URL = "https://fapi.bitunix.com"
TRADE = "/api/v1/futures/trade/"
PAGE = 100  # the largest page Bitunix answers
MAX_ORDERS = 10_000  # paging stops here
MARKET = "/api/v1/futures/market/"


class BitunixClient(WireClock, LaneClient):
    """Bitunix futures REST client. Use as an async context manager."""

    exchange = EXCHANGE
    state_changing = frozenset({"place_order", "batch_order", "cancel_orders", "cancel_all_orders"})

    def __init__(
        self,
        api_key: str | Secret,
        api_secret: str | Secret,
        base_url: str = DEFAULT_BASE_URL,
        *,
        history: NonceHistory | None = None,
        max_in_flight: int = 16,
        window_s: float = 60.0,
        max_batch: int = 20,
        paced: bool = True,
        shared_limits: str | None = None,
        timeout: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._api_key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        self._api_secret = api_secret if isinstance(api_secret, Secret) else Secret(api_secret)
        if not self._api_key.reveal() or not self._api_secret.reveal():
            raise ConfigError("Bitunix API key and secret must both be set", exchange=EXCHANGE)
        if not 1 <= max_batch <= 20:
            raise ConfigError("max_batch must be 1..20 (Bitunix batch_order)", exchange=EXCHANGE)
        self.key_id = key_id(self._api_key)
        self.base_url = base_url.rstrip("/")
        self._history = history if history is not None else NonceHistory(None)
        self._max_in_flight = max_in_flight
        self.window_s = window_s
        self.max_batch = max_batch
        #: With ``shared_limits`` (a Redis URL) every process of the key keeps, together, to
        #: Bitunix's per-uid limits.
        self.pacer = Pacer(redis_url=shared_limits, key_id=self.key_id) if paced else None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        #: Bitunix's pure parts for this key; the lane sends through the core's pipeline.
        self.wire = BitunixWire(
            self._api_key, self._api_secret, self.base_url, key_id=self.key_id, clock=clock
        )

    def __repr__(self) -> str:
        return f"BitunixClient(key_id={self.key_id!r}, base_url={self.base_url!r})"

    async def __aenter__(self) -> BitunixClient:
        self._start(
            timeout=self._timeout,
            source=RandomNonces(self.key_id),
            history=self._history,
            max_in_flight=self._max_in_flight,
            clock=self._clock,
            pace=self.pacer.pace_call if self.pacer is not None else None,
            wire=self.wire,
        )
        try:
            await self.public("tickers", {"symbols": "BTCUSDT"})  # learn the server's clock
        except OrderlyError as exc:
            log.warning("bitunix_clock_unknown", error=str(exc))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop()
        if self.pacer is not None:
            await self.pacer.close()

    # --- the wire -------------------------------------------------------------------------

    async def private(
        self, method: Literal["GET", "POST"], endpoint: str, params: Mapping[str, Any] | None = None
    ) -> Any:
        """Call a private endpoint (path relative to the API root) through the key's lane."""
        call = PrivateCall(
            f"{method} {endpoint}",
            dict(params or {}),
            not_after=self._clock.monotonic() + self.window_s,
        )
        return await self.lane.submit(call)

    def _parse(self, name: str, status: int, payload: bytes) -> Any:
        return parse(name, status, payload, key_id=self.key_id)

    async def public(self, name: str, params: Mapping[str, Any] | None = None) -> Any:
        """``GET /api/v1/futures/market/<name>``; no signature, no lane."""
        sent_at = wall(self._clock)
        query = {k: str(v) for k, v in (params or {}).items()}
        answer = await self._read(
            Request("GET", self.base_url + MARKET + name, query=query), endpoint=name
        )
        result = self._parse(name, answer.status, answer.body)
        self.wire.observe(answer.headers, sent_at)  # only a successful answer teaches the clock
        return result

    # --- typed calls ----------------------------------------------------------------------

    async def place_order(
        self,
        *,
        symbol: str,
        side: Literal["BUY", "SELL"],
        qty: Decimal | str,
        order_type: Literal["LIMIT", "MARKET"],
        price: Decimal | str | None = None,
        client_id: str | None = None,
        trade_side: str | None = None,
        effect: str | None = None,
        reduce_only: bool | None = None,
    ) -> dict[str, Any]:
        """One order; returns ``{"orderId": ..., "clientId": ...}``."""
        order = _order(
            symbol=symbol,
            side=side,
            qty=qty,
            order_type=order_type,
            price=price,
            client_id=client_id,
            trade_side=trade_side,
            effect=effect,
            reduce_only=reduce_only,
        )
        result: dict[str, Any] = await self.private("POST", TRADE + "place_order", order)
        return result

    async def batch_order(
        self, symbol: str, orders: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any] | OrderlyError]:
        """Orders in Bitunix's fields (``side``, ``qty``, ``orderType``, ``price``,
        ``clientId``, ...), split into calls of at most ``max_batch``. One entry per order,
        in order: ``{"orderId", "clientId"}``, or the error that refused it. Every order needs
        a ``clientId``: the answer maps results back by it."""
        if any(not o.get("clientId") for o in orders):
            raise InvalidArguments(
                "every order of a batch needs a clientId", exchange=EXCHANGE, endpoint="batch_order"
            )
        out: list[dict[str, Any] | OrderlyError] = []
        for start in range(0, len(orders), self.max_batch):
            chunk = [with_effect(o) for o in orders[start : start + self.max_batch]]
            data = await self.private(
                "POST", TRADE + "batch_order", {"symbol": symbol, "orderList": chunk}
            )
            done = {s.get("clientId"): s for s in data.get("successList") or []}
            failed = {f.get("clientId"): f for f in data.get("failureList") or []}
            for order in chunk:
                cid = order["clientId"]
                if cid in done:
                    out.append(
                        {
                            "orderId": done[cid].get("orderId") or done[cid].get("id"),
                            "clientId": cid,
                        }
                    )
                elif cid in failed:
                    f = failed[cid]
                    out.append(
                        translate(
                            int(f.get("errorCode", 0) or 0),
                            str(f.get("errorMsg", "")),
                            endpoint="batch_order",
                            key_id=self.key_id,
                        )
                    )
                else:
                    out.append(
                        ExchangeError(
                            f"batch_order said nothing of clientId {cid}",
                            exchange=EXCHANGE,
                            endpoint="batch_order",
                        )
                    )
        return out

    async def cancel_orders(
        self, symbol: str, *, order_ids: Sequence[str] = (), client_ids: Sequence[str] = ()
    ) -> dict[str, Any]:
        orders = [{"orderId": i} for i in order_ids] + [{"clientId": c} for c in client_ids]
        if not orders:
            raise InvalidArguments("give order_ids or client_ids", endpoint="cancel_orders")
        result: dict[str, Any] = await self.private(
            "POST", TRADE + "cancel_orders", {"symbol": symbol, "orderList": orders}
        )
        return result

    async def get_order_detail(
        self, *, order_id: str | None = None, client_id: str | None = None
    ) -> dict[str, Any]:
        if (order_id is None) == (client_id is None):
            raise InvalidArguments(
                "give exactly one of order_id or client_id", endpoint="get_order_detail"
            )
        params = {"orderId": order_id} if order_id is not None else {"clientId": client_id}
        result: dict[str, Any] = await self.private("GET", TRADE + "get_order_detail", params)
        return result

    async def get_pending_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """Every pending order, page by page: Bitunix answers 10 unless asked (at most
        100), with the ``total``; reading stops at the total or at a short page."""
        orders: list[dict[str, Any]] = []
        while True:
            params: dict[str, Any] = {"skip": len(orders), "limit": PAGE}
            if symbol:
                params["symbol"] = symbol
            data = await self.private("GET", TRADE + "get_pending_orders", params) or {}
            page = data.get("orderList") or []
            orders += page
            total = int(data.get("total") or 0)
            if len(page) < PAGE or len(orders) >= total or len(orders) >= MAX_ORDERS:
                return orders

    async def cancel_all_orders(self, symbol: str | None = None) -> Any:
        return await self.private(
            "POST", TRADE + "cancel_all_orders", {"symbol": symbol} if symbol else {}
        )

    async def get_history_trades(
        self, *, start_ms: int | None = None, skip: int = 0, limit: int = 100
    ) -> dict[str, Any]:
        """Newest first: ``{"tradeList": [...], "total": n}``."""
        params: dict[str, Any] = {"skip": skip, "limit": limit}
        if start_ms is not None:
            params["startTime"] = start_ms
        result: dict[str, Any] = await self.private("GET", TRADE + "get_history_trades", params)
        return result or {}

    async def account(self, margin_coin: str = "USDT") -> dict[str, Any]:
        result: dict[str, Any] = await self.private(
            "GET", "/api/v1/futures/account", {"marginCoin": margin_coin}
        )
        return result

    async def tickers(self, symbols: Sequence[str]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.public("tickers", {"symbols": ",".join(symbols)})
        return result

    async def depth(self, symbol: str, limit: int = 1) -> dict[str, Any]:
        result: dict[str, Any] = await self.public("depth", {"symbol": symbol, "limit": limit})
        return result

    async def trading_pairs(self, symbols: Sequence[str] = ()) -> list[dict[str, Any]]:
        params = {"symbols": ",".join(symbols)} if symbols else {}
        result: list[dict[str, Any]] = await self.public("trading_pairs", params)
        return result


def _order(
    *,
    symbol: str,
    side: str,
    qty: Decimal | str,
    order_type: str,
    price: Decimal | str | None,
    client_id: str | None,
    trade_side: str | None,
    effect: str | None,
    reduce_only: bool | None,
) -> dict[str, Any]:
    if side not in ("BUY", "SELL"):
        raise InvalidArguments(f"side must be BUY or SELL; got {side!r}", endpoint="place_order")
    if order_type == "LIMIT" and price is None:
        raise InvalidArguments("a LIMIT order needs a price", endpoint="place_order")
    fields = {
        "symbol": symbol,
        "side": side,
        "qty": plain(qty),
        "orderType": order_type,
        "price": None if price is None else plain(price),
        "clientId": client_id,
        "tradeSide": trade_side,
        "effect": effect,
        "reduceOnly": reduce_only,
    }
    return with_effect({k: v for k, v in fields.items() if v is not None})


def with_effect(order: Mapping[str, Any]) -> dict[str, Any]:
    """The order with ``effect`` GTC when it is a LIMIT order without one: the docs call
    ``effect`` required for LIMIT orders (the official demo sends GTC)."""
    if order.get("orderType") == "LIMIT" and not order.get("effect"):
        return {**order, "effect": "GTC"}
    return dict(order)
