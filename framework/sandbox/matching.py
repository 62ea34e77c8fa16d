"""The sandbox's Kraken order endpoints (AddOrder, AddOrderBatch, CancelOrder,
CancelOrderBatch, CancelAll, CancelAllOrdersAfter) over the matching engine
(framework/sandbox/engine.py, Orderly's types); with the reads (reads.py) and changes
(changes.py) this is Kraken's API as the sandbox's front.

Each order is checked first (framework/sandbox/order_checks.py); here: ``validate=true``
answering ``descr`` without ``txid``, batches of 2-15 orders on one pair validated as a whole.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from framework.sandbox.auth import KrakenFailure
from framework.sandbox.changes import KrakenChanges
from framework.sandbox.engine import SimOrder as SimOrder
from framework.sandbox.kraken_rules import OrderRules as OrderRules
from framework.sandbox.kraken_shapes import description
from framework.sandbox.market import ALIASES, Market
from framework.sandbox.order_checks import check_deadline, parse_order, place
from framework.sandbox.reads import truthy


class MatchingEngine(KrakenChanges):
    """The engine with Kraken's API: orders, trades and balances of every key of one
    sandbox."""

    def __init__(self, market: Market, rules: OrderRules | None = None) -> None:
        super().__init__(market, rules or OrderRules())
        self.rules: OrderRules = rules or OrderRules()
        self.ws_tokens: dict[str, tuple[str, float]] = {}  # token -> (API key, expiry)

    def order_age(self, key: str, ref: str) -> tuple[str, float] | None:
        """(pair, seconds resting) of one of ``key``'s orders by txid or client order id,
        counted from its placement or its last amend (as Kraken's rate costs are)."""
        order = self.orders.get(ref)
        if order is None or order.key != key:
            latest = self.by_client_id(key, ref)
            order = latest[-1] if latest else None
        if order is None:
            return None
        return order.pair, self.market.now() - (order.amendtm or order.opentm)

    def add_order(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sync()
        check_deadline(body, self.market.now())
        pair = ALIASES.get(str(body.get("pair", "")), str(body.get("pair", "")))
        if not pair:
            raise KrakenFailure("EGeneral:Invalid arguments:pair")
        if truthy(body.get("validate")):
            parse_order(body, pair)
            return {"descr": {"order": f"{body['type']} {body['volume']} {pair}"}}
        sim = place(self, key, body, pair)
        return {"descr": {"order": description(sim)}, "txid": [sim.txid]}

    def add_order_batch(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sync()
        check_deadline(body, self.market.now())
        pair = ALIASES.get(str(body.get("pair", "")), str(body.get("pair", "")))
        orders = body.get("orders")
        if not pair or not isinstance(orders, list) or not 2 <= len(orders) <= 15:
            raise KrakenFailure("EGeneral:Invalid arguments:orders")
        for order in orders:  # the whole batch is validated first
            if not isinstance(order, dict):
                raise KrakenFailure("EGeneral:Invalid arguments:orders")
            parse_order(order, pair)
        if truthy(body.get("validate")):
            return {
                "orders": [
                    {"descr": {"order": f"{o['type']} {o['volume']} {pair}"}} for o in orders
                ]
            }
        results: list[dict[str, Any]] = []
        for order in orders:  # then each order alone: one may fail, the rest proceed
            try:
                sim = place(self, key, order, pair)
            except KrakenFailure as failure:
                results.append({"error": failure.error})
            else:
                results.append({"txid": sim.txid, "descr": {"order": description(sim)}})
        return {"orders": results}

    # --- cancelling -----------------------------------------------------------------------

    def cancel_order(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sync()
        if body.get("txid") is None and body.get("cl_ord_id") is None:
            raise KrakenFailure("EGeneral:Invalid arguments:txid")
        hits = self._select(key, body, open_only=True)
        if not hits:
            raise KrakenFailure(self.rules.unknown_order_error)
        return {"count": self.cancel(hits), "pending": False}

    def cancel_order_batch(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Cancel up to 50 open orders by txid or client order id: ``orders`` is a list of
        ``{"txid": ...}`` / ``{"cl_ord_id": ...}`` objects or of plain ids."""
        self.sync()
        refs = body.get("orders")
        if not isinstance(refs, list) or not 1 <= len(refs) <= 50:
            raise KrakenFailure("EGeneral:Invalid arguments:orders")
        hits: dict[str, SimOrder] = {}
        for ref in refs:
            wanted = ref if isinstance(ref, dict) else {"txid": str(ref)}
            for order in self._select(key, wanted, open_only=True):
                hits[order.txid] = order
            if isinstance(ref, str):  # a plain id may be a client order id too
                for order in self._select(key, {"cl_ord_id": ref}, open_only=True):
                    hits[order.txid] = order
        return {"count": self.cancel(list(hits.values()))}

    def cancel_all_orders_after(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Kraken's dead-man switch: cancel all after ``timeout`` s unless called again."""
        self.sync()
        try:
            timeout = int(str(body.get("timeout")))
        except ValueError:
            raise KrakenFailure("EGeneral:Invalid arguments:timeout") from None
        if not 0 <= timeout < 86400:
            raise KrakenFailure("EGeneral:Invalid arguments:timeout")
        trigger = self.dead_man(key, timeout)

        def rfc3339(at: float) -> str:
            return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        now = self.market.now()
        return {"currentTime": rfc3339(now), "triggerTime": rfc3339(trigger) if trigger else "0"}

    def cancel_all(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sync()
        return {"count": self.cancel(self._select(key, {}, open_only=True))}
