"""Synthetix perps as a :class:`~framework.venue.Venue`: SynthetixClient calls in Orderly's
types.

Pairs are Synthetix symbols (``BTC-USDT``); sides ``buy``/``sell``; a limit order is
``limitGtc`` (``limitAlo`` when post-only), a market order ``market``. What protocols.md
documents is the trade path (placeOrders, cancelOrders, nonces, signatures, envelope). The
reads this venue needs (getOpenOrders, getOrderHistory, getTrades, getSubAccount, and the
public getOrderbook) are not in it: their request and answer shapes follow public SDKs, and
the parsing here is tolerant (several field spellings accepted). Choices:

- **Cancels by venue id when the order book knows it** (``CancelOrders``), **else by client
  order id** (``CancelOrdersByCloid``, sent as action ``cancelOrders`` with
  ``clientOrderIds``: no lookup first). Cancel-all pages through getOpenOrders and cancels
  every id, 50 per signed action.
- **Dead-man switch = ``scheduleCancel``** (``timeoutSeconds``; 0 disarms): the runner arms
  and refreshes it as on Kraken, so a killed bot's orders are cancelled by Synthetix.
- **Paging.** getOpenOrders and getOrderHistory answer 50 orders unless asked for more:
  both are read in pages of 100 (``limit``/``offset``) until a short page. An order is
  looked up with the ``clientOrderId`` filter. History covers the last 7 days (the API's
  window) and costs 50 tokens a page, so query_orders reads it only for the ids that are no
  longer open. getTrades refuses a start more than 30 days back: fills are asked from at
  most 29 days ago.
- **Order deadline = ``expiresAfter``.** A placeOrders signed to expire ``expires_after_s``
  after signing cannot reach the book later, so reconciliation waits that long before it
  calls an unanswered order absent. Without expiry (``expires_after_s`` unset) an order
  whose answer was lost is never sent again.
- **Balances** are the subaccount's collaterals ``{symbol: quantity}``.
- **Batches** take at most 20 orders per signed action (Synthetix documents no limit: our
  choice).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from framework.config import Config
from framework.errors import ConfigError, ExchangeError, InvalidArguments, OrderlyError
from framework.events import Fill, Ticker
from framework.exchanges.base import (
    ClientVenue,
    amount,
    history_from,
    plain,
    sharing_of,
    venue_fill,
)
from framework.exchanges.synthetix.client import DEFAULT_BASE_URL, SynthetixClient, order_id_of
from framework.exchanges.synthetix.errors import EXCHANGE
from framework.exchanges.synthetix.spec import SynthetixSettings
from framework.log import get_logger
from framework.nonce import SqliteStore
from framework.orders import LimitOrder, Order
from framework.registry import settings_of
from framework.venue import PairAssets, VenueOrder

log = get_logger("framework.exchanges.synthetix")

MAX_BATCH = 20
PAGE = 100
MAX_ORDERS = 10_000  # a read's paging stops here (the API's offset limit)
CANCEL_CHUNK = 50
BOOK_LIMIT = 5  # the smallest orderbook depth Synthetix accepts (5, 10, 20, 50, ...)
TRADES_WINDOW_S = 29 * 86_400  # getTrades refuses a start more than 30 days back
IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"


def order_fields(order: Order, client_id: str) -> dict[str, Any]:
    """One order in placeOrders' fields (unset ones get the API's defaults in the client)."""
    fields: dict[str, Any] = {
        "symbol": order.pair,
        "side": order.side,
        "quantity": plain(order.volume),
        "clientOrderId": client_id,
    }
    if isinstance(order, LimitOrder):
        if order.time_in_force == "fok":  # its order types: limitGtc, limitIoc, limitAlo
            raise InvalidArguments("Synthetix has no fill-or-kill order", exchange=EXCHANGE)
        kinds = {"gtc": "limitAlo" if order.post_only else "limitGtc", "ioc": "limitIoc"}
        fields.update(orderType=kinds[order.time_in_force], price=plain(order.price))
    else:
        fields["orderType"] = "market"
    if order.reduce_only:
        fields["reduceOnly"] = True
    return fields


def _ident(raw: Mapping[str, Any]) -> tuple[str, str | None]:
    """(venue id, client id) of an order or trade in a read's answer."""
    order = raw.get("order")
    ident: Mapping[str, Any] = order if isinstance(order, Mapping) else {}
    venue_id = ident.get("venueId") or raw.get("orderId") or raw.get("id") or ""
    client_id = ident.get("clientId") or raw.get("clientOrderId") or None
    return str(venue_id), client_id


def order_status(raw: Mapping[str, Any], default: str) -> str:
    """The Venue's status word for a Synthetix order status ("placed", "partially filled",
    "filled", "cancelled", ... in any case and spelling)."""
    status = str(raw.get("status", default)).lower()
    words = status.replace("_", " ").replace("-", " ")
    if words in ("open", "new", "placed", "resting", "partially filled", "partiallyfilled"):
        return "open"
    if status == "filled":
        return "closed"
    return "canceled" if "cancel" in status or status in ("rejected", "expired") else status


def _venue_order(raw: Mapping[str, Any], default_status: str) -> VenueOrder:
    venue_id, client_id = _ident(raw)
    return VenueOrder(
        txid=venue_id,
        cl_ord_id=client_id,
        status=order_status(raw, default_status),
        filled=amount(raw.get("filledQuantity") or "0", "filledQuantity"),
        reason=raw.get("cancelReason"),
    )


class SynthetixVenue(ClientVenue[SynthetixClient]):
    """A Venue over one SynthetixClient (one signer and subaccount, one strict lane)."""

    max_batch = MAX_BATCH
    persistent = True

    def __init__(self, client: SynthetixClient, expires_after_s: float | None = None) -> None:
        self.name = EXCHANGE
        self.client = client
        self.key_id = client.key_id
        self.order_deadline_s = expires_after_s

    def _result(self, result: dict[str, Any] | OrderlyError) -> str | OrderlyError:
        if isinstance(result, OrderlyError):
            return result
        venue_id = order_id_of(result)
        if venue_id is None:
            return ExchangeError(
                f"placeOrders answered no order id: {sorted(result)}",
                exchange=EXCHANGE,
                endpoint="placeOrders",
            )
        return venue_id

    async def place(self, order: Order, cl_ord_id: str) -> str:
        (result,) = await self.client.place_orders([order_fields(order, cl_ord_id)])
        answer = self._result(result)
        if isinstance(answer, OrderlyError):
            raise answer
        return answer

    async def place_batch(self, orders: Sequence[tuple[Order, str]]) -> list[str | OrderlyError]:
        results = await self.client.place_orders([order_fields(o, cid) for o, cid in orders])
        if len(results) != len(orders):
            raise ExchangeError(
                f"placeOrders answered {len(results)} statuses for {len(orders)} orders",
                exchange=EXCHANGE,
                endpoint="placeOrders",
            )
        return [self._result(r) for r in results]

    async def _orders(self, action: str, **params: Any) -> list[VenueOrder]:
        """Every order a read answers, page by page (``limit``/``offset``)."""
        default = "open" if action == "getOpenOrders" else ""
        orders: list[VenueOrder] = []
        while True:
            raw = await self.client.read(action, **params, limit=PAGE, offset=len(orders))
            items = raw.get("orders", []) if isinstance(raw, Mapping) else raw
            page = [_venue_order(o, default) for o in items or [] if isinstance(o, Mapping)]
            orders += page
            if len(page) < PAGE or len(orders) >= MAX_ORDERS:
                return orders

    async def find(self, cl_ord_id: str) -> VenueOrder | None:
        """getOpenOrders, then getOrderHistory, filtered by client order id."""
        for action in ("getOpenOrders", "getOrderHistory"):
            found = [
                o
                for o in await self._orders(action, clientOrderId=cl_ord_id)
                if o.cl_ord_id == cl_ord_id
            ]
            if found:
                return found[0]
        return None

    def is_duplicate(self, exc: OrderlyError) -> bool:
        return exc.code == IDEMPOTENCY_CONFLICT

    async def cancel(self, cl_ord_id: str, *, pair: str, txid: str | None) -> None:
        if txid is not None:
            (result,) = await self.client.cancel_orders([txid])
        else:
            (result,) = await self.client.cancel_orders(client_order_ids=[cl_ord_id])
        if isinstance(result, OrderlyError):
            raise result

    async def arm_dead_man(self, timeout_s: int) -> None:
        """``scheduleCancel``: Synthetix cancels every open order of the subaccount unless
        re-armed within ``timeout_s`` seconds; 0 disarms it."""
        await self.client.schedule_cancel(timeout_s)

    async def clock_offset(self) -> float:
        """From the ``timestamp`` of an answer (ms); the client applies offsets of a second
        or more to ``expiresAfter``."""
        await self.client.read("getSubAccount")
        return self.client.clock_offset_ms / 1000

    async def cancel_all(self) -> int:
        ids = [o.txid for o in await self.open_orders()]
        cancelled = 0
        for start in range(0, len(ids), CANCEL_CHUNK):
            results = await self.client.cancel_orders(ids[start : start + CANCEL_CHUNK])
            cancelled += sum(not isinstance(r, OrderlyError) for r in results)
        return cancelled

    async def balances(self) -> dict[str, Decimal]:
        account = await self.client.read("getSubAccount")
        collaterals = account.get("collaterals", []) if isinstance(account, Mapping) else []
        return {str(c["symbol"]): amount(c.get("quantity", "0"), "quantity") for c in collaterals}

    async def open_orders(self) -> list[VenueOrder]:
        return await self._orders("getOpenOrders")

    async def query_orders(self, txids: Sequence[str]) -> list[VenueOrder]:
        wanted = set(txids)
        found = [o for o in await self.open_orders() if o.txid in wanted]
        if wanted - {o.txid for o in found}:  # finished ones: from the history (50 tokens)
            found += [
                o
                for o in await self._orders("getOrderHistory")
                if o.txid in wanted - {f.txid for f in found}
            ]
        return found

    async def fills_since(self, since: float) -> list[tuple[str, Fill]]:
        fills: list[tuple[str, Fill]] = []
        offset = 0
        start = max(since, time.time() - TRADES_WINDOW_S)  # Synthetix refuses older starts
        while True:  # newest first, a page of 100, until hasMore is false
            page = await self.client.read(
                "getTrades", startTime=int(start * 1000), offset=offset, limit=PAGE
            )
            trades = page.get("trades", []) if isinstance(page, Mapping) else page or []
            for t in trades:
                fills.append(
                    venue_fill(
                        order_id=_ident(t)[0],
                        trade_id=t["tradeId"],
                        pair=t["symbol"],
                        side=t["side"],
                        price=t["price"],
                        volume=t["quantity"],
                        fee=t.get("fee"),
                        maker=bool(t.get("maker", False)),
                        at=int(t["timestamp"]) / 1000,
                    )
                )
            offset += len(trades)
            more = isinstance(page, Mapping) and bool(page.get("hasMore"))
            if not trades or not more or offset >= 5_000:
                return fills

    async def ticker(self, pair: str) -> Ticker:
        book = await self.client.info("getOrderbook", symbol=pair, limit=BOOK_LIMIT)

        def top(side: str) -> Decimal:
            level = book[side][0]
            return amount(
                level["price"] if isinstance(level, Mapping) else level[0], side, positive=True
            )

        try:
            bid, ask = top("bids"), top("asks")
        except (KeyError, IndexError, TypeError, ArithmeticError):
            raise ExchangeError(
                f"Synthetix has no book for {pair}", exchange=EXCHANGE, endpoint="getOrderbook"
            ) from None
        return Ticker(pair=pair, bid=bid, ask=ask, last=(bid + ask) / 2, time=time.time())

    async def pair_assets(self, pair: str) -> PairAssets:
        base, _, quote = pair.partition("-")
        return PairAssets(base=base, quote=quote or "USDT")


@contextlib.asynccontextmanager
async def open_venue(config: Config) -> AsyncIterator[SynthetixVenue]:
    """Synthetix, with the signer's private key from the environment, .env or the secrets
    file, and its nonce floor in ``[state].store``."""
    if sharing_of(config) is not None:
        raise ConfigError(
            "[state] backend = 'redis' shares Kraken keys so far; Synthetix keys run one"
            " process per key (backend = 'sqlite')"
        )
    exchange, settings = config.exchange, settings_of(config, SynthetixSettings)
    assert settings.sub_account_id is not None  # its model refuses a config without one
    store = SqliteStore(config.state.store)
    history = history_from(config)
    client = SynthetixClient(
        config.secret("ORDERLY_SYNTHETIX_PRIVATE_KEY"),
        settings.sub_account_id,
        exchange.base_url or DEFAULT_BASE_URL,
        store=store,
        history=history,
        nonce_unit=config.nonce.unit,
        expires_after_s=settings.expires_after_s,
        expires_unit=settings.expires_unit,
        read_nonce=settings.read_nonce,
        bucket=(settings.rate_tokens, settings.rate_window_s),
        timeout=exchange.timeout_s,
        nonce_retries=config.nonce.retries,
        breaker_threshold=config.nonce.breaker_threshold,
        breaker_cooldown=config.nonce.breaker_cooldown_s,
    )
    client.close_grace = config.runner.drain_timeout_s
    log.info(  # the details no live account confirmed here: what this run assumes
        "synthetix_settings",
        expires_unit=settings.expires_unit,
        read_nonce=settings.read_nonce,
        rate_tokens=settings.rate_tokens,
        rate_window_s=settings.rate_window_s,
        detail="see the README's exchange table; each is a setting in [exchange]",
    )
    try:
        async with client:
            yield SynthetixVenue(client, settings.expires_after_s)
    finally:
        history.close()
        store.close()
