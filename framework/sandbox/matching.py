"""The sandbox's matching engine: orders, fills and balances in Kraken's shapes.

- A market order, or a limit order priced through the spread, fills at once at the ask (buy)
  or bid (sell), paying the taker fee.
- A resting limit order fills at its own price, paying the maker fee, on the first market
  step whose ask (buy) or bid (sell) reaches it. With ``partial_fill_probability`` > 0 a
  step may fill only half of what remains, so orders pass through partial fills.
- Balances move with fills; placing an order checks what is not already reserved by other
  open orders (``EOrder:Insufficient funds``).

Each order is checked first (framework/sandbox/order_checks.py); here: unique ``cl_ord_id``
among open orders, ``validate=true`` answering ``descr`` without ``txid``, batches of 2-15
orders on one pair validated as a whole. AmendOrder and EditOrder: framework/sandbox/changes.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from framework.sandbox.auth import KrakenFailure
from framework.sandbox.changes import KrakenChanges
from framework.sandbox.kraken_rules import DUPLICATE_CL_ORD_ID
from framework.sandbox.market import ALIASES, PAIRS, Market
from framework.sandbox.order_checks import check_deadline, parse_order
from framework.sandbox.reads import KrakenReads, truthy
from framework.sandbox.sim_order import SimOrder as SimOrder


@dataclass(frozen=True, slots=True)
class OrderRules:
    """Order behaviour; where Kraken does not pin it down, each default is our choice."""

    #: Kraken enforces unique ``cl_ord_id`` among open orders but does not document the error.
    duplicate_cl_ord_id_error: str = DUPLICATE_CL_ORD_ID
    #: Cancelling an unknown or closed order: Kraken's SDK reports ``EOrder:Invalid order``
    #: for both; the error table lists ``EOrder:Unknown order``.
    unknown_order_error: str = "EOrder:Unknown order"
    maker_fee: Decimal = Decimal("0.0016")
    taker_fee: Decimal = Decimal("0.0026")
    partial_fill_probability: float = 0.0
    balances: tuple[tuple[str, str], ...] = (("ZUSD", "100000"), ("XXBT", "2"), ("XETH", "20"))


class MatchingEngine(KrakenReads, KrakenChanges):
    """Orders, trades and balances of every key of one sandbox."""

    def __init__(self, market: Market, rules: OrderRules | None = None) -> None:
        self.market = market
        self.rules = rules or OrderRules()
        self.orders: dict[str, SimOrder] = {}  # every order ever placed, by txid
        self.open: dict[str, SimOrder] = {}  # the open ones: what matching and checks walk
        self._by_cl_ord_id: dict[tuple[str, str], list[SimOrder]] = {}
        self.trades: dict[str, dict[str, Any]] = {}
        self._trade_keys: dict[str, str] = {}
        self._balances: dict[str, dict[str, Decimal]] = {}
        self._ids = itertools.count(1)
        self._dead_man: dict[str, float] = {}  # key -> when all its orders get cancelled
        self._amends = 0
        self._fills = random.Random(f"{market.rules.seed}:fills")
        #: Called on every order event: (kind, order, trade id or None); kind is "new",
        #: "trade", "amended" or the status an order closes with. The WebSocket feeds.
        self.listeners: list[Callable[[str, SimOrder, str | None], None]] = []
        self.ws_tokens: dict[str, tuple[str, float]] = {}  # token -> (API key, expiry)

    # --- time -----------------------------------------------------------------------------

    def sync(self) -> None:
        """Bring the market to the clock's time, matching resting orders at every step."""
        for _ in range(min(self.market.due_steps(), 100_000)):
            self.market.advance_one()
            self._match_resting()
        now = self.market.now()
        for key, trigger in list(self._dead_man.items()):
            if trigger <= now:  # the client stopped checking in: cancel everything it had
                del self._dead_man[key]
                self._cancel(self._select(key, {}, "open"))

    def _match_resting(self) -> None:
        quotes: dict[str, tuple[Decimal, Decimal]] = {}  # one quote per pair and step
        for order in list(self.open.values()):
            if order.price is None:
                continue
            if order.pair not in quotes:
                quotes[order.pair] = self.market.quote(order.pair)
            bid, ask = quotes[order.pair]
            if (order.side == "buy" and ask <= order.price) or (
                order.side == "sell" and bid >= order.price
            ):
                volume = order.remaining
                if self._fills.random() < self.rules.partial_fill_probability:
                    lot = Decimal(1).scaleb(-PAIRS[order.pair].lot_decimals)
                    half = (volume / 2).quantize(lot)
                    volume = half if half > 0 else volume
                self._fill(order, volume, order.price, maker=True)

    def order_age(self, key: str, ref: str) -> tuple[str, float] | None:
        """(pair, seconds resting) of one of ``key``'s orders by txid or client order id."""
        order = self.orders.get(ref)
        if order is None or order.key != key:
            latest = self._by_cl_ord_id.get((key, ref))
            order = latest[-1] if latest else None
        return (order.pair, self.market.now() - order.opentm) if order else None

    # --- balances -------------------------------------------------------------------------

    def balances(self, key: str) -> dict[str, Decimal]:
        if key not in self._balances:
            self._balances[key] = {a: Decimal(v) for a, v in self.rules.balances}
        return self._balances[key]

    def _starting_balances(self) -> tuple[tuple[str, str], ...]:
        return tuple(self.rules.balances)

    def _mid(self, asset: str) -> Decimal:
        if asset == "ZUSD":
            return Decimal(1)
        pair = next((p for p in PAIRS.values() if p.base == asset), None)
        if pair is None:
            return Decimal(0)
        bid, ask = self.market.quote(pair.altname)
        return (bid + ask) / 2

    def _reserved(self, key: str, asset: str) -> Decimal:
        total = Decimal(0)
        for order in self.open.values():
            if order.key != key:
                continue
            info = PAIRS[order.pair]
            if order.side == "buy" and asset == info.quote and order.price is not None:
                total += order.remaining * order.price * (1 + self.rules.maker_fee)
            elif order.side == "sell" and asset == info.base:
                total += order.remaining
        return total

    def _check_funds(self, key: str, pair: str, side: str, volume: Decimal, price: Decimal) -> None:
        info = PAIRS[pair]
        balances = self.balances(key)
        if side == "buy":
            needed, asset = volume * price * (1 + self.rules.taker_fee), info.quote
        else:
            needed, asset = volume, info.base
        if balances.get(asset, Decimal(0)) - self._reserved(key, asset) < needed:
            raise KrakenFailure("EOrder:Insufficient funds")

    def _fill(self, order: SimOrder, volume: Decimal, price: Decimal, *, maker: bool) -> None:
        info = PAIRS[order.pair]
        cost = volume * price
        fee = (cost * (self.rules.maker_fee if maker else self.rules.taker_fee)).quantize(
            Decimal("0.00000001")
        )
        balances = self.balances(order.key)
        if order.side == "buy":
            balances[info.quote] = balances.get(info.quote, Decimal(0)) - cost - fee
            balances[info.base] = balances.get(info.base, Decimal(0)) + volume
        else:
            balances[info.base] = balances.get(info.base, Decimal(0)) - volume
            balances[info.quote] = balances.get(info.quote, Decimal(0)) + cost - fee
        order.filled += volume
        order.cost += cost
        order.fee += fee
        n = next(self._ids)
        trade_id = f"T{n:05d}-SBX{n % 89:02d}-{n * 6151 % 1_000_000:06d}"
        now = self.market.now()
        self.trades[trade_id] = {
            "ordertxid": order.txid,
            "postxid": f"P{n:05d}-SANDBOX",
            "pair": info.name,
            "time": now,
            "type": order.side,
            "ordertype": order.ordertype,
            "price": str(price),
            "cost": str(cost),
            "fee": str(fee),
            "vol": str(volume),
            "margin": "0.00000",
            "misc": "",
            "maker": maker,
            "trade_id": n,
        }
        self._trade_keys[trade_id] = order.key
        order.trades.append(trade_id)
        self.market.record_trade(order.pair, volume)
        self._emit("trade", order, trade_id)
        if order.remaining <= 0:
            self._close(order, "closed", None)

    # --- placing --------------------------------------------------------------------------

    def _duplicate(self, key: str, cl_ord_id: Any) -> bool:
        return cl_ord_id is not None and any(
            o.status == "open" for o in self._by_cl_ord_id.get((key, str(cl_ord_id)), ())
        )

    def _close(self, order: SimOrder, status: str, reason: str | None) -> None:
        order.status, order.closetm, order.reason = status, self.market.now(), reason
        self.open.pop(order.txid, None)
        self._emit("filled" if status == "closed" else status, order, None)

    def _emit(self, kind: str, order: SimOrder, trade_id: str | None) -> None:
        for listener in self.listeners:
            listener(kind, order, trade_id)

    def _place(self, key: str, order: Mapping[str, Any], pair: str) -> SimOrder:
        side, ordertype, volume, price = parse_order(order, pair)
        if self._duplicate(key, order.get("cl_ord_id")):
            raise KrakenFailure(self.rules.duplicate_cl_ord_id_error)
        bid, ask = self.market.quote(pair)
        touch = ask if side == "buy" else bid
        crosses = price is None or (price >= ask if side == "buy" else price <= bid)
        oflags = str(order.get("oflags", ""))
        self._check_funds(
            key, pair, side, volume, price if price is not None and not crosses else touch
        )
        n = next(self._ids)
        sim = SimOrder(
            txid=f"O{n:05d}-SBX{n % 97:02d}-{n * 7919 % 1_000_000:06d}",
            key=key,
            pair=pair,
            side=side,
            ordertype=ordertype,
            price=price,
            volume=volume,
            opentm=self.market.now(),
            cl_ord_id=str(order["cl_ord_id"]) if order.get("cl_ord_id") is not None else None,
            userref=int(order["userref"]) if order.get("userref") is not None else None,
            oflags=oflags,
        )
        self.orders[sim.txid] = self.open[sim.txid] = sim
        if sim.cl_ord_id is not None:
            self._by_cl_ord_id.setdefault((key, sim.cl_ord_id), []).append(sim)
        self._emit("new", sim, None)
        if crosses and "post" in oflags.split(","):
            self._close(sim, "canceled", "Post only order")
        elif crosses:
            self._fill(sim, volume, touch, maker=False)
        return sim

    def add_order(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sync()
        check_deadline(body, self.market.now())
        pair = ALIASES.get(str(body.get("pair", "")), str(body.get("pair", "")))
        if not pair:
            raise KrakenFailure("EGeneral:Invalid arguments:pair")
        if truthy(body.get("validate")):
            parse_order(body, pair)
            return {"descr": {"order": f"{body['type']} {body['volume']} {pair}"}}
        sim = self._place(key, body, pair)
        return {"descr": {"order": sim.description()}, "txid": [sim.txid]}

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
                sim = self._place(key, order, pair)
            except KrakenFailure as failure:
                results.append({"error": failure.error})
            else:
                results.append({"txid": sim.txid, "descr": {"order": sim.description()}})
        return {"orders": results}

    # --- cancelling -----------------------------------------------------------------------

    def _select(self, key: str, body: Mapping[str, Any], status: str | None) -> list[SimOrder]:
        txid, cl_ord_id, userref = body.get("txid"), body.get("cl_ord_id"), body.get("userref")
        if cl_ord_id is not None:
            candidates: Iterable[SimOrder] = self._by_cl_ord_id.get((key, str(cl_ord_id)), ())
        else:
            candidates = (self.open if status == "open" else self.orders).values()
        found = []
        for order in candidates:
            if order.key != key or (status is not None and order.status != status):
                continue
            if txid is not None and str(txid) not in (order.txid, str(order.userref)):
                continue
            if cl_ord_id is not None and order.cl_ord_id != str(cl_ord_id):
                continue
            if userref is not None and str(order.userref) != str(userref):
                continue
            found.append(order)
        return found

    def _cancel(self, orders: list[SimOrder]) -> int:
        for order in orders:
            self._close(order, "canceled", "User requested")
        return len(orders)

    def cancel_order(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sync()
        if body.get("txid") is None and body.get("cl_ord_id") is None:
            raise KrakenFailure("EGeneral:Invalid arguments:txid")
        hits = self._select(key, body, "open")
        if not hits:
            raise KrakenFailure(self.rules.unknown_order_error)
        return {"count": self._cancel(hits), "pending": False}

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
            for order in self._select(key, wanted, "open"):
                hits[order.txid] = order
            if isinstance(ref, str):  # a plain id may be a client order id too
                for order in self._select(key, {"cl_ord_id": ref}, "open"):
                    hits[order.txid] = order
        return {"count": self._cancel(list(hits.values()))}

    def cancel_all_orders_after(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Kraken's dead-man switch: cancel all after ``timeout`` s unless called again."""
        self.sync()
        try:
            timeout = int(str(body.get("timeout")))
        except ValueError:
            raise KrakenFailure("EGeneral:Invalid arguments:timeout") from None
        if not 0 <= timeout < 86400:
            raise KrakenFailure("EGeneral:Invalid arguments:timeout")
        now = self.market.now()
        if timeout == 0:
            self._dead_man.pop(key, None)
        else:
            self._dead_man[key] = now + timeout

        def rfc3339(at: float) -> str:
            return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        trigger = self._dead_man.get(key)
        return {"currentTime": rfc3339(now), "triggerTime": rfc3339(trigger) if trigger else "0"}

    def cancel_all(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sync()
        return {"count": self._cancel(self._select(key, {}, "open"))}
