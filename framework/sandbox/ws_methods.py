"""The sandbox's Kraken WebSocket v2 order methods: each runs on the REST matching engine
and charges the key's rate counters as its REST twin does (Kraken shares the engine counter
between REST, WebSocket and FIX). A lookup table, one method per name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from framework.sandbox import ws_messages as msg
from framework.sandbox.auth import KrakenFailure
from framework.sandbox.matching import MatchingEngine
from framework.sandbox.ratelimit import RateLimits


class Refusal(Exception):
    """A request answered ``success: false`` with this error string."""


def _ids(params: dict[str, Any], name: str) -> list[Any]:
    """A list field of ids (``order_id``, ``cl_ord_id``, ``orders``...): absent is empty;
    anything but a list of strings or whole numbers is refused, naming the field."""
    value = params.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in value
    ):
        raise Refusal(f"EGeneral:Invalid arguments:{name}")
    return value


class OrderMethods:
    """``run(account, method, params)`` -> the answers to send (one per result; an
    exception in the list is an error answer of its own)."""

    def __init__(self, engine: MatchingEngine, limits: RateLimits | None) -> None:
        self.engine = engine
        self.limits = limits
        #: v2 method -> (the REST endpoint whose rate cost it carries, its handler)
        self.table: dict[str, tuple[str, Callable[[str, dict[str, Any]], list[Any]]]] = {
            "add_order": ("AddOrder", self._add_order),
            "batch_add": ("AddOrderBatch", self._batch_add),
            "cancel_order": ("CancelOrder", self._cancel_order),
            "amend_order": ("AmendOrder", self._amend_order),
            "batch_cancel": ("CancelOrderBatch", self._batch_cancel),
            "cancel_all": ("CancelAll", self._cancel_all),
            "cancel_all_orders_after": ("CancelAllOrdersAfter", self._cancel_after),
        }

    def run(self, account: str, method: str, params: dict[str, Any]) -> list[Any]:
        self.engine.sync()
        return self.table[method][1](account, params)

    def _charge(self, account: str, method: str, body: dict[str, Any]) -> None:
        if self.limits is not None:
            self.limits.charge(
                account,
                self.table[method][0],
                body,
                lambda ref: self.engine.order_age(account, ref),
                account=account,
            )

    def _add_order(self, account: str, params: dict[str, Any]) -> list[Any]:
        body = msg.order_body(params, params.get("symbol"))
        self._charge(account, "add_order", body)
        placed = self.engine.add_order(account, body)
        result: dict[str, Any] = {"order_id": placed["txid"][0]} if "txid" in placed else {}
        for name in ("cl_ord_id", "order_userref"):
            if name in params:
                result[name] = params[name]
        return [result]

    def _batch_add(self, account: str, params: dict[str, Any]) -> list[Any]:
        orders = params.get("orders")
        if not isinstance(orders, list):
            raise Refusal("Missing field: orders")
        pair = msg.SYMBOLS.get(str(params.get("symbol")), f"?{params.get('symbol')}")
        body = {
            "pair": pair,
            "orders": [msg.order_body(o, None) for o in orders if isinstance(o, dict)],
        }
        if "deadline" in params:
            body["deadline"] = params["deadline"]
        self._charge(account, "batch_add", body)
        placed = self.engine.add_order_batch(account, body)["orders"]
        return [[{"order_id": p["txid"]} if "txid" in p else {"error": p["error"]} for p in placed]]

    def _cancel_order(self, account: str, params: dict[str, Any]) -> list[Any]:
        refs = [("txid", i) for i in _ids(params, "order_id")]
        refs += [("cl_ord_id", i) for i in _ids(params, "cl_ord_id")]
        refs += [("txid", i) for i in _ids(params, "order_userref")]
        if not refs:
            raise Refusal("Missing field: order_id")
        answers: list[Any] = []
        for name, ref in refs:  # one answer per order, as Kraken sends them
            try:
                self._charge(account, "cancel_order", {name: ref})
                self.engine.cancel_order(account, {name: ref})
                answers.append({"order_id" if name == "txid" else name: ref})
            except KrakenFailure as failure:
                answers.append(Refusal(failure.error))
        return answers

    def _amend_order(self, account: str, params: dict[str, Any]) -> list[Any]:
        refs = (("txid", params.get("order_id")), ("cl_ord_id", params.get("cl_ord_id")))
        body: dict[str, Any] = {k: v for k, v in refs if v is not None}
        for name in ("order_qty", "limit_price", "deadline", "post_only"):
            if name in params:
                body[name] = str(params[name])
        self._charge(account, "amend_order", body)
        amended = self.engine.amend_order(account, body)
        echoed = {k: params[k] for k in ("order_id", "cl_ord_id") if k in params}
        return [{"amend_id": amended["amend_id"], **echoed}]

    def _batch_cancel(self, account: str, params: dict[str, Any]) -> list[Any]:
        ids = [*_ids(params, "orders"), *_ids(params, "cl_ord_id")]
        self._charge(account, "batch_cancel", {"orders": ids})
        return [{"count": self.engine.cancel_order_batch(account, {"orders": ids})["count"]}]

    def _cancel_all(self, account: str, params: dict[str, Any]) -> list[Any]:
        self._charge(account, "cancel_all", {})
        return [self.engine.cancel_all(account, {})]

    def _cancel_after(self, account: str, params: dict[str, Any]) -> list[Any]:
        self._charge(account, "cancel_all_orders_after", params)
        timeout = params.get("timeout")
        return [self.engine.cancel_all_orders_after(account, {"timeout": timeout})]
