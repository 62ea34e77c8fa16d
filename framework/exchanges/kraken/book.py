"""Kraken's level-2 book as a WebSocket v2 client keeps it, and its CRC32 checksum.

The checksum (Kraken's guide "Book checksum (WebSocket v2)"): the top 10 asks, low to high,
then the top 10 bids, high to low; each level's price and qty as they came on the wire with
the ``.`` and the leading zeros removed; CRC32 of the whole string, unsigned. Prices and
quantities are kept as :class:`~decimal.Decimal` parsed from the JSON text
(``json.loads(text, parse_float=Decimal)``), so their wire digits survive.

    book = Book("BTC/USD", depth=10)
    book.load(snapshot["bids"], snapshot["asks"], snapshot["checksum"])
    book.apply(update["bids"], update["asks"], update["checksum"])   # BookOutOfSync if wrong

A book whose checksum failed is ``stale`` until the next snapshot: :meth:`apply` refuses
updates to it, so nothing is ever applied to a book known to be wrong.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from framework.errors import ExchangeError

#: How many levels a side the checksum covers.
CHECKSUM_LEVELS = 10


class BookOutOfSync(ExchangeError):
    """The local book's checksum differs from the exchange's: rebuild it from a snapshot."""


def _digits(value: Decimal) -> str:
    return f"{value:f}".replace(".", "").lstrip("0")


def checksum(
    asks: Iterable[tuple[Decimal, Decimal]], bids: Iterable[tuple[Decimal, Decimal]]
) -> int:
    """Kraken's CRC32 of the best levels given (asks low to high, bids high to low; only
    the first ten of each are read)."""
    text = "".join(
        _digits(price) + _digits(qty)
        for side in (asks, bids)
        for (price, qty), _ in zip(side, range(CHECKSUM_LEVELS), strict=False)
    )
    return zlib.crc32(text.encode()) & 0xFFFFFFFF


def _level(entry: Any) -> tuple[Decimal, Decimal]:
    if not isinstance(entry, Mapping):
        raise ValueError(f"a book level is not an object: {entry!r:.80}")
    price, qty = Decimal(str(entry["price"])), Decimal(str(entry["qty"]))
    if not (price.is_finite() and qty.is_finite()) or price <= 0 or qty < 0:
        raise ValueError(f"a book level is out of range: {entry!r:.80}")
    return price, qty


class Book:
    """One pair's book, ``depth`` levels a side."""

    def __init__(self, symbol: str, depth: int = 10) -> None:
        self.symbol = symbol
        self.depth = depth
        self._bids: dict[Decimal, tuple[Decimal, Decimal]] = {}  # price -> (wire price, qty)
        self._asks: dict[Decimal, tuple[Decimal, Decimal]] = {}
        self.stale = True  # no snapshot yet
        self.updates = 0  # applied and verified since the last snapshot
        self.failures = 0  # checksums that did not match
        self.rebuilds = 0  # snapshots after a checksum failure

    def bids(self, n: int | None = None) -> list[tuple[Decimal, Decimal]]:
        """Best first."""
        return [self._bids[p] for p in sorted(self._bids, reverse=True)][:n]

    def asks(self, n: int | None = None) -> list[tuple[Decimal, Decimal]]:
        """Best first."""
        return [self._asks[p] for p in sorted(self._asks)][:n]

    def checksum(self) -> int:
        return checksum(self.asks(CHECKSUM_LEVELS), self.bids(CHECKSUM_LEVELS))

    def load(self, bids: Iterable[Any], asks: Iterable[Any], expected: int | None) -> None:
        """A snapshot: the book is replaced, then verified."""
        if self.stale and self.failures:
            self.rebuilds += 1
        self._bids, self._asks = {}, {}
        self.stale = False
        self.updates = 0
        self._merge(bids, asks)
        self._verify(expected)

    def apply(self, bids: Iterable[Any], asks: Iterable[Any], expected: int | None) -> None:
        """An update: levels with qty 0 leave, the others are set; the book is cut to its
        depth, then verified. Refused on a stale book (wait for a snapshot)."""
        if self.stale:
            raise BookOutOfSync(
                f"update to the {self.symbol} book while it waits for a snapshot", exchange="kraken"
            )
        self._merge(bids, asks)
        self._verify(expected)
        self.updates += 1

    def _merge(self, bids: Iterable[Any], asks: Iterable[Any]) -> None:
        for side, entries, best_first in ((self._bids, bids, True), (self._asks, asks, False)):
            for entry in entries:
                price, qty = _level(entry)
                if qty == 0:
                    side.pop(price, None)
                else:
                    side[price] = (price, qty)
            for price in sorted(side, reverse=best_first)[self.depth :]:
                del side[price]

    def _verify(self, expected: int | None) -> None:
        if expected is None:
            return
        mine = self.checksum()
        if mine != int(expected):
            self.stale = True
            self.failures += 1
            raise BookOutOfSync(
                f"{self.symbol} book checksum {mine} differs from Kraken's {expected}",
                exchange="kraken",
            )
