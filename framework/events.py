"""What a strategy is told: frozen, slotted event objects, one per hook call.

New fields are only ever added with defaults, so a strategy written today keeps working.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal


class OrderState(enum.Enum):
    """Where an order is in its life. The transition table is in :mod:`framework.orders`."""

    SUBMITTED = "submitted"  # client order id assigned and recorded; sent or about to be
    ACCEPTED = "accepted"  # resting on the book
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"  # the exchange (or Orderly, before sending) refused it
    UNKNOWN = "unknown"  # sent, answer lost: being reconciled by client order id

    @property
    def is_open(self) -> bool:
        return self in (
            OrderState.SUBMITTED,
            OrderState.ACCEPTED,
            OrderState.PARTIALLY_FILLED,
            OrderState.UNKNOWN,
        )


@dataclass(frozen=True, slots=True)
class Started:
    """The strategy is about to receive events. ``time`` is Unix seconds. ``inherited``:
    the bot's orders still open when it last stopped (from the order journal), as they
    were then; they are tracked like any other, and how each fared meanwhile arrives next
    through ``on_fill`` / ``on_order``."""

    time: float
    inherited: tuple[OrderUpdate, ...] = ()


@dataclass(frozen=True, slots=True)
class Stopping:
    """The bot is stopping; no new orders are accepted after this hook."""

    time: float
    reason: str


@dataclass(frozen=True, slots=True)
class Ticker:
    """Top of book and last trade for one pair."""

    pair: str
    bid: Decimal
    ask: Decimal
    last: Decimal
    time: float

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@dataclass(frozen=True, slots=True)
class BookTop:
    """The best levels of one pair's book, as a verified stream keeps it: (price, volume)
    pairs, best first. Read with ``ctx.book(pair)``; it never comes from a book whose
    checksum failed."""

    pair: str
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    time: float


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLC bar; ``begin`` is when its interval began (Unix seconds)."""

    pair: str
    interval: int  # minutes
    begin: float
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """A snapshot of one order after a change of state (or as returned by ``ctx.place``)."""

    cl_ord_id: str
    pair: str
    side: str
    state: OrderState
    volume: Decimal
    filled: Decimal
    price: Decimal | None  # limit price; None for a market order
    avg_price: Decimal | None
    txid: str | None
    reason: str | None
    time: float

    @property
    def remaining(self) -> Decimal:
        return self.volume - self.filled


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade against one of the strategy's orders; delivered once per trade id."""

    trade_id: str
    cl_ord_id: str
    txid: str
    pair: str
    side: str
    price: Decimal
    volume: Decimal
    fee: Decimal
    maker: bool
    time: float
    #: The exchange's second id for the same trade, when it has one (Kraken: ``#`` and the
    #: pair's integer ``trade_id``, carried by both REST and the WebSocket), so a trade
    #: reported under either id still counts once.
    alt_id: str | None = None
