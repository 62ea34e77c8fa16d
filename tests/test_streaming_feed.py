"""When the runner's orders loop polls while streams are up (framework/streaming.py):
only for a gap, an order still UNKNOWN, a stream that is down, or the safety-net period."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from framework.clock import ManualClock
from framework.errors import TransientError
from framework.events import Fill, OrderState
from framework.orders import LimitOrder, OrderBook
from framework.strategy import Context
from framework.streaming import Feed


class Execution:
    """What the feed uses of the order manager: its book, its tracker, its poll."""

    def __init__(self, clock: ManualClock) -> None:
        self.book = OrderBook(clock)
        self.tracker = self
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
