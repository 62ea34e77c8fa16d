"""What the runner needs from an exchange, in Orderly's own types.

Each exchange package implements :class:`Venue` (Kraken's is
``framework/exchanges/kraken/venue.py``) and an ``open_venue(config)`` async context
manager; :mod:`framework.registry` finds it by the ``[exchange] name`` of the config. The
core only ever sees this protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from framework.call import LaneStats
from framework.errors import OrderlyError
from framework.events import Fill, Ticker
from framework.market import Market
from framework.orders import LimitOrder, Order


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """An order as the exchange reports it."""

    txid: str
    cl_ord_id: str | None
    status: str  # "open", "closed" (fully filled), "canceled", "expired"
    filled: Decimal
    reason: str | None = None
    price: Decimal | None = None  # its limit price now (None: not said, or a market order)
    volume: Decimal | None = None  # its whole volume now (None: not said)


@dataclass(frozen=True, slots=True)
class Amend:
    """A change to one open limit order (named by its client order id): its pair, and its
    new price and/or whole volume (None: unchanged); ``post_only``: the order was placed
    post-only, so a new price that would take liquidity must be refused, not traded."""

    pair: str
    price: Decimal | None
    volume: Decimal | None
    post_only: bool = False

    @classmethod
    def between(cls, old: LimitOrder, new: LimitOrder) -> Amend | None:
        """What turns ``old`` into ``new``: only what differs (None: nothing does)."""
        price = None if new.price == old.price else new.price
        volume = None if new.volume == old.volume else new.volume
        if price is None and volume is None:
            return None
        return cls(new.pair, price, volume, old.post_only)


@dataclass(frozen=True, slots=True)
class PairAssets:
    """The assets a pair trades, in the exchange's names."""

    base: str
    quote: str


class Venue(Protocol):
    name: str
    key_id: str
    #: The key's lane counters (what the summary shows).
    stats: LaneStats
    #: Most orders one batch call takes (Kraken AddOrderBatch: 15).
    max_batch: int
    #: Whether the exchange outlives the bot (False for the in-process paper sandbox, whose
    #: orders die with it): only then are orders journalled and adopted after a restart.
    persistent: bool
    #: After this many seconds an order sent now can no longer reach the book (None: never
    #: certain, so an order whose answer was lost is never sent again).
    order_deadline_s: float | None

    async def abort(self) -> None:
        """Stop the key's lane at once (a forced exit); the nonce floor is still written."""
        ...

    #: Why the key's lane stopped sending for good (a state file it cannot write), or None.
    broken: OrderlyError | None
    #: Whether :meth:`stream` pushes real-time data; the runner polls otherwise.
    streaming: bool

    async def stream(self, sink: Any, pairs: Sequence[str]) -> None:
        """Push tickers, books, candles, fills and final states into ``sink`` (the
        runner's :class:`~framework.streaming.Feed`) until cancelled; reconnects itself."""
        ...

    async def place(self, order: Order, cl_ord_id: str) -> str:
        """Send one order; return the exchange's order id or raise a typed error."""
        ...

    async def place_batch(self, orders: Sequence[tuple[Order, str]]) -> list[str | OrderlyError]:
        """Send 2..max_batch orders on one pair as one call (one nonce); one entry per order,
        in order: its exchange id, or the error that refused it."""
        ...

    #: Whether :meth:`amend` changes an open order in place (Kraken AmendOrder).
    can_amend: bool

    async def amend(self, cl_ord_id: str, change: Amend) -> None:
        """Change an open limit order's price and/or whole volume in place."""
        ...

    async def find(self, cl_ord_id: str) -> VenueOrder | None:
        """The order with this client order id, open or closed, or None if there is none."""
        ...

    async def find_many(self, cl_ord_ids: Sequence[str], *, since: float) -> dict[str, VenueOrder]:
        """The orders with these client order ids that the exchange has, open or closed
        (placed at or after ``since``, Unix s), by client order id; absent ones left out."""
        ...

    def is_duplicate(self, exc: OrderlyError) -> bool:
        """Whether ``exc`` says an order with this client order id already exists."""
        ...

    async def cancel(self, cl_ord_id: str, *, pair: str, txid: str | None) -> None:
        """Cancel one open order: its client order id, pair and exchange id (None while
        unknown); each exchange addresses the order by what it needs."""
        ...

    async def arm_dead_man(self, timeout_s: int) -> None:
        """Have the exchange cancel every order of the key in ``timeout_s`` s unless armed
        again before then; 0 disarms."""
        ...

    async def key_report(self) -> list[str]:
        """What the exchange says about the key that a person should read at start
        (warnings); ConfigError for a key that cannot work as configured; [] where the
        exchange has no such call."""
        ...

    async def clock_offset(self) -> float:
        """Exchange time minus local time, in seconds; the venue applies it to deadlines."""
        ...

    async def cancel_all(self) -> int: ...

    async def balances(self) -> dict[str, Decimal]: ...

    async def open_orders(self) -> list[VenueOrder]: ...

    async def query_orders(self, txids: Sequence[str]) -> list[VenueOrder]: ...

    async def fills_since(self, since: float) -> list[tuple[str, Fill]]:
        """Trades at or after ``since`` (Unix s), as ``(txid, fill)``; ``fill.cl_ord_id`` may
        be empty, the order book fills it in."""
        ...

    async def ticker(self, pair: str) -> Ticker: ...

    async def pair_assets(self, pair: str) -> PairAssets: ...

    async def market(self, pair: str) -> Market:
        """The pair's price step, volume step and smallest volume, as far as the exchange
        states them (asked once, then kept)."""
