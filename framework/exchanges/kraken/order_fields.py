"""Orderly's orders in Kraken's AddOrder fields, and Kraken's order views as VenueOrders:
the pure mapping the Kraken venue uses."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from framework.exchanges.base import amount, plain
from framework.orders import LimitOrder, Order
from framework.venue import VenueOrder

#: (price decimals, volume decimals) of a pair, from AssetPairs; None: not known.
Precision = tuple[int | None, int | None]


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
    else:
        params["ordertype"] = "market"
    return params


def venue_order(txid: str, raw: dict[str, Any]) -> VenueOrder:
    return VenueOrder(
        txid=txid,
        cl_ord_id=raw.get("cl_ord_id"),
        status=str(raw.get("status", "")),
        filled=amount(raw.get("vol_exec", "0"), "vol_exec"),
        reason=raw.get("reason"),
    )
