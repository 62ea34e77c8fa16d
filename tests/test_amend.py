"""``ctx.amend``: an open limit order changes price and/or volume in place (Kraken
AmendOrder: same ids), through the order manager: checked before anything is sent, retried
when the answer is lost (amending to the same values twice is harmless), settled when the
order is gone, and written to the journal. Real HTTP against the sandbox."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from framework.clock import ManualClock, ScaledClock
from framework.config import Config
from framework.errors import InvalidArguments, UsageError
from framework.events import OrderState, OrderUpdate
from framework.exchanges.kraken.venue import kraken_venue
from framework.execution import Execution
from framework.journal import OrderJournal
from framework.orders import LimitOrder, MarketOrder
from framework.sandbox import Fault, FaultRules, Sandbox
from framework.sandbox.auth import KrakenFailure
from framework.sandbox.faults import FaultInjector
from framework.sandbox.market import Market, MarketRules
from framework.sandbox.matching import MatchingEngine
from tests.test_order_manager import BUY, exchange, sent


async def test_an_amended_order_rests_at_its_new_price_and_volume(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    journal = OrderJournal(tmp_path / "orders.sqlite", exchange="kraken", key_id="k")
    async with exchange(tmp_path, creds) as (sandbox, venue):
        execution = Execution(venue, [].append, clock=venue.client.clock, journal=journal)
        placed = await execution.place(BUY)
        assert await execution.amend(placed, price="1001.5", volume=Decimal("0.002")) is True
        (resting,) = sandbox.engine.open.values()
        assert (resting.price, resting.volume) == (Decimal("1001.5"), Decimal("0.002"))
        assert resting.txid == placed.txid  # the same order, changed in place
        (now,) = execution.open_orders()
        assert (now.price, now.volume, now.state) == (
            Decimal("1001.5"),
            Decimal("0.002"),
            OrderState.ACCEPTED,
        )
        assert await execution.amend(placed.cl_ord_id, price=Decimal(999)) is True
        assert sent(venue, "AmendOrder") == 2
    (kept,) = journal.open_orders()  # a restart would find the order as it is now
    assert (kept.request.price, kept.request.volume) == (Decimal(999), Decimal("0.002"))
    journal.close()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "amend needs a new price or a new volume"),
        ({"price": 1000.5}, "price must be a Decimal, str or int, not float"),
        ({"volume": "-1"}, "volume must be positive"),
        ({"price": "abc"}, "price is not a number"),
    ],
)
async def test_bad_amends_raise_before_anything_is_sent(
    tmp_path: Path, creds: tuple[str, str], changes: dict[str, Any], message: str
) -> None:
    async with exchange(tmp_path, creds) as (_, venue):
        execution = Execution(venue, [].append, clock=venue.client.clock)
        placed = await execution.place(BUY)
        with pytest.raises(InvalidArguments, match=message):
            await execution.amend(placed, **changes)
        with pytest.raises(InvalidArguments, match="no order with client order id"):
            await execution.amend("not-an-order", price=1)
        assert sent(venue, "AmendOrder") == 0
        (now,) = execution.open_orders()
        assert now.price == BUY.price


async def test_only_an_open_limit_order_changes_and_never_to_its_filled_part(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    async with exchange(tmp_path, creds) as (_, venue):
        execution = Execution(venue, [].append, clock=venue.client.clock)
        market = await execution.place(MarketOrder(pair="XBTUSD", side="buy", volume="0.01"))
        with pytest.raises(InvalidArguments, match="only a limit order can be amended"):
            await execution.amend(market, price=1000)
        placed = await execution.place(BUY)
        tracked = execution.book.get(placed.cl_ord_id)
        assert tracked is not None
        tracked.filled = Decimal("0.0005")  # as if half of it had filled
        with pytest.raises(InvalidArguments, match=r"above the 0\.0005 already filled"):
            await execution.amend(placed, volume="0.0005")
        assert await execution.cancel(placed) is True
        assert await execution.amend(placed, price=999) is False  # not open: nothing sent
        assert sent(venue, "AmendOrder") == 0


async def test_amending_an_order_the_exchange_has_closed_settles_it(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    events: list[object] = []
    async with exchange(tmp_path, creds) as (sandbox, venue):
        execution = Execution(venue, events.append, clock=venue.client.clock)
        placed = await execution.place(BUY)
        sandbox.engine.cancel(list(sandbox.engine.open.values()))  # behind the bot's back
        assert await execution.amend(placed, price=999) is False
        assert execution.open_orders() == []  # gone at once, not at the next poll
    assert events[-1].state is OrderState.CANCELLED  # type: ignore[attr-defined]


async def test_a_lost_amend_answer_is_sent_again_and_the_order_ends_changed(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    lost = (Fault("lost", 1.0, ("AmendOrder",)),)
    async with exchange(tmp_path, creds, faults=lost, clock=ScaledClock(20)) as (sandbox, venue):
        execution = Execution(venue, [].append, clock=venue.client.clock)
        placed = await execution.place(BUY)
        # every answer lost: each try applied it; the order is looked up and shows the change
        assert await execution.amend(placed, price="1002") is True
        (resting,) = sandbox.engine.open.values()
        assert resting.price == Decimal(1002)
        assert execution.open_orders()[0].price == Decimal(1002)
        assert sent(venue, "AmendOrder") == execution.max_resends + 1


async def test_a_venue_that_cannot_amend_says_so(tmp_path: Path, creds: tuple[str, str]) -> None:
    async with exchange(tmp_path, creds) as (_, venue):
        execution = Execution(venue, [].append, clock=venue.client.clock)
        placed = await execution.place(BUY)
        venue.can_amend = False  # as Bitunix and Synthetix venues
        with pytest.raises(UsageError, match="cannot amend"):
            await execution.amend(placed, price=999)


FAULTS = ("lost", "slow", "garbled", "busy", "unavailable", "drop", "internal_error")


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_under_every_fault_the_bots_price_is_the_exchanges(
    tmp_path: Path, creds: tuple[str, str], seed: int
) -> None:
    """Amends whose calls fail in every way the sandbox can fail them: after each one the
    order the bot shows has the price the exchange has, whatever it returned (seven fault
    kinds at 10 % each: about half of all tries fail; seeds 1-16 passed)."""
    faults = tuple(Fault(kind, 0.1, ("AmendOrder",)) for kind in FAULTS)
    async with exchange(tmp_path, creds, clock=ScaledClock(50)) as (sandbox, venue):
        sandbox.faults = FaultInjector(FaultRules(faults=faults, seed=seed))
        execution = Execution(venue, [].append, clock=venue.client.clock)
        placed = await execution.place(BUY)
        changed = 0
        for step in range(12):
            changed += await execution.amend(placed, price=Decimal(990 + step))
            (resting,) = sandbox.engine.open.values()
            (shown,) = execution.open_orders()
            assert shown.price == resting.price, f"step {step}"
        assert changed >= 6  # most amends go through in the end


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_amends_that_land_late_are_taken_from_the_exchange_by_the_next_poll(
    tmp_path: Path, creds: tuple[str, str], seed: int
) -> None:
    """Amends that reach the engine, or answer, after the client gave up on them (past its
    timeout): an older one can land after a newer one. The exchange is right: once they have
    all landed, one poll makes the bot show what the exchange has (seeds 1-16 passed)."""
    faults = tuple(Fault(kind, 0.1, ("AmendOrder",)) for kind in (*FAULTS, "late"))
    async with exchange(tmp_path, creds, clock=ScaledClock(50)) as (sandbox, venue):
        sandbox.faults = FaultInjector(FaultRules(faults=faults, seed=seed, slow_s=40, late_s=40))
        execution = Execution(venue, [].append, clock=venue.client.clock)
        placed = await execution.place(BUY)
        for step in range(12):
            await execution.amend(placed, price=Decimal(990 + step))
        await venue.client.clock.sleep(60)  # every late amend has landed
        await execution.poll()
        (resting,) = sandbox.engine.open.values()
        (shown,) = execution.open_orders()
        assert (shown.price, shown.volume) == (resting.price, resting.volume)


async def test_an_order_amended_elsewhere_takes_the_exchanges_terms_at_the_next_poll(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    async with exchange(tmp_path, creds) as (sandbox, venue):
        execution = Execution(venue, [].append, clock=venue.client.clock)
        placed = await execution.place(BUY)
        body = {"cl_ord_id": placed.cl_ord_id, "limit_price": "1005", "order_qty": "0.004"}
        sandbox.engine.amend_order(creds[0], body)  # the exchange's web page, say
        await execution.poll()
        (shown,) = execution.open_orders()
        assert (shown.price, shown.volume) == (Decimal(1005), Decimal("0.004"))


async def test_with_websocket_order_entry_an_amend_goes_by_amend_order(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    config = Config.model_validate(
        {
            "exchange": {"timeout_s": 2, "tier": "none", "order_entry": "ws"},
            "state": {"store": str(tmp_path / "n.sqlite"), "history": str(tmp_path / "h.jsonl")},
        }
    )
    async with (
        Sandbox(dict([creds])) as sandbox,
        kraken_venue(config, *creds, sandbox.base_url, ws_urls=(sandbox.ws_url,) * 2) as venue,
    ):
        execution = Execution(venue, [].append, clock=venue.client.clock)
        placed = await execution.place(BUY)
        assert await execution.amend(placed, price="1003", volume="0.003") is True
        (resting,) = sandbox.engine.open.values()
        assert (resting.price, resting.volume) == (Decimal(1003), Decimal("0.003"))
        assert sent(venue, "AmendOrder") == sent(venue, "AddOrder") == 0  # no nonce for either


async def test_an_amend_carries_a_deadline_so_a_late_one_never_lands(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    """As an AddOrder does (order_deadline_s): an amend held up past it is refused by the
    engine instead of landing after a newer one."""
    seen: list[dict[str, Any]] = []
    async with exchange(tmp_path, creds) as (sandbox, venue):
        handler = sandbox._private["AmendOrder"]

        def spy(key: str, body: dict[str, Any]) -> dict[str, Any]:
            seen.append(body)
            return handler(key, body)

        sandbox._private["AmendOrder"] = spy
        execution = Execution(venue, [].append, clock=venue.client.clock)
        placed = await execution.place(BUY)
        assert await execution.amend(placed, price=999) is True
    (body,) = seen
    assert body["deadline"].endswith("Z") and body["limit_price"] == "999.0"


def test_the_sandboxs_amend_changes_all_or_nothing() -> None:
    """An amend with a good volume and an off-tick price is refused whole (the sandbox
    used to apply the volume first)."""
    engine = MatchingEngine(Market(MarketRules(seed=3), ManualClock()))
    body = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.01"}
    engine.add_order("acct", {**body, "price": "1000", "cl_ord_id": "c1"})
    with pytest.raises(KrakenFailure, match="Tick size"):
        engine.amend_order("acct", {"cl_ord_id": "c1", "order_qty": "0.02", "limit_price": "1.05"})
    (order,) = engine.open.values()
    assert (order.volume, order.price) == (Decimal("0.01"), Decimal("1000.0"))


def test_an_amend_through_the_spread_trades_at_once_as_taker() -> None:
    """As a new order through the spread would: at the touch, paying the taker fee."""
    engine = MatchingEngine(Market(MarketRules(seed=3), ManualClock()))
    body = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.01"}
    engine.add_order("acct", {**body, "price": "1000", "cl_ord_id": "c1"})
    _, ask = engine.market.quote("XBTUSD")
    engine.amend_order("acct", {"cl_ord_id": "c1", "limit_price": str(ask + 100)})
    (fill,) = engine.fills_of("acct")
    assert (fill.price, fill.maker, fill.volume) == (ask, False, Decimal("0.01"))
    assert not engine.open


@pytest.mark.parametrize("entry", ["rest", "ws"])
async def test_a_post_only_order_stays_post_only_when_amended(
    tmp_path: Path, creds: tuple[str, str], entry: str
) -> None:
    """Kraken takes ``post_only`` on each amend, not from the order: without it, a maker
    quote amended through the spread traded at once as taker (found by the example market
    maker). Now the amend is refused and the quote rests where it was."""
    async with exchange(tmp_path, creds, entry=entry) as (sandbox, venue):
        execution = Execution(venue, [].append, clock=venue.client.clock)
        bid, ask = sandbox.engine.market.quote("XBTUSD")
        quote = LimitOrder("XBTUSD", "buy", Decimal("0.001"), bid - 50, post_only=True)
        placed = await execution.place(quote)
        assert await execution.amend(placed, price=ask + 10) is False  # refused: would take
        (resting,) = sandbox.engine.open.values()
        assert (resting.price, resting.filled) == (bid - 50, 0)
        (shown,) = execution.open_orders()
        assert shown.price == bid - 50
        assert await execution.amend(placed, price=bid - 10) is True  # passive: moves
        assert resting.price == bid - 10
        plain = await execution.place(LimitOrder("XBTUSD", "buy", Decimal("0.001"), bid - 60))
        assert await execution.amend(plain, price=ask + 10) is True  # not post-only: it takes
        assert [f.maker for f in sandbox.engine.fills_of(creds[0])] == [False]


async def test_each_change_of_terms_reaches_on_order(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    """An amend of ours, and a change made elsewhere that a poll finds, each give one
    OrderUpdate with the new price and volume (the state unchanged). Before, on_order was for
    state changes only, and a strategy following its quotes by on_order missed every amend."""
    events: list[object] = []
    async with exchange(tmp_path, creds) as (sandbox, venue):
        execution = Execution(venue, events.append, clock=venue.client.clock)
        placed = await execution.place(BUY)
        assert await execution.amend(placed, price="1001.5") is True
        body = {"cl_ord_id": placed.cl_ord_id, "limit_price": "1005", "order_qty": "0.004"}
        sandbox.engine.amend_order(creds[0], body)  # the exchange's web page, say
        await execution.poll()
        await execution.poll()  # nothing new: no update
    updates = [(e.state, e.price, e.volume) for e in events if isinstance(e, OrderUpdate)]
    assert updates == [
        (OrderState.ACCEPTED, Decimal(1000), BUY.volume),
        (OrderState.ACCEPTED, Decimal("1001.5"), BUY.volume),
        (OrderState.ACCEPTED, Decimal(1005), Decimal("0.004")),
    ]
