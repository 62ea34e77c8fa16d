"""The sandbox's order book keeper: records orders in Kraken's shapes. No matching yet.

Validation follows protocols.md's checklist for AddOrder and AddOrderBatch: required fields,
``price`` for limit orders, ``userref`` xor ``cl_ord_id``, the ``cl_ord_id`` format, unique
``cl_ord_id`` among open orders, ``validate=true`` returning ``descr`` without ``txid``, and
batches of 2-15 orders on one pair validated as a whole.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from framework.exchanges.kraken.errors import DUPLICATE_CL_ORD_ID
from framework.sandbox.auth import KrakenFailure

PAIRS = {"XBTUSD": ("XXBTZUSD", "60000.0"), "ETHUSD": ("XETHZUSD", "3000.00")}
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)
_ORDER_TYPES = {
    "market",
    "limit",
    "iceberg",
    "stop-loss",
    "take-profit",
    "stop-loss-limit",
    "take-profit-limit",
    "trailing-stop",
    "trailing-stop-limit",
    "settle-position",
}


@dataclass(frozen=True, slots=True)
class OrderRules:
    """Order behaviour Kraken does not pin down; each default is our documented choice."""

    #: Kraken enforces unique ``cl_ord_id`` among open orders but does not document the error.
    duplicate_cl_ord_id_error: str = DUPLICATE_CL_ORD_ID
    #: Cancelling an unknown or closed order: Kraken's SDK reports ``EOrder:Invalid order``
    #: for both; the error table lists ``EOrder:Unknown order``.
    unknown_order_error: str = "EOrder:Unknown order"


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def valid_cl_ord_id(value: str) -> bool:
    """A UUID (with or without dashes) or at most 18 printable ASCII characters."""
    return bool(_UUID.match(value)) or (
        0 < len(value) <= 18 and value.isascii() and value.isprintable()
    )


class OrderKeeper:
    """Orders of every key, by txid."""

    def __init__(self, rules: OrderRules | None = None) -> None:
        self.rules = rules or OrderRules()
        self.orders: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def _txid(self) -> str:
        n = next(self._ids)
        return f"O{n:06d}-SBX{n % 97:02d}-{n * 7919 % 1_000_000:06d}"

    def _validate(self, order: dict[str, Any], pair: str) -> None:
        for name in ("type", "ordertype", "volume"):
            if name not in order:
                raise KrakenFailure(f"EGeneral:Invalid arguments:{name}")
        if pair not in PAIRS:
            raise KrakenFailure("EQuery:Unknown asset pair")
        if order["type"] not in ("buy", "sell") or order["ordertype"] not in _ORDER_TYPES:
            raise KrakenFailure("EGeneral:Invalid arguments:type")
        try:
            if Decimal(str(order["volume"])) <= 0:
                raise KrakenFailure("EGeneral:Invalid arguments:volume")
            if order["ordertype"] == "limit":
                if "price" not in order:
                    raise KrakenFailure("EGeneral:Invalid arguments:price")
                if Decimal(str(order["price"])) <= 0:
                    raise KrakenFailure("EOrder:Invalid price")
        except InvalidOperation:
            raise KrakenFailure("EGeneral:Invalid arguments:volume") from None
        cl_ord_id = order.get("cl_ord_id")
        if cl_ord_id is not None and order.get("userref") is not None:
            raise KrakenFailure("EGeneral:Invalid arguments:cl_ord_id and userref")
        if cl_ord_id is not None and not valid_cl_ord_id(str(cl_ord_id)):
            raise KrakenFailure("EGeneral:Invalid arguments:cl_ord_id")

    def _duplicate(self, key: str, cl_ord_id: Any) -> bool:
        return cl_ord_id is not None and any(
            o["key"] == key and o["status"] == "open" and o.get("cl_ord_id") == cl_ord_id
            for o in self.orders.values()
        )

    def _place(self, key: str, order: dict[str, Any], pair: str) -> tuple[str, str]:
        txid = self._txid()
        descr = f"{order['type']} {order['volume']} {pair} @ {order['ordertype']}" + (
            f" {order['price']}" if "price" in order else ""
        )
        self.orders[txid] = {
            "key": key,
            "status": "open",
            "opentm": time.time(),
            "descr": {
                "pair": pair,
                "type": order["type"],
                "ordertype": order["ordertype"],
                "price": str(order.get("price", "0")),
                "order": descr,
            },
            "vol": str(order["volume"]),
            "vol_exec": "0",
            "cl_ord_id": order.get("cl_ord_id"),
            "userref": order.get("userref"),
        }
        return txid, descr

    def add_order(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        pair = str(body.get("pair", ""))
        if not pair:
            raise KrakenFailure("EGeneral:Invalid arguments:pair")
        self._validate(body, pair)
        if self._duplicate(key, body.get("cl_ord_id")):
            raise KrakenFailure(self.rules.duplicate_cl_ord_id_error)
        if _truthy(body.get("validate")):
            return {"descr": {"order": f"{body['type']} {body['volume']} {pair}"}}
        txid, descr = self._place(key, body, pair)
        return {"descr": {"order": descr}, "txid": [txid]}

    def add_order_batch(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        pair, orders = str(body.get("pair", "")), body.get("orders")
        if not pair or not isinstance(orders, list) or not 2 <= len(orders) <= 15:
            raise KrakenFailure("EGeneral:Invalid arguments:orders")
        for order in orders:
            if not isinstance(order, dict):
                raise KrakenFailure("EGeneral:Invalid arguments:orders")
            self._validate(order, pair)
        if _truthy(body.get("validate")):
            return {
                "orders": [
                    {"descr": {"order": f"{o['type']} {o['volume']} {pair}"}} for o in orders
                ]
            }
        results: list[dict[str, Any]] = []
        for order in orders:
            if self._duplicate(key, order.get("cl_ord_id")):
                results.append({"error": self.rules.duplicate_cl_ord_id_error})
                continue
            txid, descr = self._place(key, order, pair)
            results.append({"txid": txid, "descr": {"order": descr}})
        return {"orders": results}

    def _matching(self, key: str, body: Mapping[str, Any], status: str | None) -> list[str]:
        txid, cl_ord_id, userref = body.get("txid"), body.get("cl_ord_id"), body.get("userref")
        found = []
        for oid, order in self.orders.items():
            if order["key"] != key or (status and order["status"] != status):
                continue
            if txid is not None and str(txid) not in (oid, str(order.get("userref"))):
                continue
            if cl_ord_id is not None and order.get("cl_ord_id") != cl_ord_id:
                continue
            if userref is not None and str(order.get("userref")) != str(userref):
                continue
            found.append(oid)
        return found

    def cancel_order(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("txid") is None and body.get("cl_ord_id") is None:
            raise KrakenFailure("EGeneral:Invalid arguments:txid")
        hits = self._matching(key, body, "open")
        if not hits:
            raise KrakenFailure(self.rules.unknown_order_error)
        for oid in hits:
            self.orders[oid].update(status="canceled", closetm=time.time())
        return {"count": len(hits), "pending": False}

    def cancel_all(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        hits = self._matching(key, {}, "open")
        for oid in hits:
            self.orders[oid].update(status="canceled", closetm=time.time())
        return {"count": len(hits)}

    @staticmethod
    def _public(order: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in order.items() if k != "key" and v is not None}

    def query_orders(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        txids = [t for t in str(body.get("txid", "")).split(",") if t]
        if not 1 <= len(txids) <= 50:
            raise KrakenFailure("EGeneral:Invalid arguments:txid")
        return {
            t: self._public(self.orders[t])
            for t in txids
            if t in self.orders and self.orders[t]["key"] == key
        }

    def open_orders(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        query: dict[str, Any] = {k: body[k] for k in ("cl_ord_id", "userref") if k in body}
        return {
            "open": {t: self._public(self.orders[t]) for t in self._matching(key, query, "open")}
        }

    def closed_orders(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        query: dict[str, Any] = {k: body[k] for k in ("cl_ord_id", "userref") if k in body}
        closed = [t for t in self._matching(key, query, None) if self.orders[t]["status"] != "open"]
        return {
            "closed": {t: self._public(self.orders[t]) for t in closed[:50]},
            "count": len(closed),
        }

    def balance(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"ZUSD": "100000.0000", "XXBT": "2.0000000000", "XETH": "20.0000000000"}
