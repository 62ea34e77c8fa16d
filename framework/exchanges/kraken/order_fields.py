"""Orderly's orders in Kraken's AddOrder and AmendOrder fields, and Kraken's order and trade
views as VenueOrders and Fills: the pure mapping the Kraken venue uses."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

from framework.events import Fill
from framework.exchanges.base import amount, plain, venue_fill
from framework.market import Market, decimals_step, step_of
from framework.orders import LimitOrder, Order
from framework.venue import Amend, PairAssets, VenueOrder

#: (price decimals, volume decimals) of a pair, from AssetPairs; None: not known.
Precision = tuple[int | None, int | None]


class PairInfo(NamedTuple):
    """What the venue reads of a pair's AssetPairs entry."""

    precision: tuple[int, int]  # price, volume decimals
    assets: PairAssets
    wsname: str  # v1 WebSocket name (XBT/USD); "" if Kraken gave none
    market: Market  # tick_size (or pair_decimals), lot_decimals, ordermin


def pair_info(pair: str, info: dict[str, Any]) -> PairInfo:
    """A pair's AssetPairs entry (KeyError or ValueError when its decimals or assets are
    missing; an unreadable step or minimum only makes that rule unknown)."""
    return PairInfo(
        (int(info["pair_decimals"]), int(info["lot_decimals"])),
        PairAssets(base=str(info["base"]), quote=str(info["quote"])),
        str(info.get("wsname", "")),
        Market(
            pair,
            step_of(info.get("tick_size")) or decimals_step(info.get("pair_decimals")),
            decimals_step(info.get("lot_decimals")),
            step_of(info.get("ordermin")),
        ),
    )


def fixed(value: Decimal, decimals: int | None) -> str:
    """``value`` as plain decimals with exactly the pair's ``decimals`` when it fits them;
    as given otherwise (never rounded away: Kraken then says what it thinks of it, and a
    wrong precision read from one odd AssetPairs answer can never block an order)."""
    if decimals is None or not 0 <= decimals <= 18:
        return plain(value)
    step = Decimal(1).scaleb(-decimals)
    return plain(value.quantize(step)) if value == value.quantize(step) else plain(value)


def order_params(
    order: Order, cl_ord_id: str, precision: Precision = (None, None)
) -> dict[str, Any]:
    """One order in Kraken's AddOrder / AddOrderBatch fields, amounts in the pair's
    precision when it is known."""
    price_decimals, volume_decimals = precision
    params: dict[str, Any] = {
        "type": order.side,
        "volume": fixed(order.volume, volume_decimals),
        "cl_ord_id": cl_ord_id,
    }
    if isinstance(order, LimitOrder):
        params.update(ordertype="limit", price=fixed(order.price, price_decimals))
        if order.post_only:
            params["oflags"] = "post"
        if order.time_in_force != "gtc":  # IOC, or FOK (Kraken added it in May 2026)
            params["timeinforce"] = order.time_in_force.upper()
    else:
        params["ordertype"] = "market"
    if order.reduce_only:  # margin positions only: on spot Kraken finds none to reduce
        params["reduce_only"] = True
    return params


def amend_params(cl_ord_id: str, change: Amend, precision: Precision) -> dict[str, Any]:
    """Kraken's AmendOrder fields: the order by client id, its new ``limit_price`` and/or
    ``order_qty`` (the whole volume), in the pair's precision when it is known."""
    params: dict[str, Any] = {"cl_ord_id": cl_ord_id}
    if change.price is not None:
        params["limit_price"] = fixed(change.price, precision[0])
        if change.post_only:  # per amend at Kraken: a post-only order's new price too
            params["post_only"] = True
    if change.volume is not None:
        params["order_qty"] = fixed(change.volume, precision[1])
    return params


def venue_order(txid: str, raw: dict[str, Any]) -> VenueOrder:
    descr = raw.get("descr")
    price = descr.get("price") if isinstance(descr, dict) else None
    return VenueOrder(
        txid=txid,
        cl_ord_id=raw.get("cl_ord_id"),
        status=str(raw.get("status", "")),
        filled=amount(raw.get("vol_exec", "0"), "vol_exec"),
        reason=raw.get("reason"),
        price=_said(price),
        volume=_said(raw.get("vol")),
    )


def venue_trade(trade_id: str, t: dict[str, Any]) -> tuple[str, Fill]:
    """One TradesHistory entry as ``(order txid, Fill)``."""
    return venue_fill(
        order_id=t["ordertxid"],
        trade_id=trade_id,
        pair=t["pair"],
        side=t["type"],
        price=t["price"],
        volume=t["vol"],
        fee=t["fee"],
        maker=bool(t.get("maker", False)),
        at=float(t["time"]),
        alt_id=f"#{t['trade_id']}" if t.get("trade_id") is not None else None,
    )


def _said(value: Any) -> Decimal | None:
    """A positive amount an order view shows, or None (absent, 0 for a market order, or
    unreadable: these two are for information, never worth failing a lookup)."""
    try:
        return amount(value, positive=True)
    except (ValueError, ArithmeticError):
        return None
