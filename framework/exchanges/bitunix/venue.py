"""Bitunix futures as a :class:`~framework.venue.Venue`: BitunixClient calls in Orderly's types.

Pairs are Bitunix symbols (``BTCUSDT``); volumes are in the base coin. Choices where Bitunix
is silent or differs from Kraken:

- **Order deadline = the timestamp window.** Bitunix refuses a request whose ``timestamp``
  is more than ``window_s`` (60 s) from its clock, so an order whose answer was lost cannot
  reach the book later than that: reconciliation waits out the window, then looks again,
  and only then resends (same ``clientId``).
- **No dead-man switch.** Bitunix documents no cancel-all-after; ``arm_dead_man`` does
  nothing (logged once), so a killed bot leaves its orders resting.
- **Balances** are the futures account of ``[exchange] margin_coin``: ``{coin: available}``.
- **Position mode is checked at start.** In hedge mode Bitunix needs ``tradeSide``
  (OPEN/CLOSE) on every order, and a sell without it would open a short. The venue reads
  the account's ``positionMode`` when it opens and refuses, in one line, an account whose
  mode differs from ``[exchange] position_mode`` (default ``one_way``). With ``hedge`` every
  order goes out with ``tradeSide = OPEN``: a buy opens or adds to a long, a sell to a
  short (closing a position by ``positionId`` is not offered). An account answer without
  ``positionMode`` is trusted to be as configured, with a warning.
- **Every LIMIT order carries ``effect``** (``POST_ONLY`` when post-only, else the client's
  default ``GTC``): the docs call it required.
- **Order lookups by client id**: ``get_order_detail?clientId=``; 20007 means absent.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any, Literal

from framework.config import Config
from framework.errors import ConfigError, ExchangeError, InvalidArguments, OrderlyError
from framework.events import Fill, Ticker
from framework.exchanges.base import (
    ClientVenue,
    NoDeadMan,
    amount,
    history_from,
    plain,
    sharing_of,
    venue_fill,
)
from framework.exchanges.bitunix.client import DEFAULT_BASE_URL, BitunixClient, with_effect
from framework.exchanges.bitunix.errors import (
    CLIENT_ID_DUPLICATE,
    EXCHANGE,
    ORDER_NOT_FOUND,
    translate,
)
from framework.exchanges.bitunix.spec import BitunixSettings
from framework.log import get_logger
from framework.market import Market, decimals_step, step_of
from framework.orders import LimitOrder, Order
from framework.registry import settings_of
from framework.venue import PairAssets, VenueOrder

log = get_logger("framework.exchanges.bitunix")

#: Bitunix order status -> the Venue's status words.
STATUS = {
    "INIT": "open",
    "NEW": "open",
    "PART_FILLED": "open",
    "FILLED": "closed",
    "CANCELED": "canceled",
    "EXPIRED": "canceled",  # final: its time ran out
}
PAGE = 100


def order_fields(order: Order, client_id: str, *, hedge: bool = False) -> dict[str, Any]:
    """One order in Bitunix's place_order / batch_order fields (without ``symbol``)."""
    fields: dict[str, Any] = {
        "side": order.side.upper(),
        "qty": plain(order.volume),
        "clientId": client_id,
    }
    if isinstance(order, LimitOrder):
        fields.update(orderType="LIMIT", price=plain(order.price))
        if order.post_only:
            fields["effect"] = "POST_ONLY"  # else GTC: the client's default
        elif order.time_in_force != "gtc":
            fields["effect"] = order.time_in_force.upper()  # IOC or FOK
    else:
        fields["orderType"] = "MARKET"
    if hedge:
        if order.reduce_only:  # a close in hedge mode names its positionId: not offered
            raise InvalidArguments(
                "a reduce-only order needs Bitunix's one-way position mode (position_mode)",
                exchange="bitunix",
            )
        fields["tradeSide"] = "OPEN"
    elif order.reduce_only:
        fields["reduceOnly"] = True
    return fields


def _venue_order(raw: dict[str, Any]) -> VenueOrder:
    status = str(raw.get("status", ""))
    return VenueOrder(
        txid=str(raw.get("orderId", "")),
        cl_ord_id=raw.get("clientId"),
        status=STATUS.get(status, "canceled" if "CANCEL" in status else status.lower()),
        filled=amount(raw.get("tradeQty") or "0", "tradeQty"),
    )


class BitunixVenue(ClientVenue[BitunixClient], NoDeadMan):
    """A Venue over one BitunixClient (one key, one unordered lane)."""

    persistent = True

    def __init__(
        self,
        client: BitunixClient,
        margin_coin: str = "USDT",
        position_mode: Literal["one_way", "hedge"] = "one_way",
    ) -> None:
        self.name = EXCHANGE
        self.client = client
        self.key_id = client.key_id
        self.max_batch = client.max_batch
        self.margin_coin = margin_coin
        self.position_mode = position_mode
        self._pairs: dict[str, tuple[PairAssets, Market]] = {}  # from trading_pairs

    def _fields(self, order: Order, client_id: str) -> dict[str, Any]:
        return with_effect(order_fields(order, client_id, hedge=self.position_mode == "hedge"))

    async def check_position_mode(self) -> None:
        """Refuse an account whose position mode is not the configured one (ConfigError)."""
        data: Any = await self.client.account(self.margin_coin)
        account = (data[0] if data else {}) if isinstance(data, list) else data
        found = account.get("positionMode") if isinstance(account, dict) else None
        if found is None:
            log.warning(
                "bitunix_position_mode_unknown",
                assumed=self.position_mode,
                detail="the account answer has no positionMode; trading as configured",
            )
            return
        mode = "hedge" if str(found).upper() == "HEDGE" else "one_way"
        if mode != self.position_mode:
            raise ConfigError(
                f"this Bitunix account is in {mode.replace('_', '-')} position mode but"
                f" [exchange] position_mode is {self.position_mode!r}: switch the account's"
                f" mode on Bitunix, or set position_mode = {mode!r}"
                + (" (every order then opens: tradeSide OPEN)" if mode == "hedge" else ""),
                exchange=EXCHANGE,
            )

    @property
    def order_deadline_s(self) -> float | None:
        return self.client.window_s

    async def place(self, order: Order, cl_ord_id: str) -> str:
        result = await self.client.private(
            "POST",
            "/api/v1/futures/trade/place_order",
            {"symbol": order.pair, **self._fields(order, cl_ord_id)},
        )
        if not isinstance(result, dict) or not result.get("orderId"):
            raise ExchangeError(
                "place_order answered without an orderId", exchange=EXCHANGE, endpoint="place_order"
            )
        return str(result["orderId"])

    async def place_batch(self, orders: Sequence[tuple[Order, str]]) -> list[str | OrderlyError]:
        pair = orders[0][0].pair
        results = await self.client.batch_order(pair, [self._fields(o, cid) for o, cid in orders])
        return [r if isinstance(r, OrderlyError) else str(r["orderId"]) for r in results]

    async def find(self, cl_ord_id: str) -> VenueOrder | None:
        try:
            raw = await self.client.get_order_detail(client_id=cl_ord_id)
        except OrderlyError as exc:
            if exc.code == str(ORDER_NOT_FOUND):
                return None
            raise
        return _venue_order(raw) if raw else None

    def is_duplicate(self, exc: OrderlyError) -> bool:
        return exc.code == str(CLIENT_ID_DUPLICATE)

    async def cancel(self, cl_ord_id: str, *, pair: str, txid: str | None) -> None:
        result = await self.client.cancel_orders(pair, client_ids=[cl_ord_id])
        for failure in (result or {}).get("failureList") or []:
            raise translate(
                int(failure.get("errorCode", 0) or 0),
                str(failure.get("errorMsg", "")),
                endpoint="cancel_orders",
                key_id=self.key_id,
            )

    async def clock_offset(self) -> float:
        """From the ``Date`` header of a public answer (whole seconds); the client applies
        offsets of a second or more to every timestamp it signs."""
        await self.client.public("tickers")
        return self.client.clock_offset_ms / 1000

    async def cancel_all(self) -> int:
        pending = await self.client.get_pending_orders()
        await self.client.cancel_all_orders()
        return len(pending)

    async def balances(self) -> dict[str, Decimal]:
        data: Any = await self.client.account(self.margin_coin)
        accounts = data if isinstance(data, list) else [data]
        return {
            str(a.get("marginCoin", self.margin_coin)): amount(a.get("available", "0"), "available")
            for a in accounts
            if isinstance(a, dict)
        }

    async def open_orders(self) -> list[VenueOrder]:
        return [_venue_order(raw) for raw in await self.client.get_pending_orders()]

    async def query_orders(self, txids: Sequence[str]) -> list[VenueOrder]:
        found = []
        for txid in txids:
            try:
                found.append(_venue_order(await self.client.get_order_detail(order_id=txid)))
            except OrderlyError as exc:
                if exc.code != str(ORDER_NOT_FOUND):
                    raise
        return found

    async def fills_since(self, since: float) -> list[tuple[str, Fill]]:
        fills: list[tuple[str, Fill]] = []
        skip = 0
        while True:  # newest first, a page of 100; bounded by the total Bitunix reports
            page = await self.client.get_history_trades(
                start_ms=int(since * 1000), skip=skip, limit=PAGE
            )
            trades = page.get("tradeList") or []
            for t in trades:
                fills.append(
                    venue_fill(
                        order_id=t["orderId"],
                        trade_id=t["tradeId"],
                        pair=t["symbol"],
                        side=t["side"],
                        price=t["price"],
                        volume=t["qty"],
                        fee=t.get("fee"),
                        maker=t.get("roleType") == "MAKER",
                        at=int(t["ctime"]) / 1000,
                    )
                )
            skip += len(trades)
            if not trades or skip >= int(page.get("total", 0)) or skip >= 5_000:
                return fills

    async def ticker(self, pair: str) -> Ticker:
        book = await self.client.depth(pair)
        tickers = await self.client.tickers([pair])
        ticker = next((t for t in tickers if t.get("symbol") == pair), None)
        try:
            bid = amount(book["bids"][0][0], "bid", positive=True)
            ask = amount(book["asks"][0][0], "ask", positive=True)
            last = (bid + ask) / 2
            if ticker:
                last = amount(ticker["lastPrice"], "lastPrice", positive=True)
        except (KeyError, IndexError, TypeError, ArithmeticError):
            raise ExchangeError(
                f"Bitunix has no book for {pair}", exchange=EXCHANGE, endpoint="depth"
            ) from None
        return Ticker(pair=pair, bid=bid, ask=ask, last=last, time=time.time())

    async def _pair(self, pair: str) -> tuple[PairAssets, Market]:
        """The symbol's trading_pairs entry, asked until one can be read, then kept. The
        precisions are decimal places (as other Bitunix clients read them: the official page
        gives the names, not what they count)."""
        if pair not in self._pairs:
            found = [p for p in await self.client.trading_pairs([pair]) if p.get("symbol") == pair]
            if not found:
                raise ConfigError(f"Bitunix does not know the symbol {pair!r}", exchange=EXCHANGE)
            row = found[0]
            self._pairs[pair] = (
                PairAssets(base=str(row["base"]), quote=str(row["quote"])),
                Market(
                    pair,
                    decimals_step(row.get("quotePrecision")),
                    decimals_step(row.get("basePrecision")),
                    step_of(row.get("minTradeVolume")),
                ),
            )
        return self._pairs[pair]

    async def pair_assets(self, pair: str) -> PairAssets:
        return (await self._pair(pair))[0]

    async def market(self, pair: str) -> Market:
        return (await self._pair(pair))[1]


@contextlib.asynccontextmanager
async def open_venue(config: Config) -> AsyncIterator[BitunixVenue]:
    """Bitunix futures, with the key from the environment, .env or the secrets file."""
    sharing = sharing_of(config)  # random nonces need no sender; the rate limits are shared
    history = history_from(config)
    client = BitunixClient(
        config.secret("ORDERLY_BITUNIX_API_KEY"),
        config.secret("ORDERLY_BITUNIX_API_SECRET"),
        config.exchange.base_url or DEFAULT_BASE_URL,
        history=history,
        shared_limits=sharing.redis_url if sharing is not None else None,
        timeout=config.exchange.timeout_s,
    )
    client.close_grace = config.runner.drain_timeout_s
    settings = settings_of(config, BitunixSettings)
    log.info(
        "bitunix_settings",
        position_mode=settings.position_mode,
        detail="checked against the account at start; see the README's exchange table",
    )
    try:
        async with client:
            venue = BitunixVenue(client, settings.margin_coin, settings.position_mode)
            await venue.check_position_mode()
            yield venue
    finally:
        history.close()
