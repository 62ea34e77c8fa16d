"""Kraken's WebSocket v2 book checksum and the local book (framework/exchanges/kraken/book.py)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from framework.exchanges.kraken.book import Book, BookOutOfSync, checksum

#: Kraken's documented example ("Book checksum (WebSocket v2)", docs.kraken.com): the
#: BTC/USD snapshot whose checksum is 3310070434.
DOC_SNAPSHOT = """{
  "bids": [
    {"price": 45283.5, "qty": 0.10000000}, {"price": 45283.4, "qty": 1.54582015},
    {"price": 45282.1, "qty": 0.10000000}, {"price": 45281.0, "qty": 0.10000000},
    {"price": 45280.3, "qty": 1.54592586}, {"price": 45279.0, "qty": 0.07990000},
    {"price": 45277.6, "qty": 0.03310103}, {"price": 45277.5, "qty": 0.30000000},
    {"price": 45277.3, "qty": 1.54602737}, {"price": 45276.6, "qty": 0.15445238}
  ],
  "asks": [
    {"price": 45285.2, "qty": 0.00100000}, {"price": 45286.4, "qty": 1.54571953},
    {"price": 45286.6, "qty": 1.54571109}, {"price": 45289.6, "qty": 1.54560911},
    {"price": 45290.2, "qty": 0.15890660}, {"price": 45291.8, "qty": 1.54553491},
    {"price": 45294.7, "qty": 0.04454749}, {"price": 45296.1, "qty": 0.35380000},
    {"price": 45297.5, "qty": 0.09945542}, {"price": 45299.5, "qty": 0.18772827}
  ],
  "checksum": 3310070434
}"""


def doc_book() -> tuple[Book, dict[str, list[dict[str, Decimal]]]]:
    snapshot = json.loads(DOC_SNAPSHOT, parse_float=Decimal)
    book = Book("BTC/USD", depth=10)
    book.load(snapshot["bids"], snapshot["asks"], snapshot["checksum"])
    return book, snapshot


def test_kraken_documented_example_verifies() -> None:
    book, snapshot = doc_book()
    assert not book.stale and book.checksum() == 3310070434
    levels = [(lv["price"], lv["qty"]) for lv in snapshot["asks"]]
    assert checksum(levels, [(lv["price"], lv["qty"]) for lv in snapshot["bids"]]) == 3310070434


def test_an_update_is_applied_cut_to_depth_and_verified() -> None:
    book, _ = doc_book()
    new_bid = {"price": Decimal("45284.0"), "qty": Decimal("0.50000000")}
    gone_ask = {"price": Decimal("45285.2"), "qty": Decimal("0")}
    expected_asks = book.asks()[1:]
    expected_bids = [(new_bid["price"], new_bid["qty"]), *book.bids()[:9]]
    expected = checksum(expected_asks, expected_bids)
    book.apply([new_bid], [gone_ask], expected)
    assert book.bids()[0] == (Decimal("45284.0"), Decimal("0.50000000"))
    assert len(book.bids()) == 10 and len(book.asks()) == 9  # the 11th bid fell out
    assert book.updates == 1


def test_a_corrupted_update_is_caught_and_the_book_waits_for_a_snapshot() -> None:
    book, snapshot = doc_book()
    honest = [(lv["price"], lv["qty"]) for lv in snapshot["asks"]]
    expected = checksum(honest, book.bids())  # what Kraken computed: the qty unchanged
    corrupted = {"price": Decimal("45286.4"), "qty": Decimal("1.54571954")}  # one digit off
    with pytest.raises(BookOutOfSync, match="checksum"):
        book.apply([], [corrupted], expected)
    assert book.stale
    with pytest.raises(BookOutOfSync, match="waits for a snapshot"):  # nothing more applied
        book.apply([], [], None)
    book.load(snapshot["bids"], snapshot["asks"], snapshot["checksum"])
    assert not book.stale and book.rebuilds == 1


def test_a_malformed_level_is_a_value_error_not_a_crash_of_the_book() -> None:
    book, _ = doc_book()
    for bad in ({"price": "NaN", "qty": "1"}, {"price": "-1", "qty": "1"}, ["45000", "1"]):
        with pytest.raises((ValueError, ArithmeticError)):
            book.apply([bad], [], None)
