"""Orders: what a strategy asks for, and the book that follows each order through its life.

    LimitOrder / MarketOrder   frozen requests, Decimal prices and volumes, checked on creation
    TRANSITIONS                the state table: which state may follow which
    TrackedOrder               one order's mutable record, owned by the book
    OrderBook                  client order ids assigned and recorded *before* sending;
                               fills de-duplicated by trade id
    batches()                  split a list of orders into exchange batches (one pair each)

A state change not in the table is ignored and logged (``order_transition_ignored``): late
or repeated updates from polling never move an order backwards.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Literal

from framework.clock import SYSTEM_CLOCK, Clock, wall
from framework.errors import InvalidArguments, StateError
from framework.events import Fill, OrderState, OrderUpdate
from framework.log import get_logger

if TYPE_CHECKING:
    from framework.journal import OrderJournal

log = get_logger("framework.orders")

Side = Literal["buy", "sell"]
TimeInForce = Literal["gtc", "ioc", "fok"]
S = OrderState

#: Which states may follow each state. Terminal states have no successors.
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.SUBMITTED: frozenset(
        {S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.UNKNOWN}
    ),
    S.UNKNOWN: frozenset({S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED}),
    S.ACCEPTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED}),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
}


def check_amount(value: Decimal | str | int, name: str) -> Decimal:
    """``value`` as a positive finite Decimal, or InvalidArguments (a float is refused)."""
    if isinstance(value, bool):
        raise InvalidArguments(f"{name} must be a number, not a boolean ({value!r})")
    if isinstance(value, float):
        raise InvalidArguments(
            f"{name} must be a Decimal, str or int, not float ({value!r}): "
            "floats cannot hold prices exactly"
        )
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidArguments(f"{name} is not a number: {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidArguments(f"{name} must be positive; got {value}")
    return amount


def check_side(side: str) -> None:
    if side not in ("buy", "sell"):
        raise InvalidArguments(f"side must be 'buy' or 'sell'; got {side!r}")


def check_flags(*flags: object) -> None:
    """``post_only`` and ``reduce_only`` are True or False (a string "false" is not)."""
    for flag in flags:
        if not isinstance(flag, bool):
            raise InvalidArguments(f"post_only and reduce_only take True or False; got {flag!r}")


@dataclass(frozen=True, slots=True)
class LimitOrder:
    """Buy or sell ``volume`` of ``pair`` at ``price`` or better; rests until filled or
    cancelled. ``post_only`` orders are cancelled rather than take liquidity.
    ``time_in_force``: ``gtc`` rests; ``ioc`` fills what it can at once and the rest is
    cancelled; ``fok`` fills whole at once or not at all (neither rests, so neither can be
    post-only). ``reduce_only``: it may only make a position smaller (futures and margin),
    so a close sent twice cannot open the other way."""

    pair: str
    side: Side
    volume: Decimal
    price: Decimal
    post_only: bool = False
    time_in_force: TimeInForce = "gtc"
    reduce_only: bool = False

    def __post_init__(self) -> None:
        check_side(self.side)
        check_flags(self.post_only, self.reduce_only)
        object.__setattr__(self, "volume", check_amount(self.volume, "volume"))
        object.__setattr__(self, "price", check_amount(self.price, "price"))
        if self.time_in_force not in ("gtc", "ioc", "fok"):
            raise InvalidArguments(
                f"time_in_force must be 'gtc', 'ioc' or 'fok'; got {self.time_in_force!r}"
            )
        if self.post_only and self.time_in_force != "gtc":
            raise InvalidArguments(
                f"a post-only order rests; a {self.time_in_force} order never does: not both"
            )


@dataclass(frozen=True, slots=True)
class MarketOrder:
    """Buy or sell ``volume`` of ``pair`` at the best price now; ``reduce_only`` as for
    :class:`LimitOrder`."""

    pair: str
    side: Side
    volume: Decimal
    reduce_only: bool = False

    def __post_init__(self) -> None:
        check_side(self.side)
        check_flags(self.reduce_only)
        object.__setattr__(self, "volume", check_amount(self.volume, "volume"))


Order = LimitOrder | MarketOrder


def check_orders(requests: object, *, what: str = "order") -> list[Order]:
    """``requests`` as a list of orders, or :class:`InvalidArguments` naming the first thing
    that is not a LimitOrder or MarketOrder. Nothing is recorded before this passes."""
    if isinstance(requests, str | bytes) or not isinstance(requests, Sequence):
        raise InvalidArguments(
            f"place_batch takes a list of orders, not {type(requests).__name__}",
            endpoint="place_batch",
        )
    orders = list(requests)
    for index, request in enumerate(orders):
        if not isinstance(request, LimitOrder | MarketOrder):
            where = f"{what} {index}" if what == "orders" else what
            raise InvalidArguments(
                f"{where} is a {type(request).__name__}, not a LimitOrder or MarketOrder",
                endpoint="place_batch" if what == "orders" else "place",
            )
    return orders


def amended(request: Order, *, price: object, volume: object, filled: Decimal) -> LimitOrder:
    """``request`` with a new price and/or volume, checked (:class:`InvalidArguments`): only
    a limit order changes in place, and its volume stays above what has filled."""
    if price is None and volume is None:
        raise InvalidArguments("amend needs a new price or a new volume", endpoint="amend")
    if not isinstance(request, LimitOrder):
        raise InvalidArguments("only a limit order can be amended", endpoint="amend")
    new = dataclasses.replace(
        request,
        price=request.price if price is None else price,  # type: ignore[arg-type]
        volume=request.volume if volume is None else volume,  # type: ignore[arg-type]
    )
    if new.volume <= filled:
        raise InvalidArguments(
            f"the new volume must be above the {filled.normalize():f} already filled",
            endpoint="amend",
        )
    return new


def new_client_order_id() -> str:
    """32 hex characters: Kraken's 'short UUID' form of ``cl_ord_id``."""
    return uuid.uuid4().hex


@dataclass(slots=True)
class TrackedOrder:
    """One order as the book knows it."""

    request: Order
    cl_ord_id: str
    state: OrderState = OrderState.SUBMITTED
    txid: str | None = None
    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    reason: str | None = None
    trade_ids: set[str] = field(default_factory=set)
    created: float = 0.0
    updated: float = 0.0
    #: Wall time of the latest send (None: never sent); reconciliation waits from it.
    sent_at: float | None = None

    def snapshot(self) -> OrderUpdate:
        request = self.request
        return OrderUpdate(
            cl_ord_id=self.cl_ord_id,
            pair=request.pair,
            side=request.side,
            state=self.state,
            volume=request.volume,
            filled=self.filled,
            price=request.price if isinstance(request, LimitOrder) else None,
            avg_price=(self.cost / self.filled) if self.filled else None,
            txid=self.txid,
            reason=self.reason,
            time=self.updated,
        )


#: How long a finished order stays in memory (for late fills and lookups by txid); after
#: that only the journal has it, so a bot running for weeks does not grow with its history.
RETAIN_FINISHED_S = 3600.0


class OrderBook:
    """Every open order of one strategy, and those finished in the last hour, by client
    order id and by exchange txid. With a ``journal``, every order is written down before it
    is sent and at every change (and stays there once it leaves memory)."""

    def __init__(
        self,
        clock: Clock = SYSTEM_CLOCK,
        journal: OrderJournal | None = None,
        retain_finished_s: float = RETAIN_FINISHED_S,
    ) -> None:
        self._orders: dict[str, TrackedOrder] = {}
        self._by_txid: dict[str, TrackedOrder] = {}
        self._finished: deque[TrackedOrder] = deque()
        self._clock = clock
        self.journal = journal
        self.retain_finished_s = retain_finished_s
        #: Why the journal stopped taking writes (a full disk...), or None. From then on no
        #: new order is recorded (none could be found again after a crash); changes to the
        #: orders already out still apply in memory, so they can be followed and cancelled.
        self.broken: StateError | None = None

    def _forget_finished(self) -> None:
        """Drop from memory the orders finished longer ago than ``retain_finished_s``."""
        cutoff = wall(self._clock) - self.retain_finished_s
        while self._finished and self._finished[0].updated < cutoff:
            order = self._finished.popleft()
            self._orders.pop(order.cl_ord_id, None)
            if order.txid is not None:
                self._by_txid.pop(order.txid, None)

    def _write(self, write: Callable[[OrderJournal], None], *, before_send: bool = False) -> None:
        """One write to the journal, if there is one. A failed write breaks the journal for
        good; it raises only ``before_send`` (the order then does not go out)."""
        if self.journal is None:
            return
        try:
            if self.broken is not None:
                raise self.broken
            write(self.journal)
        except StateError as exc:
            if self.broken is None:
                self.broken = exc
                log.error(
                    "journal_unwritable",
                    error=exc.message,
                    detail="no new order goes out; orders already out are still followed",
                )
            if before_send:
                raise

    def _save(self, *orders: TrackedOrder, before_send: bool = False) -> None:
        self._write(lambda journal: journal.save(*orders), before_send=before_send)

    def record(self, request: Order) -> TrackedOrder:
        """Assign a client order id and record the order, before anything is sent."""
        return self.record_all([request])[0]

    def record_all(self, requests: Sequence[Order]) -> list[TrackedOrder]:
        """Assign client order ids and record the orders (in the journal first, in one
        write), before anything is sent."""
        now = wall(self._clock)
        orders = [
            TrackedOrder(r, new_client_order_id(), created=now, updated=now) for r in requests
        ]
        self._save(*orders, before_send=True)
        for order in orders:
            self._orders[order.cl_ord_id] = order
            log.info(
                "order_submitted",
                cl_ord_id=order.cl_ord_id,
                pair=order.request.pair,
                side=order.request.side,
                volume=str(order.request.volume),
                price=str(getattr(order.request, "price", "")) or None,
            )
        return orders

    def restore(self, orders: Iterable[TrackedOrder]) -> None:
        """Take back orders from the journal after a restart."""
        for order in orders:
            self._orders[order.cl_ord_id] = order
            if order.txid is not None:
                self._by_txid[order.txid] = order

    def get(self, cl_ord_id: str) -> TrackedOrder | None:
        return self._orders.get(cl_ord_id)

    def by_txid(self, txid: str) -> TrackedOrder | None:
        return self._by_txid.get(txid)

    def set_txid(self, order: TrackedOrder, txid: str) -> None:
        order.txid = txid
        self._by_txid[txid] = order
        self._save(order)

    def sending(self, orders: Iterable[TrackedOrder]) -> float:
        """Note that ``orders`` are being sent now; returns the time written."""
        now = wall(self._clock)
        batch = list(orders)
        for order in batch:
            order.sent_at = now
        self._save(*batch, before_send=True)
        return now

    def open(self) -> list[TrackedOrder]:
        return [o for o in self._orders.values() if o.state.is_open]

    def __iter__(self) -> Iterator[TrackedOrder]:
        return iter(self._orders.values())

    def __len__(self) -> int:
        return len(self._orders)

    def amend(self, order: TrackedOrder, request: LimitOrder) -> None:
        """The exchange took a new price and/or volume for ``order``."""
        order.request = request
        order.updated = wall(self._clock)
        self._save(order)

    def move(self, order: TrackedOrder, state: OrderState, reason: str | None = None) -> bool:
        """Apply a state change if the table allows it. Returns whether it changed."""
        if state not in TRANSITIONS[order.state]:
            if state != order.state:
                log.debug(
                    "order_transition_ignored",
                    cl_ord_id=order.cl_ord_id,
                    state=order.state.value,
                    to=state.value,
                )
            return False
        order.state = state
        order.updated = wall(self._clock)
        if reason is not None:
            order.reason = reason
        self._save(order)
        if not state.is_open:
            self._finished.append(order)
            self._forget_finished()
        return True

    def apply_fill(self, order: TrackedOrder, fill: Fill) -> bool:
        """Count a fill once per trade id (either of its ids, when it has two). Returns
        False for a trade already seen."""
        ids = {fill.trade_id} if fill.alt_id is None else {fill.trade_id, fill.alt_id}
        if ids & order.trade_ids:
            return False
        order.trade_ids |= ids
        order.filled += fill.volume
        order.cost += fill.volume * fill.price
        order.updated = fill.time
        self._write(lambda journal: journal.fill(order, fill))
        return True

    def delivered(self, trade_id: str | None, state: tuple[str, str] | None = None) -> None:
        """The strategy's ``on_fill`` has had this fill (written down, so a restart does
        not deliver it again), with the strategy's state as it left it (name, JSON)."""
        self._write(lambda journal: journal.delivered(trade_id, state))


def batches(requests: Sequence[Order], limit: int) -> list[list[int]]:
    """Indexes of ``requests`` grouped by pair, in order, cut into chunks of at most
    ``limit``. A venue sends a chunk of one as a single order."""
    by_pair: dict[str, list[int]] = {}
    for index, request in enumerate(requests):
        by_pair.setdefault(request.pair, []).append(index)
    return [chunk for indexes in by_pair.values() for chunk in _cut(indexes, limit)]


def _cut(indexes: list[int], limit: int) -> Iterable[list[int]]:
    for start in range(0, len(indexes), limit):
        yield indexes[start : start + limit]
