"""Order requests, the state table, fill de-duplication, batch splitting."""

from __future__ import annotations

from decimal import Decimal

import pytest

from framework.errors import InvalidArguments
from framework.events import Fill, OrderState
from framework.orders import TRANSITIONS, LimitOrder, MarketOrder, OrderBook, batches

S = OrderState


def test_requests_check_themselves() -> None:
    order = LimitOrder(pair="XBTUSD", side="buy", volume="0.5", price=100)  # type: ignore[arg-type]
    assert order.volume == Decimal("0.5") and order.price == Decimal(100)
    with pytest.raises(InvalidArguments, match="float"):
        LimitOrder(pair="XBTUSD", side="buy", volume=0.1, price=Decimal(1))  # type: ignore[arg-type]
    with pytest.raises(InvalidArguments, match="positive"):
        MarketOrder(pair="XBTUSD", side="sell", volume=Decimal(0))
    with pytest.raises(InvalidArguments, match="side"):
        MarketOrder(pair="XBTUSD", side="long", volume=Decimal(1))  # type: ignore[arg-type]
    with pytest.raises(InvalidArguments, match="not a number"):
        MarketOrder(pair="XBTUSD", side="buy", volume="lots")  # type: ignore[arg-type]


def test_terminal_states_have_no_way_out() -> None:
    for state in (S.FILLED, S.CANCELLED, S.REJECTED):
        assert TRANSITIONS[state] == frozenset()
    assert set(TRANSITIONS) == set(OrderState)


def test_book_ignores_backward_moves_and_records_before_sending() -> None:
    book = OrderBook()
    order = book.record(MarketOrder(pair="XBTUSD", side="buy", volume=Decimal(1)))
    assert len(order.cl_ord_id) == 32 and book.get(order.cl_ord_id) is order
    assert order.state is S.SUBMITTED  # recorded, nothing sent yet
    assert book.move(order, S.ACCEPTED)
    assert book.move(order, S.FILLED)
    assert not book.move(order, S.ACCEPTED)  # a late report
    assert not book.move(order, S.CANCELLED)
    assert order.state is S.FILLED


def test_fills_counted_once_per_trade_id() -> None:
    book = OrderBook()
    order = book.record(LimitOrder(pair="XBTUSD", side="buy", volume=Decimal(2), price=Decimal(10)))
    fill = Fill(
        trade_id="T1",
        cl_ord_id=order.cl_ord_id,
        txid="O1",
        pair="XBTUSD",
        side="buy",
        price=Decimal(10),
        volume=Decimal(1),
        fee=Decimal(0),
        maker=True,
        time=0.0,
    )
    assert book.apply_fill(order, fill)
    assert not book.apply_fill(order, fill)
    assert order.filled == Decimal(1) and order.snapshot().avg_price == Decimal(10)


def test_batches_split_by_pair_and_limit() -> None:
    orders = [
        MarketOrder(pair="XBTUSD" if i % 4 else "ETHUSD", side="buy", volume=Decimal(1))
        for i in range(40)
    ]
    chunks = batches(orders, 15)
    assert sorted(i for chunk in chunks for i in chunk) == list(range(40))
    assert all(len(chunk) <= 15 for chunk in chunks)
    assert all(len({orders[i].pair for i in chunk}) == 1 for chunk in chunks)
    assert [len(c) for c in chunks] == [10, 15, 15]  # pairs in order of first appearance
