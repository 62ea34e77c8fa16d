"""The sandbox's matching engine, in Orderly's types: orders with an
:class:`~framework.events.OrderState`, trades as :class:`~framework.events.Fill`, refusals
as :class:`Refused` with a reason of its own. It knows no exchange's API: Kraken's REST and
WebSocket front (framework/sandbox/matching.py, reads.py, changes.py, ws*.py) and the
conformance servers' Bitunix and Synthetix fronts (tests/conformance) turn requests into
its calls and its objects into their answers.

- A market order, or a limit order priced through the spread, fills at once at the ask (buy)
  or bid (sell), paying the taker fee; a post-only one is cancelled instead.
- A resting limit order fills at its own price, paying the maker fee, on the first market
  step whose ask (buy) or bid (sell) reaches it. With ``partial_fill_probability`` > 0 a
  step may fill only half of what remains, so orders pass through partial fills.
- Balances move with fills; placing an order checks what is not already reserved by other
  open orders (:data:`INSUFFICIENT_FUNDS`); a client order id is unique among an account's
  open orders (:data:`DUPLICATE_CLIENT_ID`).
- A dead-man switch per account cancels everything it has open at a set time.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from framework.events import Fill, OrderState
from framework.sandbox.market import PAIRS, Market

INSUFFICIENT_FUNDS = "insufficient_funds"
DUPLICATE_CLIENT_ID = "duplicate_client_id"


class Refused(Exception):
    """An order not taken; ``reason`` is one of the constants above (or a front's own,
    for the checks it makes before the engine)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EngineRules:
    """Fees, partial fills and every account's starting balances."""

    maker_fee: Decimal = Decimal("0.0016")
    taker_fee: Decimal = Decimal("0.0026")
    partial_fill_probability: float = 0.0
    balances: tuple[tuple[str, str], ...] = (("ZUSD", "100000"), ("XXBT", "2"), ("XETH", "20"))


#: Why an IOC or FOK order that could not trade at once was cancelled (the sandbox's words:
#: Kraken documents the order's ``canceled`` status, not its reason text).
IMMEDIATE_CANCELLED = "Immediate or cancel"


@dataclass(slots=True)
class SimOrder:
    """One order as the engine keeps it. ``ordertype`` is "limit" or "market"; ``oflags``
    and ``userref`` are kept for the front that echoes them."""

    txid: str
    key: str  # the account that placed it
    pair: str
    side: str
    ordertype: str
    price: Decimal | None
    volume: Decimal
    opentm: float
    cl_ord_id: str | None = None
    userref: int | None = None
    oflags: str = ""
    timeinforce: str = "GTC"  # or IOC / FOK: never rests
    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    state: OrderState = OrderState.ACCEPTED
    closetm: float | None = None
    amendtm: float | None = None  # its last amend: rate costs count its age from then
    reason: str | None = None
    trades: list[str] = field(default_factory=list)  # its fills' trade ids

    @property
    def remaining(self) -> Decimal:
        return self.volume - self.filled

    @property
    def is_open(self) -> bool:
        return self.state in (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)


#: An order event for the feeds: (kind, order, the fill or None). ``kind`` is "new",
#: "trade", "amended", or the state an order closes with ("filled", "cancelled").
Listener = Callable[[str, SimOrder, Fill | None], None]


class Engine:
    """Orders, fills and balances of every account of one sandbox."""

    def __init__(self, market: Market, rules: EngineRules | None = None) -> None:
        self.market = market
        self.rules = rules or EngineRules()
        self.orders: dict[str, SimOrder] = {}  # every order ever placed, by txid
        self.open: dict[str, SimOrder] = {}  # the open ones: what matching and checks walk
        self._by_client_id: dict[tuple[str, str], list[SimOrder]] = {}
        self.fills: dict[str, Fill] = {}  # every fill, by trade id, oldest first
        self._balances: dict[str, dict[str, Decimal]] = {}
        self._ids = itertools.count(1)
        self._dead_man: dict[str, float] = {}  # account -> when all its orders get cancelled
        self._partials = random.Random(f"{market.rules.seed}:fills")
        self.listeners: list[Listener] = []

    # --- time -----------------------------------------------------------------------------

    def sync(self) -> None:
        """Bring the market to the clock's time, matching resting orders at every step."""
        for _ in range(min(self.market.due_steps(), 100_000)):
            self.market.advance_one()
            self._match_resting()
        now = self.market.now()
        for account, trigger in list(self._dead_man.items()):
            if trigger <= now:  # the client stopped checking in: cancel everything it had
                del self._dead_man[account]
                self.cancel([o for o in self.open.values() if o.key == account])

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
                if self._partials.random() < self.rules.partial_fill_probability:
                    lot = Decimal(1).scaleb(-PAIRS[order.pair].lot_decimals)
                    half = (volume / 2).quantize(lot)
                    volume = half if half > 0 else volume
                self._fill(order, volume, order.price, maker=True)

    def dead_man(self, account: str, timeout_s: int) -> float | None:
        """Cancel all of ``account``'s open orders ``timeout_s`` from now unless called
        again (0: disarm). Returns when it triggers (market time), or None."""
        if timeout_s == 0:
            self._dead_man.pop(account, None)
        else:
            self._dead_man[account] = self.market.now() + timeout_s
        return self._dead_man.get(account)

    # --- balances -------------------------------------------------------------------------

    def balances(self, account: str) -> dict[str, Decimal]:
        if account not in self._balances:
            self._balances[account] = {a: Decimal(v) for a, v in self.rules.balances}
        return self._balances[account]

    def reserved(self, account: str, asset: str) -> Decimal:
        """What ``account``'s open orders hold of ``asset``."""
        total = Decimal(0)
        for order in self.open.values():
            if order.key != account:
                continue
            info = PAIRS[order.pair]
            if order.side == "buy" and asset == info.quote and order.price is not None:
                total += order.remaining * order.price * (1 + self.rules.maker_fee)
            elif order.side == "sell" and asset == info.base:
                total += order.remaining
        return total

    def _check_funds(
        self, account: str, pair: str, side: str, volume: Decimal, price: Decimal
    ) -> None:
        info = PAIRS[pair]
        if side == "buy":
            needed, asset = volume * price * (1 + self.rules.taker_fee), info.quote
        else:
            needed, asset = volume, info.base
        held = self.balances(account).get(asset, Decimal(0))
        if held - self.reserved(account, asset) < needed:
            raise Refused(INSUFFICIENT_FUNDS)

    # --- fills ----------------------------------------------------------------------------

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
        order.state = OrderState.PARTIALLY_FILLED
        n = next(self._ids)
        fill = Fill(
            trade_id=f"T{n:05d}-SBX{n % 89:02d}-{n * 6151 % 1_000_000:06d}",
            cl_ord_id=order.cl_ord_id or "",
            txid=order.txid,
            pair=order.pair,
            side=order.side,
            price=price,
            volume=volume,
            fee=fee,
            maker=maker,
            time=self.market.now(),
            alt_id=str(n),
        )
        self.fills[fill.trade_id] = fill
        order.trades.append(fill.trade_id)
        self.market.record_trade(order.pair, volume)
        self._emit("trade", order, fill)
        if order.remaining <= 0:
            self._close(order, OrderState.FILLED, None)

    def fills_of(self, account: str) -> list[Fill]:
        """Every fill of ``account``'s orders, oldest first (as they stand: no sync)."""
        return [f for f in self.fills.values() if self.orders[f.txid].key == account]

    # --- placing and cancelling -----------------------------------------------------------

    def open_by_client_id(self, account: str, cl_ord_id: str) -> list[SimOrder]:
        return [o for o in self._by_client_id.get((account, cl_ord_id), ()) if o.is_open]

    def by_client_id(self, account: str, cl_ord_id: str) -> list[SimOrder]:
        """Every order ``account`` placed with ``cl_ord_id``, oldest first."""
        return list(self._by_client_id.get((account, cl_ord_id), ()))

    def place(
        self,
        account: str,
        pair: str,
        side: str,
        volume: Decimal,
        price: Decimal | None,
        *,
        post_only: bool = False,
        cl_ord_id: str | None = None,
        userref: int | None = None,
        oflags: str = "",
        timeinforce: str = "GTC",
    ) -> SimOrder:
        """A limit order (``price``) or a market order (None), checked (:class:`Refused`),
        then matched at once as far as it crosses; an IOC or FOK order that does not cross
        is cancelled at once (a crossing one fills whole at the touch: the simulated book
        is deep enough for both). ``oflags`` is kept for the front."""
        if cl_ord_id is not None and self.open_by_client_id(account, cl_ord_id):
            raise Refused(DUPLICATE_CLIENT_ID)
        bid, ask = self.market.quote(pair)
        touch = ask if side == "buy" else bid
        crosses = price is None or (price >= ask if side == "buy" else price <= bid)
        self._check_funds(
            account, pair, side, volume, price if price is not None and not crosses else touch
        )
        n = next(self._ids)
        order = SimOrder(
            txid=f"O{n:05d}-SBX{n % 97:02d}-{n * 7919 % 1_000_000:06d}",
            key=account,
            pair=pair,
            side=side,
            ordertype="market" if price is None else "limit",
            price=price,
            volume=volume,
            opentm=self.market.now(),
            cl_ord_id=cl_ord_id,
            userref=userref,
            oflags=oflags,
            timeinforce=timeinforce,
        )
        self.orders[order.txid] = self.open[order.txid] = order
        if cl_ord_id is not None:
            self._by_client_id.setdefault((account, cl_ord_id), []).append(order)
        self._emit("new", order, None)
        if crosses and post_only:
            self._close(order, OrderState.CANCELLED, "Post only order")
        elif crosses:
            self._fill(order, volume, touch, maker=False)
        elif timeinforce != "GTC":
            self._close(order, OrderState.CANCELLED, IMMEDIATE_CANCELLED)
        return order

    def cancel(self, orders: list[SimOrder], reason: str = "User requested") -> int:
        for order in orders:
            self._close(order, OrderState.CANCELLED, reason)
        return len(orders)

    def _close(self, order: SimOrder, state: OrderState, reason: str | None) -> None:
        order.state, order.closetm, order.reason = state, self.market.now(), reason
        self.open.pop(order.txid, None)
        self._emit(state.value, order, None)

    def _emit(self, kind: str, order: SimOrder, fill: Fill | None) -> None:
        for listener in self.listeners:
            listener(kind, order, fill)
