"""The sandbox's matching engine on its own, in Orderly's types: no Kraken request, answer
or error string between a caller and its orders, fills and refusals."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

import pytest

from framework.clock import ManualClock
from framework.events import Fill, OrderState
from framework.sandbox.engine import (
    DUPLICATE_CLIENT_ID,
    INSUFFICIENT_FUNDS,
    Engine,
    Refused,
    SimOrder,
)
from framework.sandbox.market import Market, MarketRules

Event = tuple[str, str, Fill | None]


def engine() -> tuple[Engine, ManualClock, list[Event]]:
    clock = ManualClock(wall_ns=1_800_000_000 * 10**9)
    matching = Engine(Market(MarketRules(seed=3, step_s=1.0, volatility=0.002), clock))
    events: list[Event] = []

    def heard(kind: str, order: SimOrder, fill: Fill | None) -> None:
        events.append((kind, order.txid, fill))

    matching.listeners.append(heard)
    return matching, clock, events


def test_a_market_order_fills_at_the_touch_as_an_orderly_fill() -> None:
    matching, _, events = engine()
    _, ask = matching.market.quote("XBTUSD")
    order = matching.place("acct", "XBTUSD", "buy", Decimal("0.1"), None, cl_ord_id="c1")
    assert order.state is OrderState.FILLED and not order.is_open
    (fill,) = matching.fills_of("acct")
    assert isinstance(fill, Fill)
    assert (fill.txid, fill.cl_ord_id, fill.side, fill.price, fill.volume, fill.maker) == (
        order.txid,
        "c1",
        "buy",
        ask,
        Decimal("0.1"),
        False,
    )
    assert fill.fee == (ask * Decimal("0.1") * Decimal("0.0026")).quantize(Decimal("1e-8"))
    assert matching.balances("acct")["XXBT"] == Decimal("2.1")
    assert [(kind, fill is not None) for kind, _, fill in events] == [
        ("new", False),
        ("trade", True),
        ("filled", False),
    ]


def test_a_resting_order_fills_at_its_price_when_the_market_reaches_it() -> None:
    matching, clock, events = engine()
    bid, _ = matching.market.quote("XBTUSD")
    price = (bid * Decimal("0.995")).quantize(Decimal("0.1"))
    order = matching.place("acct", "XBTUSD", "buy", Decimal("0.01"), price)
    assert order.state is OrderState.ACCEPTED and order.is_open
    for _ in range(2_000):  # bounded: the walk crosses 0.5 % well within this many steps
        if not order.is_open:
            break
        clock.advance(1.0)
        matching.sync()
    assert order.state is OrderState.FILLED
    (fill,) = matching.fills_of("acct")
    assert (fill.price, fill.maker) == (price, True)
    assert events[-1] == ("filled", order.txid, None)


def test_post_only_through_the_spread_is_cancelled_and_cancel_closes_an_order() -> None:
    matching, _, events = engine()
    _, ask = matching.market.quote("XBTUSD")
    taker = matching.place("acct", "XBTUSD", "buy", Decimal("0.01"), ask, post_only=True)
    assert (taker.state, taker.reason) == (OrderState.CANCELLED, "Post only order")
    resting = matching.place("acct", "XBTUSD", "sell", Decimal("0.01"), ask * 2)
    assert matching.cancel([resting]) == 1
    assert resting.state is OrderState.CANCELLED and matching.open == {}
    assert ("cancelled", resting.txid, None) in events and matching.fills == {}


def test_refusals_are_the_engines_own_reasons() -> None:
    matching, _, _ = engine()
    _, ask = matching.market.quote("XBTUSD")
    with pytest.raises(Refused) as too_big:
        matching.place("acct", "XBTUSD", "buy", Decimal(1000), ask)
    assert too_big.value.reason == INSUFFICIENT_FUNDS
    matching.place("acct", "XBTUSD", "buy", Decimal("0.01"), ask / 2, cl_ord_id="same")
    with pytest.raises(Refused) as again:
        matching.place("acct", "XBTUSD", "buy", Decimal("0.01"), ask / 2, cl_ord_id="same")
    assert again.value.reason == DUPLICATE_CLIENT_ID
    matching.place("other", "XBTUSD", "buy", Decimal("0.01"), ask / 2, cl_ord_id="same")


def test_the_engine_imports_no_exchange_api() -> None:
    """Kraken's API is a front over the engine (matching.py, reads.py, changes.py, ws*.py):
    the engine itself imports Orderly's types and the market, nothing of an exchange."""
    source = Path(__file__).parent.parent / "framework" / "sandbox" / "engine.py"
    imported = {
        node.module
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert {m for m in imported if m.startswith("framework")} == {
        "framework.events",
        "framework.sandbox.market",
    }
