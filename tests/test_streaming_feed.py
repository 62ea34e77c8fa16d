"""When the runner's orders loop polls while streams are up (framework/streaming.py):
only for a gap, an order still UNKNOWN, a stream that is down, or the safety-net period."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from framework.clock import ManualClock
from framework.errors import StateError, TransientError
from framework.events import Fill, OrderState
from framework.journal import OrderJournal
from framework.orders import LimitOrder, OrderBook
from framework.strategy import Context
from framework.streaming import Feed
from framework.tracking import Tracker


class Execution:
    """What the feed uses of the order manager: its book, its tracker, its poll."""

    def __init__(self, clock: ManualClock) -> None:
        self.book = OrderBook(clock)
        self.tracker = self
        self.venue = self
        self.broken: StateError | None = None
        self.polls = 0
        self.fail = False

    async def poll(self) -> None:
        self.polls += 1
        if self.fail:
            raise TransientError("the exchange is busy")

    def take_fill(self, txid: str, fill: Fill) -> bool:
        return self.book.by_txid(txid) is not None

    def finish(self, reported: Any) -> bool:
        return True


def feed() -> tuple[Feed, Execution, ManualClock]:
    clock = ManualClock()
    execution = Execution(clock)
    ctx = Context(execution, name="t")  # type: ignore[arg-type]
    made = Feed(execution, ctx, lambda e: None, clock=clock, safety_poll_s=30)  # type: ignore[arg-type]
    made.up("orders", True)
    return made, execution, clock


def fill(cl_ord_id: str) -> Fill:
    one = Decimal(1)
    return Fill("T1", cl_ord_id, "O1", "XBTUSD", "buy", one, one, Decimal(0), True, 0.0)


async def test_streaming_orders_are_polled_only_when_something_asks() -> None:
    made, execution, clock = feed()
    await made.poll_orders()  # the first: the safety net has never run
    await made.poll_orders()
    assert execution.polls == 1
    made.gap("executions subscribed")
    await made.poll_orders()
    await made.poll_orders()
    assert execution.polls == 2  # one reconciliation per gap
    clock.advance(30)
    await made.poll_orders()
    assert execution.polls == 3  # the safety net
    made.up("orders", False)
    await made.poll_orders()
    await made.poll_orders()
    assert execution.polls == 5  # down: every tick of the loop, as without streams


async def test_an_unknown_order_is_looked_for_on_every_poll() -> None:
    made, execution, _ = feed()
    await made.poll_orders()
    (order,) = execution.book.record_all(
        [LimitOrder(pair="XBTUSD", side="buy", volume=Decimal(1), price=Decimal(1))]
    )
    execution.book.move(order, OrderState.UNKNOWN)
    await made.poll_orders()
    await made.poll_orders()
    assert execution.polls == 3


async def test_a_failed_reconciliation_is_owed_and_a_fill_ahead_of_its_answer_waits() -> None:
    made, execution, _ = feed()
    await made.poll_orders()
    made.gap("executions sequence 4 -> 6")
    execution.fail = True
    with pytest.raises(TransientError):
        await made.poll_orders()
    execution.fail = False
    await made.poll_orders()  # still owed
    await made.poll_orders()
    assert execution.polls == 3
    (order,) = execution.book.record_all(
        [LimitOrder(pair="XBTUSD", side="buy", volume=Decimal(1), price=Decimal(1))]
    )
    made.fill("O1", fill(order.cl_ord_id))  # the stream is faster than the AddOrder answer
    await made.poll_orders()
    await made.poll_orders()  # no answer yet: asked again
    execution.book.set_txid(order, "O1")
    await made.poll_orders()
    await made.poll_orders()  # settled: quiet again
    assert execution.polls == 6


class Trades:
    """A venue whose TradesHistory holds ``fills``: what fills_since gives."""

    def __init__(self, fills: list[tuple[str, Fill]]) -> None:
        self.fills = fills
        self.asked: list[float] = []

    async def fills_since(self, since: float) -> list[tuple[str, Fill]]:
        self.asked.append(since)
        return [(t, f) for t, f in self.fills if f.time >= since]


async def test_a_streamed_fill_never_hides_an_older_one_from_the_poll() -> None:
    """The stream misses trade A (its connection was half-open), then brings trade B 60 s
    later. The REST poll that follows must still find A: a streamed fill does not move the
    point the poll reads TradesHistory from (it did, and A was lost)."""
    clock = ManualClock()
    book = OrderBook(clock)
    (order,) = book.record_all(
        [LimitOrder(pair="XBTUSD", side="buy", volume=Decimal(2), price=Decimal(1))]
    )
    book.set_txid(order, "O1")
    one = Decimal(1)
    a = Fill("TA", "", "O1", "XBTUSD", "buy", one, one, Decimal(0), True, 1000.0)
    b = Fill("TB", "", "O1", "XBTUSD", "buy", one, one, Decimal(0), True, 1060.0)
    venue = Trades([("O1", a), ("O1", b)])
    seen: list[Any] = []
    tracker = Tracker(venue, book, seen.append, since=990.0, clock=clock)  # type: ignore[arg-type]
    assert tracker.take_fill("O1", b)  # streamed
    await tracker.poll_fills()
    fills = [e.trade_id for e in seen if isinstance(e, Fill)]
    assert fills == ["TB", "TA"] and order.filled == 2
    await tracker.poll_fills()  # the poll's own view moves it on: A and B are behind it now
    assert venue.asked[-1] >= 1060.0 - 5 and len(fills) == 2


async def test_a_trade_under_two_ids_counts_once_even_after_a_restart(tmp_path: Path) -> None:
    """Should an exchange's stream and REST name one trade differently (Kraken's carry a
    second id both share, the pair's integer trade_id), the trade counts once: live, and
    after a restart, when the journal is all that remembers it."""
    clock = ManualClock()
    journal = OrderJournal(tmp_path / "orders.sqlite", exchange="kraken", key_id="k")
    book = OrderBook(clock, journal)
    (order,) = book.record_all(
        [LimitOrder(pair="XBTUSD", side="buy", volume=Decimal(2), price=Decimal(1))]
    )
    book.set_txid(order, "O1")
    one = Decimal(1)
    streamed = Fill("EXEC-1", "", "O1", "XBTUSD", "buy", one, one, Decimal(0), True, 5.0, "#42")
    polled = Fill("TRADE-1", "", "O1", "XBTUSD", "buy", one, one, Decimal(0), True, 5.0, "#42")
    seen: list[Any] = []
    tracker = Tracker(Trades([("O1", polled)]), book, seen.append, since=0.0, clock=clock)  # type: ignore[arg-type]
    assert tracker.take_fill("O1", streamed)
    await tracker.poll_fills()
    assert [e.trade_id for e in seen if isinstance(e, Fill)] == ["EXEC-1"]
    journal.close()
    again = OrderJournal(tmp_path / "orders.sqlite", exchange="kraken", key_id="k")
    restored = OrderBook(clock, again)
    restored.restore(again.open_orders())
    (back,) = list(restored)
    assert not restored.apply_fill(back, dataclasses.replace(polled, cl_ord_id=back.cl_ord_id))
    again.close()


async def test_a_gap_is_repaired_at_once_not_at_the_next_order_poll() -> None:
    """The orders loop may be 10 s away (kraken.example.toml): a gap told by the stream is
    reconciled by REST right away, one poll at a time with the loop's own."""
    made, execution, _ = feed()
    await made.poll_orders()  # the safety net's first run
    told = asyncio.Event()

    class Venue:
        async def stream(self, sink: Feed, pairs: Any) -> None:
            sink.gap("executions subscribed")
            told.set()
            await asyncio.Event().wait()  # streams until cancelled

    task = asyncio.create_task(made.run(Venue(), ["XBTUSD"], lambda line: None))  # type: ignore[arg-type]
    await told.wait()
    for _ in range(3):  # let the repair run
        await asyncio.sleep(0)
    assert execution.polls == 2
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_broken_lane_is_said_even_when_the_streams_ask_for_no_poll() -> None:
    """The runner stops (exit 3) when a poll meets the lane's StateError; streams make polls
    rare, so the orders loop raises it itself (a full disk went unnoticed until the safety
    net, the bot sending nothing meanwhile)."""
    made, execution, _ = feed()
    await made.poll_orders()
    execution.broken = StateError("nonce store: database or disk is full")
    with pytest.raises(StateError, match="disk is full"):
        await made.poll_orders()
