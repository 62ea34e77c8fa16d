"""Kraken WebSocket v2 messages as the sandbox writes them, and order requests as it reads
them: pure functions, no connection. Shapes from docs.kraken.com (the v2 channel and method
pages) and protocols.md 1.8 / 1b.

v2 names pairs ``BTC/USD`` (not ``XBT/USD``) and assets ``BTC``/``USD``. Numbers are JSON
numbers; book prices and quantities keep their full wire precision (the checksum is computed
over their digits), so :func:`encode` writes them from decimal text, not from floats.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import zlib
from decimal import Decimal
from typing import Any

from framework.events import Fill, OrderState
from framework.sandbox.engine import SimOrder
from framework.sandbox.kraken_shapes import trade_number
from framework.sandbox.market import ASSETS, PAIRS, Market, PairInfo

#: v2 symbol -> the sandbox pair (altname).
SYMBOLS = {p.wsname.replace("XBT", "BTC"): p.altname for p in PAIRS.values()}
#: The sandbox pair -> its v2 symbol.
SYMBOL_OF = {altname: symbol for symbol, altname in SYMBOLS.items()}
#: Kraken asset name -> v2 asset name (XXBT -> BTC).
ASSET_OF = {name: str(a["altname"]).replace("XBT", "BTC") for name, a in ASSETS.items()}

_WIRE_NUMBER = re.compile(r'"(price|qty)": "(\d+(?:\.\d+)?)"')


def encode(message: dict[str, Any]) -> str:
    """JSON text; book levels' ``price``/``qty`` strings become numbers with their digits.
    A number a request carried (decoded exactly, as Decimal) is echoed as a JSON number,
    or as text when no float holds it."""
    return _WIRE_NUMBER.sub(r'"\1": \2', json.dumps(message, default=_echoed))


def _echoed(value: Any) -> Any:
    if isinstance(value, Decimal):
        number = float(value)
        if math.isfinite(number):
            return int(value) if value == value.to_integral_value() else number
    return str(value)


def rfc3339(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def levels(market: Market, pair: str, depth: int) -> tuple[list[list[str]], list[list[str]]]:
    """(bids, asks) as [price, qty] decimal text, best first."""
    side = market.depth(pair, depth)[PAIRS[pair].name]
    return [r[:2] for r in side["bids"]], [r[:2] for r in side["asks"]]


def book_checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """Kraken's book checksum, the sandbox's own copy of the rule (a client's bug cannot
    hide behind code the two share)."""

    def digits(text: str) -> str:
        return text.replace(".", "").lstrip("0")

    text = "".join(digits(p) + digits(q) for p, q in asks[:10]) + "".join(
        digits(p) + digits(q) for p, q in bids[:10]
    )
    return zlib.crc32(text.encode()) & 0xFFFFFFFF


def book_diff(old: list[list[str]], new: list[list[str]]) -> list[dict[str, str]]:
    """The levels that changed from ``old`` to ``new``: removed ones with qty 0."""
    before = {price: qty for price, qty in old}
    after = {price: qty for price, qty in new}
    gone = [{"price": p, "qty": "0"} for p in before if p not in after]
    changed = [{"price": p, "qty": q} for p, q in after.items() if before.get(p) != q]
    return gone + changed


def ticker(market: Market, pair: str) -> dict[str, Any]:
    rest = market.ticker(pair)
    last, opened = float(rest["c"][0]), float(rest["o"])
    return {
        "symbol": SYMBOL_OF[pair],
        "bid": float(rest["b"][0]),
        "bid_qty": 1.0,
        "ask": float(rest["a"][0]),
        "ask_qty": 1.0,
        "last": last,
        "volume": float(rest["v"][1]),
        "vwap": float(rest["p"][1]),
        "low": float(rest["l"][1]),
        "high": float(rest["h"][1]),
        "change": round(last - opened, 8),
        "change_pct": round((last - opened) / opened * 100, 2) if opened else 0.0,
    }


def candles(market: Market, pair: str, interval: int) -> list[dict[str, Any]]:
    """The recent candles (at most 720, oldest first): an ``ohlc`` snapshot."""
    return [
        _candle(market, pair, interval, row)
        for row in market.ohlc(pair, interval, None)[PAIRS[pair].name]
    ]


def candle(market: Market, pair: str, interval: int) -> dict[str, Any] | None:
    """The running candle: an ``ohlc`` update."""
    row = market.running(pair, interval)
    return _candle(market, pair, interval, row) if row is not None else None


def _candle(market: Market, pair: str, interval: int, row: list[Any]) -> dict[str, Any]:
    begin, o, h, low, c, vwap, volume, trades = row
    return {
        "symbol": SYMBOL_OF[pair],
        "open": float(o),
        "high": float(h),
        "low": float(low),
        "close": float(c),
        "vwap": float(vwap),
        "trades": trades,
        "volume": float(volume),
        "interval_begin": rfc3339(begin),
        "interval": interval,
        "timestamp": rfc3339(market.now()),
    }


def instrument() -> dict[str, Any]:
    def pair(info: PairInfo) -> dict[str, Any]:
        return {
            "symbol": SYMBOL_OF[info.altname],
            "base": ASSET_OF[info.base],
            "quote": ASSET_OF[info.quote],
            "status": "online",
            "qty_precision": info.lot_decimals,
            "qty_increment": float(Decimal(1).scaleb(-info.lot_decimals)),
            "price_precision": info.pair_decimals,
            "price_increment": float(info.tick),
            "cost_precision": 5,
            "qty_min": float(info.ordermin),
            "cost_min": float(info.costmin),
            "marginable": False,
            "has_index": False,
        }

    assets = [
        {
            "id": ASSET_OF[name],
            "status": "enabled",
            "precision": a["decimals"],
            "precision_display": a["display_decimals"],
            "borrowable": False,
            "collateral_value": 1.0,
            "margin_rate": 0.0,
        }
        for name, a in ASSETS.items()
    ]
    return {"assets": assets, "pairs": [pair(p) for p in PAIRS.values()]}


_STATUS = {
    OrderState.ACCEPTED: "new",
    OrderState.PARTIALLY_FILLED: "partially_filled",
    OrderState.FILLED: "filled",
    OrderState.CANCELLED: "canceled",
}
#: Engine event kinds spelled as Kraken's ``exec_type``.
_EXEC_TYPE = {"cancelled": "canceled"}


def execution(kind: str, order: SimOrder, fill: Fill | None, now: float) -> dict[str, Any]:
    """One entry of the ``executions`` channel: an order event, or a trade (``kind`` "trade",
    with ``exec_id`` the REST trade id, so fills from both are told apart by one id)."""
    kind = _EXEC_TYPE.get(kind, kind)
    entry: dict[str, Any] = {
        "exec_type": kind,
        "order_id": order.txid,
        "symbol": SYMBOL_OF[order.pair],
        "side": order.side,
        "order_type": order.ordertype,
        "order_qty": float(order.volume),
        "order_status": _STATUS[order.state],
        "time_in_force": order.timeinforce,
        "timestamp": rfc3339(now),
        "cum_qty": float(order.filled),
        "cum_cost": float(order.cost),
        "avg_price": float(order.cost / order.filled) if order.filled else 0.0,
        "fee_usd_equiv": float(order.fee),
    }
    if order.price is not None:
        entry["limit_price"] = float(order.price)
    if order.cl_ord_id is not None:
        entry["cl_ord_id"] = order.cl_ord_id
    if order.userref is not None:
        entry["order_userref"] = order.userref
    if "post" in order.oflags.split(","):
        entry["post_only"] = True
    if kind == "canceled" and order.reason:
        entry["reason"] = order.reason
    if fill is not None:
        quote = ASSET_OF[PAIRS[order.pair].quote]
        entry.update(
            exec_id=fill.trade_id,
            trade_id=trade_number(fill),
            last_qty=float(fill.volume),
            last_price=float(fill.price),
            cost=float(fill.volume * fill.price),
            liquidity_ind="m" if fill.maker else "t",
            fees=[{"asset": quote, "qty": float(fill.fee)}],
            timestamp=rfc3339(fill.time),
        )
    return entry


def balances(held: dict[str, Decimal]) -> list[dict[str, Any]]:
    return [
        {
            "asset": ASSET_OF.get(name, name),
            "asset_class": "currency",
            "balance": float(amount),
            "wallets": [{"type": "spot", "id": "main", "balance": float(amount)}],
        }
        for name, amount in sorted(held.items())
    ]


# --- order requests: v2 params -> the REST body the engine takes ------------------------


def _text(value: Any) -> str:
    return f"{value:f}" if isinstance(value, Decimal) else str(value)


def order_body(params: dict[str, Any], symbol: Any) -> dict[str, Any]:
    """One v2 order (add_order params, or one of batch_add's orders) as AddOrder's body."""
    body: dict[str, Any] = {}
    for name, rest_name in (("side", "type"), ("order_type", "ordertype"), ("order_qty", "volume")):
        if params.get(name) is not None:
            body[rest_name] = _text(params[name])
    if "limit_price" in params:
        body["price"] = _text(params["limit_price"])
    if "cl_ord_id" in params:
        body["cl_ord_id"] = params["cl_ord_id"]
    if "order_userref" in params:
        body["userref"] = params["order_userref"]
    if params.get("post_only") is True:
        body["oflags"] = "post"
    if "time_in_force" in params:
        body["timeinforce"] = str(params["time_in_force"]).upper()
    if "reduce_only" in params:
        body["reduce_only"] = params["reduce_only"]
    if "deadline" in params:
        body["deadline"] = params["deadline"]
    if symbol is not None:
        body["pair"] = SYMBOLS.get(str(symbol), f"?{symbol}")
    return body
