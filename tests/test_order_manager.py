"""The order manager owns every order's life: whatever happens to the task that asked (a hook
cancelled at its time limit), each order reaches a known state and its events arrive.
Real HTTP against the sandbox; deadlines run on a shared virtual clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from framework.clock import Clock, ScaledClock
from framework.config import Config
from framework.errors import InvalidArguments, OrderRejected, UsageError
from framework.events import Fill, OrderState, OrderUpdate
from framework.exchanges.kraken.venue import KrakenVenue, kraken_venue
from framework.execution import Execution
from framework.orders import LimitOrder, MarketOrder
from framework.sandbox import Fault, FaultRules, Sandbox
from framework.sandbox.faults import FaultInjector

BUY = LimitOrder(pair="XBTUSD", side="buy", volume=Decimal("0.001"), price=Decimal(1000))


@contextlib.asynccontextmanager
async def exchange(
    tmp_path: Path,
    creds: tuple[str, str],
    *,
    faults: tuple[Fault, ...] = (),
    clock: Clock | None = None,
    entry: str = "rest",
    **sandbox: Any,
) -> AsyncIterator[tuple[Sandbox, KrakenVenue]]:
    """The sandbox and a Kraken venue on it; ``entry``: its ``order_entry`` (rest or ws)."""
    clock = clock or ScaledClock(10)
    exchange = {"timeout_s": 0.5, "order_deadline_s": 2, "tier": "none", "order_entry": entry}
    config = Config.model_validate(
        {
            "exchange": exchange,
            "state": {"store": str(tmp_path / "n.sqlite"), "history": str(tmp_path / "h.jsonl")},
        }
    )
    box = Sandbox(dict([creds]), faults=FaultRules(faults=faults), clock=clock, **sandbox)
    async with box:
        ws = (box.ws_url, box.ws_url)
        async with kraken_venue(config, *creds, box.base_url, clock=clock, ws_urls=ws) as venue:
            yield box, venue


def sent(venue: KrakenVenue, endpoint: str) -> int:
    records = venue.client._history.recent(venue.key_id, 100_000)  # type: ignore[union-attr]
    return sum(1 for r in records if r["event"] == "nonce_assigned" and r["endpoint"] == endpoint)


async def test_a_hook_cancelled_mid_place_still_gets_its_order_filled(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    events: list[object] = []
    async with exchange(tmp_path, creds, delay_ms=(1500, 1500)) as (_, venue):
        execution = Execution(venue, events.append, clock=venue.client.clock)
        with pytest.raises(TimeoutError):  # the hook's time limit, shorter than the answer
            async with asyncio.timeout(0.05):
                await execution.place(
                    MarketOrder(pair="XBTUSD", side="buy", volume=Decimal("0.01"))
                )
        assert await execution.drain(timeout=60)
        await execution.poll()
    (order,) = list(execution.book)
    assert order.state is OrderState.FILLED and order.txid is not None
    assert [type(e).__name__ for e in events] == ["OrderUpdate", "Fill", "OrderUpdate"]
    assert [e.state for e in events if isinstance(e, OrderUpdate)] == [
        OrderState.ACCEPTED,
        OrderState.FILLED,
    ]
    assert execution.open_orders() == []


@pytest.mark.parametrize("endpoint", ["AddOrder", "AddOrderBatch"])
async def test_an_unreadable_answer_after_execution_is_ambiguous_never_a_refusal(
    tmp_path: Path, creds: tuple[str, str], endpoint: str
) -> None:
    events: list[object] = []
    garbled = (Fault("garbled", 1.0, (endpoint,)),)
    async with exchange(tmp_path, creds, faults=garbled) as (box, venue):
        execution = Execution(venue, events.append, since=0, clock=venue.client.clock)
        orders = [MarketOrder(pair="XBTUSD", side="buy", volume=Decimal("0.01"))] * (
            1 if endpoint == "AddOrder" else 4
        )
        updates = await execution.place_batch(orders)
        await execution.poll()
        at_exchange = {o.cl_ord_id: o for o in box.engine.orders.values()}
    assert box.faults.injected == {"garbled": 1}
    assert all(u.state is OrderState.ACCEPTED for u in updates)  # adopted, not REJECTED
    for order in execution.book:
        assert at_exchange[order.cl_ord_id].txid == order.txid  # its exchange id
        assert order.state is OrderState.FILLED
    fills = [e for e in events if isinstance(e, Fill)]
    assert len(fills) == len(orders) == len(at_exchange)  # each fill delivered, once
    assert execution.resent == 0


async def test_a_batch_whose_lookups_outlast_the_hook_still_ends_known(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    lost = (Fault("lost", 1.0, ("AddOrderBatch",)),)
    async with exchange(tmp_path, creds, faults=lost, delay_ms=(500, 500)) as (box, venue):
        execution = Execution(venue, lambda event: None, clock=venue.client.clock)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await execution.place_batch([BUY] * 5)
        assert await execution.drain(timeout=60)
    assert [o.state for o in execution.book] == [OrderState.ACCEPTED] * 5
    assert len(box.engine.orders) == 5 and execution.resent == 0


async def test_an_order_proven_absent_after_its_deadline_is_closed_by_polling(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    """The send was dropped (never executed) and every lookup failed: the order stays
    UNKNOWN after its send; once lookups work and its deadline has passed, a poll closes
    it instead of leaving a ghost order open forever."""
    clock = ScaledClock(50)
    faults = (
        Fault("drop", 1.0, ("AddOrder",)),
        Fault("unavailable", 1.0, ("OpenOrders", "ClosedOrders")),
    )
    async with exchange(tmp_path, creds, faults=faults, clock=clock) as (box, venue):
        execution = Execution(venue, lambda event: None, clock=clock)
        update = await execution.place(BUY)
        assert update.state is OrderState.UNKNOWN
        box.faults = FaultInjector(FaultRules())  # the exchange answers again
        await clock.sleep(3.5)  # past deadline + margin
        await execution.poll()
    (order,) = list(execution.book)
    assert order.state is OrderState.REJECTED and "absent" in str(order.reason)
    assert box.engine.orders == {} and execution.open_orders() == []


@pytest.mark.parametrize("bad", [{"pair": "XBTUSD", "side": "buy"}, None, "order"])
async def test_bad_arguments_are_refused_before_anything_is_recorded(
    tmp_path: Path, creds: tuple[str, str], bad: Any
) -> None:
    async with exchange(tmp_path, creds) as (box, venue):
        execution = Execution(venue, lambda event: None)
        with pytest.raises(InvalidArguments, match="not a LimitOrder or MarketOrder") as caught:
            await execution.place(bad)
        # the caller's mistake, not the exchange's refusal: nothing was sent
        assert isinstance(caught.value, UsageError) and not isinstance(caught.value, OrderRejected)
        with pytest.raises(InvalidArguments):
            await execution.place_batch([BUY, bad])
        with pytest.raises(InvalidArguments, match="list of orders"):
            await execution.place_batch(bad if bad is not None else 3)
        with pytest.raises(InvalidArguments, match=r"cancel takes|no order with"):
            await execution.cancel(bad if bad is not None else 3)
        assert len(execution.book) == 0 and execution.open_orders() == []
        assert (await execution.place(BUY)).state is OrderState.ACCEPTED  # still works
    assert len(box.engine.orders) == 1


async def test_a_thousand_order_batch_whose_hook_times_out_all_reach_a_known_state(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    async with exchange(tmp_path, creds) as (box, venue):
        execution = Execution(venue, lambda event: None)
        orders = [
            LimitOrder(pair="XBTUSD", side="buy", volume=Decimal("0.0001"), price=Decimal(1000 + i))
            for i in range(1000)
        ]
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await execution.place_batch(orders)
        assert await execution.drain(timeout=120)
    states = {o.state for o in execution.book}
    assert states == {OrderState.ACCEPTED} and len(box.engine.orders) == 1000


async def test_cancel_of_an_order_the_exchange_closed_settles_it_at_once(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    events: list[object] = []
    async with exchange(tmp_path, creds) as (_, venue):
        execution = Execution(venue, events.append, clock=venue.client.clock)
        update = await execution.place(BUY)
        await venue.client.cancel_order(cl_ord_id=update.cl_ord_id)  # closed behind its back
        before = sent(venue, "CancelOrder")
        results = await asyncio.gather(*(execution.cancel(update) for _ in range(5)))
        assert execution.open_orders() == []  # at once, not at the next poll
        assert await execution.cancel(update) is False  # no longer open: nothing sent
        cancels = sent(venue, "CancelOrder") - before
    assert results == [False] * 5
    assert cancels == 1  # one cancel in flight for one order, never a storm
    assert execution.book.get(update.cl_ord_id).state is OrderState.CANCELLED  # type: ignore[union-attr]
    assert [e.state for e in events if isinstance(e, OrderUpdate)][-1] is OrderState.CANCELLED


async def test_a_lost_batch_answer_costs_one_lookup_not_one_per_order(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    """A grid's lost AddOrderBatch of 8 used to cost 16 REST points of lookups, twice; on a
    slow tier that starved the polls for a minute (bench/soak_grid.py, seed 2)."""
    lost = (Fault("lost", 1.0, ("AddOrderBatch",)),)
    async with exchange(tmp_path, creds, faults=lost) as (box, venue):
        execution = Execution(venue, lambda event: None, clock=venue.client.clock)
        cheap = LimitOrder(pair="XBTUSD", side="buy", volume=Decimal("0.001"), price=Decimal(1))
        await execution.place(cheap)  # an order closed before the batch
        await execution.cancel((await execution.place(cheap)).cl_ord_id)
        before = {e: sent(venue, e) for e in ("OpenOrders", "ClosedOrders")}
        updates = await execution.place_batch([BUY] * 8)
        lookups = {e: sent(venue, e) - n for e, n in before.items()}
    assert [u.state for u in updates] == [OrderState.ACCEPTED] * 8  # all adopted
    assert lookups == {"OpenOrders": 1, "ClosedOrders": 0}  # all found open at once
    assert len(box.engine.orders) == 10 and execution.resent == 0


async def test_an_order_filled_during_a_poll_is_finished_by_that_poll(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    """Found by a crash soak's last stop: the trades were read, then the order filled, then
    OpenOrders showed it gone and QueryOrders filled: its trade not yet read, the order was
    left for the next poll, and the stop's final poll had no next one (the fill reached
    neither on_fill nor the journal before the bot stopped). Now the poll reads the trades
    again and finishes such an order at once."""
    events: list[object] = []
    async with exchange(tmp_path, creds) as (sandbox, venue):
        execution = Execution(venue, events.append, clock=venue.client.clock)
        placed = await execution.place(BUY)
        ticker = await venue.ticker("XBTUSD")
        read_trades = venue.fills_since

        async def fills_then_a_fill(since: float) -> Any:
            found = await read_trades(since)
            if not sandbox.engine.fills_of(creds[0]):  # the fill lands just after the read
                through = {"cl_ord_id": placed.cl_ord_id, "limit_price": str(ticker.ask * 2)}
                sandbox.engine.amend_order(creds[0], through)  # trades at once, as taker
            return found

        venue.fills_since = fills_then_a_fill  # type: ignore[method-assign]
        await execution.poll()
        assert execution.book.get(placed.cl_ord_id).state is OrderState.FILLED
    assert [type(e).__name__ for e in events][-2:] == ["Fill", "OrderUpdate"]


async def test_an_order_that_fills_on_its_own_leaves_the_view_only_with_its_fills(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    """Found writing a bracket strategy as a new user: a poll (or the stream) finished the
    entry order while a tick was already queued; that tick's hook saw no open order and no
    fill (its on_fill was queued behind the tick), took its position as flat and placed a
    second entry. Now, where a runner gives events to a strategy, an order that finishes on
    its own stays in ``open_orders()`` (in its final state) until its final update has been
    given, which comes after its fills; one the strategy's own call finished leaves at once."""
    events: list[object] = []
    async with exchange(tmp_path, creds) as (sandbox, venue):
        execution = Execution(venue, events.append, clock=venue.client.clock, held=True)
        placed = await execution.place(BUY)
        closed = await execution.place(BUY)
        ticker = await venue.ticker("XBTUSD")
        through = {"cl_ord_id": placed.cl_ord_id, "limit_price": str(ticker.ask * 2)}
        sandbox.engine.amend_order(creds[0], through)  # trades at once, behind the bot's back
        assert await execution.cancel(closed) is True  # its own call answered: gone at once
        assert closed.cl_ord_id not in [u.cl_ord_id for u in execution.open_orders()]
        gone = await execution.place(BUY)
        await venue.client.cancel_order(cl_ord_id=gone.cl_ord_id)  # closed behind its back
        assert await execution.cancel(gone) is False  # answered: gone at once, as without held
        assert gone.cl_ord_id not in [u.cl_ord_id for u in execution.open_orders()]
        await execution.poll()
        assert execution.book.get(placed.cl_ord_id).state is OrderState.FILLED  # type: ignore[union-attr]
        listed = execution.open_orders()  # nothing given to the strategy yet
        assert [(u.cl_ord_id, u.state) for u in listed] == [(placed.cl_ord_id, OrderState.FILLED)]
        for event in events:
            execution.tracker.given(event)
            if isinstance(event, Fill):  # its fills are given before its final update
                assert [u.cl_ord_id for u in execution.open_orders()] == [placed.cl_ord_id]
        assert execution.open_orders() == []
