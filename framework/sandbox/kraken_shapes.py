"""The engine's orders and fills as Kraken's REST API shows them (framework/sandbox/engine.py
keeps them in Orderly's types): an order's status word, its ``descr.order`` text, its
QueryOrders/OpenOrders/ClosedOrders entry, and a fill's TradesHistory/QueryTrades entry."""

from __future__ import annotations

from typing import Any

from framework.events import Fill, OrderState
from framework.sandbox.engine import SimOrder
from framework.sandbox.market import PAIRS

_STATUS = {
    OrderState.ACCEPTED: "open",
    OrderState.PARTIALLY_FILLED: "open",
    OrderState.FILLED: "closed",
    OrderState.CANCELLED: "canceled",
}


def status(order: SimOrder) -> str:
    """Kraken's word for the order's state: open, closed or canceled."""
    return _STATUS[order.state]


def description(order: SimOrder) -> str:
    price = f" {order.price}" if order.price is not None else ""
    return f"{order.side} {order.volume} {order.pair} @ {order.ordertype}{price}"


def order_entry(order: SimOrder, with_trades: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "refid": None,
        "userref": order.userref,
        "status": status(order),
        "opentm": order.opentm,
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": order.pair,
            "type": order.side,
            "ordertype": order.ordertype,
            "price": str(order.price or 0),
            "price2": "0",
            "leverage": "none",
            "order": description(order),
            "close": "",
        },
        "vol": str(order.volume),
        "vol_exec": str(order.filled),
        "cost": str(order.cost),
        "fee": str(order.fee),
        "price": str(order.cost / order.filled) if order.filled else "0",
        "stopprice": "0",
        "limitprice": "0",
        "misc": "",
        "oflags": order.oflags,
    }
    if order.cl_ord_id is not None:
        out["cl_ord_id"] = order.cl_ord_id
    if order.closetm is not None:
        out["closetm"] = order.closetm
    if order.reason is not None:
        out["reason"] = order.reason
    if with_trades and order.trades:
        out["trades"] = list(order.trades)
    return out


def trade_number(fill: Fill) -> int:
    """Kraken's integer ``trade_id`` of a fill (the engine keeps it as the fill's
    ``alt_id``), as TradesHistory, the public Trades and the WebSocket feeds show it."""
    return int(fill.alt_id or 0)


def trade_entry(fill: Fill, order: SimOrder) -> dict[str, Any]:
    """``fill`` (of ``order``) as a TradesHistory entry."""
    n = trade_number(fill)
    return {
        "ordertxid": fill.txid,
        "postxid": f"P{n:05d}-SANDBOX",
        "pair": PAIRS[fill.pair].name,
        "time": fill.time,
        "type": fill.side,
        "ordertype": order.ordertype,
        "price": str(fill.price),
        "cost": str(fill.volume * fill.price),
        "fee": str(fill.fee),
        "vol": str(fill.volume),
        "margin": "0.00000",
        "misc": "",
        "maker": fill.maker,
        "trade_id": n,
    }
