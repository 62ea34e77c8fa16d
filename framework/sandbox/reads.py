"""The sandbox's read endpoints in Kraken's shapes: Balance, BalanceEx, TradeBalance,
QueryOrders (with a ``userref`` filter), OpenOrders, ClosedOrders, TradesHistory,
QueryTrades, Ledgers, QueryLedgers, GetWebSocketsToken, over the engine
(framework/sandbox/engine.py), whose state they read and never change; the shapes are
framework/sandbox/kraken_shapes.py."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from framework.sandbox.auth import KrakenFailure
from framework.sandbox.engine import Engine, SimOrder
from framework.sandbox.kraken_rules import OrderRules
from framework.sandbox.kraken_shapes import order_entry, trade_entry
from framework.sandbox.market import PAIRS

#: Kraken's page size for ClosedOrders and TradesHistory.
PAGE = 50
T = TypeVar("T")


def truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _number(body: Mapping[str, Any], name: str) -> float | None:
    """``body[name]`` as a finite number, None when absent; Kraken's invalid-arguments
    error naming the field when it is not one."""
    value = body.get(name)
    if value is None:
        return None
    try:
        number = float(str(value))
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise KrakenFailure(f"EGeneral:Invalid arguments:{name}")
    return number


def page_of(
    rows: list[T], body: Mapping[str, Any], time_of: Callable[[T], float]
) -> tuple[list[T], int]:
    """One page of a history given newest first (the rows after ``start`` and up to
    ``end``, Unix seconds, :data:`PAGE` of them from ``ofs``) and how many rows match."""
    start, end, ofs = (_number(body, name) for name in ("start", "end", "ofs"))
    if ofs is not None and (ofs < 0 or ofs != int(ofs)):
        raise KrakenFailure("EGeneral:Invalid arguments:ofs")
    kept = [
        row
        for row in rows
        if (start is None or time_of(row) > start) and (end is None or time_of(row) <= end)
    ]
    first = int(ofs or 0)
    return kept[first : first + PAGE], len(kept)


class KrakenReads(Engine):
    """Kraken's read endpoints over the engine; ``_select`` finds orders as Kraken's
    requests name them (txid or userref, cl_ord_id, userref)."""

    ws_tokens: dict[str, tuple[str, float]]  # token -> (API key, expiry)
    rules: OrderRules

    def _mid(self, asset: str) -> Decimal:
        """The asset's value in USD (ZUSD 1; a base asset at its pair's mid)."""
        if asset == "ZUSD":
            return Decimal(1)
        pair = next((p for p in PAIRS.values() if p.base == asset), None)
        if pair is None:
            return Decimal(0)
        bid, ask = self.market.quote(pair.altname)
        return (bid + ask) / 2

    def _select(self, key: str, body: Mapping[str, Any], open_only: bool) -> list[SimOrder]:
        txid, cl_ord_id, userref = body.get("txid"), body.get("cl_ord_id"), body.get("userref")
        if cl_ord_id is not None:
            candidates: Iterable[SimOrder] = self.by_client_id(key, str(cl_ord_id))
        else:
            candidates = (self.open if open_only else self.orders).values()
        found = []
        for order in candidates:
            if order.key != key or (open_only and not order.is_open):
                continue
            if txid is not None and str(txid) not in (order.txid, str(order.userref)):
                continue
            if userref is not None and str(order.userref) != str(userref):
                continue
            found.append(order)
        return found

    def balance(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sync()
        return {asset: f"{amount:.10f}" for asset, amount in self.balances(key).items()}

    def balance_ex(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Each asset's balance and what open orders hold of it."""
        self.sync()
        return {
            asset: {"balance": f"{amount:.10f}", "hold_trade": f"{self.reserved(key, asset):.10f}"}
            for asset, amount in self.balances(key).items()
        }

    def trade_balance(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Equivalent balance in USD (spot only: no margin, so most fields are 0)."""
        self.sync()
        total = sum(
            (amount * self._mid(asset) for asset, amount in self.balances(key).items()),
            Decimal(0),
        )
        text = f"{total:.4f}"
        zero = "0.0000"
        return {
            "eb": text,
            "tb": text,
            "m": zero,
            "n": zero,
            "c": zero,
            "v": zero,
            "e": text,
            "mf": text,
            "uv": zero,
        }

    def query_trades(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Trades by id (at most 20), the key's own only."""
        ids = [t for t in str(body.get("txid", "")).split(",") if t]
        if not 1 <= len(ids) <= 20:
            raise KrakenFailure("EGeneral:Invalid arguments:txid")
        mine = dict(self.trades_of(key))
        return {i: mine[i] for i in ids if i in mine}

    def _ledger(self, key: str) -> list[tuple[str, dict[str, Any]]]:
        """The key's ledger, oldest first: two entries per trade (base and quote, the fee
        on the quote), each with the asset's running balance."""
        self.sync()
        running = {asset: Decimal(v) for asset, v in self.rules.balances}
        entries: list[tuple[str, dict[str, Any]]] = []
        for fill in self.fills_of(key):
            pair = PAIRS[fill.pair]
            sign = 1 if fill.side == "buy" else -1
            moves = (
                (pair.base, sign * fill.volume, Decimal(0)),
                (pair.quote, -sign * fill.volume * fill.price, fill.fee),
            )
            for n, (asset, amount, fee) in enumerate(moves):
                running[asset] = running.get(asset, Decimal(0)) + amount - fee
                entries.append(
                    (
                        f"L{fill.trade_id[1:]}-{n}",
                        {
                            "refid": fill.trade_id,
                            "time": fill.time,
                            "type": "trade",
                            "subtype": "",
                            "aclass": "currency",
                            "asset": asset,
                            "amount": f"{amount:.10f}",
                            "fee": f"{fee:.10f}",
                            "balance": f"{running[asset]:.10f}",
                        },
                    )
                )
        return entries

    def ledgers(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Newest first, 50 a page (``ofs``), filtered by ``asset``, ``start``, ``end``."""
        entries = self._ledger(key)
        assets = {a for a in str(body.get("asset", "all")).split(",") if a and a != "all"}
        if assets:
            entries = [(i, e) for i, e in entries if e["asset"] in assets]
        entries.reverse()
        page, count = page_of(entries, body, lambda entry: float(entry[1]["time"]))
        return {"ledger": dict(page), "count": count}

    def query_ledgers(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        ids = [i for i in str(body.get("id", "")).split(",") if i]
        if not 1 <= len(ids) <= 20:
            raise KrakenFailure("EGeneral:Invalid arguments:id")
        mine = dict(self._ledger(key))
        return {i: mine[i] for i in ids if i in mine}

    def get_websockets_token(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """A token for the private WebSocket feeds (valid 15 minutes, as Kraken's). Expired
        tokens are forgotten here (a connection keeps the one it subscribed with)."""
        now = self.market.now()
        for stale in [t for t, (_, expiry) in self.ws_tokens.items() if expiry < now]:
            del self.ws_tokens[stale]
        token = secrets.token_urlsafe(24)
        self.ws_tokens[token] = (key, now + 900)
        return {"token": token, "expires": 900}

    def query_orders(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sync()
        txids = [t for t in str(body.get("txid", "")).split(",") if t]
        if not 1 <= len(txids) <= 50:
            raise KrakenFailure("EGeneral:Invalid arguments:txid")
        trades = truthy(body.get("trades"))
        userref = body.get("userref")
        return {
            t: order_entry(self.orders[t], trades)
            for t in txids
            if t in self.orders
            and self.orders[t].key == key
            and (userref is None or str(self.orders[t].userref) == str(userref))
        }

    def _filters(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {k: body[k] for k in ("cl_ord_id", "userref") if k in body}

    def open_orders(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sync()
        trades = truthy(body.get("trades"))
        return {
            "open": {
                o.txid: order_entry(o, trades)
                for o in self._select(key, self._filters(body), open_only=True)
            }
        }

    def closed_orders(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sync()
        mine = self._select(key, self._filters(body), open_only=False)
        closed = [o for o in mine if not o.is_open]
        closed.sort(key=lambda o: o.closetm or 0, reverse=True)
        page, count = page_of(closed, body, lambda o: o.closetm or 0)
        trades = truthy(body.get("trades"))
        return {"closed": {o.txid: order_entry(o, trades) for o in page}, "count": count}

    def trades_of(self, key: str) -> list[tuple[str, dict[str, Any]]]:
        """Every trade of ``key``, oldest first, as ``(trade id, Kraken's entry)``."""
        self.sync()
        return [(f.trade_id, trade_entry(f, self.orders[f.txid])) for f in self.fills_of(key)]

    def trades_history(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        mine = self.trades_of(key)
        mine.sort(key=lambda item: item[1]["time"], reverse=True)
        page, count = page_of(mine, body, lambda item: float(item[1]["time"]))
        return {"trades": dict(page), "count": count}
