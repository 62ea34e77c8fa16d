"""The sandbox's read endpoints in Kraken's shapes: Balance, BalanceEx, TradeBalance,
QueryOrders (with a ``userref`` filter), OpenOrders, ClosedOrders, TradesHistory,
QueryTrades, Ledgers, QueryLedgers, GetWebSocketsToken. Mixed
into :class:`~framework.sandbox.matching.MatchingEngine`, whose state they read and never
change."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from framework.sandbox.auth import KrakenFailure
from framework.sandbox.market import PAIRS, Market
from framework.sandbox.sim_order import SimOrder

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


class KrakenReads:
    """What the engine provides to its read endpoints."""

    orders: dict[str, SimOrder]
    trades: dict[str, dict[str, Any]]
    _trade_keys: dict[str, str]
    ws_tokens: dict[str, tuple[str, float]]
    market: Market

    def sync(self) -> None:
        raise NotImplementedError

    def balances(self, key: str) -> dict[str, Decimal]:
        raise NotImplementedError

    def _reserved(self, key: str, asset: str) -> Decimal:
        raise NotImplementedError

    def _mid(self, asset: str) -> Decimal:
        """The asset's value in USD (ZUSD 1; a base asset at its pair's mid)."""
        raise NotImplementedError

    def _select(self, key: str, body: Mapping[str, Any], status: str | None) -> list[SimOrder]:
        raise NotImplementedError

    def balance(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sync()
        return {asset: f"{amount:.10f}" for asset, amount in self.balances(key).items()}

    def balance_ex(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Each asset's balance and what open orders hold of it."""
        self.sync()
        return {
            asset: {"balance": f"{amount:.10f}", "hold_trade": f"{self._reserved(key, asset):.10f}"}
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
        by_name = {p.name: p for p in PAIRS.values()}
        running = {asset: Decimal(v) for asset, v in self._starting_balances()}
        entries: list[tuple[str, dict[str, Any]]] = []
        for trade_id, t in self.trades_of(key):
            pair = by_name[t["pair"]]
            sign = 1 if t["type"] == "buy" else -1
            moves = (
                (pair.base, sign * Decimal(t["vol"]), Decimal(0)),
                (pair.quote, -sign * Decimal(t["cost"]), Decimal(t["fee"])),
            )
            for n, (asset, amount, fee) in enumerate(moves):
                running[asset] = running.get(asset, Decimal(0)) + amount - fee
                entries.append(
                    (
                        f"L{trade_id[1:]}-{n}",
                        {
                            "refid": trade_id,
                            "time": t["time"],
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

    def _starting_balances(self) -> tuple[tuple[str, str], ...]:
        raise NotImplementedError

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
            t: self.orders[t].kraken(trades)
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
                o.txid: o.kraken(trades) for o in self._select(key, self._filters(body), "open")
            }
        }

    def closed_orders(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sync()
        closed = [o for o in self._select(key, self._filters(body), None) if o.status != "open"]
        closed.sort(key=lambda o: o.closetm or 0, reverse=True)
        page, count = page_of(closed, body, lambda o: o.closetm or 0)
        trades = truthy(body.get("trades"))
        return {"closed": {o.txid: o.kraken(trades) for o in page}, "count": count}

    def trades_of(self, key: str) -> list[tuple[str, dict[str, Any]]]:
        """Every trade of ``key``, oldest first, as ``(trade id, trade)``."""
        self.sync()
        return [(tid, t) for tid, t in self.trades.items() if self._trade_keys[tid] == key]

    def trades_history(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        mine = self.trades_of(key)
        mine.sort(key=lambda item: item[1]["time"], reverse=True)
        page, count = page_of(mine, body, lambda item: float(item[1]["time"]))
        return {"trades": dict(page), "count": count}
